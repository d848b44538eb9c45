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
A discrete-event kernel that runs the robot's own threaded code in simulated time.

The dispatcher (offload_ros.dispatch) is written for threads: a pool thread calls the detector
or a worker client and blocks until it answers. Here each such task runs in a real thread, but
only one runs at a time (it holds the baton), and a blocking call becomes a wait for a SimPy
event: the thread hands the baton back and the kernel advances SimPy's clock to the next event.
So the code a robot runs is run unchanged, in simulated time, and a run is deterministic: tasks
ready at the same instant run one after another in the order they became ready.

The rule that keeps this sound: a task never waits in simulated time while it holds a lock that
another task may take. The dispatcher keeps it (its lock guards bookkeeping only; the robot's
detector pool has one thread, so its device lock is never contended).
"""
import collections
import threading
from typing import Callable, List, Optional

import simpy


class SimulationError(RuntimeError):
    """A task raised: the simulated code has a bug (the real pools would have hidden it)."""


class _Stop(BaseException):
    """Unwinds a suspended task at close (BaseException: `except Exception` lets it through)."""


class _Task:
    __slots__ = ('fn', 'args', 'runner')

    def __init__(self, fn: Callable, args: tuple):
        self.fn, self.args, self.runner = fn, args, None


class _Runner(threading.Thread):
    """A thread that runs tasks one after another, each only while it holds the baton."""

    def __init__(self, kernel: 'Kernel'):
        super().__init__(daemon=True, name='sim-task')
        self.kernel = kernel
        self.go = threading.Event()
        self.task: Optional[_Task] = None

    def run(self) -> None:
        kernel = self.kernel
        kernel._local.runner = self
        while True:
            self.go.wait()
            self.go.clear()
            task = self.task
            if task is None:
                return
            try:
                task.fn(*task.args)
            except _Stop:
                pass
            except BaseException as e:
                kernel.errors.append(f'{getattr(task.fn, "__qualname__", task.fn)}: {e!r}')
            self.task = None
            kernel._idle.append(self)
            kernel._yielded.set()


class Kernel:
    """SimPy's environment plus tasks: code that may block, run one at a time in threads."""

    def __init__(self):
        self.env = simpy.Environment()
        self.errors: List[str] = []
        self._ready: collections.deque = collections.deque()
        self._idle: List[_Runner] = []
        self._runners: List[_Runner] = []
        self._yielded = threading.Event()
        self._local = threading.local()
        self._closing = False

    @property
    def now(self) -> float:
        return self.env.now

    def spawn(self, fn: Callable, *args) -> None:
        """Run fn(*args) as a task at the current instant, after the tasks already ready."""
        self._ready.append(_Task(fn, args))

    def after(self, delay_s: float, fn: Callable, *args) -> simpy.Event:
        """Spawn fn(*args) after delay_s; the returned event's `cancelled` attribute stops it."""
        event = self.env.timeout(max(0.0, delay_s))
        event.cancelled = False
        event.callbacks.append(lambda e: None if e.cancelled else self.spawn(fn, *args))
        return event

    # -- called from inside a task ----------------------------------------------------------
    def wait(self, event: simpy.Event) -> None:
        """Block the calling task until the SimPy event is processed."""
        runner = getattr(self._local, 'runner', None)
        if runner is None or runner.task is None:
            raise RuntimeError('Kernel.wait outside a task')
        task = runner.task
        if event.processed:
            return
        event.callbacks.append(lambda _: self._ready.append(task))
        self._yielded.set()
        runner.go.wait()
        runner.go.clear()
        if self._closing:
            raise _Stop()

    def sleep(self, delay_s: float) -> None:
        self.wait(self.env.timeout(max(0.0, delay_s)))

    def wait_for(self, event: simpy.Event, timeout_s: float) -> bool:
        """Block until the event or timeout_s, whichever first; True if the event came."""
        if not event.triggered:
            self.wait(self.env.any_of([event, self.env.timeout(max(0.0, timeout_s))]))
        return event.triggered

    # -- the loop ---------------------------------------------------------------------------
    def _resume(self, task: _Task) -> None:
        runner = task.runner
        if runner is None:
            if self._idle:
                runner = self._idle.pop()
            else:
                runner = _Runner(self)
                self._runners.append(runner)
                runner.start()
            runner.task, task.runner = task, runner
        self._yielded.clear()
        runner.go.set()
        self._yielded.wait()

    def run(self, until_s: float) -> None:
        """Advance to until_s: run every ready task, then the next event, and so on."""
        while True:
            while self._ready:
                self._resume(self._ready.popleft())
                if self.errors:
                    raise SimulationError('; '.join(self.errors[:3]))
            if self.env.peek() > until_s:
                break
            self.env.step()
        if self.env.now < until_s:
            self.env.run(until=until_s)

    def close(self) -> None:
        """Unwind the suspended tasks and end the threads."""
        self._closing = True
        for runner in self._runners:
            if runner.task is not None:
                self._yielded.clear()
                runner.go.set()
                self._yielded.wait(5.0)
        for runner in self._runners:
            runner.task = None
            runner.go.set()
        for runner in self._runners:
            runner.join(5.0)


class SimClock:
    """The dispatcher's Clock in simulated time: now_ns counts from `origin_ns`."""

    def __init__(self, kernel: Kernel, origin_ns: int = 1_800_000_000 * 10**9):
        self.kernel, self.origin_ns = kernel, origin_ns

    def now_ns(self) -> int:
        return self.origin_ns + int(round(self.kernel.now * 1e9))

    def monotonic(self) -> float:
        return self.kernel.now

    def call_later(self, delay_s: float, callback: Callable, *args) -> '_Timer':
        return _Timer(self.kernel.after(delay_s, callback, *args))


class _Timer:
    def __init__(self, event: simpy.Event):
        self._event = event

    def cancel(self) -> None:
        self._event.cancelled = True


class SimPool:
    """An executor with `slots` threads in simulated time: tasks beyond them wait in order."""

    def __init__(self, kernel: Kernel, slots: int):
        self.kernel, self.slots = kernel, slots
        self.busy = 0
        self._queue: collections.deque = collections.deque()

    def submit(self, fn: Callable, *args) -> None:
        if self.busy < self.slots:
            self.busy += 1
            self.kernel.spawn(self._run, fn, args)
        else:
            self._queue.append((fn, args))

    def _run(self, fn: Callable, args: tuple) -> None:
        while True:
            fn(*args)   # what escapes is a bug: Kernel.run raises SimulationError
            if not self._queue:
                self.busy -= 1
                return
            fn, args = self._queue.popleft()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self._queue.clear()
