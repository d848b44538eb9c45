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
The fleet simulator: many robots running the real Dispatcher and Planner in simulated time.

The workers, links, cameras and detectors are simulated (world.py, named as such); what is
under test is that the robot's own code runs there as on a robot, and the reference.
"""
from dataclasses import replace

import pytest

from offload_ros.core.planner import Planner, PlannerConfig
from offload_ros.core.policy import LOCAL, PolicyConfig
from offload_ros.dispatch.dispatcher import Dispatcher
from offload_ros.dispatch.frames import DispatchSettings
from offload_ros.fleet import reference, sim
from offload_ros.fleet.world import ServiceProfile


def fleet(robots=4, workers=(0.010, 0.020), duration_s=20.0, **kwargs) -> sim.FleetConfig:
    return sim.FleetConfig(robots, tuple(ServiceProfile(s) for s in workers),
                           PlannerConfig(policy=PolicyConfig('argmin', 0.1, 0.25)),
                           DispatchSettings(0.25), duration_s=duration_s, warmup_s=5.0,
                           **kwargs)


def test_every_frame_ends_in_one_outcome_and_a_seed_repeats_the_run():
    config = fleet()
    first, again = sim.simulate(config, seed=3), sim.simulate(config, seed=3)
    assert first.submitted > 4 * 4 * 19 and len(first.results) == first.submitted
    assert not first.errors
    assert [(r.robot, r.stamp_s, r.target, r.latency_s) for r in first.results] == \
        [(r.robot, r.stamp_s, r.target, r.latency_s) for r in again.results]
    metrics = first.metrics()
    assert metrics['miss_rate'] == 0.0
    # Workers of 10-20 ms and a 20 ms upload beat the robots' 60 ms detector.
    assert metrics['frames_by_target'].get(LOCAL, 0) < 0.2 * metrics['frames']
    assert 0.02 < metrics['mean_latency_s'] < 0.06
    assert sim.simulate(config, seed=4).results != first.results


def test_the_robots_run_the_node_code():
    kernel_run = sim.simulate(fleet(robots=1, duration_s=3.0), seed=0)
    assert kernel_run.results
    robot = sim.SimRobot.__init__.__code__.co_names
    assert 'Dispatcher' in robot and 'WorkerMonitor' in robot and 'Planner' in robot
    assert sim.Dispatcher is Dispatcher and sim.Planner is Planner


def test_robots_leave_a_worker_that_slows_down():
    config = fleet(robots=6, duration_s=40.0,
                   slowdowns=(sim.Slowdown(20.0, worker=0, factor=8.0),))
    run = sim.simulate(config, seed=1)
    before = run.metrics(10.0, 20.0)['frames_by_target']
    after = run.metrics(25.0, 39.0)['frames_by_target']
    assert before.get('edge1', 0) > before.get('edge2', 0)
    assert after.get('edge1', 0) < 0.2 * sum(after.values()), after
    assert run.metrics(20.0, 39.0)['miss_rate'] < 0.05


def test_a_dead_slow_fleet_records_misses_not_silence():
    # Workers far too slow for the deadline and robots at 8 Hz on a 200 ms detector: frames
    # miss or drop, and each still ends in one outcome.
    config = replace(fleet(robots=3, workers=(0.5,), duration_s=10.0),
                     detector=ServiceProfile(0.2, 0.1), rates_hz=(8.0, 8.0))
    run = sim.simulate(config, seed=0)
    assert len(run.results) == run.submitted
    assert run.metrics(2.0, 9.0)['miss_rate'] > 0.3


def problem(rates=(6.0, 6.0, 6.0, 6.0), workers=(0.010, 0.010)) -> reference.Problem:
    return reference.Problem(
        rates, reference.Station.of(0.060, 0.1, arrival_scv=0.0),
        {f'edge{j + 1}': reference.Station.of(s, 0.1) for j, s in enumerate(workers)},
        reference.Station.of(0.02, 0.0, arrival_scv=0.0), 0.0025)


def test_the_fractional_reference_is_no_worse_than_whole_streams_and_balances():
    p = problem()
    x = reference.fractional(p)
    whole = reference.whole_stream(p)
    # Flow deviation converges from above: within 1e-4 of the optimum, never far above it.
    assert p.cost(x) <= p.cost([{t: r} for t, r in zip(whole, p.rates_hz)]) * (1 + 1e-4)
    load = {'edge1': 0.0, 'edge2': 0.0}
    for shares, rate in zip(x, p.rates_hz):
        assert sum(shares.values()) == pytest.approx(rate)
        for t, v in shares.items():
            load[t] = load.get(t, 0.0) + v
    assert load['edge1'] == pytest.approx(load['edge2'], rel=0.05)   # identical workers
    assert sorted(whole).count('edge1') == sorted(whole).count('edge2')


def test_the_reference_keeps_every_station_below_saturation():
    p = problem(rates=(8.0,) * 20, workers=(0.025, 0.025))   # 160 Hz for 80 Hz of workers
    x = reference.fractional(p)
    assert p.cost(x) < float('inf')
    worker_load = sum(v for shares in x for t, v in shares.items() if t != LOCAL)
    assert worker_load < 80.0
    assert all(shares.get(LOCAL, 0.0) * 0.060 < 1.0 for shares in x)
