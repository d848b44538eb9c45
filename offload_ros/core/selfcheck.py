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
The model's live self-check: per target, predicted against observed latency.

Each answered frame pairs the model's prediction for its target at decision time with the
latency observed. The error is judged as the fidelity bench judges it: the recent frames are
cut into batches of consecutive frames, each batch's error is its mean prediction over its
mean observation less one, and the mean error over the batches gets a Student-t half-width
from their spread. Pairing by batch keeps drift (a robot slowing, a link filling) out of the
error: predictions follow the estimates, so both sides of a batch move together.

A target whose error lies outside `warn_error` with its whole confidence interval (or whose
estimate is outside `error_error`) is WARN (ERROR); while it is, the decision uses a
calibrated prediction: the model's, scaled by the observed-to-predicted ratio of the recent
frames, until the model's own error is back within the band.
"""
import math
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, Mapping, Optional

from offload_ros.core.stats import mean_half_width

OK, WARN, ERROR = 'OK', 'WARN', 'ERROR'
_LEVEL = {OK: 0, WARN: 1, ERROR: 2}


@dataclass(frozen=True)
class CheckConfig:
    """Thresholds of the self-check (offload_node's selfcheck_* parameters)."""

    warn_error: float = 0.2       # |relative error| beyond which a target is WARN
    error_error: float = 0.5      # ... and ERROR
    window: int = 60              # recent answered frames per target
    batch: int = 5                # consecutive frames per batch
    min_batches: int = 4          # judged from this many batches on
    calibrate: bool = True        # use the calibrated prediction while outside the band
    # Pairs older than this are forgotten: a target the calibration drove the robot away
    # from returns to its model, and is tried (and judged) again.
    max_age_s: float = 60.0

    def __post_init__(self):
        if not 0 < self.warn_error <= self.error_error:
            raise ValueError('need 0 < warn_error <= error_error')
        if self.batch < 1 or self.min_batches < 2 or \
                self.window < self.batch * self.min_batches or not self.max_age_s > 0:
            raise ValueError('need batch >= 1, min_batches >= 2, window >= batch x '
                             'min_batches and max_age_s > 0')


@dataclass(frozen=True)
class TargetCheck:
    """One target's verdict: error = mean predicted / mean observed - 1 (negative: too fast)."""

    status: str
    frames: int
    error: Optional[float] = None
    half_width: Optional[float] = None
    ratio: Optional[float] = None         # observed / predicted over the window
    calibrated: bool = False

    def to_dict(self) -> dict:
        def rounded(value):
            return None if value is None else round(value, 4)
        return {'status': self.status, 'frames': self.frames, 'error': rounded(self.error),
                'half_width': rounded(self.half_width), 'ratio': rounded(self.ratio),
                'calibrated': self.calibrated}


class SelfCheck:
    """Rolling predicted/observed pairs per target, judged as they come and as they age."""

    def __init__(self, config: CheckConfig = CheckConfig()):
        self.config = config
        self._pairs: Dict[str, Deque[tuple]] = {}     # target -> (t_s, predicted, observed)
        self._verdicts: Dict[str, TargetCheck] = {}

    def reconfigure(self, config: CheckConfig) -> None:
        self.config = config
        for target, pairs in self._pairs.items():
            self._pairs[target] = deque(pairs, maxlen=config.window)
            self._verdicts[target] = self._judge(target)

    def observe(self, now_s: float, target: str, predicted_s: float,
                observed_s: float) -> None:
        """Pair the model's prediction for a frame's target with the frame's latency."""
        if not (math.isfinite(predicted_s) and predicted_s > 0 and math.isfinite(observed_s)
                and observed_s > 0):
            return
        pairs = self._pairs.setdefault(target, deque(maxlen=self.config.window))
        pairs.append((now_s, predicted_s, observed_s))
        self._verdicts[target] = self._judge(target)

    def age(self, now_s: float) -> None:
        """Forget pairs older than max_age_s (each epoch)."""
        for target, pairs in self._pairs.items():
            if pairs and pairs[0][0] < now_s - self.config.max_age_s:
                while pairs and pairs[0][0] < now_s - self.config.max_age_s:
                    pairs.popleft()
                self._verdicts[target] = self._judge(target)

    def verdict(self, target: str) -> TargetCheck:
        return self._verdicts.get(target) or TargetCheck(OK, 0)

    def verdicts(self) -> Mapping[str, TargetCheck]:
        return dict(self._verdicts)

    def level(self) -> str:
        """Return the worst status over the targets."""
        return max((v.status for v in self._verdicts.values()), key=_LEVEL.get, default=OK)

    def calibration(self, target: str) -> Optional[float]:
        """Return the factor to scale `target`'s prediction by, or None to use the model's."""
        verdict = self.verdict(target)
        return verdict.ratio if verdict.calibrated else None

    def _judge(self, target: str) -> TargetCheck:
        config, pairs = self.config, list(self._pairs[target])
        frames, count = len(pairs), len(pairs) // config.batch
        if count < config.min_batches:
            return TargetCheck(OK, frames)
        pairs = pairs[frames - count * config.batch:]    # whole batches, the newest kept
        errors = []
        for k in range(count):
            chunk = pairs[k * config.batch:(k + 1) * config.batch]
            errors.append(sum(p for _, p, _ in chunk) / sum(o for _, _, o in chunk) - 1.0)
        mean = sum(errors) / count
        half_width = mean_half_width(errors)
        ratio = sum(o for _, _, o in pairs) / sum(p for _, p, _ in pairs)
        if abs(mean) - half_width > config.error_error or abs(mean) > 2 * config.error_error:
            status = ERROR
        elif abs(mean) - half_width > config.warn_error:
            status = WARN
        else:
            status = OK
        return TargetCheck(status, frames, mean, half_width, ratio,
                           calibrated=config.calibrate and status != OK)
