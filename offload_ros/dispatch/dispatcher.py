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
The frame dispatcher, ROS-free: a frame from receipt to its one outcome.

Route (the Planner's decision), run on the robot or a worker, fall back to the robot when a
worker fails, race the two when the worker is likely to miss (hedging), drop what cannot be
run in time. Clocks, pools, worker clients and the outputs are given, so the same code runs
in offload_node, in tests with fake clocks and workers, and in the fleet simulator.

The rule every path keeps: each frame received ends in exactly one recorded outcome
(core.records.OUTCOMES); an unexpected exception anywhere is that frame's 'error'.
"""
import dataclasses
import math
import threading
from collections import Counter
from typing import Callable, Dict, Mapping, Optional

from offload_ros.core import hedging
from offload_ros.core.planner import Planner
from offload_ros.core.policy import LOCAL, parse_target
from offload_ros.core.records import DecisionRecord, HedgeRecord
from offload_ros.dispatch.clock import Clock, Pools
from offload_ros.dispatch.frames import DispatchSettings, Frame, Hedge, Result
from offload_ros.dispatch.local import LocalRunner
from offload_ros.dispatch.remote import RemoteRunner, local_needed_s
from offload_ros.inference.picture import BadImage, Picture
from offload_ros.worker.client import new_request_id

ERROR_LOG_PERIOD_S = 5.0
MALFORMED_KEYS = 32     # distinct malformed-image reasons counted by name


@dataclasses.dataclass(frozen=True)
class DispatchStatus:
    """Counters for diagnostics, taken at once."""

    received: int
    outcomes: Mapping[tuple, int]        # (target, outcome) -> frames
    hedges: Mapping[str, int]
    malformed: Mapping[str, int]
    local_profiles: int
    target: str
    reason: str
    switches: int
    workers: Mapping[str, tuple]         # name -> (available, reason)


class Dispatcher:
    """
    Takes frames (submit) and ends each in one outcome, sent through the given outputs.

    `outputs.message(frame, detections)` builds the detections message (its exception makes
    the frame an 'error'), `outputs.detections(message)` sends it, `outputs.record(record)`
    sends the DecisionRecord. Planner calls go through `lock`.
    """

    def __init__(self, planner: Planner, detector, clients: Mapping[str, object],
                 settings: DispatchSettings, clock: Clock, pools: Pools, outputs, log,
                 heads: Mapping[int, object] = ()):
        self.planner, self.settings, self.clock, self.pools = planner, settings, clock, pools
        self.clients: Dict[str, object] = dict(clients)
        self.outputs, self.log = outputs, log
        self.lock = threading.Lock()
        self.local = LocalRunner(self, detector, dict(heads))
        self.remote = RemoteRunner(self)
        self.seq = 0
        self.outcomes: Counter = Counter()
        self.hedges: Counter = Counter()
        self.malformed_reasons: Counter = Counter()
        self._finished: set = set()
        self._decided_at_ns = clock.now_ns()
        self._energy: Optional[dict] = None
        self._error_logged = -math.inf
        planner.set_workers(list(self.clients))

    # -- clocks -----------------------------------------------------------------------------
    def now_s(self) -> float:
        return self.clock.now_ns() * 1e-9

    # -- receipt ----------------------------------------------------------------------------
    def submit(self, stamp_ns: int, frame_id: str, convert: Callable[[], Picture],
               context=None) -> int:
        """
        Take a frame: convert it (BadImage: malformed), route it, hand it over; its seq.

        Returns at once: the frame runs on the pools and ends in one outcome.
        """
        received = self.clock.monotonic()
        with self.lock:
            self.seq += 1
            seq = self.seq
        frame = Frame(seq, stamp_ns, frame_id, stamp_ns * 1e-9 + self.settings.deadline_s,
                      context=context, received_mono=received)
        try:
            try:
                frame.picture = convert()
            except BadImage as e:
                self.malformed(frame, e)
                return seq
            self._route(frame)
            self._dispatch(frame)
        except Exception as e:
            self.error(frame, 'receipt', e)
        return seq

    def _route(self, frame: Frame) -> None:
        with self.lock:
            self.local.latest = frame.picture
            self.planner.frame_arrived(self.clock.monotonic())
            frame.ingress_s = self.now_s() - frame.capture_s
            self.planner.frame_ingress(frame.ingress_s)
            frame.target = self.planner.route()
            decision = self.planner.decision
            frame.decision_reason, frame.predictions = decision.reason, dict(decision.predictions)
            frame.decided_at_ns, frame.estimates = self._decided_at_ns, self.planner.estimates
            frame.energy = self.planner.energy
            frame.selfcheck = {target: verdict.to_dict() for target, verdict
                               in self.planner.selfcheck.verdicts().items()}

    def _dispatch(self, frame: Frame) -> None:
        """To the robot's detector, or to a worker (with a hedge where it is due)."""
        frame.submitted_mono = self.clock.monotonic()
        if frame.target == LOCAL:
            self.local.submit(frame, fallback=False, reason='')
            return
        threshold = self.settings.hedge_miss_probability
        local = frame.predictions.get(LOCAL)
        if threshold > 0 and local is not None and local.stable:
            with self.lock:
                p_miss = self.planner.miss_probability(frame.target, frame.predictions)
            if p_miss > threshold:
                start_at = hedging.latest_local_start_s(frame.capture_s,
                                                        self.settings.deadline_s, local)
                # An id nobody can guess: the worker drops a queued request by it.
                frame.hedge = Hedge(p_miss, start_at, request_id=new_request_id())
                frame.hedge.timer = self.clock.call_later(start_at - self.now_s(),
                                                          self._hedge_local, frame)
        self.pools.remote.submit(self.remote.run, frame)

    def _hedge_local(self, frame: Frame) -> None:
        """Run the frame here too: the latest safe moment came and the worker has not answered."""
        with self.lock:
            if frame.seq in self._finished or frame.hedge.local_started:
                return
            frame.hedge.local_started = True
            self.hedges['local_started'] += 1
        try:
            self.local.submit(frame, fallback=False, reason='hedge: robot answered first')
        except Exception as e:
            self.error(frame, 'hedge', e)

    def fallback(self, frame: Frame, why: str) -> None:
        if frame.hedge is not None:
            with self.lock:
                started = frame.hedge.local_started
                frame.hedge.local_started = True   # the fallback is the hedge's local run
            frame.hedge.timer.cancel()
            if started:
                return  # the hedge's local run is already on its way to an outcome
            with self.lock:
                self.hedges['local_after_failure'] += 1
        remaining = frame.deadline_at_s - self.now_s()
        needed = local_needed_s(frame)
        if remaining >= needed:
            self.local.submit(frame, fallback=True, reason=f'fallback after {why}')
        else:
            self.finish(frame, 'miss', frame.target,
                        f'{why}; {remaining * 1e3:.0f} ms left < local {needed * 1e3:.0f} ms')

    # -- outcomes ---------------------------------------------------------------------------
    def is_finished(self, frame: Frame) -> bool:
        with self.lock:
            return frame.seq in self._finished

    def error(self, frame: Frame, where: str, error: Exception) -> None:
        """End the frame (unless it has its outcome) with an 'error' naming the exception."""
        self.log_error(f'frame {frame.seq}: {where}: {error!r}')
        if not self.is_finished(frame):
            self.finish(frame, 'error', frame.target, f'{where}: {error!r}'[:300])

    def log_error(self, message: str) -> None:
        now = self.clock.monotonic()
        if now - self._error_logged >= ERROR_LOG_PERIOD_S:
            self._error_logged = now
            self.log.error(message)

    def malformed(self, frame: Frame, error: Exception, fallback: bool = False) -> None:
        key = str(error).split(' (')[0][:60]
        with self.lock:   # a bounded set of keys: every bad frame may say something new
            known = key in self.malformed_reasons or len(self.malformed_reasons) < MALFORMED_KEYS
            self.malformed_reasons[key if known else 'other'] += 1
        self.finish(frame, 'drop', LOCAL, f'malformed image: {error}', fallback=fallback)

    def finish(self, frame: Frame, outcome: str, target: str, reason: str,
               result: Result = Result(), fallback: bool = False) -> None:
        """Record the frame's one outcome; the slower side of a hedge is discarded here."""
        building = self.clock.monotonic()
        message = None
        if outcome == 'detections':
            try:
                message = self.outputs.message(frame, result.detections)
            except Exception as e:   # a message that cannot be built is this frame's error
                outcome, reason = 'error', f'detections message: {e!r}'[:300]
                result = dataclasses.replace(result, detections=None)
        with self.lock:
            if frame.seq in self._finished:
                if frame.hedge is not None:
                    self.hedges['discarded'] += 1
                    return
                raise RuntimeError(f'frame {frame.seq} finished twice')  # a bug, loudly
            self._finished.add(frame.seq)
            if len(self._finished) > 10000:
                self._finished = {s for s in self._finished if s > frame.seq - 5000}
            self.outcomes[(target, outcome)] += 1
        publishing = self.clock.monotonic()
        if message is not None:
            self.outputs.detections(message)
        done = self.clock.monotonic()
        now_ns = self.clock.now_ns()
        handling = parts = None
        core = result.core_s
        if outcome == 'detections' and core is not None and frame.received_mono:
            # What the dispatcher itself added: all but the pool wait and inference/transfer.
            handling = done - frame.received_mono - core - (
                frame.started_mono - frame.submitted_mono)
            # Receipt -> pool (decode, decide), in the pool besides inference/transfer
            # (encoding, decoding the answer), the planner update, building the message, and
            # the middleware's publish call (on a shared core, as long as the subscribers it
            # wakes run first: docs/design.md).
            parts = {'receipt_s': frame.submitted_mono - frame.received_mono,
                     'update_s': building - frame.core_done_mono,
                     'build_s': publishing - building, 'publish_s': done - publishing}
            parts['pool_s'] = handling - sum(parts.values())
        observed = (now_ns - frame.stamp_ns) * 1e-9
        with self.lock:
            self.planner.outcome(done, target, observed if outcome == 'detections'
                                 else math.inf)
            if handling is not None and not fallback and frame.hedge is None:
                self.planner.frame_handled(target, handling)
                self.planner.checked(done, target, frame.predictions.get(target), observed)
        if frame.hedge is not None:
            self._settle_hedge(frame, target)
        self.outputs.record(self._record(frame, outcome, target, reason, result, fallback,
                                         now_ns, handling, parts))

    def _record(self, frame, outcome, target, reason, result, fallback, now_ns, handling,
                parts) -> DecisionRecord:
        predicted = frame.predictions.get(target)
        hedge = frame.hedge
        return DecisionRecord(
            seq=frame.seq, stamp_ns=frame.stamp_ns, frame_id=frame.frame_id,
            finished_at_ns=now_ns, decided_at_ns=frame.decided_at_ns, target=target,
            planned_target=frame.target, outcome=outcome,
            reason=reason or frame.decision_reason, fallback=fallback,
            observed_latency_s=(now_ns - frame.stamp_ns) * 1e-9,
            predicted_latency_s=predicted.latency_s if predicted and predicted.stable
            else None,
            predictions=frame.predictions, estimates=frame.estimates, energy=frame.energy,
            detections=len(result.detections) if result.detections is not None else 0,
            service_s=result.service_s, round_trip_s=result.round_trip_s,
            head_s=result.head_s, server_s=result.server_s,
            server_queue_s=result.server_queue_s,
            pool_wait_s=frame.started_mono - frame.submitted_mono
            if frame.started_mono and frame.submitted_mono else None,
            ingress_s=frame.ingress_s, handling_s=handling, handling_parts_s=parts,
            selfcheck=frame.selfcheck,
            hedge=None if hedge is None else HedgeRecord(
                round(hedge.miss_probability, 4), hedge.local_started, target))

    def _settle_hedge(self, frame: Frame, winner: str) -> None:
        """Stop the other side: the first answer is in."""
        frame.hedge.timer.cancel()
        with self.lock:
            self.hedges[f'won_{"local" if winner == LOCAL else "remote"}'] += 1
        client = self.clients.get(parse_target(frame.target)[0])
        if winner == LOCAL and client is not None:
            self.pools.io.submit(client.cancel, frame.hedge.request_id)

    # -- decisions --------------------------------------------------------------------------
    def replan(self) -> None:
        """Evaluate the policy on the current estimates (no I/O: safe from any thread)."""
        with self.lock:
            before = self.planner.decision.target
            decision = self.planner.evaluate(self.clock.monotonic())
            if decision.target != before:
                self._decided_at_ns = self.clock.now_ns()
        if decision.target != before:
            self.log.info(f'switch {before} -> {decision.target}: {decision.reason}')

    def set_clients(self, clients: Mapping[str, object]) -> None:
        """Use these worker clients from now on (those left out are closed)."""
        with self.lock:
            old, self.clients = self.clients, dict(clients)
            self.planner.set_workers(list(self.clients))
        for name, client in old.items():
            if self.clients.get(name) is not client:
                client.close()

    def status(self) -> DispatchStatus:
        with self.lock:
            decision = self.planner.decision
            return DispatchStatus(
                self.seq, dict(self.outcomes), dict(self.hedges), dict(self.malformed_reasons),
                self.local.profiles, decision.target, decision.reason,
                len(self.planner.switches),
                {n: (s.available, s.reason) for n, s in self.planner.workers.items()})

    def drain(self, timeout_s: float, sleep: Callable[[float], None]) -> bool:
        """Wait up to timeout_s (monotonic) for every frame received to end; True if they did."""
        end = self.clock.monotonic() + timeout_s
        while True:
            with self.lock:
                if sum(self.outcomes.values()) >= self.seq:
                    return True
            if self.clock.monotonic() >= end:
                return False
            sleep(0.01)

    def close(self) -> None:
        """Finish the pools' work and close the worker connections."""
        self.pools.shutdown()
        for client in self.clients.values():
            client.close()
