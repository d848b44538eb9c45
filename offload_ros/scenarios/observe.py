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
A live feed of a run for the scenario harness.

Runs inside the robot's namespace and prints one JSON line per decision record and per offload
diagnostics update. It also takes commands on stdin, one JSON line each: {"node": "camera",
"params": {"rate_hz": 5.0}} sets parameters (answered by a {"kind": "param", ...} line).
"""
import json
import signal
import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from std_msgs.msg import String

from offload_ros.ros import qos, topics


def _set(client, values: dict, timeout_s: float = 15.0, resend_s: float = 3.0) -> dict:
    """
    Set parameters from the command thread while the main thread spins; the outcome as a dict.

    DDS may drop a request sent before the service's endpoints have matched: wait for the
    service, then resend the same (idempotent) request every `resend_s` until it is answered.
    """
    end = time.monotonic() + timeout_s
    if not client.wait_for_services(timeout_s):
        return {'ok': False, 'reasons': [f'no parameter service within {timeout_s} s']}
    params = [Parameter(k, value=v) for k, v in values.items()]
    while time.monotonic() < end:
        future = client.set_parameters(params)
        resend_at = min(end, time.monotonic() + resend_s)
        while not future.done() and time.monotonic() < resend_at:
            time.sleep(0.02)
        if future.done() and future.result() is not None:
            results = future.result().results
            return {'ok': all(r.successful for r in results),
                    'reasons': [r.reason for r in results]}
    return {'ok': False, 'reasons': [f'no answer within {timeout_s} s']}


def main() -> int:
    rclpy.init()
    node = rclpy.create_node('scenario_observer')

    def emit(kind, payload):
        sys.stdout.write(json.dumps({'kind': kind, **payload}) + '\n')
        sys.stdout.flush()
    node.create_subscription(String, topics.DECISIONS,
                             lambda m: emit('record', {'record': json.loads(m.data)}),
                             qos.RECORDS)

    def on_diag(msg):
        for status in msg.status:
            if 'offload decision' in status.name:
                values = {kv.key: kv.value for kv in status.values}
                emit('received', {'n': int(values.get('received', 0))})
    node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, on_diag, 50)
    clients = {}

    def commands():
        for line in sys.stdin:
            try:
                command = json.loads(line)
                name, values = command['node'], dict(command['params'])
            except (ValueError, KeyError, TypeError) as e:
                emit('param', {'ok': False, 'error': f'bad command {line.strip()!r}: {e}'})
                continue
            client = clients.setdefault(name, AsyncParameterClient(node, name))
            emit('param', {'node': name, 'params': values, **_set(client, values)})
    threading.Thread(target=commands, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
