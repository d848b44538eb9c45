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
Which image topic a camera publishes, read from the publishers on the graph.

`image_transport: auto` looks at publishers only: a subscription says nothing about what a
camera sends (the deadline monitor's own raw subscription on `image_raw` made a
compressed-only camera look raw, and no detection ever came). Nodes re-check until a
publisher appears.
"""
from typing import Optional, Tuple

from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image

from offload_ros.ros import topics

RAW_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
CHOICES = ('auto', 'raw', 'compressed')


def _published_types(node: Node, topic: str) -> set:
    return {info.topic_type for info in node.get_publishers_info_by_topic(topic)}


def choose(node: Node, mode: str) -> Optional[Tuple[str, type, str]]:
    """
    (kind, message type, relative topic) to subscribe to under `mode`.

    Or None while `auto` finds no camera publisher yet. A raw publisher wins where both are
    published (no decode); a CompressedImage published on `image_raw` itself is taken as
    compressed.
    """
    if mode == 'raw':
        return 'raw', Image, topics.IMAGE
    if mode == 'compressed':
        return 'compressed', CompressedImage, topics.IMAGE_COMPRESSED
    if mode != 'auto':
        raise ValueError(f'image_transport must be one of {CHOICES}, got {mode!r}')
    raw = _published_types(node, topics.IMAGE)
    if RAW_TYPE in raw:
        return 'raw', Image, topics.IMAGE
    if COMPRESSED_TYPE in _published_types(node, topics.IMAGE_COMPRESSED):
        return 'compressed', CompressedImage, topics.IMAGE_COMPRESSED
    if COMPRESSED_TYPE in raw:
        return 'compressed_on_raw', CompressedImage, topics.IMAGE
    return None
