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
offload_node: per-frame choice of local or remote detection by queueing-model predictions.

Thin adapter: messages are converted at the edge, the Planner (core) estimates and decides,
inference and HTTP run on thread pools (never on the executor), results are published from
those threads. Every frame ends in exactly one outcome, published on offload/decisions.
"""
import collections
import concurrent.futures
import dataclasses
import json
import math
import os
import sys
import threading
import time
from collections import Counter
from typing import Dict, List, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from vision_msgs.msg import Detection2DArray

from offload_ros.core import hedging
from offload_ros.core.deadline import request_timeout_s
from offload_ros.core.latency import Prediction
from offload_ros.core.planner import Planner, PlannerConfig
from offload_ros.core.energy import EnergyModel, EnergyWeights
from offload_ros.core.policy import LOCAL, MODES, SPLIT_MARK, PolicyConfig, parse_target
from offload_ros.inference import models
from offload_ros.inference.detector import Detector, DetectorError
from offload_ros.inference.picture import BadImage, ImageLimits, Picture
from offload_ros.nodes import conversions, params, qos, runner, topics, transport
from offload_ros.worker import protocol
from offload_ros.worker.client import (WorkerClient, WorkerRequestError, WorkerUnavailable,
                                       check_url, new_request_id)

# Threads for worker calls besides frames (/load polls, cancels): with max_inflight, the
# most requests one worker's connection pool can hold at once.
IO_THREADS = 2

SPECS = [
    params.Spec('workers', [], 'Workers as NAME=URL (KServe v2 base URL).', string_array=True),
    params.Spec('model_name', 'yolov3_tiny', 'Model name on the workers.'),
    params.Spec('model_path', '', 'Local ONNX detector; empty: the provisioned yolov3-tiny.',
                read_only=True),
    params.Spec('names_path', '', 'Class names file; empty: COCO names.', read_only=True),
    params.Spec('detector_threads', 0, 'onnxruntime intra-op threads (0: default).',
                (0, 64), read_only=True),
    params.Spec('score_threshold', 0.3, 'Minimum detection score.', (0.0, 1.0)),
    params.Spec('iou_threshold', 0.45, 'NMS IoU threshold.', (0.0, 1.0)),
    params.Spec('deadline_s', 0.25, 'End-to-end deadline from capture stamp.', (0.001, 60.0)),
    params.Spec('hysteresis', 0.1, 'Relative gain a challenger needs to replace the target.',
                (0.0, 0.9)),
    params.Spec('epoch_s', 0.5, 'Period of estimate refresh and policy evaluation.',
                (0.05, 10.0)),
    params.Spec('policy_mode', 'argmin', 'Decision rule.', choices=MODES),
    params.Spec('bandwidth_override_bps', 0.0, 'Use this bandwidth instead of measuring (0).',
                (0.0, 1e11)),
    params.Spec('bandwidth_prior_bps', 20e6, 'Bandwidth assumed before any measurement.',
                (1e3, 1e11)),
    params.Spec('arrival_model', 'measured', 'Arrival process in the models: poisson (the '
                "paper's M/*/1) or measured (Allen-Cunneen GI/G/1 from the frame gaps).",
                choices=('measured', 'poisson')),
    params.Spec('energy_compute_w', 6.0, 'Robot power while inferring (W), energy model.',
                (0.0, 1e4)),
    params.Spec('energy_idle_w', 2.5, 'Robot power while waiting for a worker (W).',
                (0.0, 1e4)),
    params.Spec('energy_tx_j_per_byte', 8e-8, 'Radio energy per transmitted byte (J).',
                (0.0, 1.0)),
    params.Spec('energy_rx_j_per_byte', 4e-8, 'Radio energy per received byte (J).',
                (0.0, 1.0)),
    params.Spec('energy_worker_w', 70.0, "Worker accelerator power while inferring (W).",
                (0.0, 1e5)),
    params.Spec('energy_weight_robot', 0.6, 'policy_mode energy: weight of robot energy '
                '(the three weights sum to 1).', (0.0, 1.0)),
    params.Spec('energy_weight_total', 0.2, 'policy_mode energy: weight of total energy.',
                (0.0, 1.0)),
    params.Spec('energy_weight_latency', 0.2, 'policy_mode energy: weight of latency.',
                (0.0, 1.0)),
    params.Spec('hedge_miss_probability', 0.0, 'Deadline hedging: when a remote frame\'s '
                'predicted probability of missing the deadline exceeds this, start it on the '
                'robot too at the latest safe moment and keep the first answer (0: off).',
                (0.0, 1.0)),
    params.Spec('link_model', 'measured', "Uplink queue: measured (FIFO M/G/1 at the spread "
                'of payload sizes: the link with serial_uploads) or exponential (the '
                "paper's M/M/1, the mean of an ideal processor-sharing link).",
                choices=('measured', 'exponential')),
    params.Spec('jpeg_quality', 80, 'JPEG quality of offloaded frames (re-encoded ones: see '
                'jpeg_passthrough).', (1, 100)),
    params.Spec('jpeg_passthrough', True, "With payload jpeg, offload a compressed camera "
                "frame's JPEG as it came: no decode or re-encode on the robot (pixels are "
                "decoded only for the robot's detector or a fallback). false: decode and "
                're-encode at jpeg_quality.'),
    params.Spec('payload', 'jpeg', 'Offload payload.', choices=('jpeg', 'raw')),
    params.Spec('serial_uploads', True, 'Upload to each worker one frame at a time, in '
                'arrival order (the link is FIFO: concurrent TCP uploads share it and each '
                'takes as long as all). false: every request uploads at once.'),
    params.Spec('probe_period_s', 0.25, 'While no frame goes to a worker, upload a probe '
                'to it this often to keep its bandwidth estimate fresh (0: never).',
                (0.0, 60.0)),
    params.Spec('local_profile_period_s', 5.0, "While frames go to a worker, re-time the "
                "robot's detector on the latest frame this long after its last inference, so "
                'a slow start-up profile is not kept forever (0: never). See '
                'local_profile_margin.', (0.0, 3600.0)),
    params.Spec('local_profile_margin', 0.5, "Re-time the robot's detector only while its "
                "service time is within this fraction of the chosen target's predicted "
                'latency (where it could change the decision).', (0.0, 100.0)),
    params.Spec('probe_bytes', 20000, 'Probe upload size (0: the request of the latest frame).',
                (0, 10_000_000)),
    params.Spec('request_timeout_s', 0.5, 'Upper bound of one worker request, where the '
                'robot could still run the frame in time after it; where it could not, the '
                'request waits up to the frame\'s deadline.', (0.01, 30.0)),
    params.Spec('max_inflight', 4, 'Concurrent worker requests.', (1, 64), read_only=True),
    params.Spec('max_local_queue', 8, 'Frames waiting for local inference before drops.',
                (1, 1000)),
    params.Spec('drop_late', True, 'Drop a frame whose deadline passed before it started.'),
    params.Spec('image_transport', 'auto', 'Image topic type; auto: what the camera '
                'publishes (raw where both are), re-checked until it publishes.',
                choices=transport.CHOICES, read_only=True),
    params.Spec('image_qos', 'sensor_data', 'QoS of the image subscription.',
                choices=tuple(qos.NAMED), read_only=True),
    params.Spec('force_target', '', "Always use this target ('local' or a worker name); "
                'empty: decide.'),
    params.Spec('client_id', '', 'Identity sent to workers; empty: host/node name.',
                read_only=True),
    params.Spec('split_layers', '', "Split inference: comma-separated Darknet layers (e.g. "
                "'3,5,7') to consider cutting after; the head runs here, the tail on each "
                "worker that serves it (gpu_worker --split-layers). Empty: off.",
                read_only=True),
    params.Spec('split_wire_dtype', 'FP16', 'Type of the feature maps sent to the tail.',
                choices=('FP16', 'FP32'), read_only=True),
    params.Spec('max_image_pixels', ImageLimits.max_pixels, 'Largest camera image accepted, '
                'in pixels (a compressed one is checked from its header, before decoding).',
                (1, 1 << 30)),
    params.Spec('max_image_side', ImageLimits.max_side, 'Largest image width or height '
                'accepted.', (1, 1 << 16)),
    params.Spec('max_detections', 1000, 'A worker answer with more detections than this is '
                'refused as malformed.', (0, 1_000_000), read_only=True),
    params.Spec('worker_ca_file', '', 'PEM CA bundle to verify https workers against (empty: '
                "the system's store).", read_only=True),
]


def parse_workers(entries: List[str]) -> Dict[str, str]:
    workers = {}
    for entry in (e.strip() for e in entries):
        if not entry:
            continue  # an empty launch argument gives ['']
        name, sep, url = entry.partition('=')
        if not sep or not name:
            raise ValueError(f'workers: {entry[:80]!r} is not NAME=http://HOST:PORT')
        try:
            url = check_url(url)
        except ValueError as e:
            raise ValueError(f'workers: {name}: {e}') from e
        if name in workers or name == LOCAL or SPLIT_MARK in name:
            raise ValueError(f'workers: duplicate or reserved name {name!r}')
        workers[name] = url
    return workers


@dataclasses.dataclass(frozen=True)
class OffloadConfig:
    values: dict

    def __post_init__(self):
        workers = parse_workers(self.values['workers'])
        self.planner()  # validates policy and bandwidth values
        layers = self.split_layers()
        forced = self.values['force_target']
        worker, layer = parse_target(forced)
        if forced and not (forced == LOCAL or worker in workers and
                           (layer is None or layer in layers)):
            raise ValueError(f'force_target: {forced!r} is not local, a worker or '
                             f'WORKER{SPLIT_MARK}LAYER with LAYER in split_layers')

    def image_limits(self) -> ImageLimits:
        return ImageLimits(self.values['max_image_pixels'], self.values['max_image_side'])

    def split_layers(self) -> tuple:
        try:
            return protocol.parse_layers(self.values['split_layers'])
        except ValueError as e:
            raise ValueError(f'split_layers: {e}') from e

    def planner(self) -> PlannerConfig:
        v = self.values
        return PlannerConfig(
            policy=PolicyConfig(v['policy_mode'], v['hysteresis'], v['deadline_s']),
            bandwidth_override_bps=v['bandwidth_override_bps'] or None,
            bandwidth_prior_bps=v['bandwidth_prior_bps'],
            forced_target=v['force_target'] or None,
            arrival_model=v['arrival_model'], link_model=v['link_model'],
            local_profile_period_s=v['local_profile_period_s'],
            local_profile_margin=v['local_profile_margin'],
            energy=EnergyModel(v['energy_compute_w'], v['energy_idle_w'],
                               v['energy_tx_j_per_byte'], v['energy_rx_j_per_byte'],
                               v['energy_worker_w']),
            energy_weights=EnergyWeights(v['energy_weight_robot'], v['energy_weight_total'],
                                         v['energy_weight_latency']))

    def __getitem__(self, key):
        return self.values[key]


@dataclasses.dataclass
class Frame:
    seq: int
    header: Header
    picture: Optional[Picture]        # pixels, or a received JPEG decoded on first use
    capture_s: float
    deadline_at_s: float
    target: str
    decision_reason: str
    predictions: Dict[str, Prediction]
    decided_t_s: float = 0.0
    estimates: Optional[dict] = None
    energy: Optional[dict] = None
    hedge: Optional['Hedge'] = None
    received_mono: float = 0.0        # monotonic: receipt, hand-over to a pool, pool start
    submitted_mono: float = 0.0
    started_mono: float = 0.0
    core_done_mono: float = 0.0       # the detector or the worker call returned
    ingress_s: Optional[float] = None  # capture stamp -> receipt here

    @property
    def image(self) -> np.ndarray:
        """Return the pixels (a received JPEG is decoded here, once; BadImage if it does not)."""
        return self.picture.bgr


@dataclasses.dataclass
class Hedge:
    """A frame raced on the robot and a worker: the first answer within the deadline wins."""

    miss_probability: float
    start_at_s: float                 # latest safe local start (ROS clock seconds)
    timer: Optional[threading.Timer] = None
    local_started: bool = False
    remote_failed: bool = False
    request_id: str = ''


class _Offload:
    """
    The decision node's behaviour.

    For a plain node (OffloadNode) and a managed one (ManagedOffloadNode): _declare in the
    constructor, _configure (the model, its profile, workers, pools, publishers, timers), _activate
    (the camera subscription), _deactivate (no new frames; those received end first) and close.
    """

    NODE_NAME = 'offload'

    def _declare(self) -> None:
        self.config = OffloadConfig(params.declare(self, SPECS))
        self._lock = threading.Lock()
        self._pending: Optional[OffloadConfig] = None
        self._image_sub = None
        self._detect_timer = None
        self._report_timers: list = []
        self._pools: list = []
        self.worker_clients: Dict[str, WorkerClient] = {}
        self._seq = 0
        self.outcomes: Counter = Counter()
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _configure(self) -> None:
        model = self.config['model_path'] or str(models.ensure_default_model())
        names = self.config['names_path'] or (None if self.config['model_path']
                                              else str(models.default_names_path()))
        self.detector = Detector(model, names, score_threshold=self.config['score_threshold'],
                                 iou_threshold=self.config['iou_threshold'],
                                 threads=self.config['detector_threads'])
        profile = self.detector.profile(np.zeros((480, 640, 3), np.uint8), runs=8)
        self.get_logger().info(f'local detector {profile.mean_s * 1e3:.1f} ms '
                               f'({profile.provider})')
        self.client_id = self.config['client_id'] or params.hardware_id(self)
        self.planner = Planner(self.config.planner(), [], profile.mean_s)
        self.heads = self._split_heads(model)
        self._device_lock = threading.Lock()   # one robot accelerator: detector and heads
        self._set_workers(parse_workers(self.config['workers']))
        self.local_pool = concurrent.futures.ThreadPoolExecutor(1, 'local')
        self.remote_pool = concurrent.futures.ThreadPoolExecutor(self.config['max_inflight'],
                                                                 'remote')
        self.io_pool = concurrent.futures.ThreadPoolExecutor(IO_THREADS, 'refresh')
        self._pools = [self.io_pool, self.remote_pool, self.local_pool]
        self._refreshing = False
        self._local_backlog = 0   # frames given to the local pool and not finished
        self._local_waiting = 0   # of those, not yet started
        self._last_remote_s: Dict[str, float] = {}
        self._last_probe_s: Dict[str, float] = {}
        self._latest_picture: Optional[Picture] = None
        self._energy: Optional[dict] = None
        self.hedges: Counter = Counter()
        self.local_profiles = 0   # re-timings of the robot's detector (_profile_local)
        # Worker requests in flight, per worker: each one's perf_counter start (_unanswered).
        self._inflight: Dict[str, Dict[int, float]] = collections.defaultdict(dict)
        self._decided_t_s = self._now_s()
        self.malformed: Counter = Counter()
        self._finished = set()
        self.det_pub = self.create_publisher(Detection2DArray, topics.DETECTIONS, qos.RESULTS)
        self.rec_pub = self.create_publisher(String, topics.DECISIONS, qos.RECORDS)
        self.diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self._epoch_timer = params.steady_timer(self, self.config['epoch_s'], self._on_epoch)
        self._report_timers = [params.steady_timer(self, 1.0, self._publish_diagnostics)]
        self._on_epoch()

    def _activate(self) -> None:
        """Subscribe to the camera (once its transport is known)."""
        self._detect_timer = params.steady_timer(self, 0.2, self._subscribe_images)
        self._subscribe_images()

    def _deactivate(self, drain_s: float = 10.0) -> bool:
        """
        Take no new frame; wait up to drain_s for every frame received to end.

        (True if they all did).
        """
        if self._detect_timer is not None:
            self.destroy_timer(self._detect_timer)
            self._detect_timer = None
        if self._image_sub is not None:
            self.destroy_subscription(self._image_sub)
            self._image_sub = None
        end = time.monotonic() + drain_s
        while time.monotonic() < end:
            with self._lock:
                if sum(self.outcomes.values()) >= self._seq:
                    return True
            time.sleep(0.01)
        return False

    # -- configuration ----------------------------------------------------------------------
    def _split_heads(self, model: str) -> dict:
        """Cut the detector after each split layer, profile the heads and tell the planner."""
        layers = self.config.split_layers()
        if not layers:
            return {}
        from offload_ros.inference import split   # onnx is needed only to cut the model
        graph = split.load(model)
        heads, profiles = {}, {}
        image = np.zeros((480, 640, 3), np.uint8)
        for layer in layers:
            head = split.Head(graph, layer, self.config['detector_threads'],
                              self.detector.providers, self.config['split_wire_dtype'])
            head_s, tensors = split.mean_time(head.run, image, runs=6)
            heads[layer] = head
            profiles[layer] = (head_s, sum(t.nbytes for t in tensors.values()))
            self.get_logger().info(f'split@{layer}: head {profiles[layer][0] * 1e3:.1f} ms, '
                                   f'{profiles[layer][1] / 1e3:.0f} kB to the tail')
        self.planner.set_split_points(profiles)
        return heads

    def _set_workers(self, workers: Dict[str, str]) -> None:
        token = os.environ.get('OFFLOAD_WORKER_TOKEN') or None
        for name in list(self.worker_clients):
            if name not in workers or self.worker_clients[name].url != workers[name].rstrip('/'):
                self.worker_clients.pop(name).close()
        for name, url in workers.items():
            if name not in self.worker_clients:
                self.worker_clients[name] = WorkerClient(
                    url, self.config['model_name'], self.client_id, self.detector.names,
                    self.config['payload'], self.config['jpeg_quality'], token,
                    score_threshold=self.config['score_threshold'],
                    iou_threshold=self.config['iou_threshold'],
                    pool_size=self.config['max_inflight'],
                    forward_jpeg=self.config['jpeg_passthrough'],
                    serial_uploads=self.config['serial_uploads'],
                    ca_file=self.config['worker_ca_file'] or None,
                    max_detections=self.config['max_detections'])
        self.planner.set_workers(list(workers))

    def _on_set_parameters(self, changes) -> SetParametersResult:
        with self._lock:  # changes stack on those still waiting for the next epoch
            base = (self._pending or self.config).values
        try:
            candidate = OffloadConfig(params.updated(SPECS, base, changes))
        except ValueError as e:
            return SetParametersResult(successful=False, reason=str(e))
        with self._lock:
            self._pending = candidate  # applied at the next epoch
        return SetParametersResult(successful=True)

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        old = self.config
        self.config = pending
        if pending['workers'] != old['workers']:
            self._set_workers(parse_workers(pending['workers']))
        for client in self.worker_clients.values():
            client.jpeg_quality = pending['jpeg_quality']
            client.payload = pending['payload']
            client.forward_jpeg = pending['jpeg_passthrough']
            client.serial_uploads = pending['serial_uploads']
            client.score_threshold = pending['score_threshold']
            client.iou_threshold = pending['iou_threshold']
        self.detector.score_threshold = pending['score_threshold']
        self.detector.iou_threshold = pending['iou_threshold']
        with self._lock:
            self.planner.reconfigure(pending.planner())
            payload = ('payload', 'jpeg_quality', 'jpeg_passthrough')
            if any(pending[k] != old[k] for k in payload):
                self.planner.payload_changed()
        if pending['epoch_s'] != old['epoch_s']:
            self._epoch_timer.cancel()
            self.destroy_timer(self._epoch_timer)
            self._epoch_timer = params.steady_timer(self, pending['epoch_s'], self._on_epoch)
        self.get_logger().info('parameters applied')

    # -- image subscription -----------------------------------------------------------------
    def _subscribe_images(self) -> None:
        if self._image_sub is not None or self._detect_timer is None:
            return
        chosen = transport.choose(self, self.config['image_transport'])
        if chosen is None:
            return  # no camera publisher yet: retry on the next timer tick
        kind, msg_type, name = chosen
        self._image_sub = self.create_subscription(
            msg_type, name, self._on_image, qos.by_name(self.config['image_qos']))
        self.image_kind = kind
        self._detect_timer.cancel()
        self.get_logger().info(f'subscribed to {kind} images')

    # -- per frame --------------------------------------------------------------------------
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_image(self, msg) -> None:
        """
        Convert, decide, hand over.

        A frame that fails anywhere here still ends in one outcome (an 'error' naming the
        exception) and the node goes on.
        """
        received = time.monotonic()
        self._seq += 1
        capture_s = conversions.stamp_to_s(msg.header.stamp)
        arrived = Frame(self._seq, msg.header, None, capture_s,
                        capture_s + self.config['deadline_s'], LOCAL, 'malformed', {})
        frame = None
        try:
            frame = self._receive(msg, arrived, received)
            if frame is not None:
                self._dispatch(frame)
        except Exception as e:
            self._error(frame or arrived, 'receipt', e)

    def _error(self, frame: Frame, where: str, error: Exception) -> None:
        """
        End the frame with an 'error' outcome for an unexpected exception.

        (unless it already has its outcome) with an 'error' outcome naming it; logged, at most
        every 5 s.
        """
        self.get_logger().error(f'frame {frame.seq}: {where}: {error!r}',
                                throttle_duration_sec=5.0)
        if not self._is_finished(frame):
            self._finish(frame, 'error', frame.target, f'{where}: {error!r}'[:300])

    def _receive(self, msg, arrived: Frame, received: float) -> Optional[Frame]:
        """Return the frame converted and routed; None for a malformed one (its outcome given)."""
        capture_s, deadline_at = arrived.capture_s, arrived.deadline_at_s
        limits = self.config.image_limits()
        try:
            picture = Picture(bgr=conversions.image_to_bgr(msg, limits)) \
                if isinstance(msg, Image) else conversions.compressed_to_picture(msg, limits)
        except conversions.ConversionError as e:
            self._malformed(arrived, e)
            return None
        with self._lock:
            self._latest_picture = picture
            self.planner.frame_arrived(time.monotonic())
            ingress = self._now_s() - capture_s
            self.planner.frame_ingress(ingress)
            target = self.planner.route()
            decision = self.planner.decision
            estimates, energy = self.planner.estimates, self._energy
        frame = Frame(arrived.seq, msg.header, picture, capture_s, deadline_at, target,
                      decision.reason, dict(decision.predictions), self._decided_t_s,
                      estimates, energy, received_mono=received)
        frame.ingress_s = ingress
        return frame

    def _dispatch(self, frame: Frame) -> None:
        """To the robot's detector, or to a worker (with a hedge where it is due)."""
        target, capture_s = frame.target, frame.capture_s
        frame.submitted_mono = time.monotonic()
        if target == LOCAL:
            self._submit_local(frame, fallback=False, reason='')
            return
        threshold = self.config['hedge_miss_probability']
        local = frame.predictions.get(LOCAL)
        if threshold > 0 and local is not None and local.stable:
            with self._lock:
                p_miss = self.planner.miss_probability(target, frame.predictions)
            if p_miss > threshold:
                start_at = hedging.latest_local_start_s(capture_s, self.config['deadline_s'],
                                                        local)
                # An id nobody can guess: the worker drops a queued request by it.
                frame.hedge = Hedge(p_miss, start_at, request_id=new_request_id())
                frame.hedge.timer = threading.Timer(max(0.0, start_at - self._now_s()),
                                                    self._hedge_local, (frame,))
                frame.hedge.timer.daemon = True
                frame.hedge.timer.start()
        self.remote_pool.submit(self._run_remote, frame)

    def _malformed(self, frame: Frame, error: Exception, fallback: bool = False) -> None:
        key = str(error).split(' (')[0][:60]
        with self._lock:   # a bounded set of keys: every bad frame may say something new
            self.malformed[key if key in self.malformed or len(self.malformed) < 32
                           else 'other'] += 1
        self._finish(frame, 'drop', LOCAL, f'malformed image: {error}', fallback=fallback)

    def _hedge_local(self, frame: Frame) -> None:
        """Run the frame here too: the latest safe moment came and the worker has not answered."""
        with self._lock:
            if frame.seq in self._finished or frame.hedge.local_started:
                return
            frame.hedge.local_started = True
            self.hedges['local_started'] += 1
        try:
            self._submit_local(frame, fallback=False, reason='hedge: robot answered first')
        except Exception as e:
            self._error(frame, 'hedge', e)

    def _submit_local(self, frame: Frame, fallback: bool, reason: str) -> None:
        with self._lock:
            if self._local_backlog >= self.config['max_local_queue']:
                full = True
            else:
                full = False
                self._local_backlog += 1
                self._local_waiting += 1
                self.planner.local_queue(self._local_waiting)
        if full:
            self._finish(frame, 'drop', LOCAL, 'local queue full', fallback=fallback)
            return
        self.local_pool.submit(self._run_local, frame, fallback, reason)

    def _run_local(self, frame: Frame, fallback: bool, reason: str) -> None:
        with self._lock:
            self._local_waiting -= 1
            self.planner.local_queue(self._local_waiting)
        try:
            if frame.hedge is not None and self._is_finished(frame):
                return  # the worker answered while this hedge waited for the detector
            frame.started_mono = time.monotonic()
            if self.config['drop_late'] and self._now_s() > frame.deadline_at_s:
                self._finish(frame, 'drop', LOCAL, 'deadline passed in queue',
                             fallback=fallback)
                return
            try:
                image = frame.image
            except BadImage as e:
                self._malformed(frame, e, fallback)
                return
            detections, service_s = self._on_device(self.detector.detect, image)
            frame.core_done_mono = time.monotonic()
            with self._lock:
                self.planner.local_done(service_s, frame.core_done_mono)
            self._finish(frame, 'detections', LOCAL, reason, detections, fallback,
                         service_s=service_s)
            with self._lock:   # this thread was busy besides inference: frames behind waited
                self.planner.local_released(time.monotonic() - frame.started_mono - service_s)
        except Exception as e:  # one outcome per frame even if the detector fails
            if not self._is_finished(frame):
                self._finish(frame, 'error', LOCAL, f'local inference failed: {e!r}'[:300],
                             fallback=fallback)
        finally:
            with self._lock:
                self._local_backlog -= 1

    def _profile_local_if_due(self) -> None:
        """
        Re-time the robot's detector on the latest frame (Planner.local_profile_due).

        It runs in the detector's thread like a frame: one arriving for the robot meanwhile waits
        for it, as behind any frame.
        """
        with self._lock:
            now = time.monotonic()
            picture = self._latest_picture
            if picture is None or self._local_backlog or \
                    not self.planner.local_profile_due(now):
                return
            self.planner.local_profile_started(now)
            self._local_backlog += 1
        self.local_pool.submit(self._profile_local, picture)

    def _profile_local(self, picture: Picture) -> None:
        try:
            service_s = self._on_device(self.detector.detect, picture.bgr)[1]
            with self._lock:
                self.planner.local_retimed(service_s, time.monotonic())
                self.local_profiles += 1
        except BadImage:
            pass    # that frame's own outcome says so; the next due time tries a newer one
        except Exception as e:  # a failed re-timing must not stop the epochs
            self.get_logger().warning(f're-timing the local detector failed: {e}')
        finally:
            with self._lock:
                self._local_backlog -= 1

    def _run_remote(self, frame: Frame) -> None:
        name = parse_target(frame.target)[0]
        with self._lock:
            self._inflight[name][id(frame)] = time.perf_counter()
        try:
            self._remote(frame, name)
        except Exception as e:   # unexpected: the frame still ends, on the robot if it can
            self.get_logger().error(f'frame {frame.seq}: {name}: {e!r}',
                                    throttle_duration_sec=5.0)
            if not self._is_finished(frame):
                try:
                    self._fallback(frame, f'{name} error: {e!r}'[:200])
                except Exception as again:
                    self._error(frame, 'fallback', again)
        finally:
            with self._lock:
                del self._inflight[name][id(frame)]

    def _unanswered(self, name: str, client: WorkerClient) -> bool:
        """
        Tell whether the oldest request to the worker went unanswered too long.

        Whether our oldest request to the worker has waited request_timeout_s with no
        answer of any kind from it since it began. A request may wait past that limit
        (request_timeout_s in core.deadline), but the worker is failed from then on, as
        when the request was cut there: new frames go elsewhere at once. Call with
        self._lock held.
        """
        oldest = min(self._inflight[name].values(), default=None)
        return oldest is not None and not client.answered_since(oldest) and \
            time.perf_counter() - oldest > self.config['request_timeout_s']

    def _on_device(self, run, image) -> tuple:
        """Run one model on the robot's accelerator, alone on it: (its result, seconds)."""
        with self._device_lock:
            start = time.perf_counter()
            result = run(image)
            return result, time.perf_counter() - start

    def _head(self, frame: Frame, layer: int) -> tuple:
        """Run a split's head on the robot's accelerator: (crossing tensors, seconds)."""
        tensors, head_s = self._on_device(self.heads[layer].run, frame.image)
        with self._lock:
            self.planner.head_done(layer, head_s)
        return tensors, head_s

    def _remote(self, frame: Frame, name: str) -> None:
        frame.started_mono = time.monotonic()
        client = self.worker_clients.get(name)
        layer = parse_target(frame.target)[1]
        head_s = None
        tokens = []     # the planner's token for the request, once its upload begins

        def upload_begins():
            tokens.append(self._request_started(name))
        request_id = frame.hedge.request_id if frame.hedge else ''
        try:
            if client is None:
                raise WorkerUnavailable(f'worker {name} was removed', 'connection')
            if layer is None:
                result = client.infer(frame.picture, self._request_budget(frame),
                                      request_id=request_id, on_upload=upload_begins)
            else:
                try:
                    tensors, head_s = self._head(frame, layer)
                except Exception as e:  # one outcome per frame even if the head fails
                    self._fallback(frame, f'split@{layer} head failed: {e}')
                    return
                result = client.infer_split(layer, tensors, frame.picture.size,
                                            self._request_budget(frame),
                                            request_id=request_id, on_upload=upload_begins)
        except BadImage as e:   # a JPEG that does not decode, found building the request
            self._abandon(name, tokens)
            self._malformed(frame, e)
            return
        except (WorkerUnavailable, WorkerRequestError) as e:
            self._abandon(name, tokens)
            kind = getattr(e, 'kind', 'request')
            if frame.hedge is not None and self._is_finished(frame):
                return  # the robot answered first and cancelled this request
            if kind == 'request' and frame.picture.jpeg is not None:
                try:   # the worker refused a JPEG sent as it came: is the frame at fault?
                    frame.image
                except BadImage as bad:
                    self._malformed(frame, bad)  # the worker is fine; nothing to run here
                    return
            if kind not in ('deadline', 'slow'):   # 'slow': it answers others meanwhile
                with self._lock:
                    self.planner.worker_failed(name, f'{kind}: {e}')
                self._replan()  # leave the failed worker now, not at the next epoch
            self._fallback(frame, f'{name} {kind}')
            return
        now = frame.core_done_mono = time.monotonic()
        with self._lock:   # the link's time: from the upload's start, not the wait for it
            self.planner.remote_done(name, now, result.request_bytes, result.response_bytes,
                                     result.round_trip_s - result.upload_wait_s,
                                     result.server_s, result.server_queue_s,
                                     result.server_service_s, whole_frame=layer is None,
                                     token=tokens[0] if tokens else None)
            self._last_remote_s[name] = now
        predicted = frame.predictions.get(frame.target)
        if predicted is not None and result.round_trip_s > 1.5 * predicted.latency_s:
            self._replan()  # far slower than predicted: re-plan now, not at the next epoch
        self._finish(frame, 'detections', frame.target, '', result.detections,
                     service_s=result.server_service_s, round_trip_s=result.round_trip_s,
                     head_s=head_s, server=(result.server_s, result.server_queue_s))

    def _request_budget(self, frame: Frame) -> float:
        """Return the wait for a worker's answer (core.deadline.request_timeout_s)."""
        return request_timeout_s(frame.deadline_at_s - self._now_s(),
                                 self.config['request_timeout_s'], self._local_needed_s(frame))

    @staticmethod
    def _local_needed_s(frame: Frame) -> float:
        """Return what the robot would take to run the frame (its prediction at decision)."""
        local = frame.predictions.get(LOCAL)
        return local.latency_s if local is not None else 0.0

    def _request_started(self, name: str) -> int:
        with self._lock:
            return self.planner.request_started(name, time.monotonic())

    def _abandon(self, name: str, tokens: List[int]) -> None:
        with self._lock:
            for token in tokens:
                self.planner.request_abandoned(name, token)

    def _is_finished(self, frame: Frame) -> bool:
        with self._lock:
            return frame.seq in self._finished

    def _fallback(self, frame: Frame, why: str) -> None:
        if frame.hedge is not None:
            with self._lock:
                started = frame.hedge.local_started
                frame.hedge.local_started = True   # the fallback is the hedge's local run
            frame.hedge.timer.cancel()
            if started:
                return  # the hedge's local run is already on its way to an outcome
            with self._lock:
                self.hedges['local_after_failure'] += 1
        remaining = frame.deadline_at_s - self._now_s()
        needed = self._local_needed_s(frame)
        if remaining >= needed:
            self._submit_local(frame, fallback=True, reason=f'fallback after {why}')
        else:
            self._finish(frame, 'miss', frame.target,
                         f'{why}; {remaining * 1e3:.0f} ms left < local {needed * 1e3:.0f} ms')

    def _finish(self, frame: Frame, kind: str, target: str, reason: str, detections=None,
                fallback: bool = False, service_s: float = None,
                round_trip_s: float = None, head_s: float = None,
                server: tuple = (None, None)) -> None:
        building = time.monotonic()
        message = None
        if kind == 'detections':
            try:
                message = conversions.detections_to_msg(detections, frame.header)
            except Exception as e:   # a message that cannot be built is this frame's error
                kind, reason, detections = 'error', f'detections message: {e!r}'[:300], None
        with self._lock:
            if frame.seq in self._finished:
                if frame.hedge is not None:
                    self.hedges['discarded'] += 1   # the slower side of a hedge
                    return
                raise RuntimeError(f'frame {frame.seq} finished twice')  # a bug, loudly
            self._finished.add(frame.seq)
            if len(self._finished) > 10000:
                self._finished = {s for s in self._finished if s > frame.seq - 5000}
            self.outcomes[(target, kind)] += 1
        finishing, publishing = building, time.monotonic()
        if message is not None:
            self.det_pub.publish(message)
        now = self._now_s()
        done = time.monotonic()
        core = service_s if target == LOCAL else \
            None if round_trip_s is None else round_trip_s + (head_s or 0.0)
        handling = parts = None
        if kind == 'detections' and core is not None and frame.received_mono:
            # What the node itself added: all but the pool wait and inference/transfer.
            handling = done - frame.received_mono - core - (
                frame.started_mono - frame.submitted_mono)
            # Where: receipt -> pool (decode, decide), in the pool besides inference/transfer
            # (payload encoding, response decoding), after it: the planner update, building
            # the detections message, and the middleware's publish call. On a shared core
            # that call lasts as long as the subscribers it wakes run first (docs/design.md).
            parts = {'receipt_s': frame.submitted_mono - frame.received_mono,
                     'update_s': finishing - frame.core_done_mono,
                     'build_s': publishing - finishing, 'publish_s': done - publishing}
            parts['pool_s'] = handling - sum(parts.values())
        with self._lock:
            self.planner.outcome(done, target, now - frame.capture_s
                                 if kind == 'detections' else math.inf)
            if handling is not None and not fallback and frame.hedge is None:
                self.planner.frame_handled(target, handling)
        predicted = frame.predictions.get(target)
        record = {
            'seq': frame.seq, 'stamp_s': frame.capture_s, 'frame_id': frame.header.frame_id,
            't_s': now, 'target': target, 'planned_target': frame.target, 'outcome': kind,
            'decided_t_s': frame.decided_t_s,
            'reason': reason or frame.decision_reason, 'fallback': fallback,
            'observed_latency_s': now - frame.capture_s,
            'predicted_latency_s': predicted.latency_s if predicted and
            math.isfinite(predicted.latency_s) else None,
            'predictions': {n: p.to_json() for n, p in frame.predictions.items()},
            'estimates': frame.estimates, 'energy': frame.energy,
            'detections': len(detections) if detections is not None else 0,
            'service_s': service_s, 'round_trip_s': round_trip_s, 'head_s': head_s,
            # The worker's own time and queue wait, and the wait here for the detector or a
            # request slot (after a fallback: since the first attempt): each stage of the
            # latency, measured (bench-fidelity holds them against the model's terms).
            'server_s': server[0], 'server_queue_s': server[1],
            'pool_wait_s': frame.started_mono - frame.submitted_mono
            if frame.started_mono and frame.submitted_mono else None,
            'ingress_s': frame.ingress_s, 'handling_s': handling, 'handling_parts_s': parts,
            'hedge': None if frame.hedge is None else {
                'miss_probability': round(frame.hedge.miss_probability, 4),
                'local_started': frame.hedge.local_started, 'winner': target}}
        if frame.hedge is not None:
            self._settle_hedge(frame, target)
        self.rec_pub.publish(String(data=json.dumps(record, separators=(',', ':'))))

    def _settle_hedge(self, frame: Frame, winner: str) -> None:
        """Stop the other side: the first answer is in."""
        frame.hedge.timer.cancel()
        with self._lock:
            self.hedges[f'won_{"local" if winner == LOCAL else "remote"}'] += 1
        client = self.worker_clients.get(parse_target(frame.target)[0])
        if winner == LOCAL and client is not None:
            self.io_pool.submit(client.cancel, frame.hedge.request_id)

    # -- epoch ------------------------------------------------------------------------------
    def _on_epoch(self) -> None:
        self._apply_pending()
        self._profile_local_if_due()
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True
        self.io_pool.submit(self._refresh)

    def _refresh(self) -> None:
        try:
            for name, client in list(self.worker_clients.items()):
                start = time.perf_counter()
                try:
                    load = client.fetch_load(timeout_s=min(0.5, self.config['epoch_s']))
                except Exception as e:   # WorkerUnavailable, or anything unforeseen
                    with self._lock:
                        # A poll stuck behind our own uploads on a busy link is no fault,
                        # unless the oldest of them has had no answer in request_timeout_s.
                        if getattr(e, 'kind', '') == 'timeout' and self._inflight[name] \
                                and not self._unanswered(name, client):
                            continue
                        self.planner.worker_failed(name, f'load: {e}')
                    continue
                rtt = time.perf_counter() - start
                with self._lock:
                    tails = {k: load.model_service_s[t] for k, t in (
                        (k, protocol.tail_model_name(client.model, k)) for k in self.heads)
                        if t in load.model_service_s}
                    self.planner.load_report(name, rtt, load.arrival_rate_hz,
                                             load.service_mean_s, load.service_var_s2,
                                             load.parallelism, load.own_rate_hz,
                                             load.queue_length, tails)
                    now = time.monotonic()
                    # Probe only a link no frame uses: one uploaded beside offloaded frames
                    # (even between two at 1 Hz, or while one is still uploading) is traffic
                    # the uplink queue does not count, and slows the frames it meets.
                    idle = (not self.planner.offloading_to(name) and not self._inflight[name]
                            and now - self._last_remote_s.get(name, -1e9)
                            > self.config['epoch_s'])
                    period = self.config['probe_period_s']
                    due = period > 0 and now - self._last_probe_s.get(name, -1e9) >= period
                    latest = self._latest_picture
                if idle and due and not self.config['bandwidth_override_bps']:
                    self._last_probe_s[name] = now
                    size, data = self.config['probe_bytes'], None
                    if not size and latest is not None:
                        # probe_bytes 0: upload the request the latest frame would make, so
                        # the payload size and its spread are known before offloading.
                        try:
                            data = client.request_body(latest)[0]
                            size = len(data)
                        except BadImage:
                            pass   # a frame that does not decode: the estimate's size
                    size = size or int(self.planner.request_bytes)
                    try:
                        trip = client.probe(size, timeout_s=1.0, data=data)
                    except WorkerUnavailable:
                        trip = None
                    if trip is not None:
                        with self._lock:
                            self.planner.probe_done(name, time.monotonic(), size, trip)
                            if data is not None:
                                self.planner.payload(size, int(self.planner.response_bytes))
            self._replan()
        finally:
            with self._lock:
                self._refreshing = False

    def _replan(self) -> None:
        """Evaluate the policy on the current estimates (no I/O: safe from any thread)."""
        with self._lock:
            before = self.planner.decision.target
            now = time.monotonic()
            decision = self.planner.evaluate(now)
            self.planner.estimates = self.planner.snapshot(now)
            self._energy = {n: e.to_json() for n, e in
                            self.planner.energies(decision.predictions).items()}
            if decision.target != before:
                self._decided_t_s = self._now_s()
        if decision.target != before:
            self.get_logger().info(f'switch {before} -> {decision.target}: {decision.reason}')

    # -- diagnostics ------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        with self._lock:
            outcomes = dict(self.outcomes)
            decision = self.planner.decision
            workers = {n: (s.available, s.reason) for n, s in self.planner.workers.items()}
            switches = len(self.planner.switches)
            hedges = dict(self.hedges)
        values = [KeyValue(key='target', value=decision.target),
                  KeyValue(key='reason', value=decision.reason),
                  KeyValue(key='switches', value=str(switches)),
                  KeyValue(key='frames', value=str(sum(outcomes.values()))),
                  KeyValue(key='received', value=str(self._seq)),
                  KeyValue(key='local_profiles', value=str(self.local_profiles))]
        values += [KeyValue(key=f'outcome/{t}/{k}', value=str(n))
                   for (t, k), n in sorted(outcomes.items())]
        values += [KeyValue(key=f'hedge/{k}', value=str(n)) for k, n in sorted(hedges.items())]
        values += [KeyValue(key=f'malformed/{k}', value=str(n))
                   for k, n in sorted(self.malformed.items())]
        values += [KeyValue(key=f'worker/{n}', value='ok' if ok else why)
                   for n, (ok, why) in workers.items()]
        down = [n for n, (ok, _) in workers.items() if not ok]
        level = DiagnosticStatus.WARN if down or self.malformed else DiagnosticStatus.OK
        message = f'target {decision.target}'
        if down:
            message += f'; unavailable: {", ".join(down)}'
        if self.malformed:
            message += f'; {sum(self.malformed.values())} malformed images'
        status = DiagnosticStatus(level=level,
                                  name=f'{self.get_fully_qualified_name()}: offload decision',
                                  hardware_id=self.client_id, message=message, values=values)
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    def close(self) -> None:
        """Stop the timers, finish the pools' work, close the worker connections."""
        for timer in [*self._report_timers, getattr(self, '_epoch_timer', None)]:
            if timer is not None:
                self.destroy_timer(timer)
        self._report_timers, self._epoch_timer = [], None
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=False)
        self._pools = []
        for client in self.worker_clients.values():
            client.close()


class OffloadNode(_Offload, Node):
    """The decision node, configured and active from its start."""

    def __init__(self, **kwargs):
        Node.__init__(self, self.NODE_NAME, **kwargs)
        self._declare()
        self._configure()
        self._activate()


class ManagedOffloadNode(_Offload, LifecycleNode):
    """
    The decision node as a managed (lifecycle) node.

    Configure loads the model, profiles it and connects the workers; activate subscribes to the
    camera; deactivate stops taking frames and lets those received end; cleanup releases it all
    (offload_node --lifecycle, robot.launch.xml lifecycle:=true).
    """

    def __init__(self, **kwargs):
        LifecycleNode.__init__(self, self.NODE_NAME, **kwargs)
        self._declare()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except (ValueError, ParameterException, DetectorError) as e:
            self.get_logger().error(f'configure: {e}')
            self.close()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._activate()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if not self._deactivate():
            self.get_logger().warning('deactivate: frames still in flight after 10 s')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        self.worker_clients = {}    # configure makes new ones
        for publisher in ('det_pub', 'rec_pub', 'diag_pub'):
            if getattr(self, publisher, None) is not None:
                self.destroy_publisher(getattr(self, publisher))
                setattr(self, publisher, None)
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate(drain_s=2.0)
        self.close()
        return TransitionCallbackReturn.SUCCESS


def main(args=None) -> int:
    """
    offload_node [--lifecycle] [--ros-args ...].

    --lifecycle starts it unconfigured, as a managed node.
    """
    argv = list(sys.argv if args is None else args)
    managed = '--lifecycle' in argv
    argv = [a for a in argv if a != '--lifecycle']
    return runner.run(ManagedOffloadNode if managed else OffloadNode, argv)
