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
A fleet in simulated time: N robots sharing M workers.

Each robot runs the node's own Dispatcher, Planner and WorkerMonitor (offload_ros.dispatch,
core) as offload_node runs them.

Each robot has a periodic camera (its own rate and phase), an epoch timer (its own phase, as
robots started at different times), its own link, detector and worker clients (world.py). What
the robot decides and does is the real code; the frames, links and workers are simulated.
"""
import math
import random
import statistics
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from offload_ros.core.planner import Planner, PlannerConfig
from offload_ros.core.policy import LOCAL, Decision
from offload_ros.dispatch.clock import IO_THREADS, Pools
from offload_ros.dispatch.dispatcher import Dispatcher
from offload_ros.dispatch.frames import DispatchSettings
from offload_ros.dispatch.monitor import WorkerMonitor
from offload_ros.fleet import reference
from offload_ros.fleet.kernel import Kernel, SimClock, SimPool
from offload_ros.fleet.world import (PICTURE, Link, LinkSpec, ServiceProfile, SimDetector,
                                     SimWorker, SimWorkerClient)


@dataclass(frozen=True)
class Slowdown:
    """At at_s, worker `worker` (an index) serves `factor` times slower from then on."""

    at_s: float
    worker: int
    factor: float


@dataclass(frozen=True)
class FleetConfig:
    robots: int
    workers: Tuple[ServiceProfile, ...]
    planner: PlannerConfig
    settings: DispatchSettings
    rates_hz: Tuple[float, float] = (4.0, 8.0)     # each robot's camera rate, uniform
    detector: ServiceProfile = ServiceProfile(0.060, 0.1)
    link: LinkSpec = LinkSpec()
    request_bytes: int = 50_000
    response_bytes: int = 600
    max_inflight: int = 4
    probe_bytes: int = 20_000
    duration_s: float = 120.0
    warmup_s: float = 20.0
    slowdowns: Tuple[Slowdown, ...] = ()
    # Fixed shares per robot (robot index -> target -> fraction): the coordinated reference
    # runs with these instead of the policy.
    fixed_shares: Optional[Tuple[Dict[str, float], ...]] = None
    robot_rates_hz: Optional[Tuple[float, ...]] = None   # else drawn from rates_hz
    camera_phases_s: Optional[Tuple[float, ...]] = None  # first frame's time; else random
    # What a real robot adds besides inference and the request (measured on a run, e.g. by
    # scenarios.multirobot): camera-to-node delay, time around a remote request (handling,
    # publishing), and around a local inference.
    ingress_s: float = 0.0
    remote_overhead_s: float = 0.0
    local_overhead_s: float = 0.0
    request_overhead_s: float = 0.0   # inside a request, on the robot (encoding, HTTP)
    server_overhead_s: float = 0.0    # on the worker outside its queue (decoding, HTTP)

    def draw_rates(self, seed: int) -> Tuple[float, ...]:
        """Each robot's camera rate: given, or drawn for the seed (as simulate draws them)."""
        if self.robot_rates_hz is not None:
            return tuple(self.robot_rates_hz)
        rng = random.Random(f'rates/{seed}')
        return tuple(rng.uniform(*self.rates_hz) for _ in range(self.robots))


@dataclass
class FrameResult:
    robot: int
    stamp_s: float
    target: str
    outcome: str
    latency_s: float


class _Outputs:
    """The node's publishers, as records of what each frame ended in."""

    def __init__(self, robot: int, origin_ns: int, results: List[FrameResult]):
        self.robot, self.origin_ns, self.results = robot, origin_ns, results

    @staticmethod
    def message(frame, detections):
        return ()

    @staticmethod
    def detections(message):
        pass

    def record(self, record):
        self.results.append(FrameResult(self.robot, (record.stamp_ns - self.origin_ns) * 1e-9,
                                        record.target, record.outcome,
                                        record.observed_latency_s))


class _Log:
    def __init__(self):
        self.errors: List[str] = []

    def info(self, message):
        pass

    def warning(self, message):
        pass

    def error(self, message):
        self.errors.append(message)


class FixedShares(Planner):
    """The coordinated reference: the node's estimators, but shares set from outside."""

    def __init__(self, config: PlannerConfig, local_service_s: float, shares: Dict[str, float]):
        super().__init__(config, [], local_service_s)
        self.shares = {t: f for t, f in shares.items() if f > 1e-6}

    def evaluate(self, now_s: float) -> Decision:
        predictions = self.predict(now_s)
        best = max(self.shares, key=self.shares.get)
        self.decision = Decision(best, 'reference shares', predictions, dict(self.shares))
        self.estimates = self.snapshot(now_s)
        self.energy = None
        return self.decision


class SimRobot:
    """One robot's node, as offload_node builds it, on simulated parts."""

    def __init__(self, kernel: Kernel, index: int, config: FleetConfig, rate_hz: float,
                 workers: Sequence[SimWorker], rng: random.Random, results: List[FrameResult]):
        self.kernel, self.index, self.name = kernel, index, f'robot{index}'
        self.clock = SimClock(kernel)
        self.link = Link(kernel, config.link)
        self.detector = SimDetector(kernel, config.detector, rng, config.local_overhead_s)
        clients = {w.name: SimWorkerClient(kernel, w, self.link, self.name,
                                           config.request_bytes, config.response_bytes,
                                           overhead_s=config.remote_overhead_s,
                                           request_overhead_s=config.request_overhead_s)
                   for w in workers}
        self.ingress_ns = int(config.ingress_s * 1e9)
        planner_config = replace(config.planner, seed=rng.randrange(2 ** 32))
        if config.fixed_shares is not None:
            planner = FixedShares(planner_config, config.detector.mean_s,
                                  config.fixed_shares[index])
        else:
            planner = Planner(planner_config, [], config.detector.mean_s)
        self.log = _Log()
        pools = Pools(SimPool(kernel, 1), SimPool(kernel, config.max_inflight),
                      SimPool(kernel, IO_THREADS))
        self.dispatcher = Dispatcher(planner, self.detector, clients, config.settings,
                                     self.clock, pools,
                                     _Outputs(index, self.clock.origin_ns, results), self.log)
        self.monitor = WorkerMonitor(self.dispatcher, min(0.5, config.planner.epoch_s),
                                     config.probe_bytes)
        self.rate_hz = rate_hz
        self.camera_phase_s = rng.uniform(0.0, 1.0 / self.rate_hz)
        if config.camera_phases_s is not None:
            self.camera_phase_s = config.camera_phases_s[index]
        self.epoch_phase_s = rng.uniform(0.0, config.planner.epoch_s)
        self.frames = 0

    def start(self, duration_s: float, epoch_s: float) -> None:
        env = self.kernel.env
        env.process(self._camera(duration_s))
        env.process(self._epochs(epoch_s))

    def _camera(self, duration_s: float):
        env, period = self.kernel.env, 1.0 / self.rate_hz
        yield env.timeout(self.camera_phase_s)
        while env.now < duration_s:
            self.frames += 1
            self.kernel.spawn(self.dispatcher.submit, self.clock.now_ns() - self.ingress_ns,
                              f'{self.name}/{self.frames}', lambda: PICTURE)
            yield env.timeout(period)

    def _epochs(self, epoch_s: float):
        env = self.kernel.env
        self.kernel.spawn(self.monitor.epoch)     # the node's first epoch, at configure
        yield env.timeout(self.epoch_phase_s)
        while True:
            self.kernel.spawn(self.monitor.epoch)
            yield env.timeout(epoch_s)


@dataclass
class FleetRun:
    config: FleetConfig
    seed: int
    results: List[FrameResult]
    switches: List[Tuple[int, float, str, str]]         # robot, t_s, from, to
    utilisation: Dict[str, List[float]]                 # worker -> busy share per bin
    bin_s: float
    robot_rates_hz: List[float]
    polls: Dict[str, int]
    submitted: int                                      # frames the cameras gave
    errors: List[str] = field(default_factory=list)

    def window(self, start_s: float, end_s: float) -> List[FrameResult]:
        return [r for r in self.results if start_s <= r.stamp_s < end_s]

    def metrics(self, start_s: Optional[float] = None, end_s: Optional[float] = None) -> dict:
        """Mean and p99 latency of answered frames, miss rate (late or unanswered), switches."""
        start_s = self.config.warmup_s if start_s is None else start_s
        end_s = self.config.duration_s - 1.0 if end_s is None else end_s
        frames = self.window(start_s, end_s)
        switches = sum(1 for _, t, _, _ in self.switches if start_s <= t < end_s)
        return figures([(r.target, r.outcome, r.latency_s) for r in frames],
                       self.config.settings.deadline_s, switches, self.config.robots,
                       (end_s - start_s) / 60.0)


def figures(frames: Sequence[Tuple[str, str, float]], deadline_s: float, switches: int,
            robots: int, minutes: float) -> dict:
    """
    Return a fleet's figures from its frames' (target, outcome, latency_s).

    The simulator and a real multi-robot run (scenarios.multirobot) are compared on these:
    mean and p99 latency of answered frames, misses (late or unanswered), switches.
    """
    answered = [latency for _, outcome, latency in frames if outcome == 'detections']
    missed = sum(1 for _, outcome, latency in frames
                 if outcome != 'detections' or latency > deadline_s)
    by_target: Dict[str, int] = {}
    for target, _, _ in frames:
        by_target[target] = by_target.get(target, 0) + 1
    return {
        'frames': len(frames),
        'mean_latency_s': statistics.fmean(answered) if answered else math.inf,
        'p99_latency_s': float(np.percentile(answered, 99)) if answered else math.inf,
        'miss_rate': missed / len(frames) if frames else 0.0,
        'switches_per_robot_min': switches / max(1, robots) / minutes,
        'frames_by_target': dict(sorted(by_target.items())),
    }


def simulate(config: FleetConfig, seed: int, bin_s: float = 0.1) -> FleetRun:
    """Run the fleet for config.duration_s of simulated time."""
    rng = random.Random(seed)
    rates = config.draw_rates(seed)
    kernel = Kernel()
    workers = [SimWorker(kernel, f'edge{j + 1}', profile, random.Random(rng.random()),
                         overhead_s=config.server_overhead_s)
               for j, profile in enumerate(config.workers)]
    results: List[FrameResult] = []
    robots = [SimRobot(kernel, i, config, rates[i], workers, random.Random(rng.random()),
                       results) for i in range(config.robots)]
    for robot in robots:
        robot.start(config.duration_s, config.planner.epoch_s)
    for slow in config.slowdowns:
        kernel.after(slow.at_s, setattr, workers[slow.worker], 'slowdown', slow.factor)
    try:
        kernel.run(config.duration_s + 2.0)    # the last frames end (deadline and drain)
    finally:
        kernel.close()
    switches = [(robot.index, s.t_s, s.from_target, s.to_target)
                for robot in robots for s in robot.dispatcher.planner.switches]
    bins = int(math.ceil(config.duration_s / bin_s))
    utilisation = {}
    for worker in workers:
        busy = [0.0] * bins
        for start, end in worker.stats.busy:
            k = int(start / bin_s)
            while k < bins and start < end:
                edge = min(end, (k + 1) * bin_s)
                busy[k] += edge - start
                start, k = edge, k + 1
        utilisation[worker.name] = [b / bin_s / worker.server.capacity for b in busy]
    return FleetRun(config, seed, sorted(results, key=lambda r: (r.stamp_s, r.robot)),
                    switches, utilisation, bin_s, [r.rate_hz for r in robots],
                    {w.name: w.stats.polls for w in workers}, sum(r.frames for r in robots),
                    [e for r in robots for e in r.log.errors])


def problem_of(config: FleetConfig, seed: int) -> reference.Problem:
    """Return the fleet's true parameters, as the coordinated reference sees them."""
    upload_s = config.request_bytes * 8.0 / config.link.up_bps
    return reference.Problem(
        config.draw_rates(seed),
        reference.Station.of(config.detector.mean_s, config.detector.cv, arrival_scv=0.0),
        {f'edge{j + 1}': reference.Station.of(p.mean_s, p.cv)
         for j, p in enumerate(config.workers)},
        reference.Station.of(upload_s, 0.0, arrival_scv=0.0),
        config.link.rtt_s + config.response_bytes * 8.0 / config.link.down_bps)


def coordinated(config: FleetConfig, seed: int, whole: bool = False) -> FleetConfig:
    """Return the same fleet on the reference assignment (fractional, or whole streams)."""
    problem = problem_of(config, seed)
    if whole:
        shares = tuple({t: 1.0} for t in reference.whole_stream(problem))
    else:
        shares = tuple({t: rate / total for t, rate in x.items()}
                       for x, total in zip(reference.fractional(problem), problem.rates_hz))
    return replace(config, fixed_shares=shares, robot_rates_hz=problem.rates_hz)


def with_policy(config: FleetConfig, mode: str, **policy) -> FleetConfig:
    """Return the same fleet with another policy mode (and policy settings)."""
    planner = replace(config.planner, policy=replace(config.planner.policy, mode=mode,
                                                     **policy))
    return replace(config, planner=planner)


__all__ = ['FleetConfig', 'FleetRun', 'FixedShares', 'LOCAL', 'ServiceProfile', 'Slowdown',
           'coordinated', 'figures', 'problem_of', 'simulate', 'with_policy']
