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

"""Energy per frame and the energy-aware policy mode (ROS-free core)."""
import math

import pytest

from offload_ros.core import energy
from offload_ros.core.latency import Prediction
from offload_ros.core.planner import Planner, PlannerConfig
from offload_ros.core.policy import PolicyConfig

MODEL = energy.EnergyModel(compute_w=6.0, idle_w=2.5, tx_j_per_byte=8e-8,
                           rx_j_per_byte=4e-8, worker_w=70.0)


def remote(latency_s, up_s=0.02, service_s=0.03):
    return Prediction(latency_s, {'ingress_s': 0.005, 'uplink_transfer_s': up_s,
                                  'service_s': service_s, 'downlink_transfer_s': 0.001})


def test_frame_energy_follows_the_platform_model():
    local = energy.frame_energy(
        'local', Prediction(0.2, {'queue_wait_s': 0.04, 'service_s': 0.16}), MODEL)
    assert local.robot_j == pytest.approx(6.0 * 0.16) and local.total_j == local.robot_j
    e = energy.frame_energy('edge1', remote(0.1), MODEL, 50_000, 1_000)
    waiting = 0.1 - 0.005 - 0.02 - 0.001
    assert e.robot_j == pytest.approx(8e-8 * 50_000 + 4e-8 * 1_000 + 2.5 * waiting)
    assert e.total_j == pytest.approx(e.robot_j + 70.0 * 0.03)
    assert math.isinf(energy.frame_energy('edge1', Prediction(math.inf), MODEL).robot_j)


def test_robot_energy_only_picks_the_cheapest_feasible_target():
    preds = {'local': Prediction(0.18, {'service_s': 0.16}), 'edge1': remote(0.30),
             'edge2': remote(0.60)}
    energies = {n: energy.frame_energy(n, p, MODEL, 50_000, 1_000) for n, p in preds.items()}
    only_robot = energy.EnergyWeights(1.0, 0.0, 0.0)
    # edge1: 0.7 J of waiting < 0.96 J of inference; edge2 is cheaper still but too slow.
    target, why = energy.choose(preds, energies, only_robot, 0.5, 0.0, None)
    assert target == 'edge1' and 'least energy' in why
    only_latency = energy.EnergyWeights(0.0, 0.0, 1.0)
    assert energy.choose(preds, energies, only_latency, 0.5, 0.0, None)[0] == 'local'
    # Hysteresis: the current target is held unless beaten by more than the margin.
    held = energy.choose(preds, energies, energy.EnergyWeights(0.5, 0.0, 0.5), 0.5, 0.5,
                         'local')
    assert held[0] == 'local' and held[1].startswith('hold local')


@pytest.mark.parametrize('weights', [(0.5, 0.5, 0.5), (-0.2, 0.6, 0.6), (1.0, 0.0, math.nan)])
def test_weights_must_be_non_negative_and_sum_to_one(weights):
    with pytest.raises(ValueError, match='sum to 1'):
        energy.EnergyWeights(*weights)


def test_energy_mode_stays_on_a_slower_worker_within_the_deadline():
    """
    Case 1 at 2 Mbit/s: the energy mode stays remote where the latency mode goes local.

    Case 1 at 2 Mbit/s: the worker is slower than the robot but meets the 0.5 s deadline and
    costs the robot less: the latency mode goes local, the energy mode stays remote.
    """
    def planner(mode):
        p = Planner(PlannerConfig(policy=PolicyConfig(mode, 0.1, 0.5),
                                  bandwidth_override_bps=2e6,
                                  energy_weights=energy.EnergyWeights(0.8, 0.0, 0.2)),
                    ['edge1'], local_service_s=0.16)
        for i in range(30):
            p.frame_arrived(i / 3.0)
        p.load_report('edge1', 0.002, 0.0, 0.05, 1e-6, 1, 0.0)
        p.remote_done('edge1', 9.9, 50_000, 1_000, 0.27, 0.055, 0.001, 0.05)
        return p
    latency_mode, energy_mode = planner('argmin').evaluate(10.0), planner('energy').evaluate(10.0)
    assert latency_mode.target == 'local'
    assert energy_mode.target == 'edge1'
    assert energy_mode.predictions['edge1'].latency_s <= 0.5
