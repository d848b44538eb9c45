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
Deadline hedging: the probability that a remote frame misses its deadline.

And the latest moment the robot can still start it locally and finish in time.

Tail model: the waiting part of an offloaded frame (uplink wait and transfer, worker queue,
downlink wait) is taken as exponential with the predicted mean, as an M/M/1 sojourn is,
on top of a fixed part (service, overhead, ingress, downlink transfer):
    P(T > d) = exp(-(d - fixed) / waiting)   for d > fixed, else 1.
Online correction by observed quantiles: where recent frames on the target are known, the
waiting mean is raised (never lowered) so the model's 90th percentile is at least the
observed one; a heavier real tail (a stalling worker, TCP retransmissions) then shows.
"""
import math
from typing import Sequence

from offload_ros.core.latency import Prediction

WAITING_TERMS = ('uplink_wait_s', 'uplink_transfer_s', 'queue_wait_s', 'downlink_wait_s')
MIN_OBSERVATIONS = 20


def miss_probability(prediction: Prediction, deadline_s: float,
                     observed_s: Sequence[float] = ()) -> float:
    """P(latency > deadline_s) for a remote prediction (1 where it is unstable)."""
    if not prediction.stable:
        return 1.0
    waiting = sum(prediction.terms.get(k, 0.0) for k in WAITING_TERMS)
    fixed = prediction.latency_s - waiting
    if len(observed_s) >= MIN_OBSERVATIONS:
        ordered = sorted(observed_s)
        q90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        if math.isinf(q90):
            return 1.0
        waiting = max(waiting, (q90 - fixed) / math.log(10.0))
    if deadline_s <= fixed:
        return 1.0
    if waiting <= 0.0:
        return 0.0
    return math.exp(-(deadline_s - fixed) / waiting)


def latest_local_start_s(capture_s: float, deadline_s: float, local: Prediction,
                         guard: float = 0.25) -> float:
    """
    Return the latest time a local run can start and still meet the deadline.

    Its predicted latency plus a guard fraction before the deadline (starting at deadline minus the
    mean would miss about half the time).
    """
    return capture_s + deadline_s - (1.0 + guard) * local.latency_s


def quantile_s(prediction: Prediction, q: float) -> float:
    """
    Return the latency a prediction puts q of the frames within (miss_probability's tail).

    The fixed part plus an exponential tail of the waiting terms: P(T > x) = exp(-(x -
    fixed) / waiting).
    """
    if not prediction.stable:
        return math.inf
    waiting = sum(prediction.terms.get(k, 0.0) for k in WAITING_TERMS)
    fixed = prediction.latency_s - waiting
    return fixed + waiting * math.log(1.0 / (1.0 - q))
