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
FAKES for the ROS-free dispatcher's tests, named as such.

A clock the test moves, pools that run their tasks when the test says, workers that answer
from a script, a detector that finds nothing. Only what cannot exist in a unit test is fake:
the dispatcher and the Planner that the tests drive are the real ones.
"""
import heapq
import itertools

import numpy as np

from offload_ros.core.planner import Planner, PlannerConfig
from offload_ros.core.policy import PolicyConfig
from offload_ros.core.records import DecisionRecord
from offload_ros.dispatch.clock import Pools
from offload_ros.dispatch.dispatcher import Dispatcher
from offload_ros.dispatch.frames import DispatchSettings
from offload_ros.inference.picture import Picture
from offload_ros.worker.client import InferResult, WorkerLoad

START_NS = 1_000_000_000_000


class FakeClock:
    """FAKE clock: time moves only when the test advances it; timers fire then."""

    def __init__(self):
        self.t = 0.0
        self._timers = []
        self._ids = itertools.count()

    def now_ns(self) -> int:
        return START_NS + int(round(self.t * 1e9))

    def monotonic(self) -> float:
        return self.t

    def call_later(self, delay_s, callback, *args):
        timer = _FakeTimer(self.t + max(0.0, delay_s), callback, args)
        heapq.heappush(self._timers, (timer.at, next(self._ids), timer))
        return timer

    def advance(self, dt: float) -> None:
        end = self.t + dt
        while self._timers and self._timers[0][0] <= end:
            at, _, timer = heapq.heappop(self._timers)
            self.t = max(self.t, at)
            if not timer.cancelled:
                timer.callback(*timer.args)
        self.t = end


class _FakeTimer:
    def __init__(self, at, callback, args):
        self.at, self.callback, self.args, self.cancelled = at, callback, args, False

    def cancel(self):
        self.cancelled = True


class FakePool:
    """FAKE executor: tasks wait until the test runs them, in order."""

    def __init__(self):
        self.tasks = []

    def submit(self, fn, *args):
        self.tasks.append((fn, args))

    def run(self) -> int:
        ran = 0
        while self.tasks:
            fn, args = self.tasks.pop(0)
            fn(*args)
            ran += 1
        return ran

    def shutdown(self, wait=True, cancel_futures=False):
        self.tasks = []


class FakeWorker:
    """FAKE worker client: each request takes `trip_s` of the fake clock, then `answer`."""

    model = 'yolov3_tiny'

    def __init__(self, clock: FakeClock, trip_s: float = 0.02, answer='ok'):
        self.clock, self.trip_s, self.answer = clock, trip_s, answer
        self.cancelled, self.requests, self.closed = [], 0, False
        self.last_answer = -1.0

    def infer(self, picture, budget_s, request_id='', on_upload=None):
        self.requests += 1
        if on_upload:
            on_upload()
        self.clock.advance(self.trip_s)
        answer = self.answer() if callable(self.answer) else self.answer
        if isinstance(answer, Exception):
            raise answer
        self.last_answer = self.clock.monotonic()
        return InferResult([], self.trip_s, 20000, 500, 0.012, 0.001, 0.01)

    def answered_since(self, t):
        return self.last_answer > t

    def cancel(self, request_id):
        self.cancelled.append(request_id)
        return True

    def fetch_load(self, timeout_s=0.5):
        if isinstance(self.answer, Exception):
            raise self.answer
        return WorkerLoad(1.0, 0.01, 0.0, 1, 0, 1.0, 'load')

    def request_body(self, picture):
        return b'x' * 1000, 10

    def probe(self, size, timeout_s=1.0, data=None):
        return 0.002

    def close(self):
        self.closed = True


class FakeDetector:
    """FAKE detector: finds nothing in `service_s` of the fake clock, or raises `fail`."""

    names = ['person']

    def __init__(self, fail=None, clock=None, service_s=0.0):
        self.fail, self.runs, self.clock, self.service_s = fail, 0, clock, service_s

    def detect(self, image):
        self.runs += 1
        if self.clock is not None:
            self.clock.advance(self.service_s)
        if self.fail:
            raise self.fail
        return []


class Outputs:
    """Collects what the dispatcher sends (a message is the detections list itself)."""

    def __init__(self, fail_message=False):
        self.records, self.sent, self.fail_message = [], [], fail_message

    def message(self, frame, detections):
        if self.fail_message:
            raise ValueError('cannot build')
        return detections

    def detections(self, message):
        self.sent.append(message)

    def record(self, record):
        assert isinstance(record, DecisionRecord)
        self.records.append(DecisionRecord.from_dict(record.to_dict()))   # round trip


class Log:
    def __init__(self):
        self.lines = []

    def info(self, m):
        self.lines.append(('info', m))

    def warning(self, m):
        self.lines.append(('warning', m))

    def error(self, m):
        self.lines.append(('error', m))


def picture():
    return Picture(bgr=np.zeros((48, 64, 3), np.uint8))


class Rig:
    """A dispatcher on fakes, its worker 'edge1' known to the planner."""

    def __init__(self, target='edge1', worker=None, detector=None, outputs=None,
                 local_s=0.05, **settings):
        self.clock = FakeClock()
        self.pools = Pools(FakePool(), FakePool(), FakePool())
        self.worker = worker or FakeWorker(self.clock)
        self.detector = detector or FakeDetector()
        self.outputs = outputs or Outputs()
        self.log = Log()
        policy = PolicyConfig('argmin', 0.1, settings.get('deadline_s', 0.25))
        self.planner = Planner(PlannerConfig(policy=policy, forced_target=target), [],
                               local_s)
        self.d = Dispatcher(self.planner, self.detector, {'edge1': self.worker},
                            DispatchSettings(**settings), self.clock, self.pools, self.outputs,
                            self.log)
        self.planner.load_report('edge1', 0.001, 0.0, 0.01, 0.0, 1, 0.0)
        self.d.replan()

    def frame(self, age_s=0.0, convert=picture):
        """Submit a frame captured age_s ago (on the fake clock)."""
        return self.d.submit(self.clock.now_ns() - int(age_s * 1e9), 'cam', convert)

    def run(self):
        """Run every queued task (remote, then local, then io) until none is left."""
        while self.pools.remote.run() + self.pools.local.run() + self.pools.io.run():
            pass

    @property
    def records(self):
        return self.outputs.records
