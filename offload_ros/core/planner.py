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
The decision node's brain, ROS-free: online estimates -> predictions -> policy, per epoch.

Estimates (all from the robot's own observations):
- frame arrival rate: sliding window over frame receipt times;
- local service time: profiled at start-up, then every local inference (windowed mean);
- per worker: service mean/variance, parallelism and total arrival rate from its /load route
  (other tenants' rate = total - our own share); fixed overhead = small-request round trip
  (the /load GET) + the server's own handling time outside the queue (server_s - queue -
  service, reported per response);
- bandwidth: bytes of each transfer over its network time (round trip - server time - fixed
  round trip), or a probe upload when nothing is being offloaded; a configured override wins.
"""
import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Deque, Dict, List, Mapping, Optional

from offload_ros.core import energy as energy_mod
from offload_ros.core import hedging
from offload_ros.core import split as split_mod
from offload_ros.core.estimators import (ArrivalRateEstimator, BandwidthEstimator,
                                         MedianWindow, ServiceTimeEstimator)
from offload_ros.core.latency import (DeviceModel, NetworkModel, Prediction, WorkerModel,
                                      predict_local, predict_offload, predict_split,
                                      split_link)
from offload_ros.core.policy import (LOCAL, Decision, PolicyConfig, ThresholdBaseline,
                                     decide, parse_target, split_target)
from offload_ros.core.records import Estimates, NetworkEstimate, WorkerEstimate

MIN_TRANSFER_S = 1e-4  # resolution of transfer-time measurements
HANDLING_MIN_FRAMES = 5   # frames one way before their median is the handling estimate


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


@dataclass
class WorkerState:
    name: str
    available: bool = False
    reason: str = 'no load report yet'
    service_mean_s: Optional[float] = None
    service_var_s2: float = 0.0
    parallelism: int = 1
    total_rate_hz: float = 0.0
    own_rate_hz: float = 0.0
    queue_length: int = 0
    rtt_samples: Deque[float] = field(default_factory=lambda: deque(maxlen=20))
    server_overhead_samples: MedianWindow = field(default_factory=lambda: MedianWindow(50))
    bandwidth: BandwidthEstimator = None
    tail_service_s: Dict[int, float] = field(default_factory=dict)   # split layer -> tail
    # The last models built from the estimates, reused while the estimates are unchanged
    # (building validates every field; evaluations outnumber estimate changes).
    models: Dict[str, tuple] = field(default_factory=dict)

    def cached(self, kind: str, key: tuple, build):
        entry = self.models.get(kind)
        if entry is None or entry[0] != key:
            entry = (key, build())
            self.models[kind] = entry
        return entry[1]

    def base_rtt_s(self) -> float:
        """
        Round trip of a small request with empty queues: the minimum of recent ones.

        A median would absorb queueing behind our own uploads on a saturated link, which the M/M/1
        uplink term already models (and would hide the transfer time).
        """
        return min(self.rtt_samples) if self.rtt_samples else 0.0

    def fixed_overhead_s(self) -> float:
        return self.base_rtt_s() + self.server_overhead_samples.median()


@dataclass
class SplitPoint:
    """A split candidate on the robot: its head's service time and the bytes it sends."""

    layer: int
    intermediate_bytes: int
    head: ServiceTimeEstimator


@dataclass(frozen=True)
class Switch:
    t_s: float
    from_target: str
    to_target: str
    reason: str


class Planner:
    def __init__(self, config: PlannerConfig, worker_names: List[str],
                 local_service_s: float):
        if len(set(worker_names)) != len(worker_names) or LOCAL in worker_names:
            raise ValueError(f'worker names must be unique and not {LOCAL!r}: {worker_names}')
        self.config = config
        self.arrivals = ArrivalRateEstimator(config.arrival_window_s,
                                             config.arrival_min_frames)
        self.local_service = ServiceTimeEstimator(
            window=100, max_age_s=config.local_service_max_age_s)
        self.local_service.add(local_service_s)
        self._local_timed_s = -math.inf   # when the robot's detector was last timed
        self.local_waiting = 0   # frames queued for the robot's detector (not the one it runs)
        self.local_holds = MedianWindow(50)   # its thread's time per frame besides inference
        self.workers: Dict[str, WorkerState] = {
            n: WorkerState(n, bandwidth=BandwidthEstimator(config.bandwidth_window_s))
            for n in worker_names}
        self.request_bytes = 50_000.0
        self.response_bytes = 1_000.0
        self.request_sizes: Deque[int] = deque(maxlen=50)
        self._requests = 0   # tokens of requests in flight (request_started)
        self._payload_generation = 0     # payload settings so far (payload_changed)
        self._request_generation: Dict[int, int] = {}   # token -> its payload setting
        self._size_scv = 1.0
        self.decision = Decision(LOCAL, 'start-up: no estimates yet')
        self.switches: List[Switch] = []
        self.ingress_samples = MedianWindow(100)
        # The node's own handling of a frame outside inference and transfer (image
        # conversion, encoding, publishing), measured per frame, local and remote apart.
        self.handling_samples: Dict[str, MedianWindow] = {
            'local': MedianWindow(100), 'remote': MedianWindow(100)}
        self.observed: Deque[tuple] = deque(maxlen=5000)   # (t_s, target, latency_s)
        # The last 50 per target, so the per-frame hedging check does not scan `observed`.
        self.recent_by_target: Dict[str, Deque[tuple]] = {}
        self._threshold = ThresholdBaseline()
        self._credit: Dict[str, float] = {}
        # What the last evaluate() saw: its estimates and each target's energy per frame.
        self.estimates: Optional[Estimates] = None
        self.energy: Optional[Dict[str, dict]] = None
        self._last_remote_s: Dict[str, float] = {}   # per worker: its last answer to a frame
        self._last_probe_s: Dict[str, float] = {}
        self.split_points: Dict[int, SplitPoint] = {}

    # -- observations -------------------------------------------------------------------
    def reconfigure(self, config: PlannerConfig) -> None:
        self.config = config

    def set_workers(self, names: List[str]) -> None:
        """Add and remove workers, keeping the estimates of those that stay."""
        if LOCAL in names or len(set(names)) != len(names):
            raise ValueError(f'worker names must be unique and not {LOCAL!r}: {names}')
        self.workers = {n: self.workers.get(n) or WorkerState(
            n, bandwidth=BandwidthEstimator(self.config.bandwidth_window_s)) for n in names}
        if self.decision.target not in (LOCAL, *names):
            self.decision = Decision(LOCAL, 'worker removed')

    def frame_arrived(self, now_s: float) -> None:
        self.arrivals.add(now_s)

    def local_queue(self, waiting: int) -> None:
        """Frames now waiting for the robot's detector, not counting the one it runs."""
        self.local_waiting = max(0, waiting)

    def local_released(self, hold_s: float) -> None:
        """
        Note that the robot's detector thread is free again.

        Hold_s after the inference ended (or besides it: decoding, publishing the detections and
        the record).
        """
        self.local_holds.append(max(0.0, hold_s))

    def local_done(self, service_s: float, now_s: Optional[float] = None) -> None:
        self.local_service.add(service_s, now_s)
        if now_s is not None:
            self._local_timed_s = max(self._local_timed_s, now_s)

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
        if not period or now_s - self._local_timed_s < period or self.local_waiting:
            return False
        target = self.decision.target
        chosen = self.decision.predictions.get(target)
        if target == LOCAL or self.config.forced_target or chosen is None or \
                not math.isfinite(chosen.latency_s):
            return False
        service = self.local_service.windowed().mean_s
        return service <= (1.0 + self.config.local_profile_margin) * chosen.latency_s

    def local_profile_started(self, now_s: float) -> None:
        """Note a started re-timing of the robot's detector: not due again for a period."""
        self._local_timed_s = max(self._local_timed_s, now_s)

    def local_retimed(self, service_s: float, now_s: float) -> bool:
        """
        Take the result of a re-timing (local_profile_due); True if it entered the estimate.

        It ran beside the offloading work (the robot's encoding and uploads, a worker on the
        same machine in the demo), which a switch to the robot would partly remove: in the
        demo the re-timings read 73-100 ms where the robot's own frames then took 65. So it
        can only lower the estimate, as the worker's idle profile can only lower its own: an
        optimistic figure gets the robot tried, and its own frames then rule.
        """
        self._local_timed_s = max(self._local_timed_s, now_s)
        if service_s >= self.local_service.windowed().mean_s:
            return False
        self.local_service.add(service_s, now_s)
        return True

    def set_split_points(self, profiles: Mapping[int, tuple]) -> None:
        """
        {layer: (head service s, intermediate bytes)} from the robot's profile.

        Each worker serving that layer's tail adds a `worker/split@layer` target.
        """
        self.split_points = {}
        for layer, (head_s, size) in profiles.items():
            estimator = ServiceTimeEstimator(window=100)
            estimator.add(head_s)
            self.split_points[layer] = SplitPoint(layer, int(size), estimator)

    def head_done(self, layer: int, service_s: float) -> None:
        self.split_points[layer].head.add(service_s)

    def payload_changed(self) -> None:
        """
        Note that the payload setting changed (JPEG <-> raw, quality).

        The next request's size replaces the estimate instead of being averaged into the old
        regime's. Requests started before the change and answered after it are not counted in the
        sizes (in session 6's fidelity matrix a raw frame answered 1 s after the switch to JPEG on
        a 2 Mbit/s link put the size SCV at 2.6-2.9 for the next 50 JPEG frames, and the FIFO
        uplink's wait with it).
        """
        self.request_sizes.clear()
        self._payload_generation += 1

    def payload(self, request_bytes: int, response_bytes: int) -> None:
        """
        One request's size.

        The first after start-up or a payload change replaces the prior; later ones are smoothed
        (EWMA 0.2).
        """
        first = not self.request_sizes
        self.request_sizes.append(request_bytes)
        sizes = self.request_sizes
        if len(sizes) >= 5:   # kept here, per frame, not recomputed in every prediction
            mean = sum(sizes) / len(sizes)
            self._size_scv = (sum((x - mean) ** 2 for x in sizes) / len(sizes) / mean ** 2
                              if mean > 0 else 1.0)
        if first:
            self.request_bytes = float(request_bytes)
        else:
            self.request_bytes += 0.2 * (request_bytes - self.request_bytes)
        self.response_bytes += 0.2 * (response_bytes - self.response_bytes)

    def request_started(self, name: str, now_s: float) -> int:
        """
        Note that a request to `name` is on its way.

        Pass the token to remote_done, or to request_abandoned if it fails (the bandwidth estimate
        waits for busy periods it shares to end).
        """
        self._requests += 1
        self.workers[name].bandwidth.transfer_started(self._requests, now_s)
        generations = self._request_generation
        generations[self._requests] = self._payload_generation
        if len(generations) > 4096:      # a token never ended (its thread lost): let it go
            del generations[next(iter(generations))]
        return self._requests

    def request_abandoned(self, name: str, token: int) -> None:
        self._request_generation.pop(token, None)
        if name in self.workers:
            self.workers[name].bandwidth.transfer_abandoned(token)

    def remote_done(self, name: str, now_s: float, request_bytes: int, response_bytes: int,
                    round_trip_s: float, server_s: Optional[float],
                    queue_s: Optional[float], service_s: Optional[float],
                    whole_frame: bool = True, token: Optional[int] = None) -> None:
        """
        Take a worker's answer; whole_frame False for a split's tail.

        (its bytes say nothing of the image payload, but time the link all the same).
        """
        state = self.workers[name]
        if server_s is not None and queue_s is not None and service_s is not None:
            state.server_overhead_samples.append(max(0.0, server_s - queue_s - service_s))
        network_s = max(round_trip_s - (server_s or 0.0) - state.base_rtt_s(), MIN_TRANSFER_S)
        state.bandwidth.add_transfer(now_s, request_bytes + response_bytes, network_s,
                                     start_s=now_s - round_trip_s, token=token)
        self._last_remote_s[name] = now_s
        generation = self._request_generation.pop(token, self._payload_generation)
        if whole_frame and generation == self._payload_generation:
            self.payload(request_bytes, response_bytes)

    def probe_done(self, name: str, now_s: float, payload_bytes: int,
                   round_trip_s: float) -> None:
        state = self.workers[name]
        # Below the timer resolution (loopback) the link is simply fast: clamp, don't drop.
        state.bandwidth.add_transfer(now_s, payload_bytes,
                                     max(round_trip_s - state.base_rtt_s(), MIN_TRANSFER_S),
                                     start_s=now_s - round_trip_s)

    def frame_handled(self, target: str, handling_s: float) -> None:
        """Time the node spent on a frame besides the detector or the worker round trip."""
        if 0.0 <= handling_s < 10.0:
            self.handling_samples[LOCAL if target == LOCAL else 'remote'].append(handling_s)

    def handling_s(self, target: str) -> float:
        """
        Return the median of the last frames' handling.

        The smallest while fewer than HANDLING_MIN_FRAMES went that way. The first frames after
        start-up carry one-off costs (lazy initialisation, a CPU quota shared with the detector's
        warm-up: 453 and 117 ms where later frames took 4), and only frames sent that way replace
        them: a median of those two kept a Case 2 robot off both workers for the whole run.
        """
        samples = self.handling_samples[LOCAL if target == LOCAL else 'remote']
        if len(samples) < HANDLING_MIN_FRAMES:
            return min(samples, default=0.0)
        return samples.median()

    def frame_ingress(self, delay_s: float) -> None:
        """
        Capture-to-receipt delay of a frame (camera driver and DDS), common to all targets.

        The mean of the last 100 is added to every prediction so they compare with observed
        latency. The mean, not the median: a mean latency holds every frame's ingress, and with the
        robot's detector busy on its one core the tail is long (a robot at 8 Hz: median 1.23 ms,
        mean 2.69 ms over 2492 frames).
        """
        if 0.0 <= delay_s < 10.0:
            self.ingress_samples.append(delay_s)

    def load_report(self, name: str, rtt_s: float, total_rate_hz: float,
                    service_mean_s: Optional[float], service_var_s2: Optional[float],
                    parallelism: int, own_rate_hz: float, queue_length: int = 0,
                    tail_service_s: Optional[Mapping[int, float]] = None) -> None:
        state = self.workers[name]
        state.tail_service_s = dict(tail_service_s or {})
        state.queue_length = max(0, queue_length)
        state.rtt_samples.append(rtt_s)
        state.total_rate_hz, state.own_rate_hz = total_rate_hz, own_rate_hz
        if service_mean_s:
            state.service_mean_s = service_mean_s
            state.service_var_s2 = service_var_s2 or 0.0
        state.parallelism = max(1, parallelism)
        state.available = state.service_mean_s is not None
        state.reason = '' if state.available else 'worker has no service profile yet'

    def outcome(self, now_s: float, target: str, latency_s: float) -> None:
        """
        Observed end-to-end latency of a frame (inf for a lost one).

        Used by the threshold baseline, which decides from observations instead of models.
        """
        self.observed.append((now_s, target, latency_s))
        self.recent_by_target.setdefault(target, deque(maxlen=50)).append((now_s, latency_s))

    def worker_failed(self, name: str, reason: str) -> None:
        state = self.workers[name]
        state.available, state.reason = False, reason

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
        return result

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
        predictions = self.predict(now_s)
        fractions = None
        if self.config.policy.mode == 'split':
            fractions = self._split(now_s, predictions)
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

    def _split(self, now_s: float, predictions: Mapping[str, Prediction]) -> Dict[str, float]:
        scv = self.scv(now_s)
        targets = {LOCAL: lambda r: predict_local(r, self.local_model(), scv).latency_s}
        for name, state in self.workers.items():
            if state.available:
                targets[name] = (lambda n: lambda r: predict_offload(
                    r, self.network_model(n, now_s), self.worker_model(n),
                    scv).latency_s)(name)
        result = split_mod.optimal_split(self.rate_hz(now_s), targets)
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
            now_s - self._last_remote_s.get(name, -math.inf) > self.config.epoch_s
        due = period > 0 and now_s - self._last_probe_s.get(name, -math.inf) >= period
        if not (idle and due) or self.config.bandwidth_override_bps:
            return False
        self._last_probe_s[name] = now_s
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
