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

A thin adapter: parameters, the camera subscription, publishers, timers and diagnostics. The
frame's path (route, run, fall back, hedge, one outcome) is the ROS-free dispatcher's
(offload_ros.dispatch), the decision the Planner's (core).
"""
import os
import sys
import threading
import time
from typing import Dict, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import Image
from std_msgs.msg import String
from vision_msgs.msg import Detection2DArray

from offload_ros.core.planner import Planner
from offload_ros.dispatch.clock import Pools, SystemClock
from offload_ros.dispatch.dispatcher import Dispatcher
from offload_ros.dispatch.monitor import WorkerMonitor
from offload_ros.inference import models
from offload_ros.inference.detector import Detector, DetectorError
from offload_ros.inference.picture import Picture
from offload_ros.ros import conversions, params, qos, runner, topics, transport
from offload_ros.nodes.offload_params import SPECS, OffloadConfig, parse_workers
from offload_ros.worker.client import WorkerClient
from offload_ros.worker.discovery import Directory

DRAIN_S = 10.0
CHECK_LEVELS = {'OK': DiagnosticStatus.OK, 'WARN': DiagnosticStatus.WARN,
                'ERROR': DiagnosticStatus.ERROR}


class _Outputs:
    """The dispatcher's outputs as ROS messages."""

    def __init__(self, node: Node):
        self.det_pub = node.create_publisher(Detection2DArray, topics.DETECTIONS, qos.RESULTS)
        self.rec_pub = node.create_publisher(String, topics.DECISIONS, qos.RECORDS)

    @staticmethod
    def message(frame, detections) -> Detection2DArray:
        return conversions.detections_to_msg(detections, frame.context)

    def detections(self, message: Detection2DArray) -> None:
        self.det_pub.publish(message)

    def record(self, record) -> None:
        self.rec_pub.publish(String(data=record.to_json()))

    def destroy(self, node: Node) -> None:
        node.destroy_publisher(self.det_pub)
        node.destroy_publisher(self.rec_pub)


class _Offload:
    """
    The decision node's behaviour.

    For a plain node (OffloadNode) and a managed one (ManagedOffloadNode): _declare in the
    constructor, _configure (the model, its profile, workers, dispatcher, publishers, timers),
    _activate (the camera subscription), _deactivate (no new frames; those received end
    first) and close.
    """

    NODE_NAME = 'offload'

    def _declare(self) -> None:
        self.config = OffloadConfig(params.declare(self, SPECS))
        self._lock = threading.Lock()
        self._pending: Optional[OffloadConfig] = None
        self._image_sub = self._detect_timer = self._epoch_timer = None
        self._diag_timer = self.dispatcher = self._outputs = None
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _configure(self) -> None:
        config = self.config
        for warning in config.deprecations():
            self.get_logger().warning(warning)
        model = config['model_path'] or str(models.ensure_default_model())
        names = config['names_path'] or (None if config['model_path']
                                         else str(models.default_names_path()))
        self.detector = Detector(model, names, score_threshold=config['score_threshold'],
                                 iou_threshold=config['iou_threshold'],
                                 threads=config['detector_threads'])
        profile = self.detector.profile(np.zeros((480, 640, 3), np.uint8), runs=8)
        self.get_logger().info(f'local detector {profile.mean_s * 1e3:.1f} ms '
                               f'({profile.provider})')
        self.client_id = config['client_id'] or params.hardware_id(self)
        planner = Planner(config.planner(), [], profile.mean_s)
        self.directory = Directory(parse_workers(config['workers']), config['discover'],
                                   config['model_name'])
        heads = self._partition_heads(model, planner)
        self._outputs = _Outputs(self)
        self.diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.dispatcher = Dispatcher(
            planner, self.detector, self._worker_clients(self.directory.current(), {}),
            config.dispatch(), SystemClock(lambda: self.get_clock().now().nanoseconds),
            Pools.threads(config['max_inflight']), self._outputs, self.get_logger(), heads)
        self.monitor = WorkerMonitor(self.dispatcher, min(0.5, config['epoch_s']),
                                     config['probe_bytes'])
        self._epoch_timer = params.steady_timer(self, config['epoch_s'], self._on_epoch)
        self._diag_timer = params.steady_timer(self, 1.0, self._publish_diagnostics)
        self._on_epoch()

    def _activate(self) -> None:
        """Subscribe to the camera (once its transport is known)."""
        self._detect_timer = params.steady_timer(self, 0.2, self._subscribe_images)
        self._subscribe_images()

    def _deactivate(self, drain_s: float = DRAIN_S) -> bool:
        """Take no new frame; wait up to drain_s for every frame received to end."""
        for timer in (self._detect_timer,):
            if timer is not None:
                self.destroy_timer(timer)
        self._detect_timer = None
        if self._image_sub is not None:
            self.destroy_subscription(self._image_sub)
            self._image_sub = None
        return self.dispatcher is None or self.dispatcher.drain(drain_s, time.sleep)

    # -- configuration ----------------------------------------------------------------------
    def _partition_heads(self, model: str, planner: Planner) -> dict:
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
            self.get_logger().info(f'split@{layer}: head {head_s * 1e3:.1f} ms, '
                                   f'{profiles[layer][1] / 1e3:.0f} kB to the tail')
        planner.set_split_points(profiles)
        return heads

    def _worker_clients(self, workers: Dict[str, str], current: Dict[str, WorkerClient]) -> dict:
        """Return a client per worker: the current one where its URL is unchanged."""
        token = os.environ.get('OFFLOAD_WORKER_TOKEN') or None
        c, options = self.config, self.config.client_options()
        return {name: current[name] if name in current and current[name].url == url.rstrip('/')
                else WorkerClient(url, c['model_name'], self.client_id, self.detector.names,
                                  options.payload, options.jpeg_quality, token,
                                  score_threshold=options.score_threshold,
                                  iou_threshold=options.iou_threshold,
                                  pool_size=c['max_inflight'],
                                  forward_jpeg=options.forward_jpeg,
                                  serial_uploads=options.serial_uploads,
                                  ca_file=c['worker_ca_file'] or None,
                                  max_detections=c['max_detections'])
                for name, url in workers.items()}

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
        old, self.config, d = self.config, pending, self.dispatcher
        for warning in pending.deprecations():
            self.get_logger().warning(warning)
        if pending['workers'] != old['workers']:
            self.directory.set_static(parse_workers(pending['workers']))
            d.set_clients(self._worker_clients(self.directory.current(), d.clients))
        for client in d.clients.values():
            client.apply(pending.client_options())
        self.detector.score_threshold = pending['score_threshold']
        self.detector.iou_threshold = pending['iou_threshold']
        self.monitor.poll_timeout_s = min(0.5, pending['epoch_s'])
        self.monitor.probe_bytes = pending['probe_bytes']
        with d.lock:
            d.settings = pending.dispatch()
            d.planner.reconfigure(pending.planner())
            if any(pending[k] != old[k] for k in ('payload', 'jpeg_quality',
                                                  'jpeg_passthrough')):
                d.planner.payload_changed()
        if pending['epoch_s'] != old['epoch_s']:
            self.destroy_timer(self._epoch_timer)
            self._epoch_timer = params.steady_timer(self, pending['epoch_s'], self._on_epoch)
        self.get_logger().info('parameters applied')

    # -- frames -----------------------------------------------------------------------------
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

    def _on_image(self, msg) -> None:
        """Hand the frame to the dispatcher; it converts it there (a bad one is an outcome)."""
        limits = self.config.image_limits()

        def convert() -> Picture:
            if isinstance(msg, Image):
                return Picture(bgr=conversions.image_to_bgr(msg, limits))
            return conversions.compressed_to_picture(msg, limits)
        self.dispatcher.submit(conversions.stamp_to_ns(msg.header.stamp), msg.header.frame_id,
                               convert, context=msg.header)

    def _on_epoch(self) -> None:
        self._apply_pending()
        if self.directory.dynamic:
            self.dispatcher.pools.io.submit(self._refresh_workers)
        self.monitor.epoch()

    def _refresh_workers(self) -> None:
        """Use the workers found now (announced, or DNS names re-resolved); on the io pool."""
        try:
            found = self.directory.refresh()
        except Exception as e:   # a resolver failure must not stop the epochs
            self.get_logger().warning(f'worker discovery: {e}')
            return
        d = self.dispatcher
        if {n: u.rstrip('/') for n, u in found.items()} != \
                {n: c.url for n, c in d.clients.items()}:
            self.get_logger().info(f'workers: {sorted(found)}')
            d.set_clients(self._worker_clients(found, d.clients))

    # -- diagnostics ------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        s = self.dispatcher.status()
        values = [KeyValue(key=k, value=str(v)) for k, v in (
            ('target', s.target), ('reason', s.reason), ('switches', s.switches),
            ('frames', sum(s.outcomes.values())), ('received', s.received),
            ('local_profiles', s.local_profiles))]
        values += [KeyValue(key=f'outcome/{t}/{k}', value=str(n))
                   for (t, k), n in sorted(s.outcomes.items())]
        values += [KeyValue(key=f'{group}/{k}', value=str(n))
                   for group, counts in (('hedge', s.hedges), ('malformed', s.malformed))
                   for k, n in sorted(counts.items())]
        values += [KeyValue(key=f'worker/{n}', value='ok' if ok else why)
                   for n, (ok, why) in s.workers.items()]
        down = [n for n, (ok, _) in s.workers.items() if not ok]
        message = f'target {s.target}'
        if down:
            message += f'; unavailable: {", ".join(down)}'
        if s.malformed:
            message += f'; {sum(s.malformed.values())} malformed images'
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if down or s.malformed else DiagnosticStatus.OK,
            name=f'{self.get_fully_qualified_name()}: offload decision',
            hardware_id=self.client_id, message=message, values=values)
        array = DiagnosticArray(status=[status, self._selfcheck_status()])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    def _selfcheck_status(self) -> DiagnosticStatus:
        """Report the model self-check: each target's predicted vs observed latency."""
        with self.dispatcher.lock:
            verdicts = self.dispatcher.planner.selfcheck.verdicts()
        off = {t: v for t, v in verdicts.items() if v.status != 'OK'}
        message = 'model within its band' if not off else '; '.join(
            f'{t} {v.status} {v.error:+.0%}' + (' (calibrated)' if v.calibrated else '')
            for t, v in sorted(off.items()))
        values = [KeyValue(key=f'{t}/{k}', value=str(x)) for t, v in sorted(verdicts.items())
                  for k, x in v.to_dict().items()]
        worst = max((v.status for v in verdicts.values()), key=CHECK_LEVELS.get, default='OK')
        return DiagnosticStatus(level=CHECK_LEVELS[worst],
                                name=f'{self.get_fully_qualified_name()}: model self-check',
                                hardware_id=self.client_id, message=message, values=values)

    def close(self) -> None:
        """Stop the timers, finish the pools' work, close the worker connections."""
        for timer in (self._diag_timer, self._epoch_timer):
            if timer is not None:
                self.destroy_timer(timer)
        self._diag_timer = self._epoch_timer = None
        if self.dispatcher is not None:
            self.dispatcher.close()
        if getattr(self, 'directory', None) is not None:
            self.directory.close()


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
        self.dispatcher = None    # configure makes a new one
        if self._outputs is not None:
            self._outputs.destroy(self)
            self.destroy_publisher(self.diag_pub)
            self._outputs = self.diag_pub = None
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
