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
Crossovers: where offloading and on-device processing trade places (Ng et al.

Figs. 4, 5b, 5c).

The difference T_offload(x) - T_local(x) is scanned over the range for sign changes, each then
refined by bisection. Infinite (unstable) latencies count as larger than any finite one.
"""
import math
from typing import Callable, List

import numpy as np

from offload_ros.core.latency import predict_local, predict_offload
from offload_ros.core.scenario import Scenario, ScenarioError

VARIABLES = ('bandwidth_bps', 'rate_hz', 'tenants')


def _sign(remote_s: float, local_s: float) -> int:
    if math.isinf(remote_s) and math.isinf(local_s):
        return 0
    if math.isinf(remote_s):
        return 1
    if math.isinf(local_s):
        return -1
    diff = remote_s - local_s
    return (diff > 0) - (diff < 0)


def find_sign_changes(sign_of: Callable[[float], int], low: float, high: float,
                      samples: int = 512, log_scale: bool = False,
                      tolerance: float = 1e-9) -> List[float]:
    """Roots of a sign function on [low, high]: grid scan, then bisection of each bracket."""
    if not low < high:
        raise ValueError(f'range must have low < high, got {low!r}, {high!r}')
    grid = np.geomspace(low, high, samples) if log_scale else np.linspace(low, high, samples)
    signs = [sign_of(float(x)) for x in grid]
    roots = []
    for i in range(len(grid) - 1):
        a, b = float(grid[i]), float(grid[i + 1])
        sa, sb = signs[i], signs[i + 1]
        if sa == 0 or sb == 0 or sa == sb:
            continue
        while b - a > tolerance * max(1.0, abs(a)):
            mid = 0.5 * (a + b)
            sm = sign_of(mid)
            if sm == 0:
                break
            if sm == sa:
                a = mid
            else:
                b = mid
        roots.append(0.5 * (a + b))
    return roots


def crossovers(scenario: Scenario, variable: str, low: float, high: float,
               worker_name: str) -> List[dict]:
    """
    Values of `variable` in [low, high] where the worker and local trade places.

    Each entry says which target is faster just above the crossover.
    """
    if variable not in VARIABLES:
        raise ScenarioError(f'--vary: must be one of {", ".join(VARIABLES)}, got {variable!r}')
    if low < 0 or (variable != 'tenants' and low <= 0):
        raise ScenarioError(f'--range: low must be > 0 for {variable}, got {low!r}')
    worker = scenario.worker(worker_name)

    def sign_of(x: float) -> int:
        s = scenario
        if variable == 'bandwidth_bps':
            s = scenario.with_bandwidth(x)
        elif variable == 'rate_hz':
            s = scenario.with_rate(x)
        else:
            s = scenario.with_tenants(x, worker.name)
        return _sign(predict_offload(s.rate_hz, s.network, s.worker(worker.name),
                                     s.arrival_scv).latency_s,
                     predict_local(s.rate_hz, s.device, s.arrival_scv).latency_s)

    roots = find_sign_changes(sign_of, low, high, log_scale=(variable == 'bandwidth_bps'))
    return [{'value': root,
             'faster_above': worker.name if sign_of(root * (1 + 1e-6) + 1e-12) < 0 else 'local'}
            for root in roots]
