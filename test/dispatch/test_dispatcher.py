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
The ROS-free dispatcher: routing, fallback, hedging and the one-outcome rule, without rclpy.

Everything but the dispatcher and the Planner is a FAKE named as such: a clock the test moves,
pools that run their tasks when the test says, workers that answer from a script, a detector
that finds nothing. The node and scenario tests hold the same code against real parts.
"""
import pytest
from hypothesis import given, settings, strategies as st

from fakes import FakeDetector, FakeWorker, Outputs, Rig, picture
from offload_ros.dispatch.monitor import WorkerMonitor
from offload_ros.inference.picture import BadImage, Picture
from offload_ros.worker.client import WorkerRequestError, WorkerUnavailable


def one_outcome_each(rig: Rig, frames: int):
    seqs = sorted(r.seq for r in rig.records)
    assert seqs == list(range(1, frames + 1)), seqs
    assert sum(rig.d.outcomes.values()) == frames


def test_local_frame_ends_in_detections_with_its_exact_stamp():
    rig = Rig(target='local')
    stamp = rig.clock.now_ns() - 123_456_789
    rig.d.submit(stamp, 'cam', picture)
    rig.run()
    [record] = rig.records
    assert (record.outcome, record.target, record.stamp_ns) == ('detections', 'local', stamp)
    assert record.observed_latency_s == pytest.approx(0.123456789)
    assert rig.detector.runs == 1 and rig.outputs.sent == [[]]
    assert record.estimates is not None and record.predictions['local'].stable


def test_remote_frame_and_its_record():
    rig = Rig()
    rig.frame()
    rig.run()
    [record] = rig.records
    assert (record.outcome, record.target, record.fallback) == ('detections', 'edge1', False)
    assert record.round_trip_s == pytest.approx(0.02) and record.server_s == 0.012
    assert rig.worker.requests == 1 and rig.detector.runs == 0


def test_malformed_frame_is_a_drop_and_counted():
    rig = Rig()

    def bad():
        raise BadImage('truncated JPEG (at byte 12)')
    rig.frame(convert=bad)
    rig.run()
    [record] = rig.records
    assert (record.outcome, record.target) == ('drop', 'local')
    assert record.reason.startswith('malformed image: truncated JPEG')
    assert rig.d.malformed_reasons == {'truncated JPEG': 1}


def test_worker_failure_falls_back_to_the_robot_and_fails_the_worker():
    rig = Rig(worker=None)
    rig.worker.answer = WorkerUnavailable('refused', 'connection')
    rig.frame()
    rig.run()
    [record] = rig.records
    assert (record.outcome, record.target, record.planned_target, record.fallback) == \
        ('detections', 'local', 'edge1', True)
    assert 'fallback after edge1 connection' in record.reason
    assert not rig.planner.workers['edge1'].available


def test_failure_too_late_for_the_robot_is_a_miss():
    rig = Rig(local_s=0.2)
    rig.worker.answer = WorkerUnavailable('timed out', 'deadline')
    rig.worker.trip_s = 0.2
    rig.frame()
    rig.run()
    [record] = rig.records
    assert (record.outcome, record.target) == ('miss', 'edge1')
    assert 'ms left < local' in record.reason
    assert rig.planner.workers['edge1'].available     # a deadline cut is not the worker's fault


def test_refused_request_of_a_frame_that_does_not_decode_is_the_frame_fault():
    rig = Rig()
    rig.worker.answer = WorkerRequestError('400: not a JPEG')
    rig.frame(convert=lambda: Picture(jpeg=b'\xff\xd8\xff\xe0broken'))
    rig.run()
    [record] = rig.records
    assert record.outcome == 'drop' and record.reason.startswith('malformed image')
    assert rig.planner.workers['edge1'].available


def test_local_queue_full_drops():
    rig = Rig(target='local', max_local_queue=2)
    for _ in range(5):
        rig.frame()
    rig.run()
    outcomes = sorted((r.seq, r.outcome, r.reason) for r in rig.records)
    assert [o[1] for o in outcomes] == ['detections'] * 2 + ['drop'] * 3
    assert all(o[2] == 'local queue full' for o in outcomes[2:])
    one_outcome_each(rig, 5)


def test_frame_whose_deadline_passed_in_the_queue_is_dropped():
    rig = Rig(target='local', deadline_s=0.1)
    rig.frame()
    rig.clock.advance(0.2)
    rig.run()
    [record] = rig.records
    assert (record.outcome, record.reason) == ('drop', 'deadline passed in queue')
    assert rig.detector.runs == 0


def test_unexpected_exceptions_end_the_frame_as_error():
    rig = Rig(target='local', detector=FakeDetector(fail=RuntimeError('gpu fell off')))
    rig.frame()
    rig.run()
    assert rig.records[0].outcome == 'error' and 'gpu fell off' in rig.records[0].reason

    rig = Rig(outputs=Outputs(fail_message=True))
    rig.frame()
    rig.run()
    assert rig.records[0].outcome == 'error' and 'detections message' in rig.records[0].reason

    rig = Rig()
    rig.planner.route = lambda: 1 / 0
    rig.frame()
    rig.run()
    [record] = rig.records
    assert record.outcome == 'error' and record.reason.startswith('receipt: ZeroDivision')
    assert [level for level, _ in rig.log.lines].count('error') == 1


def hedged_rig(trip_s: float) -> Rig:
    # Deadline 0.1 s below the robot's predicted 0.06 s + the worker's: a miss is likely.
    rig = Rig(local_s=0.06, deadline_s=0.1, hedge_miss_probability=0.01)
    rig.worker.trip_s = trip_s
    return rig


def test_hedge_robot_wins_and_the_worker_request_is_cancelled():
    rig = hedged_rig(trip_s=0.5)
    rig.frame()
    rig.clock.advance(0.05)                 # past the latest safe local start
    assert len(rig.pools.local.tasks) == 1
    rig.pools.local.run()                   # the robot answers first
    rig.pools.io.run()
    rig.pools.remote.run()                  # then the worker: discarded
    [record] = rig.records
    assert (record.outcome, record.target, record.hedge.winner) == \
        ('detections', 'local', 'local')
    assert rig.worker.cancelled and rig.d.hedges['discarded'] == 1
    assert rig.d.hedges['won_local'] == 1 and len(rig.outputs.sent) == 1


def test_hedge_worker_wins_and_the_robot_never_runs():
    rig = hedged_rig(trip_s=0.01)
    rig.frame()
    rig.pools.remote.run()
    rig.clock.advance(1.0)                  # the hedge's timer was cancelled
    rig.run()
    [record] = rig.records
    assert (record.target, record.hedge.winner, record.hedge.local_started) == \
        ('edge1', 'edge1', False)
    assert rig.detector.runs == 0 and rig.d.hedges['won_remote'] == 1


def test_hedge_worker_fails_before_the_timer_runs_the_robot_once():
    rig = hedged_rig(trip_s=0.01)
    rig.worker.answer = WorkerUnavailable('reset', 'connection')
    rig.frame()
    rig.run()
    rig.clock.advance(1.0)
    rig.run()
    [record] = rig.records
    assert (record.target, record.fallback) == ('local', True)
    assert rig.detector.runs == 1 and rig.d.hedges['local_after_failure'] == 1


behaviours = st.sampled_from(['ok', 'slow', 'refused', 'deadline', 'malformed', 'crash'])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.tuples(behaviours, st.floats(0.0, 0.3), st.booleans()),
                min_size=1, max_size=12),
       st.sampled_from(['edge1', 'local']), st.floats(0.0, 0.5))
def test_every_frame_ends_in_exactly_one_outcome(script, target, hedge):
    """Whatever the worker, the timing and the interleaving: one outcome per frame."""
    rig = Rig(target=target, local_s=0.04, deadline_s=0.15, hedge_miss_probability=hedge,
              max_local_queue=3)
    answers = iter(script)

    def answer():
        kind = next(answers, ('ok',))[0]
        return {'ok': 'ok', 'slow': 'ok',
                'refused': WorkerUnavailable('refused', 'connection'),
                'deadline': WorkerUnavailable('cut', 'deadline'),
                'malformed': WorkerUnavailable('lies', 'malformed'),
                'crash': RuntimeError('bug in a client')}[kind]
    rig.worker.answer = answer
    for kind, gap, run_now in script:
        rig.worker.trip_s = 0.3 if kind == 'slow' else 0.01
        rig.frame(convert=picture if kind != 'malformed' or run_now else
                  (lambda: (_ for _ in ()).throw(BadImage('bad'))))
        rig.clock.advance(gap)
        if run_now:
            rig.run()
    rig.clock.advance(1.0)
    rig.run()
    one_outcome_each(rig, len(script))
    assert rig.d.drain(0.0, lambda s: None)
    for record in rig.records:
        assert record.outcome in ('detections', 'miss', 'drop', 'error')
        assert record.outcome != 'error' or 'bug in a client' in record.reason or \
            'edge1 error' in record.reason


def test_monitor_polls_fails_and_probes():
    rig = Rig(target='local')
    monitor = WorkerMonitor(rig.d, probe_bytes=5000)
    rig.clock.advance(1.0)
    monitor.epoch()
    rig.run()
    state = rig.planner.workers['edge1']
    assert state.available and state.service_mean_s == 0.01
    assert rig.planner.workers['edge1'].bandwidth.bandwidth_bps(rig.clock.t)  # probed
    rig.worker.answer = WorkerUnavailable('gone', 'connection')
    rig.clock.advance(1.0)
    monitor.epoch()
    rig.run()
    assert not state.available and 'load: gone' in state.reason


def test_set_clients_closes_the_dropped_worker():
    rig = Rig(target='local')
    old = rig.worker
    rig.d.set_clients({'edge2': FakeWorker(rig.clock)})
    assert old.closed and list(rig.planner.workers) == ['edge2']


def test_a_worker_removed_with_a_frame_on_its_way_loses_no_frame():
    # Discovery drops a worker (it left or drains) while a frame waits for the remote pool:
    # the frame falls back to the robot and ends in one outcome.
    rig = Rig(target='edge1')
    rig.frame()
    rig.d.set_clients({})
    rig.run()
    one_outcome_each(rig, 1)
    record = rig.records[0]
    assert (record.outcome, record.target, record.fallback) == ('detections', 'local', True)
    assert record.reason == 'fallback after edge1 connection'   # not an error in our code
    assert not [line for line in rig.log.lines if line[0] == 'error']
