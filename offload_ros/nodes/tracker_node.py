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

"""tracker_node: detections -> tracks with stable ids (IoU + constant-velocity Kalman)."""
from rclpy.node import Node
from vision_msgs.msg import Detection2DArray

from offload_ros.core.tracker import Tracker, TrackerConfig
from offload_ros.ros import conversions, params, qos, runner, topics

SPECS = [
    params.Spec('iou_threshold', 0.3, 'Minimum IoU to associate a detection to a track.',
                (0.01, 0.99), read_only=True),
    params.Spec('min_hits', 2, 'Updates before a track is published (birth).', (1, 100),
                read_only=True),
    params.Spec('max_age_s', 1.0, 'Time without update before a track dies.', (0.01, 60.0),
                read_only=True),
    params.Spec('classes', ['person'], 'Classes to track (empty: all).', string_array=True,
                read_only=True),
]


class TrackerNode(Node):
    NODE_NAME = 'tracker'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, **kwargs)
        v = params.declare(self, SPECS)
        self.classes = set(v['classes'])
        self.tracker = Tracker(TrackerConfig(v['iou_threshold'], v['min_hits'],
                                             v['max_age_s']))
        self.pub = self.create_publisher(Detection2DArray, topics.TRACKS, qos.RESULTS)
        self.sub = self.create_subscription(Detection2DArray, topics.DETECTIONS,
                                            self.on_detections, qos.RESULTS)
        self._last_stamp_s = None

    def on_detections(self, msg: Detection2DArray) -> None:
        t_s = conversions.stamp_to_s(msg.header.stamp)
        if self._last_stamp_s is not None and t_s < self._last_stamp_s:
            # Results can arrive out of order when targets differ in latency; a stale frame
            # must not rewind the filters.
            return
        self._last_stamp_s = t_s
        observations = [o for o in conversions.msg_to_observations(msg)
                        if not self.classes or o.class_name in self.classes]
        tracks = self.tracker.update(observations, t_s)
        self.pub.publish(conversions.observations_to_msg(tracks, msg.header))


def main(args=None) -> int:
    return runner.run(TrackerNode, args)
