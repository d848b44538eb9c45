"""A live feed of a run for the scenario harness: runs inside the robot's namespace and prints
one JSON line per decision record and per offload diagnostics update."""
import json
import signal
import sys

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from std_msgs.msg import String

from offload_ros.nodes import qos, topics


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
