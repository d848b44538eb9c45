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

"""A planning scenario (robot rate, device, network, workers) and its parsing from a mapping."""
import math
from dataclasses import dataclass, replace
import statistics
from typing import Any, Dict, Mapping, Sequence, Tuple

from offload_ros.core.latency import (DeviceModel, NetworkModel, Prediction, WorkerModel,
                                      predict_local, predict_offload, predict_split,
                                      split_link)
from offload_ros.core.policy import parse_target
from offload_ros.core.records import Estimates


class ScenarioError(ValueError):
    """A scenario field is missing or invalid; the message names the field."""


@dataclass(frozen=True)
class Scenario:
    rate_hz: float
    device: DeviceModel
    network: NetworkModel
    workers: Tuple[WorkerModel, ...] = ()
    arrival_scv: float = 1.0   # squared CV of inter-arrival gaps; 1: Poisson (the paper)

    def worker(self, name: str) -> WorkerModel:
        for worker in self.workers:
            if worker.name == name:
                return worker
        raise ScenarioError(f'unknown worker {name!r} (have: '
                            f'{", ".join(w.name for w in self.workers) or "none"})')

    def with_rate(self, rate_hz: float) -> 'Scenario':
        return replace(self, rate_hz=rate_hz)

    def with_bandwidth(self, bandwidth_bps: float) -> 'Scenario':
        return replace(self, network=replace(self.network, bandwidth_bps=bandwidth_bps))

    def with_tenants(self, tenants: float, worker_name: str) -> 'Scenario':
        """Put `tenants` other robots like this one (same rate and service) on a worker."""
        workers = tuple(
            replace(w, tenant_rate_hz=tenants * self.rate_hz, tenant_service_s=None,
                    tenant_service_var_s2=None) if w.name == worker_name else w
            for w in self.workers)
        return replace(self, workers=workers)


def predict_all(scenario: Scenario) -> Tuple[Prediction, Dict[str, Prediction]]:
    local = predict_local(scenario.rate_hz, scenario.device, scenario.arrival_scv)
    remote = {w.name: predict_offload(scenario.rate_hz, scenario.network, w,
                                      scenario.arrival_scv)
              for w in scenario.workers}
    return local, remote


def _number(mapping: Mapping[str, Any], key: str, path: str, default: Any = ...) -> float:
    if key not in mapping or mapping[key] is None:
        if default is ...:
            raise ScenarioError(f'{path}{key}: missing')
        return default
    value = mapping[key]
    if isinstance(value, str):  # YAML 1.1 reads '20.0e6' (no exponent sign) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ScenarioError(f'{path}{key}: must be a number, got {value!r}')
    return float(value)


def _section(mapping: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    if key not in mapping:
        raise ScenarioError(f'{key}: missing')
    if not isinstance(mapping[key], Mapping):
        raise ScenarioError(f'{key}: must be a mapping')
    return mapping[key]


def _build(path: str, factory, **kwargs):
    try:
        return factory(**kwargs)
    except ValueError as e:
        raise ScenarioError(f'{path}: {e}') from e


def scenario_from_mapping(data: Any) -> Scenario:
    """Parse the offload_plan scenario format (SI units); errors name the offending field."""
    if not isinstance(data, Mapping):
        raise ScenarioError('scenario: must be a mapping at the top level')
    rate_hz = _number(data, 'rate_hz', '')
    if rate_hz <= 0:
        raise ScenarioError(f'rate_hz: must be > 0, got {rate_hz!r}')
    dev = _section(data, 'device')
    device = _build('device', DeviceModel, service_s=_number(dev, 'service_s', 'device.'),
                    parallelism=_number(dev, 'parallelism', 'device.', 1),
                    service_var_s2=_number(dev, 'service_var_s2', 'device.', None),
                    hold_s=_number(dev, 'hold_s', 'device.', 0.0))
    net = _section(data, 'network')
    network = _build('network', NetworkModel,
                     bandwidth_bps=_number(net, 'bandwidth_bps', 'network.'),
                     request_bytes=_number(net, 'request_bytes', 'network.'),
                     response_bytes=_number(net, 'response_bytes', 'network.'),
                     overhead_s=_number(net, 'overhead_s', 'network.', 0.0),
                     request_scv=_number(net, 'request_scv', 'network.', 1.0))
    raw_workers = data.get('workers', [])
    if not isinstance(raw_workers, list):
        raise ScenarioError('workers: must be a list')
    workers = []
    for index, raw in enumerate(raw_workers):
        path = f'workers[{index}].'
        if not isinstance(raw, Mapping):
            raise ScenarioError(f'workers[{index}]: must be a mapping')
        name = raw.get('name')
        if not isinstance(name, str) or not name:
            raise ScenarioError(f'{path}name: missing or not a string')
        if any(w.name == name for w in workers):
            raise ScenarioError(f'{path}name: duplicate worker name {name!r}')
        workers.append(_build(f'workers[{index}]', WorkerModel, name=name,
                              service_s=_number(raw, 'service_s', path),
                              parallelism=_number(raw, 'parallelism', path, 1),
                              service_var_s2=_number(raw, 'service_var_s2', path, 0.0),
                              tenant_rate_hz=_number(raw, 'tenant_rate_hz', path, 0.0)))
    arrival_scv = _number(data, 'arrival_scv', '', 1.0)
    if arrival_scv < 0:
        raise ScenarioError(f'arrival_scv: must be >= 0, got {arrival_scv!r}')
    return Scenario(rate_hz, device, network, tuple(workers), arrival_scv)


def as_mapping(estimates) -> Mapping[str, Any]:
    """Return the mapping form of a record's estimates (typed Estimates or their dict)."""
    return estimates.to_dict() if isinstance(estimates, Estimates) else estimates


def scenario_from_estimates(estimates: Mapping[str, Any], worker: str) -> Scenario:
    """
    Return the plan one decision record's `estimates` describe for one worker (its own network).

    The frames' common ingress delay is left out, as it shifts every target alike.
    """
    estimates = as_mapping(estimates)
    networks = estimates.get('networks', {})
    if worker not in networks:
        raise ScenarioError(f'estimates: no estimates for worker {worker!r} (have: '
                            f'{", ".join(networks) or "none"})')
    return scenario_from_mapping({**estimates, 'network': networks[worker],
                                  'workers': [w for w in estimates.get('workers', [])
                                              if w.get('name') == worker]})


def predict_from_estimates(estimates: Mapping[str, Any], target: str) -> float:
    """
    Mean latency of `target`.

    ('local', a worker or a split 'worker/split@k') as the decision node predicts it from a
    record's `estimates`: the plan's prediction plus the frames' ingress delay and the node's own
    handling (the steady state: a worker's transient backlog term is left out).
    """
    return sum(predict_terms_from_estimates(estimates, target).values())


def predict_terms_from_estimates(estimates: Mapping[str, Any], target: str) -> Dict[str, float]:
    """
    Return the terms of predict_from_estimates.

    (seconds; `ingress_s` and `handling_s` added to the model's own), so a measured stage can be
    held against the term that predicts it.
    """
    estimates = as_mapping(estimates)
    worker, layer = parse_target(target)
    workers = list(estimates.get('networks', {}))
    if worker != 'local' and worker not in workers:
        raise ScenarioError(f'estimates: no estimates for worker {worker!r} (have: '
                            f'{", ".join(workers) or "none"})')
    if worker == 'local' and not workers:
        # The local plan needs no network: any placeholder link will do.
        plan = scenario_from_mapping({**estimates, 'network': {
            'bandwidth_bps': 1.0, 'request_bytes': 1.0, 'response_bytes': 1.0}})
    else:
        plan = scenario_from_estimates(estimates, workers[0] if worker == 'local' else worker)
    if layer is not None:
        split = (estimates.get('splits') or {}).get(str(layer))
        tails = next(w for w in estimates['workers'] if w['name'] == worker).get(
            'tail_service_s') or {}
        if split is None or str(layer) not in tails:
            raise ScenarioError(f'estimates: no split estimates for {target!r}')
        link = split_link(plan.network, split['intermediate_bytes'],
                          exponential=plan.network.request_scv == 1.0)
        prediction = predict_split(plan.rate_hz, DeviceModel(split['head_s']), link,
                                   replace(plan.worker(worker), service_s=tails[str(layer)]),
                                   split['intermediate_bytes'], plan.arrival_scv)
    else:
        local, remote = predict_all(plan)
        prediction = local if worker == 'local' else remote[worker]
    kind = 'local' if worker == 'local' else 'remote'
    handling = (estimates.get('handling_s') or {}).get(kind) or 0.0
    return {**prediction.terms, 'ingress_s': estimates.get('ingress_s') or 0.0,
            'handling_s': max(handling, 0.0)}


def mean_estimates(snapshots: Sequence[Mapping[str, Any]], target: str) -> dict:
    """
    Return the average of several records' estimates for one target.

    What a period's mean latency is predicted from (the paper predicts a mean from mean parameters;
    averaging per-frame predictions instead overweights moments when a noisy estimate put a queue
    near saturation, as the wait is convex in the load).

    Rates, times, sizes and squared CVs are averaged arithmetically; bandwidth harmonically
    (the mean time per bit); parallelism by the median. Only `target`'s worker is kept.
    """
    if not snapshots:
        raise ScenarioError('estimates: no records to average')
    snapshots = [as_mapping(e) for e in snapshots]

    def mean(values):
        values = [float(v) for v in values if v is not None]
        return sum(values) / len(values) if values else None

    def median(values):
        values = [float(v) for v in values if v is not None]
        return statistics.median(values) if values else None

    result = {
        'rate_hz': mean(s.get('rate_hz') for s in snapshots),
        'arrival_scv': mean(s.get('arrival_scv') for s in snapshots),
        'ingress_s': mean(s.get('ingress_s') for s in snapshots),
        'handling_s': {k: mean((s.get('handling_s') or {}).get(k) for s in snapshots)
                       for k in ('local', 'remote')},
        'device': {'service_s': mean(s['device']['service_s'] for s in snapshots),
                   'parallelism': median(s['device'].get('parallelism', 1)
                                         for s in snapshots),
                   'hold_s': mean(s['device'].get('hold_s', 0.0) for s in snapshots)},
        'networks': {}, 'workers': []}
    worker, layer = parse_target(target)
    if worker == 'local':
        return result
    nets = [s['networks'][worker] for s in snapshots if worker in s.get('networks', {})]
    workers = [w for s in snapshots for w in s.get('workers', []) if w.get('name') == worker]
    if not nets or not workers:
        raise ScenarioError(f'estimates: no estimates for worker {worker!r}')
    if layer is not None:
        key = str(layer)
        splits = [s['splits'][key] for s in snapshots if key in (s.get('splits') or {})]
        tails = [w['tail_service_s'][key] for w in workers
                 if key in (w.get('tail_service_s') or {})]
        if not splits or not tails:
            raise ScenarioError(f'estimates: no split estimates for {target!r}')
        result['splits'] = {key: {'head_s': mean(p['head_s'] for p in splits),
                                  'intermediate_bytes': mean(p['intermediate_bytes']
                                                             for p in splits)}}
    seconds_per_bit = mean(1.0 / n['bandwidth_bps'] for n in nets)
    result['networks'][worker] = {
        'bandwidth_bps': 1.0 / seconds_per_bit,
        **{k: mean(n.get(k) for n in nets) for k in
           ('request_bytes', 'response_bytes', 'overhead_s', 'request_scv', 'size_scv')}}
    result['workers'].append({
        'name': worker,
        **{k: mean(w.get(k) for w in workers) for k in
           ('service_s', 'service_var_s2', 'tenant_rate_hz')},
        'parallelism': median(w.get('parallelism', 1) for w in workers),
        'tail_service_s': {} if layer is None else {str(layer): mean(tails)}})
    return result
