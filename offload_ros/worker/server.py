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
gpu_worker: a KServe v2 (Open Inference Protocol) HTTP inference server for the detector.

Runs on GPU machines with or without ROS. Inference runs from one queue per model (FIFO; EDF
or per-client fair share with --scheduling) with k concurrent executions, so the worker is
the queue the decision models describe; HTTP handling
and JPEG decoding run in parallel outside that queue. Extension route /v2/models/{m}/load
reports the live load (arrival rate, service mean and variance, M/G/1 predicted wait), overall
and per client, for the robots' decisions. With --split-layers the worker also serves the tail
of the detector cut after those Darknet layers (model `<name>_tail<layer>`, inputs the
crossing tensors the robot's head made), from the same queue: one accelerator.

Everything a client sends is bounded before the work it would cause (docs/security.md): the
body's size before it is read and its time to arrive, the inference header's size, nesting
and tensor shapes before they are parsed (a large body is parsed off the event loop), an
image's format and pixel count from its header before it is decoded, the connections held
open, and each client's share of the queue. A client error is a 4xx with a one-line JSON
reason and a one-line log; a 5xx is the server's own fault, logged with its traceback once.
"""
import argparse
import asyncio
import collections
import concurrent.futures
import dataclasses
import hmac
import logging
import os
import pathlib
import resource
import signal
import socket
import ssl
import sys
import time
import uuid
from collections import deque
from typing import Deque, Dict, List, Mapping, Optional, Tuple

import numpy as np
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from offload_ros.inference import split
from offload_ros.inference import picture as pictures
from offload_ros.inference.detector import (Detector, DetectorError, ServiceProfile,
                                            postprocess)
from offload_ros.worker import discovery, protocol
from offload_ros.worker.load import LoadTracker
from offload_ros.worker.scheduling import DISCIPLINES, JobQueue

LOG = logging.getLogger('gpu_worker')
OUTPUT_NAMES = ('detections', 'boxes', 'scores')
OPEN_PATHS = ('/v2/health/live', '/v2/health/ready', '/v2')
# Small JSON bodies (/cancel): read whole only below this size.
SMALL_BODY_BYTES = 4096
# Bodies above this size are parsed on a decode thread, not on the event loop.
INLINE_PARSE_BYTES = 64 * 1024
# Listen backlog: asyncio accepts up to this many connections in one go before any of them
# reaches the connection cap, and an evicted connection's descriptor is closed a loop
# iteration later: ACCEPT_BURSTS bursts of descriptors are kept free (two were not, at 256).
BACKLOG = 32
ACCEPT_BURSTS = 3
# Descriptors kept besides those open at start-up and the backlog (files, DNS, a pipe).
SPARE_DESCRIPTORS = 16


def connection_cap(configured: int) -> int:
    """
    Return the connection cap, as configured or derived.

    Configured 0: what the descriptor limit leaves once the descriptors open now, the accept
    bursts and a spare few are counted. Past the limit, accept() fails with EMFILE and asyncio
    stops accepting for a second: every client, health checks included, is refused.
    """
    if configured:
        return configured
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return 4096
    try:
        open_now = len(os.listdir('/proc/self/fd'))
    except OSError:
        open_now = 64
    return max(8, min(4096, soft - open_now - ACCEPT_BURSTS * BACKLOG - SPARE_DESCRIPTORS))


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    model_path: pathlib.Path
    names_path: Optional[pathlib.Path] = None
    model_name: str = 'yolov3_tiny'
    host: str = '127.0.0.1'
    port: int = 8000
    parallelism: int = 1
    max_queue: int = 64
    max_body_bytes: int = 8 * 1024 * 1024
    read_timeout_s: float = 10.0
    keepalive_timeout_s: float = 30.0
    drain_timeout_s: float = 30.0
    token: Optional[str] = dataclasses.field(default=None, repr=False)
    # Per-client tokens (client name -> token): the name a token belongs to is the client's
    # identity, and its X-Offload-Client header is not trusted.
    tokens: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    score_threshold: float = 0.3
    iou_threshold: float = 0.45
    threads: int = 0
    load_window_s: float = 5.0
    decode_threads: int = 2
    scheduling: str = 'fifo'
    # Idle for this long (no request served or queued): time one inference of the last image
    # so /load's service time is a fresh one, not the start-up profile (0: never).
    idle_profile_s: float = 2.0
    max_image_pixels: int = pictures.ImageLimits.max_pixels
    max_image_side: int = pictures.ImageLimits.max_side
    input_formats: Tuple[str, ...] = pictures.FORMATS
    max_connections: int = 0          # 0: the descriptor limit less a reserve
    tls_cert: Optional[pathlib.Path] = None
    tls_key: Optional[pathlib.Path] = None
    # Fault injection, for testing a robot's model self-check: /load reports service times
    # scaled by this (below 1: a worker that says it is faster than it is). 1: the truth.
    misreport_service: float = 1.0
    # DNS-SD: announce this worker as <announce_name>.<announce>.local. ('': do not).
    announce: str = ''
    announce_name: str = ''

    def __post_init__(self):
        self.image_limits()       # raises ValueError naming a bad limit
        if self.announce:
            discovery.service_type(self.announce)
        if not self.misreport_service > 0:
            raise ValueError(f'misreport_service must be > 0, got {self.misreport_service!r}')
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError('tls_cert and tls_key go together')
        if self.max_connections < 0:
            raise ValueError(f'max_connections must be >= 0, got {self.max_connections!r}')
        for name, token in self.tokens.items():
            if not name or not token or not isinstance(token, str):
                raise ValueError(f'tokens: client {name!r} needs a non-empty token')
        for name in ('parallelism', 'max_queue', 'max_body_bytes', 'decode_threads'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)!r}')
        for name in ('read_timeout_s', 'keepalive_timeout_s', 'load_window_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)!r}')
        if not self.idle_profile_s >= 0:
            raise ValueError(f'idle_profile_s must be >= 0, got {self.idle_profile_s!r}')
        if self.scheduling not in DISCIPLINES:
            raise ValueError(f'scheduling must be one of {DISCIPLINES}, got '
                             f'{self.scheduling!r}')

    def image_limits(self) -> pictures.ImageLimits:
        return pictures.ImageLimits(self.max_image_pixels, self.max_image_side,
                                    tuple(self.input_formats))

    def decode_limits(self) -> protocol.DecodeLimits:
        """Return a request's tensors: at most the whole model's input, one image per request."""
        return protocol.DecodeLimits(max_elements=max(self.max_image_pixels * 3, 1 << 24),
                                     max_bytes_elements=1)


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class DeadlineExpired(Exception):
    """The request's deadline passed while it waited in the queue."""


class RequestCancelled(Exception):
    """The client cancelled the request while it waited in the queue."""


class RequestEvicted(Exception):
    """
    The request made room in a full queue for another client's.

    It was the newest of the client holding more than its share.
    """


@dataclasses.dataclass(eq=False)   # a job is itself: found by identity in its queues
class Job:
    image: Optional[np.ndarray]     # the whole model's input, or None for a tail request
    client: str
    deadline_at_s: Optional[float]   # EDF key: the instant on the worker's clock
    outputs: List[str]
    future: asyncio.Future
    enqueued_at_s: float
    transport: object = None
    request_id: str = ''
    model: str = ''
    tensors: Optional[Dict[str, np.ndarray]] = None   # a tail's checked inputs
    image_size: Tuple[int, int] = (0, 0)             # (width, height) of the robot's image
    internal: bool = False       # the worker's own idle profiling run: no client, no load
    queued: bool = False         # counted in its client's waiting requests


class Stats:
    """Cumulative statistics in Triton's /stats format (count and ns per stage)."""

    STAGES = ('success', 'fail', 'queue', 'compute_input', 'compute_infer', 'compute_output')

    def __init__(self):
        self.stages = {s: {'count': 0, 'ns': 0} for s in self.STAGES}
        self.inference_count = 0
        self.execution_count = 0
        self.last_inference_ms = 0

    def add(self, stage: str, seconds: float) -> None:
        self.stages[stage]['count'] += 1
        self.stages[stage]['ns'] += int(seconds * 1e9)


class ModelRuntime:
    """
    One model: its detector, a queue drained by k executors, its load and statistics.

    The queue is FIFO, EDF or per-client fair (--scheduling).
    """

    def __init__(self, config: WorkerConfig, detector: Detector, clock=time.monotonic,
                 profile: Optional[ServiceProfile] = None,
                 tails: Optional[Dict[str, split.Tail]] = None,
                 tail_profiles: Optional[Dict[str, float]] = None):
        self.config = config
        self.detector = detector
        self.tails = dict(tails or {})
        # Recent service times per model (whole and tails), for the robots' split predictions;
        # the load tracker's figures are over all of them (the queue they share).
        self.model_service: Dict[str, Deque[float]] = {
            name: deque([s] if s else [], maxlen=100) for name, s in
            {config.model_name: profile.mean_s if profile else None,
             **{n: (tail_profiles or {}).get(n) for n in self.tails}}.items()}
        self.clock = clock
        self.queue: JobQueue[Job] = JobQueue(config.scheduling)
        self._queued = asyncio.Semaphore(0)
        self.dropped_expired = 0
        self.cancelled = 0
        self.waiting: Dict[Tuple[str, str], Job] = {}   # (client, request id) -> queued job
        # A client's waiting requests, oldest first: its share and what eviction takes.
        self.queued_by_client: Dict[str, Deque[Job]] = {}
        self.in_service = 0
        self.load = LoadTracker(config.load_window_s, config.parallelism, clock(),
                                profile.mean_s if profile else None,
                                profile.var_s2 if profile else 0.0)
        self.stats = Stats()
        self.executor = concurrent.futures.ThreadPoolExecutor(config.parallelism,
                                                              thread_name_prefix='infer')
        self.tasks: List[asyncio.Task] = []
        self.last_image: Optional[np.ndarray] = None   # the last whole-model input
        self.last_busy_s = clock()

    def start(self) -> None:
        self.tasks = [asyncio.ensure_future(self._consume()) for _ in
                      range(self.config.parallelism)]
        if self.config.idle_profile_s > 0:
            self.tasks.append(asyncio.ensure_future(self._profile_when_idle()))

    async def _profile_when_idle(self) -> None:
        """
        Keep an idle worker's service time fresh.

        The start-up profile was taken while everything else started too, and the machine's load
        changes. Every idle period of `idle_profile_s`, one inference of the last image runs
        through the queue like a request (a request arriving meanwhile waits for it, as behind any
        other) and refreshes the profile /load reports while it has no live samples.
        """
        period = self.config.idle_profile_s
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            now = self.clock()
            if len(self.queue) or self.in_service or now - self.last_busy_s < period:
                continue
            image = self.last_image if self.last_image is not None else \
                np.zeros((480, 640, 3), np.uint8)
            job = Job(image, '', None, [], loop.create_future(), now, internal=True)
            self.queue.push(job, job.client, None)
            self._queued.release()
            try:
                await job.future
            except Exception:   # logged by the consumer; the profile is simply not renewed
                pass

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.executor.shutdown(wait=True)

    def queue_length(self) -> int:
        """Return requests waiting (not those cancelled or evicted and not yet taken off)."""
        return sum(len(jobs) for jobs in self.queued_by_client.values())

    def queue_share(self, client: str) -> int:
        """
        Return waiting slots a client may hold.

        The queue divided among the clients that have requests waiting, this one included. One
        client alone may fill the queue.
        """
        active = len(self.queued_by_client) + (client not in self.queued_by_client)
        return max(1, self.config.max_queue // active)

    def submit(self, job: Job) -> None:
        """
        Admit a request or refuse it (503).

        A client at its share is refused; a full queue makes room for a client within its share by
        evicting the newest request of the client holding the most (longest-queue drop: a flooder
        is refused before a robot within its share, whatever the discipline).
        """
        share = self.queue_share(job.client)
        mine = len(self.queued_by_client.get(job.client, ()))
        if mine >= share:
            raise HttpError(503, f'queue share full ({share} waiting requests per client '
                            f'while {self.config.max_queue // share} clients wait)')
        if self.queue_length() >= self.config.max_queue:
            hog = max(self.queued_by_client, key=lambda c: len(self.queued_by_client[c]))
            if len(self.queued_by_client[hog]) <= share:
                raise HttpError(503, f'queue full ({self.config.max_queue} requests waiting)')
            evicted = self.queued_by_client[hog][-1]
            self._dequeue(evicted)
            evicted.image = evicted.tensors = None      # never run: free its pixels now
            evicted.future.set_exception(RequestEvicted())
        job.queued = True
        self.queued_by_client.setdefault(job.client, deque()).append(job)
        self.last_busy_s = job.enqueued_at_s
        self.load.arrival(job.enqueued_at_s, job.client)
        self.queue.push(job, job.client, job.deadline_at_s)
        if job.request_id:
            self.waiting[(job.client, job.request_id)] = job
        self._queued.release()

    def cancel(self, client: str, request_id: str) -> bool:
        """
        Drop a queued request of this client.

        False if it is not waiting (running or done: a started inference is not interrupted).
        """
        job = self.waiting.pop((client, request_id), None)
        if job is None or job.future.done():
            return False
        self._dequeue(job)
        self.cancelled += 1
        job.future.set_exception(RequestCancelled())
        return True

    def _dequeue(self, job: Job) -> None:
        """Take a job off its client's waiting requests (once: it may also be popped)."""
        if not job.queued:
            return
        job.queued = False
        self.waiting.pop((job.client, job.request_id), None)
        jobs = self.queued_by_client[job.client]
        jobs.remove(job)
        if not jobs:
            del self.queued_by_client[job.client]

    def model_service_means(self) -> Dict[str, Optional[float]]:
        return {name: (sum(d) / len(d) if d else None) for name, d in self.model_service.items()}

    def _infer(self, job: Job) -> dict:
        start = time.perf_counter()
        if job.tensors is not None:
            boxes, scores = self.tails[job.model].run_checked(job.tensors)
            size = job.image_size
        else:
            boxes, scores = self.detector.run_raw(job.image)
            size = (job.image.shape[1], job.image.shape[0])
            if not job.internal:
                self.last_image = job.image
        inferred = time.perf_counter()
        outputs = {}
        if 'detections' in job.outputs:
            dets = postprocess(boxes, scores, self.detector.names, self.config.score_threshold,
                               self.config.iou_threshold, size)
            outputs['detections'] = np.array(
                [[d.x, d.y, d.w, d.h, d.score, d.class_id] for d in dets],
                dtype=np.float32).reshape(-1, 6)
        if 'boxes' in job.outputs:
            outputs['boxes'] = boxes[None].astype(np.float32)
        if 'scores' in job.outputs:
            outputs['scores'] = scores[None].astype(np.float32)
        done = time.perf_counter()
        return {'outputs': outputs, 'infer_s': inferred - start, 'output_s': done - inferred}

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._queued.acquire()
            job: Job = self.queue.pop()
            self._dequeue(job)
            if job.future.done() or (job.transport is not None and job.transport.is_closing()):
                continue  # the client went away: do not spend the accelerator on it
            started = self.clock()
            if job.deadline_at_s is not None and started > job.deadline_at_s:
                self.stats.add('queue', started - job.enqueued_at_s)
                self.dropped_expired += 1
                job.future.set_exception(DeadlineExpired())
                continue
            self.in_service += 1
            try:
                result = await loop.run_in_executor(self.executor, self._infer, job)
            except Exception as e:  # a model failure answers this request with 500, not crash
                LOG.exception('inference failed')
                if not job.future.done():
                    job.future.set_exception(e)
                continue
            finally:
                self.in_service -= 1
            finished = self.clock()
            if job.internal:
                self.load.idle_profile(finished - started)
                job.future.set_result(result)
                continue
            self.last_busy_s = finished
            self.load.service(finished, job.client, finished - started)
            self.model_service[job.model or self.config.model_name].append(finished - started)
            self.stats.add('queue', started - job.enqueued_at_s)
            self.stats.add('compute_infer', result['infer_s'])
            self.stats.add('compute_output', result['output_s'])
            self.stats.inference_count += 1
            self.stats.execution_count += 1
            self.stats.last_inference_ms = int(time.time() * 1000)
            result[protocol.QUEUE_S] = started - job.enqueued_at_s
            result[protocol.SERVICE_S] = finished - started
            if not job.future.done():
                job.future.set_result(result)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({'error': message}, status=status)


class ConnectionGuard:
    """
    At most `cap` client connections.

    One past the cap closes the connection that has been idle longest (no request in progress: a
    slowloris that never completes its headers, or a keep-alive connection between requests); where
    every connection is busy, the new one is closed. Without it, a few hundred half-open
    connections hold every descriptor until the keep-alive timeout and health checks cannot
    connect.
    """

    def __init__(self, cap: int, clock=time.monotonic):
        if cap < 1:
            raise ValueError(f'cap must be >= 1, got {cap!r}')
        self.cap, self.clock = cap, clock
        self._last_active: Dict[object, float] = {}   # handler -> last request's end
        self._busy: collections.Counter = collections.Counter()

    def install(self, server: web.Server) -> None:
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler, transport):
            made(handler, transport)
            self._last_active[handler] = self.clock()
            if len(self._last_active) > self.cap:
                self._evict(handler)

        def connection_lost(handler, exc=None):
            self._last_active.pop(handler, None)
            self._busy.pop(handler, None)
            lost(handler, exc)
        server.connection_made, server.connection_lost = connection_made, connection_lost

    def _evict(self, newcomer) -> None:
        idle = [h for h in self._last_active if not self._busy[h] and h is not newcomer]
        victim = min(idle, key=self._last_active.__getitem__) if idle else newcomer
        self._last_active.pop(victim, None)
        if victim.transport is not None:
            victim.transport.close()

    def enter(self, handler) -> None:
        self._busy[handler] += 1

    def leave(self, handler) -> None:
        self._busy[handler] -= 1
        if handler in self._last_active:
            self._last_active[handler] = self.clock()

    @property
    def open(self) -> int:
        return len(self._last_active)


def misreported(report: protocol.LoadReport, factor: float) -> protocol.LoadReport:
    """Return a load report whose service times are scaled by `factor` (fault injection)."""
    if factor == 1.0:
        return report

    def scaled(figures: Optional[protocol.StreamFigures]):
        if figures is None or figures.service_mean_s is None:
            return figures
        return dataclasses.replace(figures, service_mean_s=figures.service_mean_s * factor,
                                   service_var_s2=(figures.service_var_s2 or 0.0) * factor ** 2)
    return dataclasses.replace(report, overall=scaled(report.overall),
                               client=scaled(report.client),
                               utilisation=report.utilisation * factor,
                               models={m: None if s is None else s * factor
                                       for m, s in report.models.items()})


def outputs_of(header: dict) -> List[str]:
    """Return the outputs a request names (HttpError 400 for anything else)."""
    requested = header.get('outputs')
    if requested is None:
        return ['detections']
    if not isinstance(requested, list) or not all(
            isinstance(o, dict) and isinstance(o.get('name'), str) for o in requested):
        raise HttpError(400, 'outputs must be a list of objects with a string "name"')
    outputs = [o['name'] for o in requested] or ['detections']
    unknown = [o for o in outputs if o not in OUTPUT_NAMES]
    if unknown or len(set(outputs)) != len(outputs):
        raise HttpError(400, f'outputs {outputs[:8]}: each of {list(OUTPUT_NAMES)} at '
                        'most once')
    return outputs


def tail_inputs(name: str, header: dict, tensors: List[protocol.Tensor], tail,
                limits: pictures.ImageLimits
                ) -> Tuple[Dict[str, np.ndarray], Tuple[int, int]]:
    """Return a partition tail's input tensors and the robot's image size, checked."""
    params = header.get('parameters') or {}
    if not isinstance(params, dict):
        raise HttpError(400, f'{name}: parameters must be an object')
    size = params.get(protocol.IMAGE_SIZE)
    if not (isinstance(size, list) and len(size) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise HttpError(400, f'{name}: parameters.image_size must be [width, height] of '
                        f'the robot\'s image, got {str(size)[:40]}')
    try:
        limits.check_size(size[0], size[1], f'{name}: parameters.image_size')
    except pictures.BadImage as e:
        raise HttpError(400, str(e)) from e
    by_name = {t.name: t.data for t in tensors if t.datatype != 'BYTES'}
    if len(by_name) != len(tensors):
        raise HttpError(400, f'{name}: inputs must be numeric tensors with unique names')
    try:
        return tail.check(by_name), (size[0], size[1])
    except split.SplitError as e:
        raise HttpError(400, str(e)) from e


class WorkerApp:
    """The aiohttp application: routes, auth, limits, graceful drain."""

    def __init__(self, config: WorkerConfig, detector: Detector,
                 profile: Optional[ServiceProfile] = None,
                 tails: Optional[Dict[str, split.Tail]] = None,
                 tail_profiles: Optional[Dict[str, float]] = None):
        self.config = config
        self.runtime = ModelRuntime(config, detector, profile=profile, tails=tails,
                                    tail_profiles=tail_profiles)
        self.decoder = concurrent.futures.ThreadPoolExecutor(config.decode_threads,
                                                             thread_name_prefix='decode')
        self.draining = False
        self.guard = ConnectionGuard(connection_cap(config.max_connections))
        self.limits = config.image_limits()
        self._logged_faults: set = set()
        self.app = web.Application(client_max_size=config.max_body_bytes,
                                   middlewares=[self._middleware])
        self.app.add_routes([
            web.get('/v2', self.server_metadata),
            web.get('/v2/health/live', self.live),
            web.get('/v2/health/ready', self.ready),
            web.get('/v2/models/{model}', self.model_metadata),
            web.get('/v2/models/{model}/ready', self.model_ready),
            web.post('/v2/models/{model}/infer', self.infer),
            web.get('/v2/models/{model}/stats', self.stats),
            web.get(protocol.LOAD_ROUTE, self.load),
            web.post(protocol.PROBE_ROUTE, self.probe),
            web.post(protocol.CANCEL_ROUTE, self.cancel),
        ])
        self.app.on_startup.append(self._startup)
        self.app.on_cleanup.append(self._cleanup)

    async def _startup(self, _app) -> None:
        self.runtime.start()

    async def _cleanup(self, _app) -> None:
        await self.runtime.stop()
        self.decoder.shutdown(wait=True)

    def _authenticate(self, request: web.Request) -> Optional[str]:
        """
        Return the client's identity, or None where its token is wrong.

        With per-client tokens the identity is the name the token belongs to (every token is
        compared, in constant time); otherwise the X-Offload-Client header (one shared token, or
        none: a network whose clients trust each other), else the peer's address.
        """
        given = request.headers.get('Authorization', '').encode('utf-8', 'replace')
        if self.config.tokens:
            found = None
            for name, token in self.config.tokens.items():
                if hmac.compare_digest(given, f'Bearer {token}'.encode()):
                    found = name
            if found is not None or not self.config.token:
                return found
        if self.config.token and not hmac.compare_digest(
                given, f'Bearer {self.config.token}'.encode()):
            return None
        return request.headers.get(protocol.CLIENT_HEADER, request.remote or 'unknown')[:64]

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        self.guard.enter(request.protocol)
        try:
            client = self._authenticate(request)
            if client is None and request.path not in OPEN_PATHS:
                raise HttpError(401, 'missing or wrong bearer token')
            request['client'] = client or ''
            return await handler(request)
        except HttpError as e:
            return self._client_error(request, e.status, e.message)
        except web.HTTPException as e:
            if e.status >= 400:
                return self._client_error(request, e.status, e.reason)
            raise
        except asyncio.CancelledError:
            raise
        except Exception:   # the server's own fault: its traceback once per place
            where = self._fault_site()
            if where not in self._logged_faults:
                self._logged_faults.add(where)
                LOG.exception('%s %s: internal error', request.method, request.path)
            else:
                LOG.error('%s %s: internal error at %s (traceback logged before)',
                          request.method, request.path, where)
            return _error(500, 'internal error')
        finally:
            self.guard.leave(request.protocol)

    @staticmethod
    def _fault_site() -> str:
        tb = sys.exc_info()[2]
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        return f'{sys.exc_info()[0].__name__}@{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}' \
            if tb is not None else 'unknown'

    def _client_error(self, request: web.Request, status: int, message: str) -> web.Response:
        if status != 401:   # a wrong token is not the client's request to log
            LOG.info('%s %s %s: %d %s', request.remote, request.method, request.path, status,
                     message[:200])
        return _error(status, message)

    def _model(self, request: web.Request) -> str:
        name = request.match_info['model']
        if name != self.config.model_name and name not in self.runtime.tails:
            raise HttpError(404, f'unknown model {name!r}; served: '
                            f'{[self.config.model_name, *self.runtime.tails]}')
        return name

    async def server_metadata(self, _request):
        return web.json_response({'name': 'offload_ros.gpu_worker', 'version': '0.1.0',
                                  'extensions': ['binary_tensor_data', 'statistics',
                                                 'offload_load']})

    async def live(self, _request):
        return web.json_response({'live': True})

    async def ready(self, _request):
        if self.draining:
            return _error(503, 'draining')
        return web.json_response({'ready': True})

    async def model_ready(self, request):
        self._model(request)
        return await self.ready(request)

    async def model_metadata(self, request):
        name = self._model(request)
        classes = self.runtime.detector.classes
        if name in self.runtime.tails:
            tail = self.runtime.tails[name]
            return web.json_response({
                'name': name, 'versions': ['1'], 'platform': 'onnxruntime_onnx',
                'inputs': [{'name': n, 'datatype': 'FP32' if i.type == 'tensor(float)'
                            else 'INT64', 'shape': list(tail.shapes[n])}
                           for n, i in tail.inputs.items()],
                'outputs': [{'name': 'detections', 'datatype': 'FP32', 'shape': [-1, 6]}],
                'parameters': {'split_layer': tail.layer, 'class_names':
                               self.runtime.detector.names,
                               'required_parameters': {protocol.IMAGE_SIZE: '[width, height]'}}})
        return web.json_response({
            'name': name, 'versions': ['1'], 'platform': 'onnxruntime_onnx',
            'inputs': [{'name': 'images', 'datatype': 'UINT8', 'shape': [1, -1, -1, 3]},
                       {'name': 'image_jpeg', 'datatype': 'BYTES', 'shape': [1]}],
            'outputs': [{'name': 'detections', 'datatype': 'FP32', 'shape': [-1, 6]},
                        {'name': 'boxes', 'datatype': 'FP32', 'shape': [1, -1, 4]},
                        {'name': 'scores', 'datatype': 'FP32', 'shape': [1, -1, classes]}],
            'parameters': {'class_names': self.runtime.detector.names,
                           'detections_columns': ['x', 'y', 'w', 'h', 'score', 'class_id'],
                           'parallelism': self.config.parallelism}})

    async def stats(self, request):
        name = self._model(request)
        s = self.runtime.stats
        return web.json_response({'model_stats': [{
            'name': name, 'version': '1', 'last_inference': s.last_inference_ms,
            'inference_count': s.inference_count, 'execution_count': s.execution_count,
            'inference_stats': s.stages, 'batch_stats': []}]})

    async def load(self, request):
        self._model(request)
        rt = self.runtime
        rt.load.polled(rt.clock(), request['client'])
        report = rt.load.snapshot(rt.clock(), rt.queue_length(), rt.in_service,
                                  request['client'])
        report = dataclasses.replace(report, models=rt.model_service_means())
        return web.json_response(misreported(report, self.config.misreport_service).to_dict())

    async def probe(self, request: web.Request):
        """
        Extension: read and discard an upload.

        So robots can measure bandwidth while they process locally (no inference is run).
        """
        body = await self._read_body(request)
        return web.json_response({'bytes': len(body)})

    async def cancel(self, request: web.Request):
        """
        Extension: {"id": ...} drops that queued request of the calling client.

        (its authenticated identity); a robot that got its answer elsewhere frees the worker.
        """
        body = await self._read_body(request, SMALL_BODY_BYTES)
        try:
            request_id = protocol.parse_json(body, 'cancel body')[protocol.CANCEL_ID]
        except (protocol.ProtocolError, KeyError, TypeError) as e:
            raise HttpError(400, 'cancel: body must be JSON {"id": "<request id>"}') from e
        if not isinstance(request_id, str) or not request_id:
            raise HttpError(400, 'cancel: "id" must be a non-empty string')
        cancelled = self.runtime.cancel(request['client'], request_id[:128])
        return web.json_response({protocol.CANCEL_ID: request_id, protocol.CANCELLED: cancelled})

    async def _read_body(self, request: web.Request, cap: Optional[int] = None) -> bytes:
        """
        Return the whole body, within `cap` bytes.

        (413 before reading where Content-Length says more) and read_timeout_s in all (408: the
        time to send it, not per read).
        """
        cap = cap or self.config.max_body_bytes
        length = request.content_length
        if length is not None and length > cap:
            raise HttpError(413, f'body of {length} bytes exceeds {cap}')

        async def read() -> bytes:
            chunks, size = [], 0
            while True:
                chunk = await request.content.read(1 << 16)
                if not chunk:
                    return b''.join(chunks)
                size += len(chunk)
                if size > cap:   # a chunked body has no Content-Length to refuse early
                    raise HttpError(413, f'body exceeds {cap} bytes')
                chunks.append(chunk)
        try:
            body = await asyncio.wait_for(read(), self.config.read_timeout_s)
        except asyncio.TimeoutError as e:
            raise HttpError(408, f'body not received within {self.config.read_timeout_s} s') \
                from e
        except (ConnectionError, HttpProcessingError) as e:
            raise HttpError(400, f'body incomplete ({e.__class__.__name__})') from e
        if length is not None and len(body) != length:
            raise HttpError(400, f'body ended after {len(body)} of {length} bytes')
        return body

    def _decode_image(self, data: bytes) -> np.ndarray:
        try:
            return pictures.decode(data, self.limits)
        except pictures.BadImage as e:
            raise HttpError(415 if 'accepted' in str(e) else 400, f'image_jpeg: {e}') from e

    async def _image_of(self, tensors: List[protocol.Tensor]) -> np.ndarray:
        if len(tensors) != 1:
            raise HttpError(400, f'expected exactly one input, got {len(tensors)}')
        t = tensors[0]
        if t.datatype == 'BYTES':
            if len(t.data) != 1 or not t.data[0]:
                raise HttpError(400, f'{t.name}: BYTES input must hold one encoded image')
            try:    # the header's format and size, before a decode thread is spent on it
                pictures.check_encoded(t.data[0], self.limits)
            except pictures.BadImage as e:
                raise HttpError(415 if 'accepted' in str(e) else 400, f'{t.name}: {e}') from e
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.decoder, self._decode_image, t.data[0])
        if t.datatype != 'UINT8' or len(t.shape) != 4 or t.shape[0] != 1 or t.shape[3] != 3 \
                or t.shape[1] < 1 or t.shape[2] < 1:
            raise HttpError(400, f'{t.name}: expected UINT8 [1, H, W, 3], got {t.datatype} '
                            f'{t.shape}')
        try:
            self.limits.check_size(t.shape[2], t.shape[1], t.name)
        except pictures.BadImage as e:
            raise HttpError(400, str(e)) from e
        return t.data[0]

    async def _decode_request(self, request: web.Request, body: bytes
                              ) -> Tuple[dict, List[protocol.Tensor]]:
        limits = self.config.decode_limits()
        try:
            length = protocol.header_length_of(request.headers)
            if len(body) <= INLINE_PARSE_BYTES:
                return protocol.decode(body, length, 'inputs', limits)
            return await asyncio.get_running_loop().run_in_executor(
                self.decoder, protocol.decode, body, length, 'inputs', limits)
        except protocol.ProtocolError as e:
            raise HttpError(400, str(e)) from e

    async def infer(self, request: web.Request):
        received = time.perf_counter()
        name = self._model(request)
        if self.draining:
            raise HttpError(503, 'draining')
        body = await self._read_body(request)
        # Server time counts from the end of the upload: the upload is network time, which
        # the robot measures as round trip - server time (a slow link must not look like a
        # slow server).
        body_read = time.perf_counter()
        header, tensors = await self._decode_request(request, body)
        if not isinstance(header.get('parameters', {}), dict):
            raise HttpError(400, 'parameters must be an object')
        outputs = outputs_of(header)
        deadline = None
        if protocol.DEADLINE_HEADER in request.headers:
            try:
                budget = float(request.headers[protocol.DEADLINE_HEADER][:32])
            except ValueError as e:
                raise HttpError(400, f'{protocol.DEADLINE_HEADER} must be a number') from e
            if not 0 < budget < 3600:
                raise HttpError(400, f'{protocol.DEADLINE_HEADER} must be in (0, 3600) s')
            deadline = self.runtime.clock() + budget
        decode_start = time.perf_counter()
        image, inputs, size = None, None, (0, 0)
        if name in self.runtime.tails:
            inputs, size = tail_inputs(name, header, tensors, self.runtime.tails[name],
                                       self.limits)
        else:
            image = await self._image_of(tensors)
        self.runtime.stats.add('compute_input', time.perf_counter() - decode_start)
        client = request['client']
        future = asyncio.get_running_loop().create_future()
        request_id = header.get('id')[:128] if isinstance(header.get('id'), str) else ''
        job = Job(image, client, deadline, outputs, future, self.runtime.clock(),
                  request.transport, request_id, name, inputs, size)
        self.runtime.submit(job)
        try:
            result = await future
        except DeadlineExpired:
            self.runtime.stats.add('fail', time.perf_counter() - received)
            return _error(504, 'deadline passed before inference started')
        except RequestCancelled:
            self.runtime.stats.add('fail', time.perf_counter() - received)
            return _error(409, 'cancelled by the client before inference started')
        except RequestEvicted:
            self.runtime.stats.add('fail', time.perf_counter() - received)
            return _error(503, 'queue share full: this client held the most waiting '
                          'requests and the newest made room for another client\'s')
        except Exception:  # the runtime logged it; the client gets a clean 500
            self.runtime.stats.add('fail', time.perf_counter() - received)
            return _error(500, 'inference failed')
        tensors_out = [protocol.Tensor(n, 'FP32', list(result['outputs'][n].shape),
                                       result['outputs'][n]) for n in outputs]
        server_s = time.perf_counter() - body_read
        self.runtime.stats.add('success', time.perf_counter() - received)
        body, head_len = protocol.encode(
            {'model_name': name, 'model_version': '1',
             'id': request_id or str(uuid.uuid4()),
             'parameters': {protocol.QUEUE_S: result[protocol.QUEUE_S],
                            protocol.SERVICE_S: result[protocol.SERVICE_S],
                            protocol.SERVER_S: server_s}},
            tensors_out, 'outputs')
        return web.Response(body=body, content_type='application/octet-stream',
                            headers={protocol.HEADER_LENGTH: str(head_len)})


class _JsonErrorHandler(RequestHandler):
    """
    aiohttp's connection protocol.

    With its own errors (a request it cannot parse: a bad request line, headers over its limits)
    answered as ours are, a one-line JSON reason and a one-line log, instead of a text page and a
    logged traceback.
    """

    __slots__ = ()

    def handle_error(self, request, status: int = 500, exc: BaseException = None,
                     message: str = None) -> web.StreamResponse:
        reason = (message or (str(exc) if exc else '') or 'error').splitlines()[0][:200]
        if status >= 500:
            LOG.error('%s: HTTP layer error %d: %s', request.remote, status, reason)
        else:
            LOG.info('%s: %d bad HTTP request: %s', request.remote, status, reason)
        if request.writer.output_size > 0:
            raise ConnectionError('response already started: no error answer possible')
        response = _error(status, f'bad HTTP request: {reason}')
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class _OneLineErrors(logging.Filter):
    """
    asyncio logs a failed accept().

    (EMFILE: out of descriptors) with a traceback each time it retries; one line says the same.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f'{record.getMessage()}: {record.exc_info[1]!r}'.replace('\n', '; ')
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


def tls_context(config: WorkerConfig) -> Optional[ssl.SSLContext]:
    """Return a server TLS context from the configured certificate chain and key (None: plain)."""
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    return context


async def serve(config: WorkerConfig, detector: Detector, stop: asyncio.Event,
                profile: Optional[ServiceProfile] = None,
                tails: Optional[Dict[str, split.Tail]] = None,
                tail_profiles: Optional[Dict[str, float]] = None) -> None:
    worker = WorkerApp(config, detector, profile, tails, tail_profiles)
    runner = web.AppRunner(worker.app, keepalive_timeout=config.keepalive_timeout_s,
                           shutdown_timeout=config.drain_timeout_s, handle_signals=False,
                           access_log=None)
    await runner.setup()
    # aiohttp offers no hook for the connection protocol's class: the server is switched to
    # a subclass that only makes our protocol (same state, same constructor).
    runner.server.__class__ = _JsonErrorServer
    worker.guard.install(runner.server)
    context = tls_context(config)
    site = web.TCPSite(runner, config.host, config.port, ssl_context=context,
                       backlog=BACKLOG)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    scheme = 'https' if context else 'http'
    print(f'gpu_worker: listening on {scheme}://{config.host}:{port} '
          f'model={config.model_name} k={config.parallelism} provider={detector.provider} '
          f'connections<={worker.guard.cap}'
          + (f' tails={sorted(tails)}' if tails else ''), flush=True)
    announcer = None
    if config.announce:
        announcer = discovery.Announcer(
            config.announce, config.announce_name or f'{socket.gethostname()}-{port}', port,
            config.host, config.model_name)
        await asyncio.to_thread(announcer.start)
        print(f'gpu_worker: announced as {announcer.info.name}', flush=True)
    await stop.wait()
    if announcer is not None:   # robots stop choosing it before it refuses new requests
        await asyncio.to_thread(announcer.stop)
    worker.draining = True
    print('gpu_worker: draining in-flight requests', flush=True)
    await runner.cleanup()  # stops listening, waits for in-flight handlers, then cleanup hooks


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='gpu_worker', description=__doc__.strip().splitlines()[0])
    p.add_argument('--config', help='YAML of defaults for these options (worker.yaml); '
                   'command-line options win')
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=8000, help='0 picks a free port')
    p.add_argument('--model', help='ONNX model (default: cached yolov3-tiny COCO export)')
    p.add_argument('--names', help='class names file')
    p.add_argument('--model-name', default='yolov3_tiny')
    p.add_argument('--parallelism', type=int, default=1, help='concurrent executions k')
    p.add_argument('--max-queue', type=int, default=64)
    p.add_argument('--scheduling', choices=DISCIPLINES, default='fifo',
                   help='queue discipline: fifo, edf (earliest deadline first) or fair '
                   '(per-client round robin)')
    p.add_argument('--max-body-bytes', type=int, default=8 * 1024 * 1024)
    p.add_argument('--read-timeout-s', type=float, default=10.0)
    p.add_argument('--keepalive-timeout-s', type=float, default=30.0,
                   help='close a client connection idle this long')
    p.add_argument('--threads', type=int, default=0, help='onnxruntime intra-op threads')
    p.add_argument('--load-window-s', type=float, default=5.0,
                   help='sliding window of the /load figures')
    p.add_argument('--idle-profile-s', type=float, default=2.0,
                   help='idle for this long: time one inference of the last image so /load '
                   'reports a fresh service time (0: never)')
    p.add_argument('--split-layers', default='',
                   help='comma-separated Darknet layers to serve the tail after (split '
                   'inference), e.g. 3,5,7; empty: none')
    p.add_argument('--score-threshold', type=float, default=0.3)
    p.add_argument('--iou-threshold', type=float, default=0.45)
    p.add_argument('--token-file', help='file holding the bearer token (or set '
                   'OFFLOAD_WORKER_TOKEN); never logged')
    p.add_argument('--tokens-file', help='YAML mapping of client name -> bearer token: each '
                   "client's identity is its token's name (its X-Offload-Client header is not "
                   'trusted); never logged')
    p.add_argument('--max-image-pixels', type=int, default=pictures.ImageLimits.max_pixels,
                   help='largest image accepted, in pixels, checked from its header before '
                   'decoding')
    p.add_argument('--max-image-side', type=int, default=pictures.ImageLimits.max_side,
                   help='largest image width or height accepted')
    p.add_argument('--input-formats', default=','.join(pictures.FORMATS),
                   help='encoded image formats accepted (comma-separated: jpeg, png)')
    p.add_argument('--max-connections', type=int, default=0,
                   help='client connections held at once; past it the longest-idle one is '
                   'closed (0: what the descriptor limit leaves free)')
    p.add_argument('--misreport-service', type=float, default=1.0,
                   help='FAULT INJECTION for tests: /load reports service times scaled by '
                   'this (0.5: the worker claims to be twice as fast as it is)')
    p.add_argument('--announce', default='', metavar='TYPE',
                   help='announce this worker on the LAN with DNS-SD, e.g. _kserve._tcp '
                   '(withdrawn before draining on SIGTERM)')
    p.add_argument('--announce-name', default='',
                   help='DNS-SD instance name (default: HOSTNAME-PORT)')
    p.add_argument('--tls-cert', help='PEM certificate chain: serve HTTPS')
    p.add_argument('--tls-key', help='PEM private key of --tls-cert')
    return p


def read_tokens(path: str) -> Dict[str, str]:
    """Client name -> token from a YAML mapping; ValueError naming what is wrong."""
    import yaml
    try:
        data = yaml.safe_load(pathlib.Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f'--tokens-file {path}: {e.__class__.__name__}') from e
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in data.items()):
        raise ValueError(f'--tokens-file {path}: expected a mapping of client name -> token')
    if len(set(data.values())) != len(data):
        raise ValueError(f'--tokens-file {path}: two clients share a token')
    return data


def parse_args(argv) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if '--ros-args' in argv:  # started by ros2 launch: the ROS arguments are not ours
        argv = argv[:argv.index('--ros-args')]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        import yaml
        try:
            defaults = yaml.safe_load(pathlib.Path(args.config).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            parser.error(f'--config {args.config}: {e}')
        known = {a.dest for a in parser._actions}
        unknown = sorted(set(defaults) - known)
        if unknown:
            parser.error(f'--config {args.config}: unknown keys {unknown}')
        parser.set_defaults(**defaults)
        args = parser.parse_args(argv)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    logging.getLogger('asyncio').addFilter(_OneLineErrors())
    from offload_ros.inference import models
    token = os.environ.get('OFFLOAD_WORKER_TOKEN') or None
    try:
        if args.token_file:
            token = pathlib.Path(args.token_file).read_text().strip() or None
        tokens = read_tokens(args.tokens_file) if args.tokens_file else {}
        model = pathlib.Path(args.model) if args.model else models.ensure_default_model()
        names = args.names or (None if args.model else models.default_names_path())
        layers = protocol.parse_layers(args.split_layers)
        config = WorkerConfig(model, names, args.model_name, args.host, args.port,
                              args.parallelism, args.max_queue, args.max_body_bytes,
                              args.read_timeout_s, token=token,
                              score_threshold=args.score_threshold,
                              iou_threshold=args.iou_threshold, threads=args.threads,
                              load_window_s=args.load_window_s,
                              scheduling=args.scheduling,
                              idle_profile_s=args.idle_profile_s,
                              keepalive_timeout_s=args.keepalive_timeout_s, tokens=tokens,
                              max_image_pixels=args.max_image_pixels,
                              max_image_side=args.max_image_side,
                              input_formats=tuple(f.strip().lower() for f in
                                                  args.input_formats.split(',') if f.strip()),
                              max_connections=args.max_connections,
                              misreport_service=args.misreport_service,
                              announce=args.announce, announce_name=args.announce_name,
                              tls_cert=pathlib.Path(args.tls_cert) if args.tls_cert else None,
                              tls_key=pathlib.Path(args.tls_key) if args.tls_key else None)
        tls_context(config)   # an unreadable certificate or key fails here, named
        detector = Detector(model, names, score_threshold=args.score_threshold,
                            iou_threshold=args.iou_threshold, threads=args.threads)
        tails, tail_profiles = {}, {}
        if layers:
            graph = split.load(model)
            image = np.zeros((480, 640, 3), np.uint8)
            for layer in layers:   # the head only feeds the start-up profile of the tail
                name = protocol.tail_model_name(args.model_name, layer)
                tails[name] = split.Tail(graph, layer, args.threads, detector.providers)
                tail_profiles[name] = split.profile(
                    split.Head(graph, layer, args.threads, detector.providers), tails[name],
                    image, runs=5).tail_s
    except (ValueError, OSError, ssl.SSLError, DetectorError, models.ModelError) as e:
        print(f'gpu_worker: {e}', file=sys.stderr)
        return 2
    # Warm-up and start-up profile (reported by /load until live samples exist).
    profile = detector.profile(np.zeros((480, 640, 3), np.uint8), runs=10)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, detector, stop, profile, tails, tail_profiles)

    try:
        asyncio.run(run())
    except OSError as e:
        print(f'gpu_worker: cannot listen on {args.host}:{args.port} ({e.strerror})',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
