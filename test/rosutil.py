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
Helpers for node tests.

Spin nodes of a private context in a thread, wait on conditions, a probe node that feeds and
collects topics, an offload node with test settings.
"""
import contextlib
import threading
import time

from geometry_msgs.msg import Twist
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, String
from vision_msgs.msg import Detection2DArray

from offload_ros.core.records import DecisionRecord
from offload_ros.nodes.offload_node import OffloadNode
from offload_ros.ros import qos, topics


@contextlib.contextmanager
def spinning(context, *nodes):
    """
    Spin nodes in a background SingleThreadedExecutor.

    Shut down and join on exit (an executor still spinning at interpreter exit aborts it with code
    134).
    """
    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield executor
    finally:
        executor.shutdown(timeout_sec=5)
        thread.join(10)
        for node in nodes:
            close = getattr(node, 'close', None)
            if close:
                close()
            node.destroy_node()


def wait_until(predicate, timeout_s=20.0, step_s=0.02):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step_s)
    return bool(predicate())


class Probe(Node):
    """Test peer: publishes images or tracks, collects what the node under test publishes."""

    def __init__(self, context):
        super().__init__('probe', context=context)
        self.image_pub = self.create_publisher(Image, topics.IMAGE, qos.SENSOR_DATA)
        self.comp_pub = self.create_publisher(CompressedImage, topics.IMAGE_COMPRESSED,
                                              qos.SENSOR_DATA)
        self.tracks_pub = self.create_publisher(Detection2DArray, topics.TRACKS, qos.RESULTS)
        self.dets_pub = self.create_publisher(Detection2DArray, topics.DETECTIONS, qos.RESULTS)
        self.detections, self.records, self.tracks, self.cmd = [], [], [], []
        self.create_subscription(Detection2DArray, topics.DETECTIONS,
                                 self.detections.append, qos.RESULTS)
        self.create_subscription(Detection2DArray, topics.TRACKS, self.tracks.append,
                                 qos.RESULTS)
        self.create_subscription(String, topics.DECISIONS,
                                 lambda m: self.records.append(DecisionRecord.from_json(m.data)),
                                 qos.RECORDS)
        self.create_subscription(Twist, topics.CMD_VEL, self.cmd.append, qos.COMMANDS)


def offload_node(context, **overrides):
    values = {'epoch_s': 0.2, 'deadline_s': 5.0, 'detector_threads': 1, **overrides}
    return OffloadNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in values.items()])


def header(node, i):
    return Header(stamp=node.get_clock().now().to_msg(), frame_id=f'cam{i}')
