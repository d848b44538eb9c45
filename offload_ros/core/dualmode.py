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
Dual-mode offloading analysis after Jeff & Modiano.

'Delay Optimization in a Simple Offloading System' (2025).

Jobs pass a local server then a cloud server, each an M/M/1 queue. Service mode i does a
fraction f_i of a job's work locally and 1 - f_i in the cloud (mode 1 cloud-heavy: f1 < f2).
Canonical form: local capacity mu0, cloud capacity K*mu0. Each server splits its capacity
between the two modes (alpha, beta: shares given to mode 1), and a fraction p of jobs uses
mode 1. Mode i's local queue then serves at alpha_i*mu0/f_i, its cloud queue at
beta_i*K*mu0/(1 - f_i).
"""
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DualModeSystem:
    mu0: float
    K: float
    f1: float
    f2: float

    def __post_init__(self):
        if not self.mu0 > 0:
            raise ValueError(f'mu0 must be > 0, got {self.mu0!r}')
        if not self.K > 0:
            raise ValueError(f'K must be > 0, got {self.K!r}')
        if not 0.0 < self.f1 < self.f2 < 1.0:
            raise ValueError(f'need 0 < f1 < f2 < 1, got f1={self.f1!r}, f2={self.f2!r}')

    @classmethod
    def canonical(cls, local_rate_hz: float, cloud_rate_hz: float, f1: float,
                  f2: float) -> 'DualModeSystem':
        """Canonical transform: mu0 = local capacity, K = cloud / local capacity."""
        return cls(local_rate_hz, cloud_rate_hz / local_rate_hz, f1, f2)

    @property
    def mu_l1(self) -> float:
        """Throughput with every job in mode 1, limited by the local server."""
        return self.mu0 / self.f1

    @property
    def mu_c2(self) -> float:
        """Throughput with every job in mode 2, limited by the cloud server."""
        return self.K * self.mu0 / (1.0 - self.f2)

    @property
    def lambda_max(self) -> float:
        """Stability region: lam < min(mu_l1, mu_c2, (K+1)*mu0)."""
        return min(self.mu_l1, self.mu_c2, (self.K + 1.0) * self.mu0)

    @property
    def rho_max(self) -> float:
        """Maximum stable load as a share of the total capacity (K+1)*mu0."""
        return self.lambda_max / ((self.K + 1.0) * self.mu0)

    def load_to_rate(self, rho: float) -> float:
        return rho * (self.K + 1.0) * self.mu0

    # Tunable-mode benchmark: every job may use any local fraction f.
    def tunable_fraction(self, arrival_rate_hz: float) -> float:
        """
        f*(lam) minimising f/(mu0 - lam f) + (1-f)/(K mu0 - lam (1-f)); clipped to [0, 1].

        Setting the derivative to zero gives K mu0 - lam(1-f) = sqrt(K)(mu0 - lam f).
        """
        root_k = math.sqrt(self.K)
        f = (arrival_rate_hz - self.mu0 * root_k * (root_k - 1.0)) / (
            arrival_rate_hz * (1.0 + root_k))
        return min(1.0, max(0.0, f))

    def tunable_delay_s(self, arrival_rate_hz: float, fraction: float) -> float:
        local_rate = self.mu0 - arrival_rate_hz * fraction
        cloud_rate = self.K * self.mu0 - arrival_rate_hz * (1.0 - fraction)
        if local_rate <= 0 or cloud_rate <= 0:
            return math.inf
        return fraction / local_rate + (1.0 - fraction) / cloud_rate

    def touch_points(self) -> dict:
        """Return loads rho where the tunable optimum f*(lam) equals f1 and f2 (None: never)."""
        root_k = math.sqrt(self.K)
        result = {}
        for name, f in (('f1', self.f1), ('f2', self.f2)):
            denominator = 1.0 - f * (1.0 + root_k)
            rate = self.mu0 * root_k * (root_k - 1.0) / denominator if denominator > 0 else -1
            rho = rate / ((self.K + 1.0) * self.mu0)
            result[name] = rho if 0.0 < rho < 1.0 else None
        return result


@dataclass(frozen=True)
class Partition:
    """Optimal capacity split for a given assignment p, and the resulting mean delay."""

    p: float
    alpha: float
    beta: float
    delay_s: float


def _split_server(rates_hz, capacities_hz):
    """
    Kleinrock's square-root rule for M/M/1 queues sharing one server's capacity.

    Share x_j = lam_j/C_j + sqrt(lam_j/C_j) (1-U)/S with U = sum lam_j/C_j,
    S = sum sqrt(lam_j/C_j); the rate-weighted mean sojourn is S^2 / ((1-U) lam).
    """
    utilisation = sum(r / c for r, c in zip(rates_hz, capacities_hz))
    if utilisation >= 1.0:
        return None, math.inf
    root_sum = sum(math.sqrt(r / c) for r, c in zip(rates_hz, capacities_hz))
    shares = [r / c + math.sqrt(r / c) * (1.0 - utilisation) / root_sum if root_sum else 0.0
              for r, c in zip(rates_hz, capacities_hz)]
    total_hz = sum(rates_hz)
    return shares, root_sum ** 2 / ((1.0 - utilisation) * total_hz)


def optimal_partition(system: DualModeSystem, arrival_rate_hz: float, p: float) -> Partition:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f'p must be in [0, 1], got {p!r}')
    if not arrival_rate_hz > 0:
        raise ValueError(f'arrival_rate_hz must be > 0, got {arrival_rate_hz!r}')
    rates = (p * arrival_rate_hz, (1.0 - p) * arrival_rate_hz)
    local_shares, local_delay = _split_server(
        rates, (system.mu0 / system.f1, system.mu0 / system.f2))
    cloud_shares, cloud_delay = _split_server(
        rates, (system.K * system.mu0 / (1.0 - system.f1),
                system.K * system.mu0 / (1.0 - system.f2)))
    if local_shares is None or cloud_shares is None:
        return Partition(p, math.nan, math.nan, math.inf)
    return Partition(p, local_shares[0], cloud_shares[0], local_delay + cloud_delay)


def optimal_assignment(system: DualModeSystem, arrival_rate_hz: float,
                       grid_points: int = 2001) -> Partition:
    """p*(lam) by numeric minimisation: a global grid (the optimum can jump), then refinement."""
    grid = np.linspace(0.0, 1.0, grid_points)
    delays = [optimal_partition(system, arrival_rate_hz, float(p)).delay_s for p in grid]
    best = int(np.argmin(delays))
    if math.isinf(delays[best]):
        return Partition(math.nan, math.nan, math.nan, math.inf)
    low, high = float(grid[max(0, best - 1)]), float(grid[min(grid_points - 1, best + 1)])
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(60):  # golden-section search inside the bracketing cells
        a = high - golden * (high - low)
        b = low + golden * (high - low)
        if optimal_partition(system, arrival_rate_hz, a).delay_s <= \
                optimal_partition(system, arrival_rate_hz, b).delay_s:
            high = b
        else:
            low = a
    refined = optimal_partition(system, arrival_rate_hz, 0.5 * (low + high))
    at_grid = optimal_partition(system, arrival_rate_hz, float(grid[best]))
    return refined if refined.delay_s <= at_grid.delay_s else at_grid


def breakaway_load(system: DualModeSystem, tolerance: float = 1e-4) -> float:
    """Return the load rho above which the optimal assignment stops routing every job to mode 1."""
    def uses_both(rho: float) -> bool:
        return optimal_assignment(system, system.load_to_rate(rho)).p < 1.0 - 1e-3

    high = system.rho_max * (1.0 - 1e-6)
    if not uses_both(high):
        return math.nan
    low = 1e-6
    if uses_both(low):
        return 0.0
    while high - low > tolerance:
        mid = 0.5 * (low + high)
        if uses_both(mid):
            high = mid
        else:
            low = mid
    return 0.5 * (low + high)
