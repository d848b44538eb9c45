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

"""Typestore, QoS and type lookup shared by the bag tools."""
import importlib
import os
import pathlib
from typing import Optional

from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability,
                                QosTime)
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
INFINITE = QosTime(sec=2147483647, nsec=4294967295)


class BagError(ValueError):
    """A bag or an argument the bag tools cannot use; the message says why."""


def typestore():
    """Return the Kilted typestore plus vision_msgs, registered from its .msg files."""
    store = get_typestore(Stores.ROS2_KILTED)
    share = find_share('vision_msgs')
    if share is not None:
        types = {}
        for path in sorted((share / 'msg').glob('*.msg')):
            types.update(get_types_from_msg(path.read_text(), f'vision_msgs/msg/{path.stem}'))
        store.register(types)
    return store


def find_share(package: str) -> Optional[pathlib.Path]:
    prefixes = os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
    import sys
    prefixes.append(str(pathlib.Path(sys.executable).parents[1]))  # the venv prefix
    for prefix in filter(None, prefixes):
        share = pathlib.Path(prefix) / 'share' / package
        if (share / 'msg').is_dir():
            return share
    return None


def sensor_qos() -> Qos:
    return Qos(history=QosHistory.KEEP_LAST, depth=5, reliability=QosReliability.BEST_EFFORT,
               durability=QosDurability.VOLATILE, deadline=INFINITE, lifespan=INFINITE,
               liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=INFINITE,
               avoid_ros_namespace_conventions=False)


def qos_of(profile) -> Qos:
    """
    Return a publisher's offered QoS.

    (an rclpy QoSProfile, from get_publishers_info_by_topic) as the bag's metadata holds it, so a
    replay offers what the recorded publisher offered.
    """
    def duration(value) -> QosTime:
        ns = value.nanoseconds
        if ns >= INFINITE.sec * 10 ** 9:
            return INFINITE
        return QosTime(sec=ns // 10 ** 9, nsec=ns % 10 ** 9)
    return Qos(history=QosHistory(int(profile.history)), depth=int(profile.depth),
               reliability=QosReliability(int(profile.reliability)),
               durability=QosDurability(int(profile.durability)),
               deadline=duration(profile.deadline), lifespan=duration(profile.lifespan),
               liveliness=QosLiveliness(int(profile.liveliness)),
               liveliness_lease_duration=duration(profile.liveliness_lease_duration),
               avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions))


def reliable_qos(transient_local: bool = False) -> Qos:
    return Qos(history=QosHistory.KEEP_LAST, depth=1000 if transient_local else 10,
               reliability=QosReliability.RELIABLE,
               durability=QosDurability.TRANSIENT_LOCAL if transient_local
               else QosDurability.VOLATILE,
               deadline=INFINITE, lifespan=INFINITE, liveliness=QosLiveliness.AUTOMATIC,
               liveliness_lease_duration=INFINITE, avoid_ros_namespace_conventions=False)


def ros_type(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class."""
    package, kind, name = msgtype.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.{kind}'), name)
    except (ImportError, AttributeError) as e:
        raise BagError(f'message type {msgtype} is not installed') from e
