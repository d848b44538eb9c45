"""Delay-optimal split of the robot's frame rate across {local, workers}.

Minimise sum_i lam_i T_i(lam_i) subject to sum_i lam_i = lam and each target stable. Every
lam_i T_i(lam_i) is convex and increasing for the queueing models here, so the optimum equalises
the marginal cost d(lam_i T_i)/d(lam_i) = nu over the targets in use (water-filling); nu is
found by bisection. With two modes this reproduces the breakaway structure of Jeff & Modiano:
at low rates everything goes to the fastest target, beyond a load the others join.
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, Mapping

LatencyOfRate = Callable[[float], float]


@dataclass(frozen=True)
class SplitResult:
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
    """The rate at which a target's marginal cost reaches nu (0 if already above)."""
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


def optimal_split(total_rate_hz: float, latency_of: Mapping[str, LatencyOfRate]) -> SplitResult:
    """Split total_rate_hz across targets; latency_of[name](rate) is that target's T(rate)."""
    if not total_rate_hz > 0:
        raise ValueError(f'total_rate_hz must be > 0, got {total_rate_hz!r}')
    if not latency_of:
        raise ValueError('optimal_split needs at least one target')
    capacities = {name: _capacity_hz(f, total_rate_hz * 1.001) for name, f in latency_of.items()}
    if sum(capacities.values()) <= total_rate_hz:
        return SplitResult({n: math.nan for n in latency_of}, {n: math.nan for n in latency_of},
                           math.inf, False)

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
    rates = allocate(high)
    scale = total_rate_hz / sum(rates.values())  # close the last bisection gap exactly
    rates = {n: r * scale for n, r in rates.items()}
    mean = sum(r * latency_of[n](r) for n, r in rates.items() if r > 0) / total_rate_hz
    return SplitResult(rates, {n: r / total_rate_hz for n, r in rates.items()}, mean,
                       math.isfinite(mean))
