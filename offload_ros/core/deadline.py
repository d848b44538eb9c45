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

"""Deadline accounting: per-frame latency against a deadline over a sliding window."""
import collections
import math
from dataclasses import dataclass
from typing import Deque, Dict, Optional, Tuple

import numpy as np


def request_timeout_s(budget_s: float, limit_s: float, fallback_s: float) -> float:
    """
    How long to wait for a worker's answer to a frame with budget_s left before its deadline.

    limit_s (the request_timeout_s parameter) bounds a request so that the robot can still run the
    frame itself (fallback_s, its predicted latency there) in time; where a fallback after limit_s
    could not meet the deadline anyway, cutting the request there only turns a late answer into a
    certain miss, so the worker gets the whole budget (the rate crossover scenario, CHANGELOG,
    session 10).
    """
    if budget_s - limit_s >= fallback_s:
        return limit_s
    return max(budget_s, 0.0)


@dataclass(frozen=True)
class DeadlineThresholds:
    warn_miss_rate: float = 0.05
    error_miss_rate: float = 0.2

    def __post_init__(self):
        if not 0 <= self.warn_miss_rate <= self.error_miss_rate <= 1:
            raise ValueError('need 0 <= warn_miss_rate <= error_miss_rate <= 1')


class DeadlineMonitor:
    """Sliding window (by count) of (target, latency_s or inf for lost frames)."""

    def __init__(self, deadline_s: float, window: int = 300,
                 thresholds: DeadlineThresholds = DeadlineThresholds()):
        if not deadline_s > 0:
            raise ValueError(f'deadline_s must be > 0, got {deadline_s!r}')
        self.deadline_s = deadline_s
        self.thresholds = thresholds
        self._window: Deque[Tuple[str, float]] = collections.deque(maxlen=window)
        self.total = 0
        self.total_misses = 0

    def record(self, target: str, latency_s: float) -> bool:
        """
        Record one frame; latency inf means it produced no detections.

        Returns missed.
        """
        missed = not latency_s <= self.deadline_s
        self._window.append((target, latency_s))
        self.total += 1
        self.total_misses += missed
        return missed

    @staticmethod
    def _stats(latencies) -> dict:
        finite = np.array([v for v in latencies if math.isfinite(v)])
        out = {'frames': len(latencies)}
        for name, q in (('p50_s', 50), ('p95_s', 95), ('p99_s', 99)):
            out[name] = float(np.percentile(finite, q)) if finite.size else None
        out['mean_s'] = float(finite.mean()) if finite.size else None
        return out

    def summary(self) -> dict:
        latencies = [v for _, v in self._window]
        misses = sum(1 for v in latencies if not v <= self.deadline_s)
        per_target: Dict[str, list] = collections.defaultdict(list)
        for target, v in self._window:
            per_target[target].append(v)
        result = self._stats(latencies)
        result['miss_rate'] = misses / len(latencies) if latencies else 0.0
        result['deadline_s'] = self.deadline_s
        result['total_frames'] = self.total
        result['total_misses'] = self.total_misses
        result['per_target'] = {
            t: {**self._stats(v), 'miss_rate': sum(1 for x in v if not x <= self.deadline_s)
                / len(v)} for t, v in per_target.items()}
        result['level'] = self.level(result['miss_rate'])
        return result

    def level(self, miss_rate: Optional[float]) -> str:
        if miss_rate is None or miss_rate < self.thresholds.warn_miss_rate:
            return 'OK'
        return 'WARN' if miss_rate < self.thresholds.error_miss_rate else 'ERROR'
