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


"""Damped moves: robots that watch the same workers take a better target one at a time."""
import pytest

from offload_ros.core.planner import Planner, PlannerConfig
from offload_ros.core.policy import LOCAL, PolicyConfig, move_probability


def test_move_probability():
    assert move_probability(0.5, 0) == 0.5
    assert move_probability(0.5, 4) == pytest.approx(0.1)
    assert move_probability(3.0, 0) == 1.0
    assert move_probability(-0.2, 0) == 0.0
    assert move_probability(0.5, -3) == 0.5


def planner(watchers, others=0, seed=0, damped=True) -> Planner:
    p = Planner(PlannerConfig(policy=PolicyConfig(hysteresis=0.1, damped=damped), seed=seed),
                ['edge1'], local_service_s=0.06)
    for i in range(50):
        p.frame_arrived(i * 0.1)
    p.load_report('edge1', 0.002, others * 5.0, 0.01, 1e-6, 1, 0.0, tenants=others,
                  watchers=watchers)
    return p


def first_move_share(watchers, others, seeds=400):
    moved = [planner(watchers, others, seed).evaluate(5.0).target == 'edge1'
             for seed in range(seeds)]
    return sum(moved) / seeds


def test_a_lone_robot_moves_at_once():
    assert first_move_share(watchers=1, others=0) == 1.0
    assert first_move_share(watchers=None, others=3) == 1.0   # a worker that does not count
    assert first_move_share(watchers=20, others=9, seeds=50) < 1.0
    undamped = [planner(20, 9, seed, damped=False).evaluate(5.0).target for seed in range(50)]
    assert set(undamped) == {'edge1'}


def test_watched_workers_are_joined_with_the_move_probability():
    p = planner(watchers=20, others=9)
    predictions = p.predict(5.0)
    gain = 1 - predictions['edge1'].latency_s / predictions[LOCAL].latency_s
    expected = move_probability(gain, 9)
    assert 0.02 < expected < 0.2
    share = first_move_share(watchers=20, others=9, seeds=1000)
    assert share == pytest.approx(expected, abs=4 * (expected * (1 - expected) / 1000) ** 0.5)
    held = planner(watchers=20, others=9, seed=next(
        s for s in range(100) if planner(20, 9, s).evaluate(5.0).target == LOCAL))
    decision = held.evaluate(5.0)
    assert decision.target == LOCAL and 'damped move to edge1 not taken' in decision.reason
    assert not held.switches


def test_a_failed_worker_is_left_at_once_and_draws_repeat_for_a_seed():
    for seed in range(30):
        p = planner(watchers=1, seed=seed)
        assert p.evaluate(5.0).target == 'edge1'
        p.load_report('edge1', 0.002, 45.0, 0.01, 1e-6, 1, 5.0, tenants=10, watchers=20)
        p.worker_failed('edge1', 'connection refused')
        assert p.evaluate(5.1).target == LOCAL
    runs = [[planner(20, 9, seed=7).evaluate(5.0 + 0.5 * k).target for k in range(1)]
            for _ in range(2)]
    assert runs[0] == runs[1]
    draws = []
    for _ in range(2):
        p = planner(20, 9, seed=11)
        draws.append([p.evaluate(5.0 + 0.5 * k).target for k in range(40)])
    assert draws[0] == draws[1] and 'edge1' in draws[0]
