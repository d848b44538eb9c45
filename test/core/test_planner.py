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

"""Tracker, control law, deadline accounting and the planner (ROS-free core)."""
import dataclasses
import math
import statistics

import pytest

from offload_ros.core.control import ControllerConfig, command, select_target
from offload_ros.core.deadline import DeadlineMonitor, DeadlineThresholds, request_timeout_s
from offload_ros.core.planner import Planner, PlannerConfig
from offload_ros.core.policy import Decision, PolicyConfig
from offload_ros.core.scenario import (ScenarioError, mean_estimates, predict_all,
                                       predict_from_estimates, predict_terms_from_estimates,
                                       scenario_from_estimates)
from offload_ros.core.tracker import Tracker, TrackerConfig
from offload_ros.core.types import Box, Observation


def person(x, y=100.0, w=40.0, h=100.0, score=0.9):
    return Observation(Box(x, y, w, h), 'person', score)


def test_tracker_keeps_ids_for_moving_people_and_births_new_ones():
    tracker = Tracker(TrackerConfig(min_hits=2, max_age_s=0.5))
    ids_over_time = []
    for i in range(20):  # two people walking in opposite directions at 10 Hz
        t = i * 0.1
        out = tracker.update([person(100 + 5 * i), person(400 - 5 * i)], t)
        ids_over_time.append({o.track_id for o in out})
    assert ids_over_time[0] == set()                    # birth needs min_hits
    assert all(ids == {'1', '2'} for ids in ids_over_time[1:])
    # Gap shorter than max_age: same ids; longer: tracks die and new ids are born.
    out = tracker.update([person(100 + 5 * 22), person(400 - 5 * 22)], 2.2)
    assert {o.track_id for o in out} == {'1', '2'}
    tracker.update([], 3.0)
    tracker.update([person(50)], 3.1)
    assert {o.track_id for o in tracker.update([person(52)], 3.2)} == {'3'}


def test_tracker_predicts_with_velocity():
    tracker = Tracker(TrackerConfig(min_hits=1))
    for i in range(10):
        tracker.update([person(100 + 10 * i)], i * 0.1)   # 100 px/s to the right
    track = tracker.track('1')
    track.filter.predict(1.4)
    assert track.filter.box().x == pytest.approx(100 + 10 * 14, abs=8)


def test_controller_law_turns_towards_and_approaches():
    cfg = ControllerConfig(image_width_px=640, image_height_px=480)
    left = Observation(Box(20, 200, 40, 100), 'person', 0.9, '1')
    linear, angular, state = command(left, 0.1, cfg)
    assert angular > 0 and linear > 0 and 'following' in state   # far (small box) and left
    near_right = Observation(Box(560, 0, 80, 470), 'person', 0.9, '1')
    linear, angular, _ = command(near_right, 0.1, cfg)
    assert angular < 0 and linear < 0
    assert abs(linear) <= cfg.max_linear_m_s and abs(angular) <= cfg.max_angular_rad_s


@pytest.mark.parametrize('target,age,needle', [(None, 0.0, 'no target'),
                                               (person(300), 0.6, 'old'),
                                               (person(300), math.inf, 'old')])
def test_controller_safety_stop(target, age, needle):
    linear, angular, state = command(target, age, ControllerConfig(stale_after_s=0.5))
    assert (linear, angular) == (0.0, 0.0) and needle in state


def test_controller_keeps_following_the_same_id():
    tracks = [Observation(Box(0, 0, 10, 20), 'person', 0.9, '1'),
              Observation(Box(0, 0, 50, 90), 'person', 0.9, '2'),
              Observation(Box(0, 0, 99, 99), 'dog', 0.9, '3')]
    cfg = ControllerConfig()
    assert select_target(tracks, cfg, None).track_id == '2'      # largest person
    assert select_target(tracks, cfg, '1').track_id == '1'       # sticky


def test_deadline_monitor_percentiles_and_levels():
    monitor = DeadlineMonitor(0.1, window=100, thresholds=DeadlineThresholds(0.05, 0.2))
    for i in range(90):
        monitor.record('edge1', 0.05)
    for i in range(10):
        monitor.record('local', math.inf if i < 5 else 0.2)
    s = monitor.summary()
    assert s['miss_rate'] == pytest.approx(0.1) and s['level'] == 'WARN'
    assert s['p50_s'] == pytest.approx(0.05) and s['per_target']['local']['miss_rate'] == 1.0
    for _ in range(100):
        monitor.record('local', 0.5)
    assert monitor.summary()['level'] == 'ERROR' and monitor.total_misses == 110


def test_a_request_is_cut_only_where_the_robot_could_still_run_the_frame():
    # Budget 1 s, limit 0.5 s: a robot needing 0.3 s can still run the frame after a cut.
    assert request_timeout_s(1.0, 0.5, 0.3) == 0.5
    assert request_timeout_s(0.8, 0.5, 0.3) == 0.5
    # The crossover at 5 Hz: 0.98 s left, the robot needing 644 ms. A cut at 0.5 s was a
    # certain miss; the worker gets the whole budget (the frame's deadline) instead.
    assert request_timeout_s(0.98, 0.5, 0.644) == pytest.approx(0.98)
    assert request_timeout_s(0.98, 0.5, math.inf) == pytest.approx(0.98)
    # Less budget than the limit: the deadline bounds the request, as before.
    assert request_timeout_s(0.2, 0.5, 0.0) == pytest.approx(0.2)
    assert request_timeout_s(-0.1, 0.5, 0.1) == 0.0


def make_planner(**kw):
    planner = Planner(PlannerConfig(policy=PolicyConfig(hysteresis=0.1), **kw), ['edge1'],
                      local_service_s=0.05)
    for i in range(50):
        planner.frame_arrived(i * 0.1)
    return planner


def test_planner_offloads_to_a_fast_worker_and_leaves_a_failed_one():
    planner = make_planner()
    assert planner.evaluate(5.0).target == 'local'         # no load report yet: inf
    planner.load_report('edge1', rtt_s=0.002, total_rate_hz=0.0, service_mean_s=0.01,
                        service_var_s2=1e-6, parallelism=1, own_rate_hz=0.0)
    planner.remote_done('edge1', 5.0, 50_000, 1_000, round_trip_s=0.040, server_s=0.015,
                        queue_s=0.001, service_s=0.010)
    decision = planner.evaluate(5.1)
    assert decision.target == 'edge1'
    edge = decision.predictions['edge1']
    # Bandwidth from the transfer: 51 kB over 40 - 15 - 2 = 23 ms.
    assert planner.bandwidth_bps('edge1', 5.1) == pytest.approx(51_000 * 8 / 0.023)
    assert edge.terms['overhead_s'] == pytest.approx(0.002 + 0.004)
    planner.worker_failed('edge1', 'connection refused')
    assert planner.evaluate(5.2).target == 'local'
    assert [(s.from_target, s.to_target) for s in planner.switches] == [
        ('local', 'edge1'), ('edge1', 'local')]


def test_planner_override_and_forced_target():
    planner = make_planner(bandwidth_override_bps=1e6)
    planner.load_report('edge1', 0.002, 0.0, 0.01, 0.0, 1, 0.0)
    assert planner.evaluate(5.0).target == 'local'          # 50 kB at 1 Mbit/s: unstable
    forced = make_planner(forced_target='edge1')
    assert forced.evaluate(5.0).target == 'edge1'


def test_planner_periodic_arrivals_do_not_queue():
    planner = make_planner()
    local = planner.predict(5.0)['local']
    assert local.terms['queue_wait_s'] == pytest.approx(0.0, abs=1e-6)   # D/D/1
    poisson = make_planner(arrival_model='poisson').predict(5.0)['local']
    assert poisson.terms['queue_wait_s'] == pytest.approx(0.5 * (1 / 10 - 1 / 20))


def test_planner_leaves_the_robot_once_its_queue_outruns_the_rate_estimate():
    """
    After a rate step the estimate lags (20 frames).

    The frames already waiting for the robot's detector bound the wait from below, and the decision
    moves at the next epoch.
    """
    planner = make_planner(arrival_model='poisson')   # 10 Hz estimate; robot 50 ms: rho 0.5
    planner.load_report('edge1', rtt_s=0.002, total_rate_hz=0.0, service_mean_s=0.06,
                        service_var_s2=1e-6, parallelism=1, own_rate_hz=0.0)
    planner.remote_done('edge1', 5.0, 20_000, 1_000, round_trip_s=0.080, server_s=0.061,
                        queue_s=0.0, service_s=0.060)
    steady = planner.predict(5.0)
    assert 0.11 < steady['edge1'].latency_s < 0.14
    assert planner.evaluate(5.0).target == 'local'      # 75 ms here against ~128 ms there
    planner.local_queue(1)                              # one waiting: 50 ms > the M/D/1 25 ms
    one = planner.predict(5.0)['local']
    assert one.terms['queue_wait_s'] == pytest.approx(0.05)
    assert one.latency_s == pytest.approx(steady['local'].latency_s + 0.025)
    assert planner.evaluate(5.1).target == 'local'      # 100 ms: still the faster
    planner.local_queue(3)
    assert planner.predict(5.0)['local'].terms['queue_wait_s'] == pytest.approx(0.15)
    assert planner.evaluate(5.2).target == 'edge1'
    planner.local_queue(0)                              # drained: back to the steady model
    assert planner.predict(5.0)['local'].latency_s == pytest.approx(steady['local'].latency_s)
    assert planner.predict(5.0)['edge1'].latency_s == pytest.approx(steady['edge1'].latency_s)


def test_planner_snapshot_replans_to_the_same_predictions():
    """
    A record's `estimates` are a complete plan.

    Offload_plan reproduces the decision's predictions from them (up to the common ingress and the
    transient backlog term).
    """
    planner = make_planner(arrival_model='poisson')
    planner.load_report('edge1', rtt_s=0.002, total_rate_hz=4.0, service_mean_s=0.02,
                        service_var_s2=1e-5, parallelism=1, own_rate_hz=0.0)
    for i, size in enumerate([40_000, 42_000, 38_000, 41_000, 39_000, 40_000]):
        planner.remote_done('edge1', 5.0 + 0.01 * i, size, 1_000, round_trip_s=0.050,
                            server_s=0.022, queue_s=0.001, service_s=0.020)
    decision = planner.evaluate(5.1)
    plan = scenario_from_estimates(planner.snapshot(5.1), 'edge1')
    local, remote = predict_all(plan)
    assert plan.arrival_scv == 1.0 and plan.workers[0].tenant_rate_hz == pytest.approx(4.0)
    assert local.latency_s == pytest.approx(decision.predictions['local'].latency_s)
    assert remote['edge1'].latency_s == pytest.approx(
        decision.predictions['edge1'].latency_s)
    # Payload sizes spread by ~3%: the measured uplink is close to deterministic.
    assert 0.0 < plan.network.request_scv < 0.01
    with pytest.raises(ScenarioError, match='edge9'):
        scenario_from_estimates(planner.snapshot(5.1), 'edge9')


def loaded_planner(bandwidth_rtt_s=0.050):
    planner = make_planner(arrival_model='poisson')
    planner.load_report('edge1', rtt_s=0.002, total_rate_hz=4.0, service_mean_s=0.02,
                        service_var_s2=1e-5, parallelism=1, own_rate_hz=0.0)
    planner.remote_done('edge1', 5.0, 40_000, 1_000, round_trip_s=bandwidth_rtt_s,
                        server_s=0.022, queue_s=0.001, service_s=0.020)
    planner.frame_ingress(0.003)
    planner.frame_handled('local', 0.001)
    planner.frame_handled('edge1', 0.002)
    return planner


def test_slow_first_frames_do_not_lock_the_robot_out_of_a_worker():
    # Case 2's failed start (scenario test, session 9): the first two offloaded frames
    # spent 453 and 117 ms in the node outside the round trip (start-up), later ones 4 ms;
    # a median of the two added 287 ms to every remote prediction, so no frame went remote
    # again to replace it.
    planner = make_planner(arrival_model='poisson')
    planner.load_report('edge1', rtt_s=0.002, total_rate_hz=0.0, service_mean_s=0.058,
                        service_var_s2=1e-5, parallelism=1, own_rate_hz=0.0)
    for i in range(10):
        planner.local_done(0.200, 4.0 + 0.1 * i)
    planner.remote_done('edge1', 5.0, 50_000, 1_000, round_trip_s=0.075, server_s=0.060,
                        queue_s=0.001, service_s=0.058)
    for slow in (0.457, 0.117):
        planner.frame_handled('edge1', slow)
    planner.frame_handled('local', 0.010)
    assert planner.handling_s('edge1') == pytest.approx(0.117)   # the least of too few
    assert planner.evaluate(5.1).target == 'edge1'
    for later in (0.200, 0.300):
        planner.frame_handled('edge1', later)
    assert planner.handling_s('edge1') == pytest.approx(0.117)
    planner.frame_handled('edge1', 0.250)
    assert planner.handling_s('edge1') == pytest.approx(0.250)   # five: their median
    assert planner.handling_s('local') == pytest.approx(0.010)


def test_predict_from_estimates_reproduces_the_decision_with_ingress_and_handling():
    planner = loaded_planner()
    for hold in (0.004, 0.003, 0.005):   # the detector thread's time besides inference
        planner.local_released(hold)
    assert planner.local_model().hold_s == pytest.approx(0.004)
    decision = planner.evaluate(5.1)
    snapshot = planner.snapshot(5.1)
    for target in ('local', 'edge1'):
        assert predict_from_estimates(snapshot, target) == pytest.approx(
            decision.predictions[target].latency_s)
        # The mean of identical records is the record.
        assert predict_from_estimates(mean_estimates([snapshot] * 3, target), target) == \
            pytest.approx(decision.predictions[target].latency_s)
        # Term by term too, so a measured stage can be held against the term predicting it.
        terms = predict_terms_from_estimates(snapshot, target)
        assert terms == pytest.approx(dict(decision.predictions[target].terms))
        assert sum(terms.values()) == pytest.approx(predict_from_estimates(snapshot, target))
    assert decision.predictions['local'].terms['ingress_s'] == pytest.approx(0.003)
    # A long tail of ingress (the robot's one core busy with its detector) is in every
    # frame's latency: its mean, not its median, is the term.
    for delay in (0.001, 0.001, 0.001, 0.009):
        planner.frame_ingress(delay)
    ingress = [d for d in planner.ingress_samples]
    later = planner.evaluate(5.2)
    assert later.predictions['edge1'].terms['ingress_s'] == pytest.approx(
        sum(ingress) / len(ingress)) and statistics.median(ingress) < sum(ingress) / len(ingress)
    assert planner.snapshot(5.2).ingress_s == pytest.approx(sum(ingress) / len(ingress))
    assert snapshot.device['hold_s'] == pytest.approx(0.004)
    without = dataclasses.replace(snapshot, device={**snapshot.device, 'hold_s': 0.0})
    assert predict_from_estimates(without, 'local') < predict_from_estimates(snapshot, 'local')
    with pytest.raises(ScenarioError, match='edge9'):
        predict_from_estimates(snapshot, 'edge9')
    with pytest.raises(ScenarioError, match='no records'):
        mean_estimates([], 'local')


def test_mean_estimates_average_time_per_bit_and_sit_below_the_mean_prediction():
    """
    Two moments of a link at 16 and 4 Mbit/s.

    The average link moves a bit in the mean time per bit (6.4 Mbit/s, not 10), and the prediction
    at the averaged estimates lies below the average of the two predictions (the uplink wait is
    convex in the load).
    """
    snaps = []
    for bandwidth in (16e6, 4e6):
        planner = loaded_planner()
        planner.reconfigure(dataclasses.replace(planner.config,
                                                bandwidth_override_bps=bandwidth))
        snaps.append(planner.snapshot(5.1))
    averaged = mean_estimates(snaps, 'edge1')
    assert averaged['networks']['edge1']['bandwidth_bps'] == pytest.approx(6.4e6)
    assert averaged['rate_hz'] == pytest.approx(snaps[0].rate_hz)
    per_record = [predict_from_estimates(s, 'edge1') for s in snaps]
    at_mean = predict_from_estimates(averaged, 'edge1')
    assert min(per_record) < at_mean < sum(per_record) / 2


def test_planner_link_model_measured_halves_the_uplink_wait_of_fixed_payloads():
    def uplink_wait(link_model):
        planner = make_planner(arrival_model='poisson', link_model=link_model)
        planner.load_report('edge1', 0.002, 0.0, 0.01, 0.0, 1, 0.0)
        for i in range(6):   # fixed-size raw frames: 230 kB in 92 ms (20 Mbit/s)
            planner.remote_done('edge1', 5.0 + 0.01 * i, 230_400, 1_000,
                                round_trip_s=0.0952 + 0.012, server_s=0.012,
                                queue_s=0.001, service_s=0.010)
        return planner.predict(5.1)['edge1'].terms['uplink_wait_s']
    assert uplink_wait('measured') == pytest.approx(0.5 * uplink_wait('exponential'))


def test_planner_payload_change_replaces_the_request_size_estimate():
    planner = make_planner()
    planner.payload(230_400, 900)                 # the first request replaces the prior
    assert planner.request_bytes == pytest.approx(230_400)
    for _ in range(5):
        planner.payload(230_400, 900)
    planner.payload(12_000, 900)                  # same setting: smoothed
    assert planner.request_bytes == pytest.approx(230_400 + 0.2 * (12_000 - 230_400))
    planner.payload_changed()                     # raw -> JPEG by parameter
    planner.payload(12_000, 900)
    assert planner.request_bytes == pytest.approx(12_000)


def test_planner_request_sizes_leave_out_requests_sent_before_a_payload_change():
    """
    A raw frame in flight when JPEG is set is answered after the change.

    Its 230 kB must not enter the JPEG sizes (their SCV, and the FIFO uplink's wait).
    """
    planner = make_planner()
    raw = planner.request_started('edge1', 1.0)
    planner.payload_changed()                     # raw -> JPEG by parameter
    jpeg = [planner.request_started('edge1', 1.1 + 0.1 * i) for i in range(6)]
    planner.remote_done('edge1', 2.0, 230_400, 900, 1.0, 0.05, 0.0, 0.05, token=raw)
    for i, token in enumerate(jpeg):
        planner.remote_done('edge1', 2.1 + 0.1 * i, 17_000 + 100 * i, 900, 0.1, 0.05, 0.0,
                            0.05, token=token)
    assert planner.request_bytes == pytest.approx(17_000, rel=0.02)
    assert planner.request_scv() < 0.001
    planner.request_abandoned('edge1', planner.request_started('edge1', 3.0))
    assert not planner._request_generation        # every token ended


def test_planner_requests_in_flight_hold_the_bandwidth_estimate_until_they_end():
    """
    Two uploads share a 4 Mbit/s link.

    While the second is in flight the busy period of the first is incomplete and the estimate
    holds; once both are in, it is the link's rate. A failed request is let go of, so it cannot
    freeze the estimate.
    """
    planner = make_planner()
    planner.load_report('edge1', rtt_s=0.0, total_rate_hz=0.0, service_mean_s=0.01,
                        service_var_s2=0.0, parallelism=1, own_rate_hz=0.0)
    planner.remote_done('edge1', 1.1, 50_000, 0, 0.100, 0.0, 0.0, 0.0)   # 4 Mbit/s alone
    assert planner.bandwidth_bps('edge1', 1.1) == pytest.approx(4e6)
    first, second = planner.request_started('edge1', 2.0), planner.request_started('edge1', 2.05)
    # Fair sharing: the first ends at 2.15 (0.05 s alone + 0.1 s at half rate) ...
    planner.remote_done('edge1', 2.15, 50_000, 0, 0.150, 0.0, 0.0, 0.0, token=first)
    assert planner.bandwidth_bps('edge1', 2.15) == pytest.approx(4e6)    # held, not 2.7
    # ... the second at 2.2: the busy period [2.0, 2.2] moved 100 kB: 4 Mbit/s.
    planner.remote_done('edge1', 2.2, 50_000, 0, 0.150, 0.0, 0.0, 0.0, token=second)
    assert planner.bandwidth_bps('edge1', 2.2) == pytest.approx(4e6)
    lost = planner.request_started('edge1', 2.5)
    planner.request_abandoned('edge1', lost)
    planner.remote_done('edge1', 3.0, 50_000, 0, 0.050, 0.0, 0.0, 0.0)   # 8 Mbit/s alone
    assert planner.bandwidth_bps('edge1', 3.0) == pytest.approx(6e6)     # median of 4 and 8


def test_offloading_to_names_the_workers_the_decision_sends_frames_to():
    planner = loaded_planner()
    planner.decision = Decision('local', 'test')
    assert not planner.offloading_to('edge1')
    planner.decision = Decision('edge1/split@7', 'test')
    assert planner.offloading_to('edge1') and not planner.offloading_to('edge2')
    shares = {'local': 0.7, 'edge1': 0.3, 'edge2': 0.0}
    planner.decision = Decision('local', 'split', fractions=shares)
    assert planner.offloading_to('edge1') and not planner.offloading_to('edge2')


def offloading_planner(local_service_s, worker_service_s, **kw):
    """1 Hz frames; edge1 answering a 51 kB request in its service time + 52 ms."""
    planner = Planner(PlannerConfig(policy=PolicyConfig(hysteresis=0.1), **kw), ['edge1'],
                      local_service_s=local_service_s)
    for i in range(30):
        planner.frame_arrived(float(i))
    planner.load_report('edge1', rtt_s=0.002, total_rate_hz=1.0, service_mean_s=worker_service_s,
                        service_var_s2=1e-6, parallelism=1, own_rate_hz=1.0)
    planner.remote_done('edge1', 29.0, 50_000, 1_000, round_trip_s=worker_service_s + 0.052,
                        server_s=worker_service_s, queue_s=0.0, service_s=worker_service_s)
    return planner


def test_an_offloading_robot_re_times_its_detector_where_it_could_win():
    # Start-up profile 220 ms (every process starting at once); the detector really takes
    # 100 ms; the worker ~150 ms. Without re-timing the robot never runs a frame again.
    planner = offloading_planner(0.22, 0.1)
    assert planner.evaluate(30.0).target == 'edge1'
    edge = planner.decision.predictions['edge1'].latency_s
    assert 0.22 <= 1.5 * edge                          # a near tie: worth re-timing
    assert planner.local_profile_due(30.0)
    planner.local_queue(1)
    assert not planner.local_profile_due(30.0)         # a frame waits for the detector
    planner.local_queue(0)
    planner.local_profile_started(30.0)
    assert not planner.local_profile_due(34.9) and planner.local_profile_due(35.0)
    now = 30.0
    while planner.decision.target == 'edge1':
        now += 5.2      # a period after the last inference ended (0.1 s after its start)
        assert planner.local_profile_due(now), now
        planner.local_profile_started(now)
        assert planner.local_retimed(0.1, now + 0.1)
        planner.evaluate(now + 0.2)
        assert now < 60.0, 'the re-timings never moved the decision'
    # Three re-timings: the robot's mean (0.22 + 3 x 0.1) / 4 = 130 ms beats 150 / 1.1.
    assert planner.decision.target == 'local' and now == pytest.approx(45.6)
    assert not planner.local_profile_due(now + 10)     # local frames keep it fresh


def test_a_re_timing_beside_the_offloading_work_only_lowers_the_robot_estimate():
    # The demo's robot: 59 ms at start-up, re-timed at 73-100 ms while a worker on the same
    # cores served its frames; its own frames then took 65 ms.
    planner = offloading_planner(0.059, 0.03)
    before = planner.local_service.windowed().mean_s
    assert not planner.local_retimed(0.083, 40.0)
    assert planner.local_service.windowed().mean_s == before
    assert planner.local_retimed(0.05, 45.0)
    assert planner.local_service.windowed().mean_s == pytest.approx((0.059 + 0.05) / 2)


def test_no_re_timing_where_the_robot_cannot_win_or_when_off():
    far = offloading_planner(0.25, 0.02)               # worker ~75 ms: 0.25 > 1.5 x 0.075
    assert far.evaluate(30.0).target == 'edge1' and not far.local_profile_due(100.0)
    off = offloading_planner(0.25, 0.1, local_profile_period_s=0.0)
    assert off.evaluate(30.0).target == 'edge1' and not off.local_profile_due(100.0)
    with pytest.raises(ValueError, match='local_profile_period_s'):
        PlannerConfig(local_profile_period_s=-1.0)
    with pytest.raises(ValueError, match='local_profile_margin'):
        PlannerConfig(local_profile_margin=float('nan'))
