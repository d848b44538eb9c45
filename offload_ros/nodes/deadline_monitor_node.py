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
deadline_monitor_node.

End-to-end latency (capture stamp -> detections arrival) against the deadline, per target, and the
liveness of the camera and detections topics.

Liveness is timed here (the time since each topic's last message), not by a requested QoS
deadline: a subscription requesting a deadline is incompatible with any publisher that
offers none (the offload node's detections, most camera drivers) and receives nothing.
"""
import json
import math
from typing import Dict, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from std_msgs.msg import String
from vision_msgs.msg import Detection2DArray

from offload_ros.core.deadline import DeadlineMonitor, DeadlineThresholds
from offload_ros.core.records import DecisionRecord, RecordError
from offload_ros.ros import conversions, params, qos, runner, topics, transport
from offload_ros.ros.params import hardware_id

SPECS = [
    params.Spec('deadline_s', 0.25, 'End-to-end deadline.', (0.001, 60.0)),
    params.Spec('window', 300, 'Frames in the sliding window.', (1, 100000), read_only=True),
    params.Spec('warn_miss_rate', 0.05, 'Miss rate for WARN.', (0.0, 1.0)),
    params.Spec('error_miss_rate', 0.2, 'Miss rate for ERROR.', (0.0, 1.0)),
    params.Spec('publish_period_s', 1.0, 'Report period.', (0.05, 60.0), read_only=True),
    params.Spec('liveness_s', 1.0, 'A watched topic silent for longer is reported.',
                (0.01, 60.0), read_only=True),
    params.Spec('image_transport', 'auto', 'Camera topic watched for liveness; auto: what '
                'the camera publishes (re-checked until it does), none: no camera watch.',
                choices=(*transport.CHOICES, 'none'), read_only=True),
    params.Spec('join_timeout_s', 2.0, 'Wait for a frame record and its detections.',
                (0.1, 60.0), read_only=True),
]

Key = Tuple[int, str]


class DeadlineMonitorNode(Node):
    NODE_NAME = 'deadline_monitor'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, **kwargs)
        self.values = params.declare(self, SPECS)
        self.monitor = self._monitor(self.values)
        self.silent: Dict[str, int] = {}
        self.pending_dets: Dict[Key, Tuple[float, float]] = {}   # key -> (latency, seen at)
        self.pending_recs: Dict[Key, Tuple[DecisionRecord, float]] = {}
        self.last_seen: Dict[str, float] = {}   # topic -> when its last message came
        self.create_subscription(Detection2DArray, topics.DETECTIONS, self.on_detections,
                                 qos.RESULTS)
        self.create_subscription(String, topics.DECISIONS, self.on_record, qos.RECORDS)
        self.watched = [topics.DETECTIONS]
        self._camera_timer = None
        if self.values['image_transport'] != 'none':
            self.watched.append(topics.IMAGE)   # the camera, silent until it is found
            self._camera_timer = params.steady_timer(self, 0.2, self._watch_camera)
            self._watch_camera()
        self.started_at_s = self._now_s()
        self.diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.json_pub = self.create_publisher(String, topics.DEADLINE, qos.RESULTS)
        params.steady_timer(self, self.values['publish_period_s'], self.publish)
        self.add_on_set_parameters_callback(self._on_set)

    def _watch_camera(self) -> None:
        """Subscribe to the camera's topic once its kind is known (auto: a publisher)."""
        chosen = transport.choose(self, self.values['image_transport'])
        if chosen is None or self._camera_timer is None:
            return
        _kind, msg_type, name = chosen
        self.create_subscription(msg_type, name, lambda _m: self._seen(name), qos.SENSOR_DATA)
        self.watched[self.watched.index(topics.IMAGE)] = name
        if name != topics.IMAGE:
            self.silent.pop(topics.IMAGE, None)
        self._camera_timer.cancel()
        self.destroy_timer(self._camera_timer)
        self._camera_timer = None

    @staticmethod
    def _monitor(v) -> DeadlineMonitor:
        return DeadlineMonitor(v['deadline_s'], v['window'],
                               DeadlineThresholds(v['warn_miss_rate'], v['error_miss_rate']))

    def _on_set(self, changes):
        from rcl_interfaces.msg import SetParametersResult
        try:
            values = params.updated(SPECS, self.values, changes)
            DeadlineThresholds(values['warn_miss_rate'], values['error_miss_rate'])
        except ValueError as e:
            return SetParametersResult(successful=False, reason=str(e))
        self.values = values
        self.monitor.deadline_s = values['deadline_s']
        self.monitor.thresholds = DeadlineThresholds(values['warn_miss_rate'],
                                                     values['error_miss_rate'])
        return SetParametersResult(successful=True)

    def _seen(self, topic: str) -> None:
        self.last_seen[topic] = self._now_s()
        self.silent.pop(topic, None)

    def _check_liveness(self) -> None:
        """
        Mark a watched topic silent once it has sent nothing for liveness_s.

        (counted in liveness periods, since its last message or since start-up).
        """
        now, period = self._now_s(), self.values['liveness_s']
        for topic in self.watched:
            quiet = now - self.last_seen.get(topic, self.started_at_s)
            if quiet > period:
                self.silent[topic] = int(quiet // period)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_detections(self, msg: Detection2DArray) -> None:
        key = (conversions.stamp_to_ns(msg.header.stamp), msg.header.frame_id)
        now = self._now_s()
        latency = now - conversions.stamp_to_s(msg.header.stamp)
        self._seen(topics.DETECTIONS)
        if key in self.pending_recs:
            record, _ = self.pending_recs.pop(key)
            self.monitor.record(record.target, latency)
        else:
            self.pending_dets[key] = (latency, now)

    def on_record(self, msg: String) -> None:
        try:
            record = DecisionRecord.from_json(msg.data)
        except RecordError as e:   # another writer's, or a newer schema: named, not fatal
            self.get_logger().warning(f'{topics.DECISIONS}: {e}', throttle_duration_sec=5.0)
            return
        key = (record.stamp_ns, record.frame_id)
        if not record.detected:
            self.monitor.record(record.target, math.inf)  # lost frames are misses
            return
        match = self.pending_dets.pop(key, None)
        if match is not None:
            self.monitor.record(record.target, match[0])
        else:
            self.pending_recs[key] = (record, self._now_s())

    def _expire(self) -> None:
        now = self._now_s()
        limit = self.values['join_timeout_s']
        for key, (latency, seen) in list(self.pending_dets.items()):
            if now - seen > limit:  # detections without a record (no offload_node records)
                del self.pending_dets[key]
                self.monitor.record('unknown', latency)
        for key, (record, seen) in list(self.pending_recs.items()):
            if now - seen > limit:  # recorded as detections but never arrived here
                del self.pending_recs[key]
                self.monitor.record(record.target, math.inf)

    def publish(self) -> None:
        self._expire()
        self._check_liveness()
        summary = self.monitor.summary()
        summary['silent_topics'] = dict(self.silent)
        self.json_pub.publish(String(data=json.dumps(summary)))
        level = {'OK': DiagnosticStatus.OK, 'WARN': DiagnosticStatus.WARN,
                 'ERROR': DiagnosticStatus.ERROR}[summary['level']]
        message = (f"miss rate {summary['miss_rate']:.1%} over {summary['frames']} frames, "
                   f"deadline {summary['deadline_s'] * 1e3:.0f} ms")
        if self.silent:
            level = max(level, DiagnosticStatus.WARN)
            message += f"; silent: {', '.join(sorted(self.silent))}"

        def fmt(v):
            return 'none' if v is None else f'{v:.4f}'
        values = [KeyValue(key=k, value=fmt(summary[k]))
                  for k in ('miss_rate', 'p50_s', 'p95_s', 'p99_s', 'mean_s')]
        values += [KeyValue(key='frames', value=str(summary['frames'])),
                   KeyValue(key='total_misses', value=str(summary['total_misses']))]
        for target, stats in summary['per_target'].items():
            values += [KeyValue(key=f'{target}/miss_rate', value=fmt(stats['miss_rate'])),
                       KeyValue(key=f'{target}/p95_s', value=fmt(stats['p95_s']))]
        # diagnostic_updater's naming ('<node>: <task>'), with the namespace, and the robot
        # as hardware id: two robots on one /diagnostics are told apart.
        status = DiagnosticStatus(level=level,
                                  name=f'{self.get_fully_qualified_name()}: deadline',
                                  hardware_id=hardware_id(self), message=message,
                                  values=values)
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)


def main(args=None) -> int:
    return runner.run(DeadlineMonitorNode, args)
