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

"""Estimators with injected clocks, and the decision policy."""
import math

import numpy as np
import pytest

from offload_ros.core import estimators
from offload_ros.core.latency import Prediction
from offload_ros.core.policy import PolicyConfig, decide


def test_arrival_rate_from_poisson_times():
    rng = np.random.default_rng(1)
    times = np.cumsum(rng.exponential(1 / 8.0, 4000))
    est = estimators.ArrivalRateEstimator(window_s=400.0)
    for t in times:
        est.add(float(t))
    assert est.rate_hz(float(times[-1])) == pytest.approx(8.0, rel=0.05)


def test_arrival_rate_decays_when_stream_stops():
    est = estimators.ArrivalRateEstimator(window_s=10.0)
    for i in range(50):
        est.add(i * 0.1)
    assert est.rate_hz(4.9) == pytest.approx(10.0)
    assert est.rate_hz(9.0) < 6.0
    assert est.rate_hz(30.0) == 0.0
    kept = estimators.ArrivalRateEstimator(window_s=10.0, min_events=20)
    for i in range(50):
        kept.add(i * 0.1)
    assert kept.rate_hz(30.0) < 1.0                  # the last 20 frames, 25 s ago
    assert kept.rate_hz(70.0) == 0.0                 # older than 6 windows: forgotten


def test_slow_streams_are_measured_over_enough_frames():
    """
    1 Hz Poisson: a 5 s window holds ~5 frames and its estimate spreads +-45%.

    Keeping the latest 20 frames brings the spread to about 1/sqrt(20) = 22%.
    """
    rng = np.random.default_rng(4)
    times = np.cumsum(rng.exponential(1.0, 3000))
    spread = {}
    for min_events in (0, 20):
        est = estimators.ArrivalRateEstimator(window_s=5.0, min_events=min_events)
        samples = []
        for i, t in enumerate(times):
            est.add(float(t))
            if i > 50 and i % 7 == 0:
                samples.append(est.rate_hz(float(t)))
        spread[min_events] = (np.mean(samples), np.std(samples))
    assert spread[0][1] > 0.4 and spread[20][1] < 0.3
    assert spread[20][0] == pytest.approx(1.0, rel=0.1)
    # A fast stream still uses the window alone: a step from 1 to 10 Hz shows within 3 s.
    est = estimators.ArrivalRateEstimator(window_s=5.0, min_events=20)
    t = 0.0
    for _ in range(30):
        t += 1.0
        est.add(t)
    for _ in range(30):
        t += 0.1
        est.add(t)
    assert est.rate_hz(t) > 5.0


def test_arrival_rate_is_unbiased_for_poisson_and_exact_for_a_periodic_camera():
    """(n-1)/span alone reads 1 Hz Poisson 5.6% high over the 20 frames kept."""
    rng = np.random.default_rng(7)
    for rate_hz in (1.0, 8.0):
        times = np.cumsum(rng.exponential(1.0 / rate_hz, 12000))
        est = estimators.ArrivalRateEstimator(window_s=5.0, min_events=20)
        samples = []
        for i, t in enumerate(times):
            est.add(float(t))
            if i > 100 and i % 7 == 0:
                samples.append(est.rate_hz(float(t)))
        assert np.mean(samples) == pytest.approx(rate_hz, rel=0.025)
    periodic = estimators.ArrivalRateEstimator(window_s=5.0, min_events=20)
    for i in range(200):
        periodic.add(i / 10.0)
    assert periodic.rate_hz(19.9) == pytest.approx(10.0, rel=1e-9)


def test_a_drop_in_rate_is_not_held_back_by_the_frames_kept():
    """
    A rate drop from 8 to 1 Hz is detected.

    8 -> 1 Hz: the 20 frames kept for slow streams are mostly 8 Hz ones for 15 s after the step
    unless the drop is detected (10 s after it: 1.68 Hz, median of 100 seeds).
    """
    def after_step(drop_alpha, seed, seconds=10.0):
        rng = np.random.default_rng(seed)
        est = estimators.ArrivalRateEstimator(window_s=5.0, min_events=20,
                                              drop_alpha=drop_alpha)
        t = 0.0
        for _ in range(200):
            t += rng.exponential(1 / 8.0)
            est.add(t)
        step = t
        while True:
            gap = rng.exponential(1.0)
            if t + gap > step + seconds:
                return est.rate_hz(t)
            t += gap
            est.add(t)
    detected = [after_step(1e-3, seed) for seed in range(60)]
    held = [after_step(0.0, seed) for seed in range(60)]
    assert np.median(detected) < 1.25 and np.median(held) > 1.5
    with pytest.raises(ValueError, match='drop_alpha'):
        estimators.ArrivalRateEstimator(window_s=5.0, drop_alpha=1.0)


def test_bandwidth_ignores_idle_gaps():
    est = estimators.BandwidthEstimator(window_s=30.0, max_samples=8)
    for i in range(10):  # 50 kB in 20 ms each = 20 Mbit/s, with 1 s gaps between transfers
        est.add_transfer(float(i), 50_000, 0.020)
    assert est.bandwidth_bps(9.0) == pytest.approx(20e6)
    est.add_transfer(9.5, 10, 0.001)       # tiny probes measure latency, not bandwidth
    assert est.sample_count(9.5) == 8      # capped: a step shows within a few transfers
    assert est.bandwidth_bps(100.0) == pytest.approx(20e6)   # stale: last estimate kept


def test_bandwidth_does_not_count_uploads_queued_behind_each_other_twice():
    """
    On a saturated link our uploads queue.

    The second of two overlapping 50 kB uploads at 3.5 Mbit/s takes 179 ms end to end but had the
    link to itself for only 114 ms.
    """
    est = estimators.BandwidthEstimator(window_s=5.0)
    tx = 50_000 * 8 / 3.5e6
    est.add_transfer(tx, 50_000, tx, start_s=0.0)
    est.add_transfer(2 * tx, 50_000, 2 * tx - 0.05, start_s=0.05)
    assert est.bandwidth_bps(2 * tx) == pytest.approx(3.5e6)
    naive = 100_000 * 8 / (tx + 2 * tx - 0.05)        # sum of durations: 2.6 Mbit/s
    assert naive < 0.8 * 3.5e6


def test_bandwidth_follows_a_step_within_the_window():
    est = estimators.BandwidthEstimator(window_s=1.0, max_samples=4)
    for i in range(8):
        est.add_transfer(i * 0.25, 50_000, 0.020)       # 20 Mbit/s
    for i in range(8, 12):
        est.add_transfer(i * 0.25, 50_000, 0.200)       # 2 Mbit/s from t = 2 s
    assert est.bandwidth_bps(2.75) == pytest.approx(2e6)
    assert estimators.BandwidthEstimator(1.0).bandwidth_bps(0.0) is None
    jump = estimators.BandwidthEstimator(window_s=10.0)
    for i in range(5):
        jump.add_transfer(float(i), 50_000, 0.200)       # 2 Mbit/s
    jump.add_transfer(5.0, 50_000, 0.020)                # one transfer after a step up
    assert jump.bandwidth_bps(5.0) == pytest.approx(20e6)
    jump.add_transfer(6.0, 50_000, 0.025)                # within the ratio: median
    assert jump.bandwidth_bps(6.0) == pytest.approx(0.5 * (20e6 + 16e6))


def test_bandwidth_ignores_one_transfer_stretched_by_a_sender_stall():
    est = estimators.BandwidthEstimator(window_s=2.0)
    for i in range(4):
        est.add_transfer(0.25 * i, 50_000, 0.100)         # 4 Mbit/s
    est.add_transfer(1.0, 50_000, 0.250)                  # stalled 150 ms by a CPU quota
    assert est.bandwidth_bps(1.0) == pytest.approx(4e6)


def test_service_time_window_and_ewma():
    rng = np.random.default_rng(2)
    samples = rng.normal(0.05, 0.005, 5000)
    est = estimators.ServiceTimeEstimator(window=5000, ewma_alpha=0.01)
    est.seed(float(s) for s in samples)
    assert est.windowed().mean_s == pytest.approx(0.05, rel=0.01)
    assert est.windowed().var_s2 == pytest.approx(0.005 ** 2, rel=0.1)
    assert est.ewma().mean_s == pytest.approx(0.05, rel=0.05)
    assert est.ewma().var_s2 == pytest.approx(0.005 ** 2, rel=0.5)


def test_service_window_lets_old_samples_go_by_age_down_to_a_few():
    """
    The robot's detector at 8 Hz (76 ms, a busier CPU), then 20 min elsewhere.

    Then local frames at 1 Hz (67 ms): the 1 Hz frames describe it after 10 of them.
    """
    aged = estimators.ServiceTimeEstimator(window=100, max_age_s=30.0, min_samples=10)
    counted = estimators.ServiceTimeEstimator(window=100)
    for i in range(200):
        aged.add(0.076, i / 8.0)
        counted.add(0.076, i / 8.0)
    assert aged.windowed().count == 100            # all within 30 s: the count bounds it
    for i in range(10):
        aged.add(0.067, 1225.0 + i)
        counted.add(0.067, 1225.0 + i)
    assert aged.windowed().mean_s == pytest.approx(0.067)
    assert aged.windowed().count == 10
    assert counted.windowed().mean_s == pytest.approx(0.0751)
    for i in range(10, 60):
        aged.add(0.067, 1225.0 + i)
    assert aged.windowed().count == 31             # the last 30 s, its ends included
    untimed = estimators.ServiceTimeEstimator(window=100, max_age_s=30.0)
    untimed.seed([0.1] * 50)
    untimed.add(0.1, 1e6)
    assert untimed.windowed().count == 10          # untimed samples: older than any
    with pytest.raises(ValueError, match='max_age_s'):
        estimators.ServiceTimeEstimator(max_age_s=0.0)


def test_fit_parallelism_recovers_k():
    from offload_ros.core import queueing
    s = 0.04
    obs = [(r, queueing.md1_wait_s(r, 1 / s, 3) + s) for r in (10.0, 30.0, 60.0)]
    assert estimators.fit_parallelism(obs, s) == 3


def preds(**latency):
    return {k: Prediction(v) for k, v in latency.items()}


def test_policy_chooses_minimum_and_never_unstable():
    d = decide(preds(local=0.08, edge=0.04, busy=math.inf), PolicyConfig())
    assert d.target == 'edge'
    d = decide(preds(local=math.inf, edge=math.inf), PolicyConfig())
    assert d.target == 'local' and 'no stable target' in d.reason


def test_policy_hysteresis_holds_small_gains_only():
    config = PolicyConfig(hysteresis=0.1)
    assert decide(preds(local=0.050, edge=0.047), config, current='local').target == 'local'
    assert decide(preds(local=0.050, edge=0.040), config, current='local').target == 'edge'
    # An unstable current target is left at once, whatever the margin.
    assert decide(preds(local=0.050, edge=math.inf), config, current='edge').target == 'local'


def test_policy_deadline_filter_and_mode():
    argmin = PolicyConfig(deadline_s=0.06)
    d = decide(preds(local=0.08, edge=0.05), argmin)
    assert d.target == 'edge'
    cheap = PolicyConfig(mode='deadline', deadline_s=0.1)
    assert decide(preds(local=0.08, edge=0.05), cheap).target == 'local'
    none = decide(preds(local=0.2, edge=0.3), PolicyConfig(deadline_s=0.1))
    assert none.target == 'local' and 'no target meets deadline' in none.reason


@pytest.mark.parametrize('kwargs', [dict(mode='fastest'), dict(hysteresis=1.5),
                                    dict(deadline_s=0)])
def test_policy_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        PolicyConfig(**kwargs)


def test_median_window_recomputes_only_after_a_new_sample():
    window = estimators.MedianWindow(3)
    assert window.median() == 0.0 and window.median(default=1.5) == 1.5 and not window
    for value in (5.0, 1.0, 3.0):
        window.append(value)
    assert window.median() == 3.0
    assert window.mean() == 3.0
    window.append(0.5)            # 5.0 leaves the window of 3
    assert window.median() == 1.0 and len(window) == 3 and sorted(window) == [0.5, 1.0, 3.0]
    assert window.mean() == pytest.approx(1.5)


def test_windowed_service_profile_follows_new_samples():
    est = estimators.ServiceTimeEstimator(window=3)
    est.seed([0.1, 0.2, 0.3])
    assert est.windowed().mean_s == pytest.approx(0.2)
    assert est.windowed() is est.windowed()        # cached between samples
    est.add(0.6)
    assert est.windowed().mean_s == pytest.approx(0.366667, rel=1e-4)


def processor_sharing(arrivals_s, bits, capacity_bps):
    """Completion times of transfers fairly sharing one link (concurrent TCP flows)."""
    pending = sorted(zip(arrivals_s, range(len(arrivals_s))))
    active, done, now = {}, {}, 0.0
    while pending or active:
        next_arrival = pending[0][0] if pending else math.inf
        if active:
            rate = capacity_bps / len(active)
            first = min(active, key=active.get)
            finish = now + active[first] / rate
        else:
            finish = math.inf
        step_to = min(next_arrival, finish)
        if active:
            for k in active:
                active[k] -= (step_to - now) * capacity_bps / len(active)
        now = step_to
        if finish <= next_arrival:
            done[first] = now
            del active[first]
        else:
            _, k = pending.pop(0)
            active[k] = bits
    return [done[i] for i in range(len(arrivals_s))]


def test_bandwidth_of_a_link_shared_by_concurrent_uploads():
    """
    Bandwidth estimated over busy periods reads the link's rate.

    230 kB uploads (raw frames) at 8 Hz Poisson on a 20 Mbit/s link that concurrent flows share
    fairly (utilisation ~0.74): the estimate over busy periods is the link's rate (within 3%),
    where one transfer's bits over its own time read it ~20% off.
    """
    rng = np.random.default_rng(7)
    arrivals = np.cumsum(rng.exponential(1 / 8.0, 400))
    bits = 230_400 * 8
    ends = processor_sharing(list(arrivals), bits, 20e6)
    events = sorted([(t, 'start', i) for i, t in enumerate(arrivals)]
                    + [(t, 'end', i) for i, t in enumerate(ends)])
    est = estimators.BandwidthEstimator(window_s=1.0)
    estimates, naive = [], []
    for t, kind, i in events:
        if kind == 'start':
            est.transfer_started(i, t)
            continue
        est.add_transfer(t, 230_400, t - arrivals[i], start_s=arrivals[i], token=i)
        estimates.append(est.bandwidth_bps(t))
        naive.append(bits / (t - arrivals[i]))
    assert np.median(estimates[50:]) == pytest.approx(20e6, rel=0.03)
    assert np.mean(np.abs(np.array(estimates[50:]) / 20e6 - 1) < 0.1) > 0.8
    assert np.median(naive) < 0.85 * 20e6
    # Without knowing what is in flight, the latest busy period reads low.
    blind = estimators.BandwidthEstimator(window_s=1.0)
    for t, kind, i in events:
        if kind == 'end':
            blind.add_transfer(t, 230_400, t - arrivals[i], start_s=arrivals[i])
    assert blind.bandwidth_bps(ends[-1]) < est.bandwidth_bps(ends[-1]) * 1.01
    # An abandoned transfer stops holding busy periods open.
    est.transfer_started('lost', ends[-1])
    est.transfer_abandoned('lost')
    assert 'lost' not in est._open


def test_former_policy_mode_name_split_means_share():
    from offload_ros.core.policy import PolicyConfig
    assert PolicyConfig('split').mode == 'share'
    from offload_ros.nodes.offload_params import SPECS, OffloadConfig
    values = {s.name: s.default for s in SPECS}
    config = OffloadConfig({**values, 'policy_mode': 'split'})
    assert config.planner().policy.mode == 'share'
    assert config.deprecations() == ["policy_mode 'split' is deprecated: it is now 'share'"]
    assert OffloadConfig({**values, 'policy_mode': 'share'}).deprecations() == []
