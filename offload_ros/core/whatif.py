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
What-if replay: re-decide a recorded run's frames under other settings.

Each decision record holds the predictions the decision was taken on and the estimates behind
them. Replayed in order, a new decision is taken wherever the predictions change (an epoch, or
a re-plan after a failure), with the what-if's own previous choice as the current target, so
hysteresis works as on the robot. Settings that change only the policy (`policy_mode`,
`deadline_s`, `hysteresis`) reuse the recorded predictions, so unchanged settings reproduce
the recorded decisions exactly; settings that change the world (`workers`, `load`,
`bandwidth_bps`) re-predict every target from the recorded estimates (the steady state:
the transient backlog term and any self-check calibration are left out), and say what they
assume.

A frame's what-if latency is the observed one where the what-if chose the target that ran
it, else the model's prediction for its new target (calibrated by the recorded self-check
where it had found that target off).
"""
import math
from dataclasses import dataclass, field, replace
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from offload_ros.core import energy as energy_mod
from offload_ros.core.latency import Prediction
from offload_ros.core.policy import LOCAL, MODES, PolicyConfig, decide, parse_target
from offload_ros.core.records import DecisionRecord, Estimates
from offload_ros.core.scenario import ScenarioError, predict_terms_from_estimates

SUPPORTED_MODES = ('argmin', 'deadline', 'energy')


class WhatIfError(ValueError):
    """A what-if setting that cannot be replayed (one line naming it)."""


@dataclass(frozen=True)
class WhatIf:
    """The settings of a what-if, each None (or empty) where the run's own is kept."""

    policy_mode: Optional[str] = None
    deadline_s: Optional[float] = None
    hysteresis: Optional[float] = None
    add_workers: Tuple[str, ...] = ()
    remove_workers: Tuple[str, ...] = ()
    load_hz: Mapping[str, float] = field(default_factory=dict)  # other robots per worker
    bandwidth_bps: Optional[float] = None

    @property
    def repredicts(self) -> bool:
        return bool(self.add_workers or self.load_hz or self.bandwidth_bps)

    def assumptions(self, like: Optional[str]) -> List[str]:
        out = []
        for name in self.add_workers:
            out.append(f'{name}: a worker like {like} (its service time, parallelism and link), '
                       'with no other tenants')
        for name, rate in self.load_hz.items():
            out.append(f'{name}: {rate:g} Hz more of other robots, of the same service time as '
                       "this robot's frames (the M/G/1 tenant term); a recorded run cannot "
                       'know how they would react')
        if self.bandwidth_bps:
            out.append(f'every link at {self.bandwidth_bps / 1e6:g} Mbit/s')
        if self.repredicts:
            out.append('re-predicted targets use the steady-state model (no transient backlog)')
        return out


def parse(items: Sequence[str]) -> WhatIf:
    """Parse `name=value` settings (WhatIfError naming the first bad one)."""
    values: Dict[str, object] = {'add_workers': [], 'remove_workers': [], 'load_hz': {}}
    for item in items:
        name, sep, value = item.partition('=')
        try:
            if not sep or not value:
                raise ValueError('expected NAME=VALUE')
            if name == 'policy_mode':
                if value not in MODES + ('split',):
                    raise ValueError(f'one of {MODES}')
                values[name] = PolicyConfig(value).mode
            elif name in ('deadline_s', 'hysteresis', 'bandwidth_bps'):
                values[name] = float(value)
                if not values[name] > 0 and not (name == 'hysteresis' and values[name] == 0):
                    raise ValueError('must be > 0')
            elif name == 'workers':
                for entry in value.split(','):
                    sign, worker = entry[:1], entry[1:]
                    if sign not in '+-' or not worker or worker == LOCAL:
                        raise ValueError('+NAME adds a worker, -NAME removes one')
                    values['add_workers' if sign == '+' else 'remove_workers'].append(worker)
            elif name == 'load':
                for entry in value.split(','):
                    worker, _, rate = entry.partition(':')
                    values['load_hz'][worker] = float(rate)
                    if not worker or not float(rate) >= 0:
                        raise ValueError('WORKER:HZ, HZ >= 0')
            else:
                raise ValueError('not a what-if setting (policy_mode, deadline_s, hysteresis, '
                                 'workers, load, bandwidth_bps)')
        except ValueError as e:
            raise WhatIfError(f'{item}: {e}') from e
    values['add_workers'] = tuple(values['add_workers'])
    values['remove_workers'] = tuple(values['remove_workers'])
    whatif = WhatIf(**values)
    if whatif.policy_mode is not None and whatif.policy_mode not in SUPPORTED_MODES:
        raise WhatIfError(f'policy_mode={whatif.policy_mode}: replay supports '
                          f'{", ".join(SUPPORTED_MODES)} (share and threshold need the run '
                          'itself)')
    return whatif


@dataclass(frozen=True)
class Replayed:
    """One frame under the what-if."""

    seq: int
    at_s: float                      # when the frame finished (the run's clock)
    target: str
    latency_s: float
    modelled: bool                   # the latency is the model's (another target than ran it)
    robot_j: Optional[float]


def _worker_estimates(estimates: Estimates, whatif: WhatIf, like: Optional[str]) -> dict:
    data = estimates.to_dict()
    workers = [w for w in data['workers'] if w['name'] not in whatif.remove_workers]
    networks = {n: v for n, v in data['networks'].items() if n not in whatif.remove_workers}
    source = next((w for w in data['workers'] if w['name'] == like), None)
    for name in whatif.add_workers:
        if source is not None and like in data['networks']:
            workers.append({**source, 'name': name, 'tenant_rate_hz': 0.0, 'queue_length': 0})
            networks[name] = dict(data['networks'][like])
    for w in workers:
        w['tenant_rate_hz'] = w.get('tenant_rate_hz', 0.0) + whatif.load_hz.get(w['name'], 0.0)
    if whatif.bandwidth_bps:
        for net in networks.values():
            net['bandwidth_bps'] = whatif.bandwidth_bps
    return {**data, 'workers': workers, 'networks': networks}


def _predictions(record: DecisionRecord, whatif: WhatIf,
                 like: Optional[str]) -> Dict[str, Prediction]:
    recorded = {n: p for n, p in record.predictions.items()
                if parse_target(n)[0] not in whatif.remove_workers}
    if not whatif.repredicts or record.estimates is None:
        return recorded
    estimates = _worker_estimates(record.estimates, whatif, like)
    out = {}
    for target in [LOCAL, *(w['name'] for w in estimates['workers'])]:
        if target != LOCAL and target not in estimates['networks']:
            continue
        try:
            terms = predict_terms_from_estimates(estimates, target)
        except ScenarioError:
            continue
        total = sum(terms.values())
        out[target] = Prediction(total if math.isfinite(total) else math.inf, terms)
    for name, p in recorded.items():   # targets the estimates cannot re-predict keep theirs
        if name not in out and parse_target(name)[0] not in whatif.add_workers:
            out[name] = p if name not in (w['name'] for w in estimates['workers']) \
                else Prediction(math.inf, {'unavailable': math.inf})
    return out


def _decide(predictions, policy: PolicyConfig, current: str, record: DecisionRecord,
            like: Optional[str]) -> str:
    if policy.mode == 'energy':
        energies = {n: energy_mod.FrameEnergy(
            e.get('robot_j') if e.get('robot_j') is not None else math.inf,
            e.get('total_j') if e.get('total_j') is not None else math.inf)
            for n, e in (record.energy or {}).items()}
        for name in predictions:
            if name not in energies and like in energies:
                energies[name] = energies[like]    # an added worker: like the one it copies
        chosen = energy_mod.choose(predictions, energies, energy_mod.EnergyWeights(),
                                   policy.deadline_s, policy.hysteresis, current)
        if chosen:
            return chosen[0]
    return decide(predictions, policy, current).target


def replay(records: Sequence[DecisionRecord], whatif: WhatIf,
           base: PolicyConfig) -> List[Replayed]:
    """
    Re-decide every recorded frame under `whatif`.

    `base` is the run's own policy settings; the what-if's replace those it gives.
    """
    policy = replace(base, **{k: v for k, v in (('mode', whatif.policy_mode),
                                                ('deadline_s', whatif.deadline_s),
                                                ('hysteresis', whatif.hysteresis))
                              if v is not None})
    like = like_worker(records)
    current, previous, out = LOCAL, None, []
    for record in sorted(records, key=lambda r: r.seq):
        predictions = {}
        if record.outcome == 'drop' and record.reason.startswith('malformed image'):
            target = record.target          # never decided: it did not convert
        else:
            predictions = _predictions(record, whatif, like)
            key = tuple(sorted((n, p.latency_s) for n, p in predictions.items()))
            if key != previous and predictions:
                current, previous = _decide(predictions, policy, current, record, like), key
            target = current
        same = target == record.target
        latency = record.observed_latency_s if same and record.outcome == 'detections' else \
            math.inf if same else _modelled(record, target, predictions.get(target))
        energy = (record.energy or {}).get(target if target in (record.energy or {}) else like)
        out.append(Replayed(record.seq, record.finished_at_s, target, latency, not same,
                            None if energy is None else energy.get('robot_j')))
    return out


def _modelled(record: DecisionRecord, target: str, prediction: Optional[Prediction]) -> float:
    """Return a frame's latency where the what-if ran it elsewhere: its (calibrated) prediction."""
    if prediction is None or not prediction.stable:
        return math.inf
    check = (record.selfcheck or {}).get(target) or {}
    ratio = check.get('ratio') if check.get('status', 'OK') != 'OK' else None
    model = prediction.latency_s - prediction.terms.get('calibration_s', 0.0)
    return model * ratio if ratio else prediction.latency_s


def like_worker(records: Sequence[DecisionRecord]) -> Optional[str]:
    """Return the worker that an added one copies: the one the run sent most frames to."""
    counts: Dict[str, int] = {}
    for r in records:
        worker = parse_target(r.target)[0]
        if worker != LOCAL:
            counts[worker] = counts.get(worker, 0) + 1
    if counts:
        return max(counts, key=counts.get)
    names = {n for r in records if r.estimates for n in r.estimates.networks}
    return min(names) if names else None
