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

"""Deadline hedging: tail probability and the latest safe local start (ROS-free core)."""
import math

import numpy as np
import pytest

from offload_ros.core import hedging, latency
from offload_ros.core.latency import NetworkModel, Prediction, WorkerModel


def test_tail_of_an_mm1_sojourn_matches_simulation():
    """An M/M/1 uplink plus fixed terms: the model's exceedance equals the simulated one."""
    network = NetworkModel(10e6, 50_000, 1_000)       # 40 ms uplink service
    pred = latency.predict_offload(15.0, network, WorkerModel('edge1', 0.001))
    rng = np.random.default_rng(7)
    lam, mu = 15.0, 1 / 0.04
    sojourn = rng.exponential(1 / (mu - lam), 200_000)   # M/M/1 sojourn is exponential
    fixed = pred.latency_s - (pred.terms['uplink_wait_s'] + pred.terms['uplink_transfer_s']
                              + pred.terms['queue_wait_s'] + pred.terms['downlink_wait_s'])
    for deadline in (0.1, 0.2, 0.3):
        simulated = float(np.mean(sojourn + fixed > deadline))
        assert hedging.miss_probability(pred, deadline) == pytest.approx(simulated, abs=0.01)


def test_observed_quantiles_raise_a_too_light_tail_but_never_lower_it():
    pred = Prediction(0.1, {'uplink_wait_s': 0.005, 'uplink_transfer_s': 0.02,
                            'service_s': 0.07, 'overhead_s': 0.005})
    light = hedging.miss_probability(pred, 0.25)
    stalls = [0.1] * 15 + [0.4] * 5            # a quarter of recent frames took 400 ms
    assert hedging.miss_probability(pred, 0.25, stalls) > 10 * light
    calm = [0.09] * 30
    assert hedging.miss_probability(pred, 0.25, calm) == pytest.approx(light)
    assert hedging.miss_probability(pred, 0.25, [math.inf] * 25) == 1.0
    assert hedging.miss_probability(Prediction(math.inf), 0.25) == 1.0
    assert hedging.miss_probability(pred, 0.05) == 1.0        # below the fixed part


def test_latest_local_start_leaves_the_local_latency():
    local = Prediction(0.16, {'service_s': 0.16})
    assert hedging.latest_local_start_s(100.0, 0.5, local) == pytest.approx(100.3)
    assert hedging.latest_local_start_s(100.0, 0.5, local, guard=0.0) == pytest.approx(100.34)
