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
Delay-optimal shares of the robot's frame rate across {local, workers} (load sharing).

Minimise sum_i lam_i T_i(lam_i) subject to sum_i lam_i = lam and each target stable. Every
lam_i T_i(lam_i) is convex and increasing for the queueing models here, so the optimum equalises
the marginal cost d(lam_i T_i)/d(lam_i) = nu over the targets in use (water-filling); nu is
found by bisection. With two modes this reproduces the breakaway structure of Jeff & Modiano:
at low rates everything goes to the fastest target, beyond a load the others join.

Cost: nu is first solved on each target's marginal-cost curve sampled at 32 rates (denser
towards capacity) and interpolated, then polished by quasi-Newton steps on the exact marginal
costs, about 120 latency evaluations per target in all. Nested bisection (`exact_shares`,
kept as the reference) needs about 5000, too many for every epoch (docs/validation.md).
"""
import bisect
import math
from dataclasses import dataclass
from typing import Callable, Dict, Mapping

LatencyOfRate = Callable[[float], float]


@dataclass(frozen=True)
class ShareResult:
    rates_hz: Dict[str, float]
    fractions: Dict[str, float]
    mean_latency_s: float
    stable: bool


def _capacity_hz(latency_of: LatencyOfRate, ceiling_hz: float) -> float:
    """Largest stable rate of a target, by bisection on finiteness (below ceiling_hz)."""
    if math.isfinite(latency_of(ceiling_hz)):
        return ceiling_hz
    if not math.isfinite(latency_of(0.0)):
        return 0.0
    low, high = 0.0, ceiling_hz
    for _ in range(40):  # 2^-40 of the ceiling
        mid = 0.5 * (low + high)
        if math.isfinite(latency_of(mid)):
            low = mid
        else:
            high = mid
    return low


def _marginal_cost(latency_of: LatencyOfRate, rate_hz: float, capacity_hz: float) -> float:
    step = max(1e-9, 1e-6 * capacity_hz)
    a = max(0.0, rate_hz - step)
    b = min(capacity_hz * (1.0 - 1e-12), rate_hz + step)
    if b <= a:
        return math.inf
    cost_b = b * latency_of(b)
    cost_a = a * latency_of(a)
    return (cost_b - cost_a) / (b - a) if math.isfinite(cost_b) else math.inf


def _rate_at_marginal(latency_of: LatencyOfRate, nu: float, capacity_hz: float) -> float:
    """Return the rate at which a target's marginal cost reaches nu (0 if already above)."""
    if _marginal_cost(latency_of, 0.0, capacity_hz) >= nu:
        return 0.0
    low, high = 0.0, capacity_hz * (1.0 - 1e-9)
    for _ in range(40):
        mid = 0.5 * (low + high)
        if _marginal_cost(latency_of, mid, capacity_hz) < nu:
            low = mid
        else:
            high = mid
    return low


GRID = 32


class _Curve:
    """
    A target's marginal cost sampled from 0 towards its capacity, monotone by construction.

    And its piecewise-linear inverse.
    """

    def __init__(self, latency_of: LatencyOfRate, capacity_hz: float, points: int = GRID):
        self.latency_of, self.capacity_hz = latency_of, capacity_hz
        self.rates = [capacity_hz * (1.0 - (1.0 - k / points) ** 3) for k in range(points)]
        costs, top = [], -math.inf
        for r in self.rates:
            top = max(top, _marginal_cost(latency_of, r, capacity_hz))
            costs.append(top)
        self.costs = costs

    def rate_at(self, nu: float) -> float:
        costs, rates = self.costs, self.rates
        if not nu > costs[0]:
            return 0.0
        k = bisect.bisect_right(costs, nu) - 1
        if k >= len(costs) - 1 or not math.isfinite(costs[k + 1]):
            return rates[k]
        return rates[k] + (nu - costs[k]) * (rates[k + 1] - rates[k]) / (costs[k + 1] - costs[k])

    def slope_at(self, rate_hz: float) -> float:
        """d(marginal cost)/d(rate) of the sampled segment holding rate_hz."""
        k = min(max(bisect.bisect_right(self.rates, rate_hz) - 1, 0), len(self.rates) - 2)
        return (self.costs[k + 1] - self.costs[k]) / (self.rates[k + 1] - self.rates[k])


def _result(total_rate_hz: float, rates: Dict[str, float],
            latency_of: Mapping[str, LatencyOfRate]) -> ShareResult:
    scale = total_rate_hz / sum(rates.values())  # close the last gap exactly
    rates = {n: r * scale for n, r in rates.items()}
    mean = sum(r * latency_of[n](r) for n, r in rates.items() if r > 0) / total_rate_hz
    return ShareResult(rates, {n: r / total_rate_hz for n, r in rates.items()}, mean,
                       math.isfinite(mean))


def _check(total_rate_hz: float, latency_of: Mapping[str, LatencyOfRate]) -> Dict[str, float]:
    if not total_rate_hz > 0:
        raise ValueError(f'total_rate_hz must be > 0, got {total_rate_hz!r}')
    if not latency_of:
        raise ValueError('optimal_shares needs at least one target')
    return {name: _capacity_hz(f, total_rate_hz * 1.001) for name, f in latency_of.items()}


def _overloaded(latency_of: Mapping[str, LatencyOfRate]) -> ShareResult:
    return ShareResult({n: math.nan for n in latency_of}, {n: math.nan for n in latency_of},
                       math.inf, False)


def optimal_shares(total_rate_hz: float, latency_of: Mapping[str, LatencyOfRate]) -> ShareResult:
    """Split total_rate_hz across targets; latency_of[name](rate) is that target's T(rate)."""
    capacities = _check(total_rate_hz, latency_of)
    if sum(capacities.values()) <= total_rate_hz:
        return _overloaded(latency_of)
    curves = {n: _Curve(f, capacities[n]) for n, f in latency_of.items() if capacities[n] > 0}
    finite = [c for curve in curves.values() for c in curve.costs if math.isfinite(c)]
    if sum(curve.rates[-1] for curve in curves.values()) <= total_rate_hz or not finite:
        return exact_shares(total_rate_hz, latency_of)   # within a hair of capacity
    # nu on the sampled curves: the total rate is increasing in nu.
    low, high = min(finite), max(finite)
    for _ in range(100):
        mid = 0.5 * (low + high)
        if sum(c.rate_at(mid) for c in curves.values()) < total_rate_hz:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * high:
            break
    rates = {n: curves[n].rate_at(high) if n in curves else 0.0 for n in latency_of}
    result = _result(total_rate_hz, _polish(total_rate_hz, rates, curves), latency_of)
    return result if result.stable else exact_shares(total_rate_hz, latency_of)


def _polish(total_rate_hz: float, rates: Dict[str, float],
            curves: Mapping[str, _Curve]) -> Dict[str, float]:
    """
    Quasi-Newton steps on the exact marginal costs of the targets in use.

    With the sampled segments' slopes: equal marginal costs and the right total. The interpolated
    rates are kept if a step would leave a target's stable range or change which targets are used.
    """
    active = [n for n, r in rates.items() if r > 0]
    if not active:
        return rates
    current = dict(rates)
    for _ in range(8):
        costs = {n: _marginal_cost(curves[n].latency_of, current[n], curves[n].capacity_hz)
                 for n in active}
        slopes = {n: curves[n].slope_at(current[n]) for n in active}
        if not all(math.isfinite(v) for v in (*costs.values(), *slopes.values())) or \
                min(slopes.values()) <= 0:
            return rates
        nu = (total_rate_hz - sum(current[n] for n in active)
              + sum(costs[n] / slopes[n] for n in active)) / sum(1.0 / slopes[n] for n in active)
        step = {n: (nu - costs[n]) / slopes[n] for n in active}
        moved = {n: current[n] + step[n] for n in active}
        if any(not 0.0 < moved[n] < curves[n].capacity_hz for n in active) or any(
                curves[n].costs[0] < nu for n in curves if n not in active):
            return rates
        current.update(moved)
        if max(abs(v) for v in step.values()) <= 1e-9 * total_rate_hz:
            break
    return current


def exact_shares(total_rate_hz: float, latency_of: Mapping[str, LatencyOfRate]) -> ShareResult:
    """Return the reference: nested bisection (nu outside, each target's rate inside) to 1e-9."""
    capacities = _check(total_rate_hz, latency_of)
    if sum(capacities.values()) <= total_rate_hz:
        return _overloaded(latency_of)

    def allocate(nu: float) -> Dict[str, float]:
        return {n: _rate_at_marginal(f, nu, capacities[n]) for n, f in latency_of.items()}

    low, high = 0.0, 1.0
    while sum(allocate(high).values()) < total_rate_hz:
        high *= 2.0
        if high > 1e12:
            break
    for _ in range(60):
        mid = 0.5 * (low + high)
        total = sum(allocate(mid).values())
        if abs(total - total_rate_hz) <= 1e-9 * total_rate_hz:
            high = mid
            break
        if total < total_rate_hz:
            low = mid
        else:
            high = mid
    return _result(total_rate_hz, allocate(high), latency_of)
