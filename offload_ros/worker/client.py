# Copyright 2026 offload_ros maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Client of KServe v2 workers (our gpu_worker or NVIDIA Triton), used by the robot.

Keep-alive session, JPEG (BYTES) or raw uint8 tensor payloads over the binary extension, a
per-request timeout from the frame's remaining deadline budget, retries only where safe
(idempotent GETs, and an infer whose connection was refused before anything was sent), and a
circuit breaker per worker. Triton has no /load route: the load is derived from deltas of
its cumulative /stats, with the variance taken from a service-time assumption.

A worker is not trusted further than the protocol: a request's whole time (upload, wait,
answer, however slowly it drips) is bounded by its budget, an answer's size by
`max_response_bytes`, and its contents are checked (worker.answers).
"""
import collections
import dataclasses
import heapq
import math
import secrets
import socket
import struct
import threading
import time
import urllib.parse
from typing import Callable, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from offload_ros.inference.picture import Picture
from offload_ros.worker import protocol
from offload_ros.worker.answers import (AnswerRules, InferResult, MalformedAnswer,  # noqa: F401
                                        WorkerLoad, WorkerRequestError, WorkerUnavailable,
                                        load_from_report, read_answer, triton_load)


def check_url(url: str) -> str:
    """
    Return a worker's base URL, checked.

    Http or https, a host, a valid port, no credentials (tokens go in OFFLOAD_WORKER_TOKEN: a URL
    is logged and published). ValueError names what is wrong.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ValueError(f'{url!r} is not a URL ({e})') from e
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise ValueError(f'{url!r} is not http(s)://HOST[:PORT]')
    if parts.username is not None or parts.password is not None:
        raise ValueError('credentials in a worker URL are not supported (they would be '
                         'logged): give the token in OFFLOAD_WORKER_TOKEN')
    if parts.query or parts.fragment or port == 0:
        raise ValueError(f'{url!r}: a worker URL has no query, fragment or port 0')
    return url.rstrip('/')


@dataclasses.dataclass(frozen=True)
class ClientOptions:
    """The request settings a robot may change while running (WorkerClient.apply)."""

    payload: str = 'jpeg'
    jpeg_quality: int = 80
    forward_jpeg: bool = True
    serial_uploads: bool = True
    score_threshold: float = 0.3
    iou_threshold: float = 0.45

    def __post_init__(self):
        if self.payload not in ('jpeg', 'raw'):
            raise ValueError(f"payload must be 'jpeg' or 'raw', got {self.payload!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f'jpeg_quality must be in [1, 100], got {self.jpeg_quality!r}')


class CircuitBreaker:
    """
    Closed -> open after `threshold` consecutive failures.

    Half-open after `cooldown_s`, when one trial request decides between closed and open again.
    """

    def __init__(self, threshold: int = 3, cooldown_s: float = 2.0, clock=time.monotonic):
        self.threshold, self.cooldown_s, self.clock = threshold, cooldown_s, clock
        self.failures = 0
        self.opened_at_s: Optional[float] = None
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            if self.opened_at_s is None:
                return True
            if self.clock() - self.opened_at_s >= self.cooldown_s:
                self.opened_at_s = self.clock()  # half-open: one trial, others wait a cooldown
                return True
            return False

    @property
    def is_open(self) -> bool:
        with self._lock:
            opened = self.opened_at_s
            return opened is not None and self.clock() - opened < self.cooldown_s

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at_s = 0, None

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.threshold:
                self.opened_at_s = self.clock()


class Watchdog:
    """
    One thread that calls each armed callback at its time unless it was disarmed first.

    The bound on a request's whole time, where a socket timeout bounds each read only (an answer
    dripped a byte per 50 ms never times out a read).
    """

    def __init__(self):
        self._heap: list = []
        self._cond = threading.Condition()
        self._seq = 0
        self._thread: Optional[threading.Thread] = None

    def arm(self, at_s: float, callback: Callable[[], None]) -> list:
        """Have the callback called at time.monotonic() `at_s`; returns the handle to cancel it."""
        with self._cond:
            self._seq += 1
            entry = [at_s, self._seq, callback]
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name='watchdog',
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
            return entry

    def disarm(self, entry: list) -> None:
        with self._cond:
            entry[2] = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(None if not self._heap else
                                    self._heap[0][0] - time.monotonic())
                callback = heapq.heappop(self._heap)[2]
            if callback is not None:
                callback()


WATCHDOG = Watchdog()
_REQUEST = threading.local()   # the calling thread's _Cut, if it armed one


class _Cut:
    """The connection a request is on, shut down when its time is up."""

    def __init__(self):
        self.connection = None
        self.fired = False
        self._lock = threading.Lock()

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            sock = getattr(self.connection, 'sock', None)
            if sock is not None:
                try:   # wakes the blocked send or recv; urllib3 then discards the connection
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Bounded:
    """
    Bound the whole time of the calling thread's requests.

    `with _Bounded(limit_s) as cut:` the calling thread's requests inside are shut down after
    limit_s in all; cut.fired says whether that happened.
    """

    def __init__(self, limit_s: float):
        self.limit_s = limit_s

    def __enter__(self) -> _Cut:
        self.cut = _Cut()
        _REQUEST.cut = self.cut
        self.alarm = WATCHDOG.arm(time.monotonic() + self.limit_s, self.cut.fire)
        return self.cut

    def __exit__(self, *exc) -> None:
        WATCHDOG.disarm(self.alarm)
        _REQUEST.cut = None


class _Tracking:
    """A connection that tells the calling thread's _Cut which connection it is on."""

    def request(self, *args, **kwargs):
        cut = getattr(_REQUEST, 'cut', None)
        if cut is not None:
            cut.connection = self
        return super().request(*args, **kwargs)


class _TrackedConnection(_Tracking, HTTPConnection):
    pass


class _TrackedHTTPSConnection(_Tracking, HTTPSConnection):
    pass


class _TrackedPool(HTTPConnectionPool):
    ConnectionCls = _TrackedConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


# Unsent bytes a socket may hold before a blocking send waits (TCP_NOTSENT_LOWAT): once
# an upload's last block is handed over, at most this much of it is still to go out.
UPLOAD_LOWAT_BYTES = 16384


class FifoLock:
    """A lock granted in the order it was asked for (threading.Lock wakes any waiter)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._queue: collections.deque = collections.deque()

    def acquire(self, timeout_s: Optional[float] = None) -> bool:
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            if self._cond.wait_for(lambda: self._queue[0] is ticket, timeout_s):
                return True
            self._queue.remove(ticket)
            self._cond.notify_all()     # the one behind may be first now
            return False

    def release(self) -> None:
        with self._cond:
            self._queue.popleft()
            self._cond.notify_all()

    def waiting(self) -> int:
        """Holders and waiters."""
        with self._cond:
            return len(self._queue)


class _UploadBody:
    """
    A request body that hands the uplink on once its last block is in the kernel.

    urllib3 reads a file-like body block by block and sends each block before reading the
    next, so the read that finds the end comes after every byte was handed to the socket
    (of which at most UPLOAD_LOWAT_BYTES are still unsent there).
    """

    def __init__(self, data: bytes, on_end):
        self._data = memoryview(data)
        self._pos = 0
        self._on_end = on_end

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self):
        while True:
            block = self.read(16384)
            if not block:
                return
            yield block

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else self._pos + size
        block = bytes(self._data[self._pos:end])
        self._pos += len(block)
        if not block:
            self._on_end()
        return block


class _ResettingAdapter(requests.adapters.HTTPAdapter):
    """
    Connections whose close discards unsent data (SO_LINGER 0: a TCP reset).

    And that a request's watchdog can find (_TrackedConnection).

    urllib3 closes a connection whose request failed or timed out. An ordinary close keeps
    sending what is already in the kernel's send buffer (megabytes with autotuning): on a slow
    link an upload the robot gave up on goes on for seconds to minutes and starves every
    request, probe and new connection after it. A reset stops it at once.
    """

    def init_poolmanager(self, *args, **kwargs):
        kwargs['socket_options'] = HTTPConnection.default_socket_options + [
            (socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))] + (
            [(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, UPLOAD_LOWAT_BYTES)]
            if hasattr(socket, 'TCP_NOTSENT_LOWAT') else [])
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {'http': _TrackedPool,
                                                   'https': _TrackedHTTPSPool}


@dataclasses.dataclass(frozen=True)
class _Reply:
    """A GET's answer, read whole within its bounds."""

    status_code: int
    content: bytes

    def json(self) -> object:
        try:
            return protocol.parse_json(self.content, 'answer')
        except protocol.ProtocolError as e:
            raise MalformedAnswer(str(e)) from e


def new_request_id() -> str:
    """Return a request id nobody else can guess (a worker cancels a queued request by id)."""
    return secrets.token_urlsafe(12)


def read_capped(response: requests.Response, cap: int, url: str) -> bytes:
    """
    Return an answer's body, at most `cap` bytes (MalformedAnswer past it).

    (refused before reading where its Content-Length says more).
    """
    declared = response.headers.get('Content-Length', '')
    if declared.isdigit() and int(declared) > cap:
        raise MalformedAnswer(f'{url}: answer of {declared} bytes over the cap {cap}')
    chunks, size = [], 0
    for chunk in response.iter_content(1 << 16):
        size += len(chunk)
        if size > cap:
            raise MalformedAnswer(f'{url}: answer over the cap {cap}')
        chunks.append(chunk)
    return b''.join(chunks)


def close_dropped(session: requests.Session, url: str) -> int:
    """
    Close the pooled idle connections the worker has closed.

    (its keep-alive timeout, a restart); returns how many. urllib3 finds a dropped connection
    only when it takes it again, and its pool hands out the newest first: a connection opened
    once when requests overlapped sat half-closed (CLOSE_WAIT) for the rest of a 30 min soak.
    """
    queue = session.get_adapter(url).poolmanager.connection_from_url(url).pool
    closed = 0
    if queue is None:                 # the pool was closed
        return closed
    with queue.mutex:                 # idle connections only: none is in use
        for conn in queue.queue:
            if conn is not None and conn.sock is not None and not conn.is_connected:
                conn.close()
                closed += 1
    return closed


def payload_tensor(picture: Picture, payload: str, jpeg_quality: int,
                   forward_jpeg: bool) -> protocol.Tensor:
    """
    Return a frame's inference input: a JPEG (BYTES) or raw pixels (UINT8).

    forward_jpeg: a received JPEG goes as it came (no decode, no re-encode at jpeg_quality).
    """
    if payload == 'jpeg':
        if forward_jpeg and picture.jpeg is not None:
            return protocol.Tensor('image_jpeg', 'BYTES', [1], [picture.jpeg])
        ok, data = cv2.imencode('.jpg', picture.bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if not ok:
            raise ValueError('JPEG encoding failed')
        return protocol.Tensor('image_jpeg', 'BYTES', [1], [data.tobytes()])
    bgr = picture.bgr
    return protocol.Tensor('images', 'UINT8', [1, *bgr.shape], np.ascontiguousarray(bgr))


class WorkerClient:
    """
    One worker.

    Thread-safe for concurrent infer() calls (requests.Session is shared).
    """

    def __init__(self, url: str, model: str = 'yolov3_tiny', client_id: str = 'robot',
                 names: Sequence[str] = (), payload: str = 'jpeg', jpeg_quality: int = 80,
                 token: Optional[str] = None, server_nms: bool = True,
                 score_threshold: float = 0.3, iou_threshold: float = 0.45,
                 stats_variance: str = 'deterministic', breaker: CircuitBreaker = None,
                 pool_size: int = 8, forward_jpeg: bool = True, serial_uploads: bool = True,
                 ca_file: Optional[str] = None, max_detections: int = 1000,
                 max_response_bytes: int = 16 * 1024 * 1024):
        if stats_variance not in ('deterministic', 'exponential'):
            raise ValueError("stats_variance must be 'deterministic' or 'exponential'")
        if max_detections < 0 or max_response_bytes < 1:
            raise ValueError('max_detections must be >= 0 and max_response_bytes >= 1')
        self.url = check_url(url)
        self.model, self.client_id, self.names = model, client_id, list(names)
        self.max_detections, self.max_response_bytes = max_detections, max_response_bytes
        self.server_nms = server_nms
        # One upload at a time on the link to this worker, in arrival order (see _infer).
        self.apply(ClientOptions(payload, jpeg_quality, forward_jpeg, serial_uploads,
                                 score_threshold, iou_threshold))
        self.stats_variance = stats_variance
        self.breaker = breaker or CircuitBreaker()
        self.session = requests.Session()
        adapter = _ResettingAdapter(pool_connections=1, pool_maxsize=pool_size)
        self.session.mount('http://', adapter)
        self.session.mount('https://', adapter)
        self.session.headers[protocol.CLIENT_HEADER] = client_id
        # https: the server's certificate is verified, against ca_file where given (a private
        # CA), else the system's store. Passed with each request: requests lets
        # REQUESTS_CA_BUNDLE in the environment override a session's own setting.
        self.verify = ca_file or True
        if token:
            self.session.headers['Authorization'] = f'Bearer {token}'
        self._last_stats = None
        self._last_answer_at_s = -math.inf   # monotonic: the worker's last answer, any kind
        self.uplink = FifoLock()

    def close(self) -> None:
        self.session.close()

    def apply(self, options: 'ClientOptions') -> None:
        """Take new request settings (the node's parameters of the same names)."""
        self.payload, self.jpeg_quality = options.payload, options.jpeg_quality
        self.forward_jpeg, self.serial_uploads = options.forward_jpeg, options.serial_uploads
        self.score_threshold, self.iou_threshold = options.score_threshold, options.iou_threshold

    def encode(self, image) -> protocol.Tensor:
        """Return the payload tensor of a frame (BGR pixels or a Picture)."""
        return payload_tensor(Picture.of(image), self.payload, self.jpeg_quality,
                              self.forward_jpeg)

    def request_body(self, image, tensor: Optional[protocol.Tensor] = None,
                     request_id: str = '') -> Tuple[bytes, int]:
        """
        Return the inference request for a frame (BGR pixels or a Picture).

        (body, JSON header length).
        """
        return self._request([tensor or self.encode(image)], request_id)

    def _request(self, inputs, request_id: str, parameters: Optional[dict] = None) -> tuple:
        outputs = ['detections'] if self.server_nms else ['boxes', 'scores']
        header = {'id': request_id or new_request_id(),
                  'outputs': [{'name': n, 'parameters': {'binary_data': True}}
                              for n in outputs], **({'parameters': parameters} if parameters
                                                    else {})}
        return protocol.encode(header, inputs, 'inputs')

    def infer(self, image, budget_s: Optional[float] = None,
              tensor: Optional[protocol.Tensor] = None, request_id: str = '',
              on_upload=None) -> InferResult:
        """
        Run detection remotely on a frame (BGR pixels or a Picture).

        budget_s: time left before the frame's deadline. on_upload: called as the upload begins
        (after any wait for the uplink).
        """
        self._admit(budget_s)
        picture = Picture.of(image)
        body, head_len = self.request_body(picture, tensor, request_id)
        return self._infer(self.model, body, head_len, budget_s, picture.size, on_upload)

    def split_request_body(self, tensors: Mapping[str, np.ndarray], image_size: Tuple[int, int],
                           request_id: str = '') -> Tuple[bytes, int]:
        """Return the tail's request: the head's crossing tensors and the robot's image size."""
        inputs = [protocol.Tensor(name, protocol.NUMPY_TO_V2[value.dtype], list(value.shape),
                                  value) for name, value in tensors.items()]
        return self._request(inputs, request_id, {
            protocol.IMAGE_SIZE: [int(image_size[0]), int(image_size[1])]})

    def infer_split(self, layer: int, tensors: Mapping[str, np.ndarray],
                    image_size: Tuple[int, int], budget_s: Optional[float] = None,
                    request_id: str = '', on_upload=None) -> InferResult:
        """Run the tail of a split after `layer` remotely on the head's tensors."""
        self._admit(budget_s)
        body, head_len = self.split_request_body(tensors, image_size, request_id)
        return self._infer(protocol.tail_model_name(self.model, layer), body, head_len,
                           budget_s, image_size, on_upload)

    def _admit(self, budget_s: Optional[float]) -> None:
        if budget_s is not None and budget_s <= 0:
            raise WorkerUnavailable('no deadline budget left', 'deadline')
        if not self.breaker.allow():
            raise WorkerUnavailable(f'{self.url}: circuit breaker open', 'breaker_open')

    def _infer(self, model: str, body: bytes, head_len: int, budget_s: Optional[float],
               image_size: Tuple[int, int], on_upload=None) -> InferResult:
        """
        With serial_uploads, a request first waits for the uplink.

        Concurrent uploads on a rate-limited link share it (TCP flows), so each takes as long as
        all of them, while one at a time in arrival order finishes the first first; for frames of
        one size the mean time on the link is then the FIFO M/D/1's, not processor sharing's
        (rho/(2(1-rho)) against rho/(1-rho) transfers of wait). The link is handed on once the body
        is in the kernel, so the next upload follows without a gap; the answer is awaited without
        holding it.
        """
        start = time.monotonic()
        upload_wait = 0.0
        serial = self.serial_uploads    # read once: a reconfigure mid-request changes nothing
        if serial:
            if not self.uplink.acquire(budget_s):
                raise WorkerUnavailable(f'{self.url}: uplink busy for the whole budget '
                                        f'({budget_s:.3f} s)', 'deadline')
            upload_wait = time.monotonic() - start
            if budget_s is not None:
                budget_s -= upload_wait
                if budget_s <= 0.001:
                    self.uplink.release()
                    raise WorkerUnavailable(f'{self.url}: uplink busy for the whole budget',
                                            'deadline')
        handed_on = [not serial]

        def hand_on():
            if not handed_on[0]:
                handed_on[0] = True
                self.uplink.release()
        try:
            if on_upload is not None:
                on_upload()
            return self._post(model, body, head_len, budget_s, image_size, start, upload_wait,
                              hand_on if serial else None)
        finally:
            hand_on()

    def _post(self, model: str, body: bytes, head_len: int, budget_s: Optional[float],
              image_size: Tuple[int, int], start: float, upload_wait: float,
              hand_on: Optional[Callable[[], None]]) -> InferResult:
        """hand_on, when given, is called once the body is in the kernel (serial uploads)."""
        headers = {protocol.HEADER_LENGTH: str(head_len),
                   'Content-Type': 'application/octet-stream'}
        if budget_s is not None:
            headers[protocol.DEADLINE_HEADER] = f'{budget_s:.6f}'
        limit_s = budget_s or 10.0
        timeout = (min(1.0, limit_s), limit_s)
        for attempt in (1, 2):
            # The whole exchange within the budget: each read's timeout alone lets an answer
            # dripped a byte at a time hold the request for ever.
            bounded = _Bounded(limit_s - (time.monotonic() - start - upload_wait))
            cut = bounded.__enter__()
            answering = False      # the answer's headers are in: its body is awaited
            try:
                data = body if hand_on is None else _UploadBody(body, hand_on)
                response = self.session.post(f'{self.url}/v2/models/{model}/infer',
                                             data=data, headers=headers, timeout=timeout,
                                             stream=True, verify=self.verify,
                                             allow_redirects=False)
                answering = True
                try:
                    content = read_capped(response, self.max_response_bytes, self.url)
                finally:
                    response.close()
                self._last_answer_at_s = time.monotonic()
                break
            except requests.ConnectionError as e:
                if cut.fired and not answering:
                    raise self._timed_out(start, limit_s) from e
                # Safe to retry only if the connection was refused before sending (a stale
                # keep-alive socket), and only while budget remains.
                left = None if budget_s is None else \
                    budget_s - (time.monotonic() - start - upload_wait)
                stale_socket = 'refused' not in str(e).lower()
                if attempt == 1 and stale_socket and (left is None or left > 0.01):
                    continue
                self.breaker.failure()
                raise WorkerUnavailable(f'{self.url}: {e.__class__.__name__}',
                                        'connection') from e
            except requests.Timeout as e:
                raise self._timed_out(start, limit_s) from e
            except MalformedAnswer:
                self.breaker.failure()
                raise
            except requests.RequestException as e:   # an answer cut short, or cut by us
                self.breaker.failure()
                if cut.fired:   # it began to answer and did not finish in time: dripping
                    raise WorkerUnavailable(f'{self.url}: answer not complete in '
                                            f'{limit_s:.3f} s', 'timeout') from e
                raise WorkerUnavailable(f'{self.url}: answer incomplete '
                                        f'({e.__class__.__name__})', 'connection') from e
            finally:
                bounded.__exit__()
        round_trip = time.monotonic() - start
        try:
            detections, server = read_answer(
                self.url, response.status_code, response.headers, content, round_trip,
                image_size, AnswerRules(self.names, self.max_detections,
                                        self.score_threshold, self.iou_threshold))
        except WorkerUnavailable as e:
            if e.kind != 'deadline':   # 504: our deadline passed, not a worker fault
                self.breaker.failure()
            raise
        self.breaker.success()
        return InferResult(detections, round_trip, len(body), len(content), *server,
                           upload_wait)

    def _timed_out(self, start: float, limit_s: float) -> WorkerUnavailable:
        """
        No answer began within the limit.

        If the worker answered something else meanwhile (/load, another frame), this is a slow
        answer in the tail, not a dead worker: no breaker failure.
        """
        if self._last_answer_at_s > start:
            return WorkerUnavailable(f'{self.url}: no answer in {limit_s:.3f} s but '
                                     'answering others', 'slow')
        self.breaker.failure()
        return WorkerUnavailable(f'{self.url}: timed out', 'timeout')

    def answered_since(self, monotonic_s: float) -> bool:
        """Whether the worker answered anything (a frame, /load, a probe) after monotonic_s."""
        return self._last_answer_at_s > monotonic_s

    def _get(self, path: str, timeout_s: float) -> '_Reply':
        last = None
        for _ in range(2):  # GETs are idempotent: one retry
            try:
                with _Bounded(2 * timeout_s):
                    response = self.session.get(f'{self.url}{path}', timeout=timeout_s,
                                                stream=True, verify=self.verify,
                                                allow_redirects=False)
                    try:
                        reply = _Reply(response.status_code, read_capped(
                            response, self.max_response_bytes, self.url))
                    finally:
                        response.close()
                self._last_answer_at_s = time.monotonic()
                return reply
            except MalformedAnswer as e:
                raise WorkerUnavailable(str(e), 'malformed') from e
            except requests.RequestException as e:
                last = e
        # Connected but no answer in time ('timeout': maybe stuck behind our own uploads on a
        # busy link) differs from not reachable at all ('connection').
        kind = 'timeout' if isinstance(last, (requests.ReadTimeout,
                                              requests.exceptions.ChunkedEncodingError)) \
            else 'connection'
        raise WorkerUnavailable(f'{self.url}{path}: {last.__class__.__name__}', kind)

    def probe(self, payload_bytes: int, timeout_s: float = 1.0,
              data: Optional[bytes] = None) -> Optional[float]:
        """
        Upload payload_bytes (or `data`, e.g. a real frame's request) to the probe route.

        Returns the round trip, or None where the server has no probe route (Triton).
        """
        start = time.perf_counter()
        try:
            with _Bounded(2 * timeout_s):
                response = self.session.post(f'{self.url}{protocol.PROBE_ROUTE}',
                                             data=bytes(int(payload_bytes)) if data is None
                                             else data, timeout=timeout_s,
                                             verify=self.verify)
        except requests.RequestException as e:
            raise WorkerUnavailable(f'{self.url}: probe {e.__class__.__name__}',
                                    'connection') from e
        if response.status_code != 200:
            return None
        return time.perf_counter() - start

    def cancel(self, request_id: str, timeout_s: float = 0.5) -> bool:
        """
        Ask the worker to drop our queued request `request_id`.

        True if it was dropped (False: already running or done, or a server without the route, e.g.
        Triton).
        """
        try:
            with _Bounded(2 * timeout_s):
                response = self.session.post(f'{self.url}{protocol.CANCEL_ROUTE}',
                                             json={protocol.CANCEL_ID: request_id},
                                             timeout=timeout_s,
                                             verify=self.verify)
            answer = response.json() if response.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            return False
        return isinstance(answer, dict) and answer.get(protocol.CANCELLED) is True

    def ready(self, timeout_s: float = 0.5) -> bool:
        try:
            return self._get('/v2/health/ready', timeout_s).status_code == 200
        except WorkerUnavailable:
            return False

    def fetch_load(self, timeout_s: float = 0.5, now_s: float = None) -> WorkerLoad:
        """
        Return the worker's load: /load on our worker, else deltas of Triton's /stats.

        Each poll first closes pooled connections the worker has closed (close_dropped).
        """
        close_dropped(self.session, self.url)
        response = self._get(protocol.LOAD_ROUTE.format(model=self.model), timeout_s)
        if response.status_code == 200:
            return load_from_report(self.url, response.json())
        response = self._get(f'/v2/models/{self.model}/stats', timeout_s)
        if response.status_code != 200:
            raise WorkerUnavailable(f'{self.url}: no /load or /stats (HTTP '
                                    f'{response.status_code})', 'http_5xx')
        try:
            load, self._last_stats = triton_load(
                response.json(), time.monotonic() if now_s is None else now_s,
                self._last_stats, self.stats_variance)
            return load
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise MalformedAnswer(f'{self.url}: malformed /stats ({e.__class__.__name__})') \
                from e
