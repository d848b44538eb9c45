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
Confidence intervals of the reports.

Student's t, batch means, the model's error paired by batch against a drifting machine.
"""
import math

import numpy as np
import pytest

from offload_ros import analysis
from offload_ros.core.records import Estimates, synthetic
from offload_ros.core.scenario import predict_from_estimates


def test_t95_table_and_its_tail():
    assert analysis.t95(1) == 12.706 and analysis.t95(10) == 2.228 and analysis.t95(30) == 2.042
    assert analysis.t95(40) == pytest.approx(2.021, rel=1e-3)
    assert analysis.t95(120) == pytest.approx(1.980, rel=1e-3)
    assert analysis.t95(10 ** 6) == pytest.approx(1.960, rel=1e-3)
    with pytest.raises(ValueError):
        analysis.t95(0)


def test_mean_half_width():
    assert analysis.mean_half_width([1.0, 2.0, 3.0]) == pytest.approx(4.303 / math.sqrt(3))
    assert analysis.mean_half_width([1.0]) is None


def test_batch_half_width_from_batch_means():
    values = np.repeat(np.arange(10.0), 30)          # ten batches of 30, means 0..9
    assert analysis.batch_half_width(list(values)) == pytest.approx(
        2.262 * np.std(np.arange(10.0), ddof=1) / math.sqrt(10))
    assert analysis.batch_half_width([1.0] * 15) == 0.0          # 5 batches of 3
    assert analysis.batch_half_width([1.0] * 9) == math.inf


def local_estimates(service_s):
    return {'rate_hz': 0.5, 'arrival_scv': 1.0, 'ingress_s': 0.001,
            'handling_s': {'local': 0.002, 'remote': 0.0},
            'device': {'service_s': service_s, 'parallelism': 1, 'hold_s': 0.0},
            'networks': {}, 'workers': []}


def test_paired_error_follows_a_drifting_robot():
    """
    The robot slows from 50 to 80 ms over the period and its online estimate follows.

    The model is 3% short of every frame. The observed mean's batch half-width holds the drift
    (~10%); the paired error recovers the 3% to within a fraction of a percent.
    """
    rng = np.random.default_rng(7)
    records = []
    for service_s in np.linspace(0.050, 0.080, 400):
        estimates = local_estimates(float(service_s))
        predicted = predict_from_estimates(estimates, 'local')
        observed = predicted / 0.97 + rng.normal(0.0, 0.0005)
        records.append(synthetic(estimates=Estimates.from_dict(estimates),
                                 observed_latency_s=observed))
    observed = [r.observed_latency_s for r in records]
    assert analysis.batch_half_width(observed) / np.mean(observed) > 0.05
    paired = analysis.paired_error(records, 'local')
    assert paired['error_pct'] == pytest.approx(-3.0, abs=0.2)
    assert paired['half_width_pct'] < 0.5 and paired['batches'] == 10
    assert analysis.paired_error(records[:19], 'local') is None      # under two a batch
