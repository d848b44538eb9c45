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

"""controller_node: follow a person track on cmd_vel, with a safety stop on stale tracks."""
import math

from geometry_msgs.msg import Twist, TwistStamped
from rclpy.node import Node
from vision_msgs.msg import Detection2DArray

from offload_ros.core.control import ControllerConfig, command, select_target
from offload_ros.ros import conversions, params, qos, runner, topics

SPECS = [
    params.Spec('image_width_px', 640.0, 'Camera image width.', (1.0, 10000.0)),
    params.Spec('image_height_px', 480.0, 'Camera image height.', (1.0, 10000.0)),
    params.Spec('target_class', 'person', 'Class to follow.'),
    params.Spec('k_angular', 1.2, 'rad/s per normalised horizontal offset.', (0.0, 20.0)),
    params.Spec('k_linear', 1.5, 'm/s per unit of box-height error.', (0.0, 20.0)),
    params.Spec('desired_height_fraction', 0.6, 'Box height / image height to keep.',
                (0.01, 1.0)),
    params.Spec('max_angular_rad_s', 1.0, 'Angular saturation.', (0.01, 10.0)),
    params.Spec('max_linear_m_s', 0.22, 'Linear saturation.', (0.01, 5.0)),
    params.Spec('stale_after_s', 0.5, 'Stop when the newest track is older.', (0.01, 10.0)),
    params.Spec('rate_hz', 20.0, 'Command rate.', (1.0, 200.0), read_only=True),
    params.Spec('stamped', False, 'Publish TwistStamped instead of Twist.', read_only=True),
]


class ControllerNode(Node):
    NODE_NAME = 'controller'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, **kwargs)
        self.values = params.declare(self, SPECS)
        self.config = self._config(self.values)
        self.stamped = self.values['stamped']
        self.pub = self.create_publisher(TwistStamped if self.stamped else Twist,
                                         topics.CMD_VEL, qos.COMMANDS)
        self.sub = self.create_subscription(Detection2DArray, topics.TRACKS, self.on_tracks,
                                            qos.RESULTS)
        self.tracks = []
        self.received_s = -math.inf
        self.current_id = None
        self.state = 'stop: no target visible'
        self.create_timer(1.0 / self.values['rate_hz'], self.on_timer)
        self.add_on_set_parameters_callback(self._on_set)

    @staticmethod
    def _config(v) -> ControllerConfig:
        keys = [f.name for f in ControllerConfig.__dataclass_fields__.values()]
        return ControllerConfig(**{k: v[k] for k in keys if k in v})

    def _on_set(self, changes):
        from rcl_interfaces.msg import SetParametersResult
        try:
            values = params.updated(SPECS, self.values, changes)
            config = self._config(values)
        except ValueError as e:
            return SetParametersResult(successful=False, reason=str(e))
        self.values, self.config = values, config
        return SetParametersResult(successful=True)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_tracks(self, msg: Detection2DArray) -> None:
        self.tracks = conversions.msg_to_observations(msg)
        # Age counts from the capture stamp: a track describes the world at capture time.
        self.received_s = conversions.stamp_to_s(msg.header.stamp)

    def on_timer(self) -> None:
        target = select_target(self.tracks, self.config, self.current_id)
        self.current_id = target.track_id if target else None
        linear, angular, self.state = command(target, self._now_s() - self.received_s,
                                              self.config)
        twist = Twist()
        twist.linear.x, twist.angular.z = linear, angular
        if self.stamped:
            msg = TwistStamped(twist=twist)
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.header.frame_id = 'base_link'
            self.pub.publish(msg)
        else:
            self.pub.publish(twist)


def main(args=None) -> int:
    return runner.run(ControllerNode, args)
