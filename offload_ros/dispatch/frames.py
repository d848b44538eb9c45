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

"""A frame in flight, its hedge, and the settings a dispatcher runs under."""
import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from offload_ros.core.latency import Prediction
from offload_ros.core.policy import LOCAL
from offload_ros.core.records import Estimates
from offload_ros.dispatch.clock import Cancellable
from offload_ros.inference.picture import Picture


@dataclass(frozen=True)
class DispatchSettings:
    """The node's parameters that govern a frame's path (offload_node's of the same name)."""

    deadline_s: float = 0.25
    hedge_miss_probability: float = 0.0
    request_timeout_s: float = 0.5
    max_local_queue: int = 8
    drop_late: bool = True


@dataclass
class Hedge:
    """A frame raced on the robot and a worker: the first answer within the deadline wins."""

    miss_probability: float
    start_at_s: float                 # latest safe local start (clock of record, seconds)
    request_id: str = ''
    timer: Optional[Cancellable] = None
    local_started: bool = False


@dataclass
class Frame:
    seq: int
    stamp_ns: int                     # capture stamp (clock of record)
    frame_id: str
    deadline_at_s: float
    picture: Optional[Picture] = None  # pixels, or a received JPEG decoded on first use
    context: Any = None               # the caller's (the ROS header), handed back on publish
    target: str = LOCAL
    decision_reason: str = 'malformed'
    predictions: Dict[str, Prediction] = dataclasses.field(default_factory=dict)
    decided_at_ns: int = 0
    estimates: Optional[Estimates] = None
    energy: Optional[dict] = None
    selfcheck: Optional[dict] = None      # the model self-check's verdicts at decision
    hedge: Optional[Hedge] = None
    received_mono: float = 0.0        # monotonic: receipt, hand-over to a pool, pool start
    submitted_mono: float = 0.0
    started_mono: float = 0.0
    core_done_mono: float = 0.0       # the detector or the worker call returned
    ingress_s: Optional[float] = None  # capture stamp -> receipt here

    @property
    def capture_s(self) -> float:
        return self.stamp_ns * 1e-9

    @property
    def image(self) -> np.ndarray:
        """Return the pixels (a received JPEG is decoded here, once; BadImage if it does not)."""
        return self.picture.bgr


@dataclass(frozen=True)
class Result:
    """What ran a frame, for its record: times in seconds, None where not measured."""

    detections: Any = None
    service_s: Optional[float] = None
    round_trip_s: Optional[float] = None
    head_s: Optional[float] = None
    server_s: Optional[float] = None
    server_queue_s: Optional[float] = None

    @property
    def core_s(self) -> Optional[float]:
        """Return the detector's time, or the worker round trip with any head on the robot."""
        if self.round_trip_s is None:
            return self.service_s
        return self.round_trip_s + (self.head_s or 0.0)
