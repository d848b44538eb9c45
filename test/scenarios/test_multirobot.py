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
A real multi-robot run, and the fleet simulator's prediction of it.

Four robots, each in its own network namespace with shaped links, share two workers; the
fleet simulator, given the run's measured parameters, predicts its latency.
"""
import pytest

from offload_ros.scenarios import multirobot
from offload_ros.scenarios.netns import ScenarioUnavailable, check_capabilities


@pytest.mark.scenario
def test_four_robots_share_two_workers_and_the_simulator_predicts_the_run(tmp_path):
    try:
        check_capabilities()
    except ScenarioUnavailable as e:
        pytest.skip(f'network namespaces unavailable: {e}')
    summary = multirobot.run(robots=4, workers=2, duration_s=45.0, rate_hz=2.0,
                             detector_ms=200.0, worker_fraction=0.3, bandwidth_mbps=20.0,
                             deadline_s=1.0, out=tmp_path, log=lambda line: None)
    assert summary['robots'] == 4 and summary['frames'] > 4 * 2 * 30
    assert summary['received'] >= summary['frames']
    assert summary['frames_without_outcome'] == 0, summary
    assert set(summary['frames_by_target']) >= {'edge1', 'edge2'}, summary
    assert summary['miss_rate'] < 0.05
    predicted = multirobot.simulated(summary, seeds=2)
    # The goal is 10% (docs/fleet.md has the measured gap); the test bounds it at
    # 25% so that a noisy shared machine does not fail it, and a broken simulator does.
    ratio = predicted['ratio_to_run']
    assert 0.75 < ratio < 1.25, (predicted['mean_latency_s'], summary['mean_latency_s'])
