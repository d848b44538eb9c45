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

"""Plain data shared by the core and the nodes (no ROS types)."""
from dataclasses import dataclass, field
from typing import Optional, Tuple


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in image pixels: top-left corner and size."""

    x: float
    y: float
    w: float
    h: float

    @property
    def center(self) -> Tuple[float, float]:
        return self.x + self.w / 2.0, self.y + self.h / 2.0

    def iou(self, other: 'Box') -> float:
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Observation:
    """A detection handed to the tracker or the controller."""

    box: Box
    class_name: str
    score: float
    track_id: Optional[str] = None


@dataclass(frozen=True)
class Outcome:
    """
    How one frame ended: 'detections', 'miss', 'drop' or 'error' (the node's own fault).

    With its target and reason.
    """

    kind: str
    target: str
    reason: str = ''
    fallback: bool = False
    extra: dict = field(default_factory=dict)
