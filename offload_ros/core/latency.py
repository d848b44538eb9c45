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
End-to-end latency predictions of on-device, offloaded and split inference.

Ng et al., 'To Offload or Not To Offload', Sec. 3: the accelerator is an M/D/1 queue (k parallel
executions aggregated into rate k*mu), each network direction an M/M/1 queue whose service rate
is bandwidth / payload bits, and a worker shared by several robots an M/G/1 queue whose service
time is the rate-weighted mixture of its tenants' service times (multi-tenant lemma).
"""
import math
from dataclasses import dataclass, field, replace
from typing import Mapping, Optional, Sequence

from offload_ros.core import queueing

BITS_PER_BYTE = 8.0


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f'{name} must be a positive number, got {value!r}')


def _non_negative(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f'{name} must be a non-negative number, got {value!r}')


@dataclass(frozen=True)
class Prediction:
    """A predicted mean latency with the terms it is the sum of (all seconds)."""

    latency_s: float
    terms: Mapping[str, float] = field(default_factory=dict)

    @property
    def stable(self) -> bool:
        return math.isfinite(self.latency_s)

    def to_json(self) -> dict:
        """JSON-ready form; an unstable prediction has latency_s None (JSON has no infinity)."""
        def finite(value: float) -> Optional[float]:
            return value if math.isfinite(value) else None
        return {'latency_s': finite(self.latency_s), 'stable': self.stable,
                'terms': {name: finite(v) for name, v in self.terms.items()}}


def _sum_terms(terms: dict) -> Prediction:
    """
    Return the prediction that is the sum of `terms`.

    A dict the caller has just built (kept, not copied: the policy evaluates every target each
    frame).
    """
    total = sum(terms.values())
    return Prediction(total if math.isfinite(total) else math.inf, terms)


@dataclass(frozen=True)
class DeviceModel:
    """
    The robot's accelerator.

    service_var_s2 None: deterministic service (M/D/1).

    hold_s: how long the detector's thread stays busy with a frame besides its inference
    (decoding it, publishing its detections and record), which the frames behind it wait
    for: the queue's server is busy service_s + hold_s per frame, while the frame's own
    latency counts hold_s in the node's handling, not here (0: the paper's model).
    """

    service_s: float
    parallelism: float = 1
    service_var_s2: Optional[float] = None
    hold_s: float = 0.0

    def __post_init__(self):
        _positive('device.service_s', self.service_s)
        _positive('device.parallelism', self.parallelism)
        if self.service_var_s2 is not None:
            _non_negative('device.service_var_s2', self.service_var_s2)
        _non_negative('device.hold_s', self.hold_s)


@dataclass(frozen=True)
class NetworkModel:
    """
    The link between robot and workers: bandwidth, payload sizes and fixed overhead.

    request_scv is the squared coefficient of variation of the upload's transfer time: 1
    makes the uplink the paper's M/M/1 queue; the measured spread of payload sizes (near 0
    for raw tensors, small for JPEG) makes it the M/G/1 queue a rate-shaped link really is.
    """

    bandwidth_bps: float
    request_bytes: float
    response_bytes: float
    overhead_s: float = 0.0
    request_scv: float = 1.0

    def __post_init__(self):
        _positive('network.bandwidth_bps', self.bandwidth_bps)
        _positive('network.request_bytes', self.request_bytes)
        _positive('network.response_bytes', self.response_bytes)
        _non_negative('network.overhead_s', self.overhead_s)
        _non_negative('network.request_scv', self.request_scv)

    def transfer_s(self, payload_bytes: float) -> float:
        return payload_bytes * BITS_PER_BYTE / self.bandwidth_bps


@dataclass(frozen=True)
class WorkerModel:
    """
    An edge worker: our requests' service profile plus the load of other tenants.

    Other tenants' service mean and variance default to ours (same model served to all).
    """

    name: str
    service_s: float
    parallelism: float = 1
    service_var_s2: float = 0.0
    tenant_rate_hz: float = 0.0
    tenant_service_s: Optional[float] = None
    tenant_service_var_s2: Optional[float] = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError('worker.name must be a non-empty string')
        _positive(f'workers[{self.name}].service_s', self.service_s)
        _positive(f'workers[{self.name}].parallelism', self.parallelism)
        _non_negative(f'workers[{self.name}].service_var_s2', self.service_var_s2)
        _non_negative(f'workers[{self.name}].tenant_rate_hz', self.tenant_rate_hz)
        if self.tenant_service_s is not None:
            _positive(f'workers[{self.name}].tenant_service_s', self.tenant_service_s)
        if self.tenant_service_var_s2 is not None:
            _non_negative(f'workers[{self.name}].tenant_service_var_s2',
                          self.tenant_service_var_s2)


@dataclass(frozen=True)
class ServiceMixture:
    """Aggregate arrival rate and service moments of several Poisson tenants."""

    rate_hz: float
    service_s: float
    service_var_s2: float


def service_mixture(rates_hz: Sequence[float], services_s: Sequence[float],
                    services_var_s2: Sequence[float]) -> ServiceMixture:
    """
    Multi-tenant lemma: merged Poisson streams see the rate-weighted mixture of services.

    E[s] = sum(lam_i s_i)/lam, E[s^2] = sum(lam_i (Var_i + s_i^2))/lam, Var = E[s^2] - E[s]^2.
    """
    total_hz = float(sum(rates_hz))
    if total_hz <= 0.0:
        raise ValueError('service_mixture needs a positive total rate')
    mean_s = second = 0.0
    for r, s, v in zip(rates_hz, services_s, services_var_s2):
        w = r / total_hz                  # first: r * s can underflow at tiny rates
        mean_s += w * s
        second += w * (v + s * s)
    var_s2 = max(0.0, second - mean_s * mean_s)
    return ServiceMixture(total_hz, mean_s, var_s2)


def predict_local(rate_hz: float, device: DeviceModel, arrival_scv: float = 1.0) -> Prediction:
    """
    T_dev = W_proc + s_dev: M/D/1 (or M/G/1 given a variance), k executions aggregated.

    arrival_scv != 1 applies the Allen-Cunneen GI/G/1 correction (1: the paper's model).
    """
    _non_negative('rate_hz', rate_hz)
    busy_s = device.service_s + device.hold_s   # what the frames behind one wait for
    if device.service_var_s2 is None:
        wait_s = queueing.md1_wait_s(rate_hz, 1.0 / busy_s, device.parallelism)
        service_scv = 0.0
    else:
        wait_s = queueing.mg1k_wait_s(rate_hz, busy_s, device.service_var_s2,
                                      device.parallelism)
        service_scv = device.service_var_s2 / busy_s ** 2
    if arrival_scv != 1.0 and math.isfinite(wait_s):
        wait_s *= queueing.allen_cunneen_factor(arrival_scv, service_scv)
    return _sum_terms({'queue_wait_s': wait_s, 'service_s': device.service_s})


def worker_load(rate_hz: float, worker: WorkerModel) -> ServiceMixture:
    """Return the worker's total rate lam_E and mixed service moments, our rate added."""
    if worker.tenant_rate_hz <= 0.0:    # ours alone (one robot per worker): no mixture
        return ServiceMixture(rate_hz, worker.service_s, worker.service_var_s2)
    tenant_s = worker.tenant_service_s if worker.tenant_service_s is not None \
        else worker.service_s
    tenant_var = worker.tenant_service_var_s2 if worker.tenant_service_var_s2 is not None \
        else worker.service_var_s2
    return service_mixture((rate_hz, worker.tenant_rate_hz), [worker.service_s, tenant_s],
                           [worker.service_var_s2, tenant_var])


def _corrected(wait_s: float, arrival_scv: float, service_scv: float) -> float:
    if arrival_scv == 1.0 or not math.isfinite(wait_s):
        return wait_s
    return wait_s * queueing.allen_cunneen_factor(arrival_scv, service_scv)


def departure_scv(utilisation: float, arrival_scv: float, service_scv: float) -> float:
    """
    Squared CV of the gaps between departures of a single-server queue.

    (Whitt's QNA: c_d^2 = rho^2 c_s^2 + (1 - rho^2) c_a^2): the arrivals' spread at low load, the
    service times' at high load. Past saturation the server's own pace.
    """
    rho = min(max(utilisation, 0.0), 1.0)
    return rho ** 2 * service_scv + (1.0 - rho ** 2) * arrival_scv


def _edge_stage_terms(rate_hz: float, network: NetworkModel, worker: WorkerModel,
                      request_bytes: float, arrival_scv: float = 1.0) -> dict:
    load = worker_load(rate_hz, worker)
    uplink_rate_hz = 1.0 / network.transfer_s(request_bytes)
    downlink_rate_hz = 1.0 / network.transfer_s(network.response_bytes)
    # Our frames reach the worker as the uplink lets them out: a busy link with even-sized
    # payloads spaces them (tandem queues, Whitt's QNA linking equation), which the worker's
    # wait sees; an M/M/1 link passes Poisson arrivals on unchanged (Burke).
    to_worker_scv = departure_scv(rate_hz / uplink_rate_hz, arrival_scv, network.request_scv)
    # Merged streams: other tenants are taken as Poisson (scv 1), ours as it leaves the link.
    merged_scv = (rate_hz * to_worker_scv + worker.tenant_rate_hz) / load.rate_hz \
        if load.rate_hz > 0 else 1.0
    service_scv = load.service_var_s2 / load.service_s ** 2
    # Pollaczek-Khinchine: an M/G/1 wait is the M/M/1 wait scaled by (1 + cs^2) / 2.
    uplink_wait_s = queueing.mm1_wait_s(rate_hz, uplink_rate_hz)
    if network.request_scv != 1.0 and math.isfinite(uplink_wait_s):
        uplink_wait_s *= 0.5 * (1.0 + network.request_scv)
    return {
        'uplink_wait_s': _corrected(uplink_wait_s, arrival_scv, network.request_scv),
        'uplink_transfer_s': network.transfer_s(request_bytes),
        'queue_wait_s': _corrected(queueing.mg1k_wait_s(load.rate_hz, load.service_s,
                                                        load.service_var_s2,
                                                        worker.parallelism),
                                   merged_scv, service_scv),
        'service_s': worker.service_s,
        'downlink_wait_s': _corrected(queueing.mm1_wait_s(load.rate_hz, downlink_rate_hz),
                                      merged_scv, 1.0),
        'downlink_transfer_s': network.transfer_s(network.response_bytes),
        'overhead_s': network.overhead_s,
    }


def predict_offload(rate_hz: float, network: NetworkModel, worker: WorkerModel,
                    arrival_scv: float = 1.0) -> Prediction:
    """
    Predict the end-to-end latency of offloading to a worker.

    T_E = [W_MM1(lam, B/D_req) + D_req/B] + [W_MG1(lam_E, mu_E) + s_E] + [W_MM1(lam_E, B/D_res)
    + D_res/B] + overhead  (Ng et al., Sec. 3).

    arrival_scv != 1 applies the Allen-Cunneen correction to each wait (1: the paper).
    """
    _non_negative('rate_hz', rate_hz)
    return _sum_terms(_edge_stage_terms(rate_hz, network, worker, network.request_bytes,
                                        arrival_scv))


def split_link(network: NetworkModel, intermediate_bytes: float,
               exponential: bool) -> NetworkModel:
    """
    Return the link carrying a split's fixed-size tensors.

    Deterministic transfers (scv 0), unless it is the paper's M/M/1 link (`exponential`: scv 1).
    """
    return replace(network, request_bytes=float(intermediate_bytes),
                   request_scv=1.0 if exponential else 0.0)


def predict_split(rate_hz: float, head: DeviceModel, network: NetworkModel,
                  tail: WorkerModel, intermediate_bytes: float,
                  arrival_scv: float = 1.0) -> Prediction:
    """
    Collaborative inference: device stage (head layers) in tandem with the edge stage (tail).

    The intermediate tensor of intermediate_bytes replaces the request payload. The head's
    departures feed the uplink as if they kept the frames' arrival process (exact for Poisson
    arrivals into an M/M/1 head by Burke's theorem; an approximation for a deterministic head).
    """
    _positive('intermediate_bytes', intermediate_bytes)
    device = predict_local(rate_hz, head, arrival_scv)
    terms = {'device_' + name: value for name, value in device.terms.items()}
    terms.update(_edge_stage_terms(rate_hz, network, tail, intermediate_bytes, arrival_scv))
    return _sum_terms(terms)
