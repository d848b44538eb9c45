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
The decision node's brain, ROS-free: observations -> predictions -> policy, per epoch.

The estimators are core.observations; here they become queueing-model predictions per target
(core.latency), a decision (core.policy, core.energy, the rate shares of core.sharing), the
route of each frame and the estimates snapshot each decision record carries.
"""
import math
import random
from dataclasses import dataclass, replace
from typing import Dict, List, Mapping, Optional

from offload_ros.core import energy as energy_mod
from offload_ros.core import hedging
from offload_ros.core import sharing
from offload_ros.core.latency import (DeviceModel, NetworkModel, Prediction, WorkerModel,
                                      predict_local, predict_offload, predict_split,
                                      split_link)
from offload_ros.core.observations import Observations
from offload_ros.core.policy import (LOCAL, Decision, PolicyConfig, ThresholdBaseline,
                                     decide, move_probability, parse_target, split_target)
from offload_ros.core.records import Estimates, NetworkEstimate, WorkerEstimate
from offload_ros.core.selfcheck import CheckConfig, SelfCheck


@dataclass(frozen=True)
class PlannerConfig:
    policy: PolicyConfig = PolicyConfig()
    bandwidth_override_bps: Optional[float] = None
    bandwidth_prior_bps: float = 20e6
    arrival_window_s: float = 5.0
    arrival_min_frames: int = 20      # rate from at least this many frames (see estimator)
    bandwidth_window_s: float = 1.0
    # the robot's service times: the last 100, less those older than this (latest 10 kept)
    local_service_max_age_s: float = 30.0
    # While frames go elsewhere, re-time the robot's detector once this long after its last
    # inference (0: never), if its service time is within (1 + margin) of the chosen
    # target's predicted latency: only where the robot's estimate could change the decision.
    local_profile_period_s: float = 5.0
    local_profile_margin: float = 0.5
    # While no frame goes to a worker, probe its link this often (0: never); epoch_s: how
    # long after its last answer a link counts as unused.
    probe_period_s: float = 0.25
    epoch_s: float = 0.5
    forced_target: Optional[str] = None
    arrival_model: str = 'measured'   # 'poisson': the paper's M/*/1; 'measured': GI/G/1
    # 'exponential': the paper's M/M/1 uplink; 'measured': M/G/1 from the payload sizes
    link_model: str = 'measured'
    selfcheck: CheckConfig = CheckConfig()
    seed: Optional[int] = None        # of the damped moves' draws (None: from the OS)
    energy: energy_mod.EnergyModel = energy_mod.EnergyModel()
    energy_weights: energy_mod.EnergyWeights = energy_mod.EnergyWeights()

    def arrival_scv(self, measured: Optional[float]) -> float:
        if self.arrival_model == 'poisson' or measured is None:
            return 1.0
        return measured

    def __post_init__(self):
        if self.bandwidth_override_bps is not None and not self.bandwidth_override_bps > 0:
            raise ValueError('bandwidth_override_bps must be > 0 (or None to measure)')
        if not self.bandwidth_prior_bps > 0:
            raise ValueError('bandwidth_prior_bps must be > 0')
        if not self.local_profile_period_s >= 0:
            raise ValueError(f'local_profile_period_s must be >= 0, got '
                             f'{self.local_profile_period_s!r}')
        if not self.local_profile_margin >= 0:
            raise ValueError(f'local_profile_margin must be >= 0, got '
                             f'{self.local_profile_margin!r}')
        if self.arrival_model not in ('poisson', 'measured'):
            raise ValueError(f"arrival_model must be 'poisson' or 'measured', got "
                             f'{self.arrival_model!r}')
        if self.link_model not in ('exponential', 'measured'):
            raise ValueError(f"link_model must be 'exponential' or 'measured', got "
                             f'{self.link_model!r}')


@dataclass(frozen=True)
class Switch:
    t_s: float
    from_target: str
    to_target: str
    reason: str


class Planner(Observations):
    """Predictions and the decision from the observations, per epoch; routes each frame."""

    def __init__(self, config: PlannerConfig, worker_names: List[str],
                 local_service_s: float):
        super().__init__(config, worker_names, local_service_s)
        self.decision = Decision(LOCAL, 'start-up: no estimates yet')
        self.switches: List[Switch] = []
        self._threshold = ThresholdBaseline()
        self._credit: Dict[str, float] = {}
        # What the last evaluate() saw: its estimates and each target's energy per frame.
        self.estimates: Optional[Estimates] = None
        self.energy: Optional[Dict[str, dict]] = None
        self._last_probe_at_s: Dict[str, float] = {}
        self.selfcheck = SelfCheck(config.selfcheck)
        self.rng = random.Random(config.seed)

    def reconfigure(self, config: PlannerConfig) -> None:
        super().reconfigure(config)
        self.selfcheck.reconfigure(config.selfcheck)

    def checked(self, now_s: float, target: str, predicted: Optional[Prediction],
                observed_s: float) -> None:
        """
        Pair an answered frame's latency with what the model predicted for it (self-check).

        The model's own prediction: any calibration applied to the decision is taken off.
        """
        if predicted is not None and predicted.stable:
            model_s = predicted.latency_s - predicted.terms.get('calibration_s', 0.0)
            self.selfcheck.observe(now_s, target, model_s, observed_s)

    def set_workers(self, names: List[str]) -> None:
        """Add and remove workers, keeping the estimates of those that stay."""
        for target in list(self.selfcheck.verdicts()):
            if parse_target(target)[0] not in (LOCAL, *names):
                self.selfcheck.forget(target)
        super().set_workers(names)
        if self.decision.target not in (LOCAL, *names):
            self.decision = Decision(LOCAL, 'worker removed')

    def local_profile_due(self, now_s: float) -> bool:
        """
        Whether to re-time the robot's detector now, on the latest frame.

        A robot that offloads never runs its detector, so without this its estimate stays
        the start-up profile, taken while every process of the robot started on the same
        cores, and a decision that profile made against the robot is never revisited (the
        worker's idle profile is the same remedy on the other side). It is due
        `local_profile_period_s` after the last local inference, with no frame waiting for
        the detector and no target forced, and only while the robot could win: its service
        time alone within `local_profile_margin` of the chosen target's predicted latency.
        """
        period = self.config.local_profile_period_s
        if not period or now_s - self._local_timed_at_s < period or self.local_waiting:
            return False
        target = self.decision.target
        chosen = self.decision.predictions.get(target)
        if target == LOCAL or self.config.forced_target or chosen is None or \
                not math.isfinite(chosen.latency_s):
            return False
        service = self.local_service.windowed().mean_s
        return service <= (1.0 + self.config.local_profile_margin) * chosen.latency_s

    # -- predictions and decision ------------------------------------------------------------
    def bandwidth_bps(self, name: str, now_s: float) -> float:
        if self.config.bandwidth_override_bps:
            return self.config.bandwidth_override_bps
        measured = self.workers[name].bandwidth.bandwidth_bps(now_s)
        return measured if measured else self.config.bandwidth_prior_bps

    def rate_hz(self, now_s: float) -> float:
        return max(self.arrivals.rate_hz(now_s), 1e-3)

    def local_model(self) -> DeviceModel:
        return DeviceModel(self.local_service.windowed().mean_s,
                           hold_s=self.local_holds.median())

    def worker_model(self, name: str) -> WorkerModel:
        state = self.workers[name]
        key = (state.service_mean_s, state.parallelism, state.service_var_s2,
               max(0.0, state.total_rate_hz - state.own_rate_hz))
        return state.cached('worker', key, lambda: WorkerModel(name, *key))

    def request_scv(self) -> float:
        """
        Squared CV of the upload's transfer time.

        1 (exponential, the paper) or the measured spread of recent payload sizes (1 until there
        are a few).
        """
        if self.config.link_model == 'exponential':
            return 1.0
        return self._size_scv

    def network_model(self, name: str, now_s: float) -> NetworkModel:
        state = self.workers[name]
        key = (self.bandwidth_bps(name, now_s), self.request_bytes,
               max(self.response_bytes, 1.0), state.fixed_overhead_s(), self.request_scv())
        return state.cached('network', key, lambda: NetworkModel(*key))

    def scv(self, now_s: float) -> float:
        return self.config.arrival_scv(self.arrivals.interarrival_scv(now_s))

    def predict(self, now_s: float, rate_hz: Optional[float] = None) -> Dict[str, Prediction]:
        rate = self.rate_hz(now_s) if rate_hz is None else rate_hz
        scv = self.scv(now_s)
        local = self.local_model()
        result = {LOCAL: self._with_backlog(predict_local(rate, local, scv),
                                            self.local_waiting
                                            * (local.service_s + local.hold_s))}
        for name, state in self.workers.items():
            if not state.available:
                result[name] = Prediction(math.inf, {'unavailable': math.inf})
                continue
            network, worker = self.network_model(name, now_s), self.worker_model(name)
            backlog_s = state.queue_length * state.service_mean_s / state.parallelism
            result[name] = self._with_backlog(predict_offload(rate, network, worker, scv),
                                              backlog_s)
            for layer, tail_s in state.tail_service_s.items():
                point = self.split_points.get(layer)
                if point is None:
                    continue
                link = split_link(network, point.intermediate_bytes,
                                  self.config.link_model == 'exponential')
                result[split_target(name, layer)] = self._with_backlog(predict_split(
                    rate, DeviceModel(point.head.windowed().mean_s), link,
                    replace(worker, service_s=tail_s), point.intermediate_bytes, scv), backlog_s)
        # Common to every target: ingress (capture -> receipt); per kind: the node's handling.
        ingress = self.ingress_samples.mean() if self.ingress_samples else None
        handling = {LOCAL: self.handling_s(LOCAL), 'remote': self.handling_s('remote')}
        for n, p in result.items():
            h = handling[LOCAL if n == LOCAL else 'remote']
            if ingress is None and h <= 0.0:
                continue
            terms = {'ingress_s': ingress, **p.terms} if ingress is not None else dict(p.terms)
            if h > 0.0:
                terms['handling_s'] = h
            result[n] = Prediction(p.latency_s + (ingress or 0.0) + max(h, 0.0), terms)
        return self._calibrated(result)

    def _calibrated(self, predictions: Dict[str, Prediction]) -> Dict[str, Prediction]:
        """Scale the prediction of each target the self-check finds off by its observed ratio."""
        for name, p in predictions.items():
            ratio = self.selfcheck.calibration(name)
            if ratio is not None and p.stable:
                extra = p.latency_s * (ratio - 1.0)
                predictions[name] = Prediction(p.latency_s + extra,
                                               {**p.terms, 'calibration_s': extra})
        return predictions

    @staticmethod
    def _with_backlog(pred: Prediction, backlog_s: float) -> Prediction:
        """
        Transient after a load step.

        The steady-state wait lags the backlog already queued (at a worker, or for the robot's
        detector while the rate estimate catches up with a step); a frame sent now waits at least
        for that backlog to drain.
        """
        if pred.stable and backlog_s > pred.terms['queue_wait_s']:
            terms = {**pred.terms, 'queue_wait_s': backlog_s}
            return Prediction(sum(terms.values()), terms)
        return pred

    def snapshot(self, now_s: float) -> Estimates:
        """
        Return the online estimates behind a decision.

        `core.scenario.scenario_from_estimates` turns them back into a plan, so a run's
        records say what the models saw, not only what they predicted.
        """
        workers, networks = [], {}
        for name, state in self.workers.items():
            if not state.available:
                continue
            model = self.worker_model(name)
            workers.append(WorkerEstimate(
                name, model.service_s, model.service_var_s2, model.parallelism,
                model.tenant_rate_hz, state.queue_length,
                {str(k): v for k, v in state.tail_service_s.items()}))
            net = self.network_model(name, now_s)
            networks[name] = NetworkEstimate(net.bandwidth_bps, net.request_bytes,
                                             net.response_bytes, net.overhead_s,
                                             net.request_scv, self._size_scv)
        return Estimates(
            self.rate_hz(now_s), self.scv(now_s), self.ingress_samples.mean(),
            {'local': self.handling_s(LOCAL), 'remote': self.handling_s('remote')},
            {'service_s': self.local_service.windowed().mean_s, 'parallelism': 1,
             'hold_s': self.local_holds.median()},
            {str(k): {'head_s': p.head.windowed().mean_s,
                      'intermediate_bytes': p.intermediate_bytes}
             for k, p in self.split_points.items()},
            networks, workers)

    def evaluate(self, now_s: float) -> Decision:
        self.selfcheck.age(now_s)
        predictions = self.predict(now_s)
        fractions = None
        if self.config.policy.mode == 'share':
            fractions = self._shares(now_s, predictions)
        forced = self.config.forced_target
        if forced and (forced == LOCAL or forced in predictions):
            decision = Decision(forced, 'forced by parameter', predictions)
        elif self.config.policy.mode == 'threshold':
            decision = self._threshold.decide(
                now_s, predictions, self.decision, next(iter(self.workers), None),
                self.observed, self.config.policy.deadline_s)
        elif self.config.policy.mode == 'energy' and (chosen := energy_mod.choose(
                predictions, self.energies(predictions), self.config.energy_weights,
                self.config.policy.deadline_s, self.config.policy.hysteresis,
                self.decision.target)):
            decision = Decision(chosen[0], chosen[1], predictions)
        else:
            decision = decide(predictions, self.config.policy, self.decision.target, fractions)
        if self.config.policy.mode in ('argmin', 'deadline', 'energy') and not forced:
            decision = self._damped(decision, predictions)
        if decision.target != self.decision.target:
            self.switches.append(Switch(now_s, self.decision.target, decision.target,
                                        decision.reason))
        # Every branch above decides from these predictions; one that did not would be
        # recorded with them all the same.
        self.decision = decision if decision.predictions is predictions else \
            replace(decision, predictions=predictions)
        self.estimates = self.snapshot(now_s)
        self.energy = {n: e.to_json() for n, e in self.energies(predictions).items()}
        return self.decision

    def _damped(self, decision: Decision, predictions: Mapping[str, Prediction]) -> Decision:
        """
        Take a move only with policy.move_probability where other robots may make it too.

        At once where no other robot watches the workers involved (or none reports it), the
        current target is gone or saturated, or the robot leaves a target it would miss on for
        its own detector (no other robot shares it).
        """
        current = self.decision.target
        if not self.config.policy.damped or decision.target == current:
            return decision
        before, after = predictions.get(current), predictions.get(decision.target)
        if before is None or after is None or not before.stable:
            return decision
        here, there = parse_target(current)[0], parse_target(decision.target)[0]
        involved = [self.workers[n] for n in (here, there) if n in self.workers]
        if not any(w.watchers is not None and w.watchers > 1 for w in involved):
            return decision
        if there == LOCAL:
            if before.latency_s > self.config.policy.deadline_s:
                return decision
            others = self.workers[here].others if here in self.workers else 0
        else:
            others = self.workers[there].others
        gain = (before.latency_s - after.latency_s) / before.latency_s
        p = move_probability(gain, others)
        if self.rng.random() < p:
            return replace(decision, reason=f'{decision.reason}; damped move taken (p {p:.2f})')
        return Decision(current, f'hold {current}: damped move to {decision.target} not taken '
                        f'(p {p:.2f}: gain {gain:.0%}, {others} other robots)', predictions)

    def miss_probability(self, target: str, predictions: Mapping[str, Prediction],
                         window_s: float = 30.0) -> float:
        """
        P(a frame on `target` misses the deadline).

        The exponential tail of its prediction, corrected by the latencies recently observed there
        (core.hedging).
        """
        observed = []
        if self.observed:
            newest = self.observed[-1][0]
            observed = [lat for t, lat in self.recent_by_target.get(target, ())
                        if t >= newest - window_s]
        return hedging.miss_probability(predictions[target], self.config.policy.deadline_s,
                                        observed)

    def energies(self, predictions: Mapping[str, Prediction]
                 ) -> Dict[str, energy_mod.FrameEnergy]:
        """Energy per frame on every target (platform model of the config)."""
        result = {}
        for name, p in predictions.items():
            worker, layer = parse_target(name)
            sent = self.request_bytes if layer is None or layer not in self.split_points \
                else self.split_points[layer].intermediate_bytes
            result[name] = energy_mod.frame_energy(
                name, p, self.config.energy, sent, self.response_bytes,
                self.workers[worker].parallelism if worker in self.workers else 1)
        return result

    def _shares(self, now_s: float, predictions: Mapping[str, Prediction]) -> Dict[str, float]:
        scv = self.scv(now_s)
        targets = {LOCAL: lambda r: predict_local(r, self.local_model(), scv).latency_s}
        for name, state in self.workers.items():
            if state.available:
                targets[name] = (lambda n: lambda r: predict_offload(
                    r, self.network_model(n, now_s), self.worker_model(n),
                    scv).latency_s)(name)
        result = sharing.optimal_shares(self.rate_hz(now_s), targets)
        return result.fractions if result.stable else {LOCAL: 1.0}

    def offloading_to(self, name: str) -> bool:
        """
        Whether the current decision sends frames to worker `name`.

        (whole frames, a split's tails, or a share of a rate split): its answers keep the link
        estimate fresh, so a probe would only add traffic the uplink model does not count.
        """
        targets = self.decision.fractions or {self.decision.target: 1.0}
        return any(parse_target(t)[0] == name for t, share in targets.items() if share > 0)

    def probe_due(self, name: str, now_s: float, busy: bool) -> bool:
        """
        Whether to upload a probe to worker `name` now (and note it as sent if so).

        Only a link no frame uses is probed: one uploaded beside offloaded frames (even
        between two at 1 Hz, or while one is still uploading: `busy`) is traffic the uplink
        queue does not count, and slows the frames it meets. An override needs no probe.
        """
        period = self.config.probe_period_s
        idle = not self.offloading_to(name) and not busy and \
            now_s - self._last_remote_at_s.get(name, -math.inf) > self.config.epoch_s
        due = period > 0 and now_s - self._last_probe_at_s.get(name, -math.inf) >= period
        if not (idle and due) or self.config.bandwidth_override_bps:
            return False
        self._last_probe_at_s[name] = now_s
        return True

    def route(self) -> str:
        """Target for the next frame: the decision, or weighted round-robin over the split."""
        fractions = self.decision.fractions
        if not fractions or self.config.forced_target:
            return self.decision.target
        for name, f in fractions.items():
            self._credit[name] = self._credit.get(name, 0.0) + f
        best = max(fractions, key=lambda n: self._credit[n])
        self._credit[best] -= 1.0
        return best
