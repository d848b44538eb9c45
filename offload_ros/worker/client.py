"""Client of KServe v2 workers (our gpu_worker or NVIDIA Triton), used by the robot.

Keep-alive session, JPEG (BYTES) or raw uint8 tensor payloads over the binary extension, a
per-request timeout from the frame's remaining deadline budget, retries only where safe
(idempotent GETs, and an infer whose connection was refused before anything was sent), and a
circuit breaker per worker. Triton has no /load route: the load is derived from deltas of
its cumulative /stats, with the variance taken from a service-time assumption.
"""
import collections
import dataclasses
import math
import socket
import struct
import threading
import time
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
import requests
from urllib3.connection import HTTPConnection

from offload_ros.inference.detector import Detection, postprocess
from offload_ros.inference.picture import Picture
from offload_ros.worker import protocol


class WorkerUnavailable(RuntimeError):
    """The worker cannot take the request now (breaker open, refused, 5xx, timeout)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        # 'breaker_open' | 'timeout' | 'connection' | 'http_5xx' | 'deadline', or 'slow': the
        # request timed out while the worker answered other requests (alive, only slow).
        self.kind = kind


class WorkerRequestError(ValueError):
    """The worker rejected our request as malformed (4xx): a bug or config error, not load."""


@dataclasses.dataclass(frozen=True)
class InferResult:
    detections: List[Detection]
    round_trip_s: float
    request_bytes: int
    response_bytes: int
    server_s: Optional[float]
    server_queue_s: Optional[float]
    server_service_s: Optional[float]
    upload_wait_s: float = 0.0     # waiting for the uplink (serial uploads), in round_trip_s


@dataclasses.dataclass(frozen=True)
class WorkerLoad:
    arrival_rate_hz: float
    service_mean_s: Optional[float]
    service_var_s2: Optional[float]
    parallelism: int
    queue_length: int
    own_rate_hz: float
    source: str  # 'load' (our worker) or 'triton_stats'
    # Mean service time per model the worker serves (the whole detector and split tails).
    model_service_s: Mapping[str, float] = dataclasses.field(default_factory=dict)


class CircuitBreaker:
    """Closed -> open after `threshold` consecutive failures; half-open after `cooldown_s`,
    when one trial request decides between closed and open again."""

    def __init__(self, threshold: int = 3, cooldown_s: float = 2.0, clock=time.monotonic):
        self.threshold, self.cooldown_s, self.clock = threshold, cooldown_s, clock
        self.failures = 0
        self.opened_s: Optional[float] = None
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            if self.opened_s is None:
                return True
            if self.clock() - self.opened_s >= self.cooldown_s:
                self.opened_s = self.clock()  # half-open: one trial, others wait a cooldown
                return True
            return False

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self.opened_s is not None and self.clock() - self.opened_s < self.cooldown_s

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_s = 0, None

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.threshold:
                self.opened_s = self.clock()


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
    """A request body that hands the uplink on once its last block is in the kernel.

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
    """Connections whose close discards unsent data (SO_LINGER 0: a TCP reset).

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


class WorkerClient:
    """One worker. Thread-safe for concurrent infer() calls (requests.Session is shared)."""

    def __init__(self, url: str, model: str = 'yolov3_tiny', client_id: str = 'robot',
                 names: Sequence[str] = (), payload: str = 'jpeg', jpeg_quality: int = 80,
                 token: Optional[str] = None, server_nms: bool = True,
                 score_threshold: float = 0.3, iou_threshold: float = 0.45,
                 stats_variance: str = 'deterministic', breaker: CircuitBreaker = None,
                 pool_size: int = 8, forward_jpeg: bool = True, serial_uploads: bool = True):
        if payload not in ('jpeg', 'raw'):
            raise ValueError(f"payload must be 'jpeg' or 'raw', got {payload!r}")
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f'jpeg_quality must be in [1, 100], got {jpeg_quality!r}')
        if stats_variance not in ('deterministic', 'exponential'):
            raise ValueError("stats_variance must be 'deterministic' or 'exponential'")
        self.url = url.rstrip('/')
        self.model = model
        self.client_id = client_id
        self.names = list(names)
        self.payload = payload
        self.jpeg_quality = jpeg_quality
        # A received JPEG goes as it came (no decode, no re-encode at jpeg_quality).
        self.forward_jpeg = forward_jpeg
        self.server_nms = server_nms
        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold
        self.stats_variance = stats_variance
        self.breaker = breaker or CircuitBreaker()
        self.session = requests.Session()
        adapter = _ResettingAdapter(pool_connections=1, pool_maxsize=pool_size)
        self.session.mount('http://', adapter)
        self.session.mount('https://', adapter)
        self.session.headers[protocol.CLIENT_HEADER] = client_id
        if token:
            self.session.headers['Authorization'] = f'Bearer {token}'
        self._last_stats = None
        self._last_answer_s = -math.inf   # perf_counter: the worker's last answer, any kind
        # One upload at a time on the link to this worker, in arrival order (see _infer).
        self.serial_uploads = serial_uploads
        self.uplink = FifoLock()

    def close(self) -> None:
        self.session.close()

    def encode(self, image) -> protocol.Tensor:
        """The payload tensor of a frame (BGR pixels or a Picture)."""
        picture = Picture.of(image)
        if self.payload == 'jpeg':
            if self.forward_jpeg and picture.jpeg is not None:
                return protocol.Tensor('image_jpeg', 'BYTES', [1], [picture.jpeg])
            ok, data = cv2.imencode('.jpg', picture.bgr, [cv2.IMWRITE_JPEG_QUALITY,
                                                          self.jpeg_quality])
            if not ok:
                raise ValueError('JPEG encoding failed')
            return protocol.Tensor('image_jpeg', 'BYTES', [1], [data.tobytes()])
        bgr = picture.bgr
        return protocol.Tensor('images', 'UINT8', [1, *bgr.shape], np.ascontiguousarray(bgr))

    def request_body(self, image, tensor: Optional[protocol.Tensor] = None,
                     request_id: str = '') -> Tuple[bytes, int]:
        """The inference request for a frame (BGR pixels or a Picture): (body, JSON header
        length)."""
        tensor = tensor or self.encode(image)
        outputs = ['detections'] if self.server_nms else ['boxes', 'scores']
        header = {'id': request_id or self.client_id,
                  'outputs': [{'name': n, 'parameters': {'binary_data': True}}
                              for n in outputs]}
        return protocol.encode(header, [tensor], 'inputs')

    def infer(self, image, budget_s: Optional[float] = None,
              tensor: Optional[protocol.Tensor] = None, request_id: str = '',
              on_upload=None) -> InferResult:
        """Run detection remotely on a frame (BGR pixels or a Picture). budget_s: time left
        before the frame's deadline. on_upload: called as the upload begins (after any wait
        for the uplink)."""
        self._admit(budget_s)
        picture = Picture.of(image)
        body, head_len = self.request_body(picture, tensor, request_id)
        return self._infer(self.model, body, head_len, budget_s, picture.size, on_upload)

    def split_request_body(self, tensors: Mapping[str, np.ndarray], image_size: Tuple[int, int],
                           request_id: str = '') -> Tuple[bytes, int]:
        """The tail's request: the head's crossing tensors and the robot's image size."""
        inputs = [protocol.Tensor(name, protocol.NUMPY_TO_V2[value.dtype], list(value.shape),
                                  value) for name, value in tensors.items()]
        outputs = ['detections'] if self.server_nms else ['boxes', 'scores']
        header = {'id': request_id or self.client_id,
                  'parameters': {'image_size': [int(image_size[0]), int(image_size[1])]},
                  'outputs': [{'name': n, 'parameters': {'binary_data': True}}
                              for n in outputs]}
        return protocol.encode(header, inputs, 'inputs')

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
        """With serial_uploads, a request first waits for the uplink: concurrent uploads on
        a rate-limited link share it (TCP flows), so each takes as long as all of them, while
        one at a time in arrival order finishes the first first; for frames of one size the
        mean time on the link is then the FIFO M/D/1's, not processor sharing's
        (rho/(2(1-rho)) against rho/(1-rho) transfers of wait). The link is handed on once
        the body is in the kernel, so the next upload follows without a gap; the answer is
        awaited without holding it."""
        start = time.perf_counter()
        upload_wait = 0.0
        serial = self.serial_uploads    # read once: a reconfigure mid-request changes nothing
        if serial:
            if not self.uplink.acquire(budget_s):
                raise WorkerUnavailable(f'{self.url}: uplink busy for the whole budget '
                                        f'({budget_s:.3f} s)', 'deadline')
            upload_wait = time.perf_counter() - start
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
        timeout = (min(1.0, budget_s or 1.0), budget_s or 10.0)
        for attempt in (1, 2):
            try:
                data = body if hand_on is None else _UploadBody(body, hand_on)
                response = self.session.post(f'{self.url}/v2/models/{model}/infer',
                                             data=data, headers=headers, timeout=timeout)
                self._last_answer_s = time.perf_counter()
                break
            except requests.ConnectionError as e:
                # Safe to retry only if the connection was refused before sending (a stale
                # keep-alive socket), and only while budget remains.
                left = None if budget_s is None else \
                    budget_s - (time.perf_counter() - start - upload_wait)
                stale_socket = 'refused' not in str(e).lower()
                if attempt == 1 and stale_socket and (left is None or left > 0.01):
                    continue
                self.breaker.failure()
                raise WorkerUnavailable(f'{self.url}: {e.__class__.__name__}',
                                        'connection') from e
            except requests.Timeout as e:
                if self._last_answer_s > start:
                    # It answered something else meanwhile (/load, another frame): a slow
                    # answer in the tail, not a dead worker, so no breaker failure.
                    raise WorkerUnavailable(f'{self.url}: no answer in {timeout[1]:.3f} s '
                                            f'but answering others', 'slow') from e
                self.breaker.failure()
                raise WorkerUnavailable(f'{self.url}: timed out', 'timeout') from e
        round_trip = time.perf_counter() - start
        if response.status_code >= 500:
            if response.status_code != 504:  # 504: our deadline passed, not a worker fault
                self.breaker.failure()
            raise WorkerUnavailable(f'{self.url}: HTTP {response.status_code} '
                                    f'{response.text[:200]}',
                                    'deadline' if response.status_code == 504 else 'http_5xx')
        if response.status_code >= 400:
            raise WorkerRequestError(f'{self.url}: HTTP {response.status_code} '
                                     f'{response.text[:200]}')
        self.breaker.success()
        try:
            header, tensors = protocol.decode(
                response.content, protocol.header_length_of(response.headers), 'outputs')
        except protocol.ProtocolError as e:
            raise WorkerRequestError(f'{self.url}: malformed response ({e})') from e
        detections = self._detections(tensors, image_size)
        params = header.get('parameters') or {}
        return InferResult(detections, round_trip, len(body), len(response.content),
                           params.get('server_s'), params.get('queue_s'),
                           params.get('service_s'), upload_wait)

    def _name(self, class_id: int) -> str:
        return self.names[class_id] if class_id < len(self.names) else f'class_{class_id}'

    def _detections(self, tensors, image_size: Tuple[int, int]) -> List[Detection]:
        by_name = {t.name: t.data for t in tensors}
        if 'detections' in by_name:
            return [Detection(float(r[0]), float(r[1]), float(r[2]), float(r[3]),
                              int(r[5]), self._name(int(r[5])), float(r[4]))
                    for r in np.asarray(by_name['detections']).reshape(-1, 6)]
        names = [self._name(i) for i in range(by_name['scores'].shape[-1])]
        return postprocess(by_name['boxes'][0], by_name['scores'][0], names,
                           self.score_threshold, self.iou_threshold, image_size)

    def answered_since(self, perf_s: float) -> bool:
        """Whether the worker answered anything (a frame, /load, a probe) after perf_s
        (time.perf_counter)."""
        return self._last_answer_s > perf_s

    def _get(self, path: str, timeout_s: float) -> requests.Response:
        last = None
        for _ in range(2):  # GETs are idempotent: one retry
            try:
                response = self.session.get(f'{self.url}{path}', timeout=timeout_s)
                self._last_answer_s = time.perf_counter()
                return response
            except (requests.ConnectionError, requests.Timeout) as e:
                last = e
        # Connected but no answer in time ('timeout': maybe stuck behind our own uploads on a
        # busy link) differs from not reachable at all ('connection').
        kind = 'timeout' if isinstance(last, requests.ReadTimeout) else 'connection'
        raise WorkerUnavailable(f'{self.url}{path}: {last.__class__.__name__}', kind)

    def probe(self, payload_bytes: int, timeout_s: float = 1.0,
              data: Optional[bytes] = None) -> Optional[float]:
        """Upload payload_bytes (or `data`, e.g. a real frame's request) to the probe route;
        returns the round trip, or None where the server has no probe route (Triton)."""
        start = time.perf_counter()
        try:
            response = self.session.post(f'{self.url}/v2/offload/probe',
                                         data=bytes(int(payload_bytes)) if data is None
                                         else data, timeout=timeout_s)
        except (requests.ConnectionError, requests.Timeout) as e:
            raise WorkerUnavailable(f'{self.url}: probe {e.__class__.__name__}',
                                    'connection') from e
        if response.status_code != 200:
            return None
        return time.perf_counter() - start

    def cancel(self, request_id: str, timeout_s: float = 0.5) -> bool:
        """Ask the worker to drop our queued request `request_id`; True if it was dropped
        (False: already running or done, or a server without the route, e.g. Triton)."""
        try:
            response = self.session.post(f'{self.url}/v2/offload/cancel',
                                         json={'id': request_id}, timeout=timeout_s)
        except (requests.ConnectionError, requests.Timeout):
            return False
        return response.status_code == 200 and bool(response.json().get('cancelled'))

    def ready(self, timeout_s: float = 0.5) -> bool:
        try:
            return self._get('/v2/health/ready', timeout_s).status_code == 200
        except WorkerUnavailable:
            return False

    def close_dropped(self) -> int:
        """Close the pooled idle connections the worker has closed (its keep-alive timeout,
        a restart); returns how many. urllib3 finds a dropped connection only when it takes
        it again, and its pool hands out the newest first: a connection opened once when
        requests overlapped sat half-closed (CLOSE_WAIT) for the rest of a 30 min soak."""
        queue = self.session.get_adapter(self.url).poolmanager.connection_from_url(
            self.url).pool
        closed = 0
        if queue is None:                 # the pool was closed
            return closed
        with queue.mutex:                 # idle connections only: none is in use
            for conn in queue.queue:
                if conn is not None and conn.sock is not None and not conn.is_connected:
                    conn.close()
                    closed += 1
        return closed

    def fetch_load(self, timeout_s: float = 0.5, now_s: float = None) -> WorkerLoad:
        """The worker's load: /load on our worker, else deltas of Triton's /stats. Each
        poll first closes pooled connections the worker has closed (close_dropped)."""
        self.close_dropped()
        response = self._get(f'/v2/models/{self.model}/load', timeout_s)
        if response.status_code == 200:
            data = response.json()
            own = data.get('clients', {}).get(self.client_id, {})
            return WorkerLoad(data['arrival_rate_hz'], data['service_mean_s'],
                              data['service_var_s2'], int(data['parallelism']),
                              int(data['queue_length']), own.get('arrival_rate_hz', 0.0),
                              'load', {name: m['service_mean_s'] for name, m in
                                       (data.get('models') or {}).items()
                                       if m.get('service_mean_s')})
        response = self._get(f'/v2/models/{self.model}/stats', timeout_s)
        if response.status_code != 200:
            raise WorkerUnavailable(f'{self.url}: no /load or /stats (HTTP '
                                    f'{response.status_code})', 'http_5xx')
        return self._load_from_triton_stats(response.json(),
                                            time.monotonic() if now_s is None else now_s)

    def _load_from_triton_stats(self, data: dict, now_s: float) -> WorkerLoad:
        stats = data['model_stats'][0]['inference_stats']
        count = int(stats['success']['count'])
        infer_ns = int(stats['compute_infer']['ns']) + int(stats['compute_input']['ns']) + \
            int(stats['compute_output']['ns'])
        previous, self._last_stats = self._last_stats, (now_s, count, infer_ns)
        if previous is None or count <= previous[1] or now_s <= previous[0]:
            mean = infer_ns / count / 1e9 if count else None
            rate = 0.0
        else:
            delta = count - previous[1]
            rate = delta / (now_s - previous[0])
            mean = (infer_ns - previous[2]) / delta / 1e9
        var = None if mean is None else (0.0 if self.stats_variance == 'deterministic'
                                         else mean * mean)
        return WorkerLoad(rate, mean, var, 1, 0, 0.0, 'triton_stats')
