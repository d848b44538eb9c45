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

"""Named QoS profiles, and their selection by name from parameters."""
from rclpy.duration import Duration
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

SENSOR_DATA = qos_profile_sensor_data  # images: best effort, keep last 5
RESULTS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)
COMMANDS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.RELIABLE)
# Decision records: reliable and transient-local, so a recorder that joins late (or is
# discovered late) still receives every frame's outcome.
RECORDS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)

NAMED = {'sensor_data': SENSOR_DATA, 'reliable': RESULTS,
         'best_effort': QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                                   reliability=ReliabilityPolicy.BEST_EFFORT)}


def by_name(name: str) -> QoSProfile:
    if name not in NAMED:
        raise ValueError(f'unknown QoS profile {name!r}; choose from {sorted(NAMED)}')
    return NAMED[name]


def with_deadline(profile: QoSProfile, period_s: float) -> QoSProfile:
    """Return a copy of a profile with the QoS deadline period set (for liveness events)."""
    return QoSProfile(history=profile.history, depth=profile.depth,
                      reliability=profile.reliability, durability=profile.durability,
                      deadline=Duration(nanoseconds=int(period_s * 1e9)))
