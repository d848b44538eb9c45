"""gpu_worker: a KServe v2 (Open Inference Protocol) HTTP inference server for the detector.

Runs on GPU machines with or without ROS. Inference runs from one queue per model (FIFO; EDF
or per-client fair share with --scheduling) with k concurrent executions, so the worker is
the queue the decision models describe; HTTP handling
and JPEG decoding run in parallel outside that queue. Extension route /v2/models/{m}/load
reports the live load (arrival rate, service mean and variance, M/G/1 predicted wait), overall
and per client, for the robots' decisions. With --split-layers the worker also serves the tail
of the detector cut after those Darknet layers (model `<name>_tail<layer>`, inputs the
crossing tensors the robot's head made), from the same queue: one accelerator.
"""
import argparse
import asyncio
import concurrent.futures
import dataclasses
import hmac
import logging
import os
import pathlib
import signal
import sys
import time
import uuid
from collections import deque
from typing import Deque, Dict, List, Optional, Tuple

import cv2
import numpy as np
from aiohttp import web

from offload_ros.inference import split
from offload_ros.inference.detector import (Detector, DetectorError, ServiceProfile,
                                            postprocess)
from offload_ros.worker import protocol
from offload_ros.worker.load import LoadTracker
from offload_ros.worker.scheduling import DISCIPLINES, JobQueue

LOG = logging.getLogger('gpu_worker')
OUTPUT_NAMES = ('detections', 'boxes', 'scores')
OPEN_PATHS = ('/v2/health/live', '/v2/health/ready', '/v2')


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
    score_threshold: float = 0.3
    iou_threshold: float = 0.45
    threads: int = 0
    load_window_s: float = 5.0
    decode_threads: int = 2
    scheduling: str = 'fifo'
    # Idle for this long (no request served or queued): time one inference of the last image
    # so /load's service time is a fresh one, not the start-up profile (0: never).
    idle_profile_s: float = 2.0

    def __post_init__(self):
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


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class DeadlineExpired(Exception):
    """The request's deadline passed while it waited in the queue."""


class RequestCancelled(Exception):
    """The client cancelled the request while it waited in the queue."""


@dataclasses.dataclass
class Job:
    image: Optional[np.ndarray]     # the whole model's input, or None for a tail request
    client: str
    deadline_s: Optional[float]
    outputs: List[str]
    future: asyncio.Future
    enqueued_s: float
    transport: object = None
    request_id: str = ''
    model: str = ''
    tensors: Optional[Dict[str, np.ndarray]] = None   # a tail's checked inputs
    image_size: Tuple[int, int] = (0, 0)             # (width, height) of the robot's image
    internal: bool = False       # the worker's own idle profiling run: no client, no load


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
    """One model: its detector, a queue (FIFO, EDF or per-client fair) drained by k
    executors, load tracker and statistics."""

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
        """An idle worker's service time goes stale: the start-up profile was taken while
        everything else started too, and the machine's load changes. Every idle period of
        `idle_profile_s`, one inference of the last image runs through the queue like a
        request (a request arriving meanwhile waits for it, as behind any other) and
        refreshes the profile /load reports while it has no live samples."""
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
        return len(self.queue)

    def submit(self, job: Job) -> None:
        if len(self.queue) >= self.config.max_queue:
            raise HttpError(503, f'queue full ({self.config.max_queue} requests waiting)')
        self.last_busy_s = job.enqueued_s
        self.load.arrival(job.enqueued_s, job.client)
        self.queue.push(job, job.client, job.deadline_s)
        if job.request_id:
            self.waiting[(job.client, job.request_id)] = job
        self._queued.release()

    def cancel(self, client: str, request_id: str) -> bool:
        """Drop a queued request of this client; False if it is not waiting (running or
        done: a started inference is not interrupted)."""
        job = self.waiting.pop((client, request_id), None)
        if job is None or job.future.done():
            return False
        self.cancelled += 1
        job.future.set_exception(RequestCancelled())
        return True

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
            self.waiting.pop((job.client, job.request_id), None)
            if job.future.done() or (job.transport is not None and job.transport.is_closing()):
                continue  # the client went away: do not spend the accelerator on it
            started = self.clock()
            if job.deadline_s is not None and started > job.deadline_s:
                self.stats.add('queue', started - job.enqueued_s)
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
            self.stats.add('queue', started - job.enqueued_s)
            self.stats.add('compute_infer', result['infer_s'])
            self.stats.add('compute_output', result['output_s'])
            self.stats.inference_count += 1
            self.stats.execution_count += 1
            self.stats.last_inference_ms = int(time.time() * 1000)
            result['queue_s'] = started - job.enqueued_s
            result['service_s'] = finished - started
            if not job.future.done():
                job.future.set_result(result)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({'error': message}, status=status)


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
            web.get('/v2/models/{model}/load', self.load),
            web.post('/v2/offload/probe', self.probe),
            web.post('/v2/offload/cancel', self.cancel),
        ])
        self.app.on_startup.append(self._startup)
        self.app.on_cleanup.append(self._cleanup)

    async def _startup(self, _app) -> None:
        self.runtime.start()

    async def _cleanup(self, _app) -> None:
        await self.runtime.stop()
        self.decoder.shutdown(wait=True)

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        if self.config.token and request.path not in OPEN_PATHS:
            given = request.headers.get('Authorization', '')
            if not hmac.compare_digest(given.encode(), f'Bearer {self.config.token}'.encode()):
                return _error(401, 'missing or wrong bearer token')
        try:
            return await handler(request)
        except HttpError as e:
            return _error(e.status, e.message)
        except web.HTTPException as e:
            if e.status >= 400:
                return _error(e.status, e.reason)
            raise

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
                               'required_parameters': {'image_size': '[width, height]'}}})
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
        snapshot = rt.load.snapshot(rt.clock(), rt.queue_length(), rt.in_service)
        snapshot['models'] = {name: {'service_mean_s': mean} for name, mean in
                              rt.model_service_means().items()}
        return web.json_response(snapshot)

    async def probe(self, request: web.Request):
        """Extension: read and discard an upload, so robots can measure bandwidth while
        they process locally (no inference is run)."""
        body = await self._read_body(request)
        return web.json_response({'bytes': len(body)})

    async def cancel(self, request: web.Request):
        """Extension: {"id": ...} drops that queued request of the calling client (its
        X-Offload-Client); a robot that got its answer elsewhere frees the worker."""
        try:
            request_id = (await request.json())['id']
        except (ValueError, KeyError, TypeError) as e:
            raise HttpError(400, 'cancel: body must be JSON {"id": "<request id>"}') from e
        client = request.headers.get(protocol.CLIENT_HEADER, request.remote or 'unknown')[:64]
        return web.json_response({'id': str(request_id),
                                  'cancelled': self.runtime.cancel(client, str(request_id))})

    async def _read_body(self, request: web.Request) -> bytes:
        length = request.content_length
        if length is not None and length > self.config.max_body_bytes:
            raise HttpError(413, f'body of {length} bytes exceeds {self.config.max_body_bytes}')
        try:
            return await asyncio.wait_for(request.read(), self.config.read_timeout_s)
        except asyncio.TimeoutError as e:
            raise HttpError(408, f'body not received within {self.config.read_timeout_s} s') \
                from e
        except web.HTTPRequestEntityTooLarge as e:
            raise HttpError(413, f'body exceeds {self.config.max_body_bytes} bytes') from e

    @staticmethod
    def _decode_jpeg(data: bytes) -> np.ndarray:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise HttpError(400, 'image_jpeg: not a decodable image')
        return image

    async def _image_of(self, tensors: List[protocol.Tensor]) -> np.ndarray:
        if len(tensors) != 1:
            raise HttpError(400, f'expected exactly one input, got {len(tensors)}')
        t = tensors[0]
        if t.datatype == 'BYTES':
            if len(t.data) != 1 or not t.data[0]:
                raise HttpError(400, f'{t.name}: BYTES input must hold one encoded image')
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.decoder, self._decode_jpeg, t.data[0])
        if t.datatype != 'UINT8' or len(t.shape) != 4 or t.shape[0] != 1 or t.shape[3] != 3 \
                or t.shape[1] < 1 or t.shape[2] < 1:
            raise HttpError(400, f'{t.name}: expected UINT8 [1, H, W, 3], got {t.datatype} '
                            f'{t.shape}')
        return t.data[0]

    def _tail_inputs(self, name: str, header: dict, tensors: List[protocol.Tensor]
                     ) -> Tuple[Dict[str, np.ndarray], Tuple[int, int]]:
        size = (header.get('parameters') or {}).get('image_size')
        if not (isinstance(size, list) and len(size) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
            raise HttpError(400, f'{name}: parameters.image_size must be [width, height] of '
                            f'the robot\'s image, got {size!r}')
        by_name = {t.name: t.data for t in tensors if t.datatype != 'BYTES'}
        if len(by_name) != len(tensors):
            raise HttpError(400, f'{name}: inputs must be numeric tensors with unique names')
        try:
            return self.runtime.tails[name].check(by_name), (size[0], size[1])
        except split.SplitError as e:
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
        try:
            header, tensors = protocol.decode(body, protocol.header_length_of(request.headers),
                                              'inputs')
        except protocol.ProtocolError as e:
            raise HttpError(400, str(e)) from e
        outputs = [o.get('name') for o in header.get('outputs') or [] if isinstance(o, dict)] \
            or ['detections']
        unknown = [o for o in outputs if o not in OUTPUT_NAMES]
        if unknown:
            raise HttpError(400, f'unknown outputs {unknown}; available {list(OUTPUT_NAMES)}')
        deadline = None
        if protocol.DEADLINE_HEADER in request.headers:
            try:
                budget = float(request.headers[protocol.DEADLINE_HEADER])
            except ValueError as e:
                raise HttpError(400, f'{protocol.DEADLINE_HEADER} must be a number') from e
            if not budget > 0 or budget != budget:
                raise HttpError(400, f'{protocol.DEADLINE_HEADER} must be > 0')
            deadline = self.runtime.clock() + budget
        decode_start = time.perf_counter()
        image, inputs, size = None, None, (0, 0)
        if name in self.runtime.tails:
            inputs, size = self._tail_inputs(name, header, tensors)
        else:
            image = await self._image_of(tensors)
        self.runtime.stats.add('compute_input', time.perf_counter() - decode_start)
        client = request.headers.get(protocol.CLIENT_HEADER, request.remote or 'unknown')[:64]
        future = asyncio.get_running_loop().create_future()
        request_id = header.get('id') if isinstance(header.get('id'), str) else ''
        job = Job(image, client, deadline, outputs, future, self.runtime.clock(),
                  request.transport, request_id[:128], name, inputs, size)
        self.runtime.submit(job)
        try:
            result = await future
        except DeadlineExpired:
            self.runtime.stats.add('fail', time.perf_counter() - received)
            return _error(504, 'deadline passed before inference started')
        except RequestCancelled:
            self.runtime.stats.add('fail', time.perf_counter() - received)
            return _error(409, 'cancelled by the client before inference started')
        except Exception:  # the runtime logged it; the client gets a clean 500
            self.runtime.stats.add('fail', time.perf_counter() - received)
            return _error(500, 'inference failed')
        tensors_out = [protocol.Tensor(n, 'FP32', list(result['outputs'][n].shape),
                                       result['outputs'][n]) for n in outputs]
        server_s = time.perf_counter() - body_read
        self.runtime.stats.add('success', time.perf_counter() - received)
        body, head_len = protocol.encode(
            {'model_name': name, 'model_version': '1',
             'id': header.get('id') if isinstance(header.get('id'), str) else str(uuid.uuid4()),
             'parameters': {'queue_s': result['queue_s'], 'service_s': result['service_s'],
                            'server_s': server_s}},
            tensors_out, 'outputs')
        return web.Response(body=body, content_type='application/octet-stream',
                            headers={protocol.HEADER_LENGTH: str(head_len)})


async def serve(config: WorkerConfig, detector: Detector, stop: asyncio.Event,
                profile: Optional[ServiceProfile] = None,
                tails: Optional[Dict[str, split.Tail]] = None,
                tail_profiles: Optional[Dict[str, float]] = None) -> None:
    worker = WorkerApp(config, detector, profile, tails, tail_profiles)
    runner = web.AppRunner(worker.app, keepalive_timeout=config.keepalive_timeout_s,
                           shutdown_timeout=config.drain_timeout_s, handle_signals=False,
                           access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f'gpu_worker: listening on http://{config.host}:{port} model={config.model_name} '
          f'k={config.parallelism} provider={detector.provider}'
          + (f' tails={sorted(tails)}' if tails else ''), flush=True)
    await stop.wait()
    worker.draining = True
    print('gpu_worker: draining in-flight requests', flush=True)
    await runner.cleanup()  # stops listening, waits for in-flight handlers, then cleanup hooks


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='gpu_worker', description=__doc__.splitlines()[0])
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
    return p


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
    token = os.environ.get('OFFLOAD_WORKER_TOKEN') or None
    if args.token_file:
        token = pathlib.Path(args.token_file).read_text().strip() or None
    try:
        from offload_ros.inference import models
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
                              keepalive_timeout_s=args.keepalive_timeout_s)
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
    except (ValueError, DetectorError, models.ModelError) as e:
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
