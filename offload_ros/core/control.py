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
Person-following control law: turn towards the target, keep a distance by box height.

angular_z = -k_angular * (offset of the box centre from the image centre, in [-1, 1])
linear_x  =  k_linear  * (desired box height fraction - observed height fraction)
both saturated; zero (safety stop) when no target or the newest track is stale.
"""
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from offload_ros.core.types import Observation


@dataclass(frozen=True)
class ControllerConfig:
    image_width_px: float = 640.0
    image_height_px: float = 480.0
    target_class: str = 'person'
    k_angular: float = 1.2              # rad/s per unit of normalised offset
    k_linear: float = 1.5               # m/s per unit of height-fraction error
    desired_height_fraction: float = 0.6
    max_angular_rad_s: float = 1.0
    max_linear_m_s: float = 0.22        # TurtleBot3 Burger limit
    deadband: float = 0.05
    stale_after_s: float = 0.5

    def __post_init__(self):
        for name in ('image_width_px', 'image_height_px', 'max_angular_rad_s',
                     'max_linear_m_s', 'stale_after_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)!r}')
        if not 0 < self.desired_height_fraction <= 1:
            raise ValueError('desired_height_fraction must be in (0, 1]')


def _clamp(value: float, limit: float) -> float:
    return max(-limit, min(limit, value))


def select_target(tracks: Sequence[Observation], config: ControllerConfig,
                  current_id: Optional[str]) -> Optional[Observation]:
    """Keep following the current track id if visible; else the largest box of the class."""
    candidates = [t for t in tracks if t.class_name == config.target_class]
    if not candidates:
        return None
    for t in candidates:
        if current_id is not None and t.track_id == current_id:
            return t
    return max(candidates, key=lambda t: t.box.w * t.box.h)


def command(target: Optional[Observation], track_age_s: float,
            config: ControllerConfig) -> Tuple[float, float, str]:
    """(linear_x m/s, angular_z rad/s, state) for a target seen track_age_s ago."""
    if target is None:
        return 0.0, 0.0, 'stop: no target visible'
    if not math.isfinite(track_age_s) or track_age_s > config.stale_after_s:
        return 0.0, 0.0, f'stop: newest track {track_age_s:.2f} s old'
    cx, _ = target.box.center
    offset = (cx - config.image_width_px / 2.0) / (config.image_width_px / 2.0)
    height_error = config.desired_height_fraction - target.box.h / config.image_height_px
    angular = 0.0 if abs(offset) < config.deadband else -config.k_angular * offset
    linear = 0.0 if abs(height_error) < config.deadband else config.k_linear * height_error
    return (_clamp(linear, config.max_linear_m_s), _clamp(angular, config.max_angular_rad_s),
            f'following {target.track_id}')
