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

"""The model's live self-check: false alarms, detection, drift, calibration, ageing."""
import numpy as np
import pytest

from offload_ros.core.planner import Planner, PlannerConfig
from offload_ros.core.selfcheck import ERROR, OK, WARN, CheckConfig, SelfCheck


def feed(check, target, predicted, observed, start_s=0.0, gap_s=0.1):
    for k, (p, o) in enumerate(zip(predicted, observed)):
        check.observe(start_s + k * gap_s, target, p, o)


@pytest.mark.parametrize('seed', range(20))
def test_a_right_model_raises_no_alarm(seed):
    """Frame-to-frame noise of 15% (gamma-distributed waits) is not an error of the model."""
    rng = np.random.default_rng(seed)
    check = SelfCheck()
    statuses = set()
    for k in range(600):
        predicted = 0.05
        check.observe(k * 0.1, 'edge1', predicted, predicted * rng.gamma(44.0, 1 / 44.0))
        statuses.add(check.verdict('edge1').status)
    assert statuses == {OK}
    assert check.calibration('edge1') is None


def test_a_model_30_percent_fast_is_found_within_20_frames_and_calibrated():
    rng = np.random.default_rng(1)
    check = SelfCheck()
    observed = 0.1 * rng.gamma(44.0, 1 / 44.0, 20)
    feed(check, 'edge1', [0.07] * 20, observed)
    verdict = check.verdict('edge1')
    assert verdict.status == WARN and verdict.error == pytest.approx(-0.3, abs=0.05)
    assert verdict.calibrated and check.calibration('edge1') == pytest.approx(
        observed.sum() / 1.4)
    assert check.level() == WARN


def test_far_off_is_error_and_too_few_frames_say_nothing():
    check = SelfCheck()
    feed(check, 'local', [0.03] * 19, [0.1] * 19)
    assert check.verdict('local').status == OK and check.verdict('local').error is None
    check.observe(2.0, 'local', 0.03, 0.1)
    assert check.verdict('local').status == ERROR


def test_drift_followed_by_the_estimates_is_not_error():
    """The robot slows from 50 to 80 ms; predictions follow it 3% short: paired, it is OK."""
    observed = np.linspace(0.05, 0.08, 60)
    check = SelfCheck()
    feed(check, 'local', observed * 0.97, observed)
    verdict = check.verdict('local')
    assert verdict.status == OK and verdict.error == pytest.approx(-0.03, abs=0.005)


def test_old_pairs_are_forgotten_so_a_target_is_tried_again():
    check = SelfCheck(CheckConfig(max_age_s=10.0))
    feed(check, 'edge1', [0.05] * 30, [0.1] * 30)
    assert check.calibration('edge1') == pytest.approx(2.0)
    check.age(5.0)
    assert check.verdict('edge1').status == WARN        # -50%: at the ERROR line, not past
    check.age(100.0)
    assert check.verdict('edge1').status == OK and check.calibration('edge1') is None


def test_report_only_does_not_calibrate():
    check = SelfCheck(CheckConfig(calibrate=False))
    feed(check, 'edge1', [0.05] * 30, [0.08] * 30)
    assert check.verdict('edge1').status == WARN and check.calibration('edge1') is None


def test_config_is_checked():
    with pytest.raises(ValueError):
        CheckConfig(warn_error=0.6, error_error=0.5)
    with pytest.raises(ValueError):
        CheckConfig(window=10)


def test_planner_decides_on_the_calibrated_prediction_until_the_model_is_back():
    """A worker slower than its load report: the robot takes over, and the record says why."""
    planner = Planner(PlannerConfig(), ['edge1'], local_service_s=0.060)
    planner.load_report('edge1', 0.001, 0.0, 0.020, 0.0, 1, 0.0)
    for k in range(30):
        planner.frame_arrived(k * 0.2)
    first = planner.evaluate(6.0)
    assert first.target == 'edge1'
    model = first.predictions['edge1']
    for k in range(30):                        # every answer takes 3x the prediction
        planner.checked(6.0 + k * 0.2, 'edge1', model, 3 * model.latency_s)
    decision = planner.evaluate(12.0)
    calibrated = decision.predictions['edge1']
    model_now = calibrated.latency_s - calibrated.terms['calibration_s']
    assert calibrated.latency_s == pytest.approx(3 * model_now)
    assert decision.target == 'local'
    assert planner.estimates.workers[0].service_s == 0.020    # the model's inputs unchanged
    # The calibrated prediction's own model part is what the check keeps judging.
    planner.checked(12.2, 'edge1', calibrated, model.latency_s)
    assert planner.selfcheck.verdict('edge1').frames == 31
    # Nothing new on edge1 for max_age_s: its model is trusted and tried again.
    later = planner.evaluate(12.0 + planner.config.selfcheck.max_age_s + 10.0)
    assert 'calibration_s' not in later.predictions['edge1'].terms
