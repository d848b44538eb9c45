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
An observer node for the demo and end-to-end tests.

Collects decision records, diagnostics, tracks, cmd_vel and deadline reports, and sets parameters
on other nodes.
"""
import json
import threading
import time
from typing import Dict, List

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from std_msgs.msg import String
from vision_msgs.msg import Detection2DArray

from offload_ros.core.records import DecisionRecord
from offload_ros.ros import conversions, qos, topics


class Observer(Node):
    def __init__(self, namespace: str = '', **kwargs):
        super().__init__('offload_observer', namespace=namespace or None, **kwargs)
        self.lock = threading.Lock()
        self.records: List[dict] = []
        self.diagnostics: Dict[str, dict] = {}
        self.deadline: List[dict] = []
        self.tracks: List[tuple] = []          # (receipt s, stamp s, [(id, class)])
        self.detections: List[tuple] = []      # (receipt s, stamp ns, count)
        self.cmd_vel: List[tuple] = []         # (receipt s, linear x, angular z)
        self.create_subscription(String, topics.DECISIONS, self._on_record, qos.RECORDS)
        self.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diag, 50)
        self.create_subscription(String, topics.DEADLINE, self._on_deadline, qos.RESULTS)
        self.create_subscription(Detection2DArray, topics.TRACKS, self._on_tracks, qos.RESULTS)
        self.create_subscription(Detection2DArray, topics.DETECTIONS, self._on_dets,
                                 qos.RESULTS)
        self.create_subscription(Twist, topics.CMD_VEL, self._on_cmd, qos.COMMANDS)
        self._param_clients: Dict[str, AsyncParameterClient] = {}

    def _on_record(self, msg):
        with self.lock:
            self.records.append(DecisionRecord.from_json(msg.data))

    def _on_diag(self, msg):
        with self.lock:
            for status in msg.status:
                self.diagnostics[status.name] = {
                    'level': status.level, 'message': status.message,
                    'values': {kv.key: kv.value for kv in status.values},
                    'received_s': time.monotonic()}

    def _on_deadline(self, msg):
        with self.lock:
            self.deadline.append(json.loads(msg.data))

    def _on_tracks(self, msg):
        with self.lock:
            self.tracks.append((time.monotonic(), conversions.stamp_to_s(msg.header.stamp),
                                [(d.id, d.results[0].hypothesis.class_id if d.results else '')
                                 for d in msg.detections]))

    def _on_dets(self, msg):
        with self.lock:
            self.detections.append((time.monotonic(), conversions.stamp_to_ns(msg.header.stamp),
                                    len(msg.detections)))

    def _on_cmd(self, msg):
        with self.lock:
            self.cmd_vel.append((time.monotonic(), msg.linear.x, msg.angular.z))

    def diag_value(self, name_part: str, key: str, default=None):
        with self.lock:
            for name, status in self.diagnostics.items():
                if name_part in name and key in status['values']:
                    return status['values'][key]
        return default

    def set_parameters(self, executor, node_name: str, values: dict, timeout_s: float = 15.0,
                       resend_s: float = 3.0) -> list:
        """
        Set parameters on another node and return its per-parameter results.

        Spins `executor` while it waits. DDS may drop a request sent before the service's
        endpoints have matched, so the call waits for the service and resends the same
        (idempotent) request every `resend_s` until an answer comes; raises TimeoutError after
        `timeout_s`.
        """
        if node_name not in self._param_clients:
            self._param_clients[node_name] = AsyncParameterClient(self, node_name)
        client = self._param_clients[node_name]
        params = [Parameter(k, value=v) for k, v in values.items()]
        end = time.monotonic() + timeout_s
        if not client.wait_for_services(timeout_s):
            raise TimeoutError(f'no parameter service on {node_name!r} within {timeout_s} s')
        while time.monotonic() < end:
            future = client.set_parameters(params)
            resend_at = min(end, time.monotonic() + resend_s)
            while not future.done() and time.monotonic() < resend_at:
                executor.spin_once(timeout_sec=0.05)
            if future.done() and future.result() is not None:
                return list(future.result().results)
        raise TimeoutError(f'{node_name!r} did not answer a parameter request in {timeout_s} s')
