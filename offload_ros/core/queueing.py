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
Mean waiting times of the single-queue models used by the latency predictions.

All rates are in 1/s and times in s. Every function returns ``math.inf`` when the queue is
unstable (arrival rate >= service capacity) so that an unstable target is never chosen.
Sources: Ng et al., 'To Offload or Not To Offload' (Sec. 3); Kleinrock, Queueing Systems
Vol. 1 (M/M/1, M/M/1/K, Pollaczek-Khinchine); Kingman's bound for G/G/1.
"""
import math
from dataclasses import dataclass

INF = math.inf


def _check_rates(arrival_rate_hz: float, service_rate_hz: float) -> None:
    if not arrival_rate_hz >= 0.0:
        raise ValueError(f'arrival_rate_hz must be >= 0, got {arrival_rate_hz!r}')
    if not service_rate_hz > 0.0:
        raise ValueError(f'service_rate_hz must be > 0, got {service_rate_hz!r}')


def mm1_wait_s(arrival_rate_hz: float, service_rate_hz: float) -> float:
    """M/M/1 mean time in queue: W = 1/(mu - lam) - 1/mu."""
    _check_rates(arrival_rate_hz, service_rate_hz)
    if arrival_rate_hz >= service_rate_hz:
        return INF
    return 1.0 / (service_rate_hz - arrival_rate_hz) - 1.0 / service_rate_hz


def md1_wait_s(arrival_rate_hz: float, service_rate_hz: float, parallelism: float = 1) -> float:
    """
    M/D/1 mean wait with k parallel executions aggregated into rate k*mu.

    W = 0.5 * (1/(k*mu - lam) - 1/(k*mu))  (Ng et al., accelerator model).
    """
    if not parallelism > 0:
        raise ValueError(f'parallelism must be > 0, got {parallelism!r}')
    _check_rates(arrival_rate_hz, service_rate_hz)
    capacity_hz = parallelism * service_rate_hz
    if arrival_rate_hz >= capacity_hz:
        return INF
    return 0.5 * (1.0 / (capacity_hz - arrival_rate_hz) - 1.0 / capacity_hz)


def mg1_wait_s(arrival_rate_hz: float, service_rate_hz: float, service_var_s2: float) -> float:
    """M/G/1 mean wait by Pollaczek-Khinchine: W = (rho + lam*mu*Var[s]) / (2*(mu - lam))."""
    _check_rates(arrival_rate_hz, service_rate_hz)
    if not service_var_s2 >= 0.0:
        raise ValueError(f'service_var_s2 must be >= 0, got {service_var_s2!r}')
    if arrival_rate_hz >= service_rate_hz:
        return INF
    rho = arrival_rate_hz / service_rate_hz
    return ((rho + arrival_rate_hz * service_rate_hz * service_var_s2)
            / (2.0 * (service_rate_hz - arrival_rate_hz)))


def mg1k_wait_s(arrival_rate_hz: float, service_s: float, service_var_s2: float,
                parallelism: float = 1) -> float:
    """M/G/1 wait with k executions aggregated: service time s/k, variance Var/k^2."""
    if not service_s > 0.0:
        raise ValueError(f'service_s must be > 0, got {service_s!r}')
    if not parallelism > 0:
        raise ValueError(f'parallelism must be > 0, got {parallelism!r}')
    return mg1_wait_s(arrival_rate_hz, parallelism / service_s,
                      service_var_s2 / parallelism ** 2)


def mm1_aggregated_wait_s(arrival_rate_hz: float, service_rate_hz: float,
                          parallelism: float = 1) -> float:
    """M/M/1 with aggregated rate k*mu, for variable-length workloads (RNN/LLM decoding)."""
    if not parallelism > 0:
        raise ValueError(f'parallelism must be > 0, got {parallelism!r}')
    return mm1_wait_s(arrival_rate_hz, parallelism * service_rate_hz)


def gg1_wait_upper_bound_s(arrival_rate_hz: float, service_rate_hz: float,
                           interarrival_var_s2: float, service_var_s2: float) -> float:
    """Kingman's G/G/1 upper bound: W <= lam*(var_a + var_s) / (2*(1 - rho))."""
    _check_rates(arrival_rate_hz, service_rate_hz)
    if interarrival_var_s2 < 0.0 or service_var_s2 < 0.0:
        raise ValueError('interarrival_var_s2 and service_var_s2 must be >= 0')
    rho = arrival_rate_hz / service_rate_hz
    if rho >= 1.0:
        return INF
    return arrival_rate_hz * (interarrival_var_s2 + service_var_s2) / (2.0 * (1.0 - rho))


def allen_cunneen_factor(arrival_scv: float, service_scv: float) -> float:
    """
    GI/G/1 correction of an M/G/1 wait: W_GG1 ~= W_MG1 * (ca^2 + cs^2) / (1 + cs^2).

    Allen-Cunneen / Kingman approximation; exactly 1 for Poisson arrivals (ca^2 = 1), and
    0 for periodic arrivals at deterministic service (a fixed-rate camera never queues
    behind a faster deterministic server).
    """
    if arrival_scv < 0 or service_scv < 0:
        raise ValueError('squared coefficients of variation must be >= 0')
    return (arrival_scv + service_scv) / (1.0 + service_scv)


@dataclass(frozen=True)
class FiniteQueue:
    """M/M/1/K figures: mean sojourn of admitted jobs and the loss (blocking) probability."""

    sojourn_s: float
    wait_s: float
    loss_probability: float
    mean_in_system: float


def mm1k(arrival_rate_hz: float, service_rate_hz: float, capacity: int) -> FiniteQueue:
    """M/M/1/K with K places in the system (queue plus the one in service); always stable."""
    _check_rates(arrival_rate_hz, service_rate_hz)
    if int(capacity) != capacity or capacity < 1:
        raise ValueError(f'capacity must be an integer >= 1, got {capacity!r}')
    k = int(capacity)
    rho = arrival_rate_hz / service_rate_hz
    if arrival_rate_hz == 0.0:
        return FiniteQueue(1.0 / service_rate_hz, 0.0, 0.0, 0.0)
    if math.isclose(rho, 1.0):
        probs = [1.0 / (k + 1)] * (k + 1)
    else:
        norm = (1.0 - rho) / (1.0 - rho ** (k + 1))
        probs = [norm * rho ** n for n in range(k + 1)]
    mean_in_system = sum(n * p for n, p in enumerate(probs))
    loss = probs[k]
    effective_rate_hz = arrival_rate_hz * (1.0 - loss)
    sojourn_s = mean_in_system / effective_rate_hz  # Little's law on admitted jobs
    return FiniteQueue(sojourn_s, sojourn_s - 1.0 / service_rate_hz, loss, mean_in_system)
