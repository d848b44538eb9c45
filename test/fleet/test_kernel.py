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


"""The fleet simulator's kernel: threaded code in simulated time, one task at a time."""
import pytest

from offload_ros.fleet.kernel import Kernel, SimClock, SimPool, SimulationError


@pytest.fixture
def kernel():
    k = Kernel()
    yield k
    k.close()


def test_tasks_sleep_in_simulated_time_and_a_pool_keeps_its_slots(kernel):
    log = []
    pool = SimPool(kernel, 1)

    def job(i):
        log.append(('start', i, kernel.now))
        kernel.sleep(0.1)
        log.append(('end', i, kernel.now))
    for i in range(3):
        pool.submit(job, i)
    kernel.run(1.0)
    assert [(e, i, round(t, 9)) for e, i, t in log] == [
        ('start', 0, 0), ('end', 0, 0.1), ('start', 1, 0.1), ('end', 1, 0.2),
        ('start', 2, 0.2), ('end', 2, 0.3)]
    assert kernel.now == 1.0


def test_two_slots_overlap_and_timers_can_be_cancelled(kernel):
    log = []
    pool, clock = SimPool(kernel, 2), SimClock(kernel)
    for i in range(3):
        pool.submit(lambda i=i: (kernel.sleep(0.1), log.append((i, round(kernel.now, 9)))))
    clock.call_later(0.05, lambda: log.append(('timer', kernel.now)))
    clock.call_later(0.06, lambda: log.append(('cancelled', kernel.now))).cancel()
    kernel.run(1.0)
    assert log == [('timer', 0.05), (0, 0.1), (1, 0.1), (2, 0.2)]
    assert clock.monotonic() == 1.0 and clock.now_ns() == clock.origin_ns + 10 ** 9


def test_wait_for_returns_on_the_event_or_the_timeout(kernel):
    seen = []
    early, late = kernel.env.event(), kernel.env.event()
    kernel.after(0.2, early.succeed)
    kernel.after(0.9, late.succeed)
    kernel.spawn(lambda: seen.append(('early', kernel.wait_for(early, 0.5), kernel.now)))
    kernel.spawn(lambda: seen.append(('late', kernel.wait_for(late, 0.5), kernel.now)))
    kernel.run(2.0)
    assert seen == [('early', True, 0.2), ('late', False, 0.5)]


def test_an_exception_in_a_task_stops_the_run_loudly(kernel):
    def broken():
        kernel.sleep(0.1)
        raise ValueError('bug in simulated code')
    kernel.spawn(broken)
    with pytest.raises(SimulationError, match='bug in simulated code'):
        kernel.run(1.0)


def test_close_unwinds_tasks_still_waiting():
    kernel = Kernel()
    unwound = []

    def forever():
        try:
            kernel.sleep(100.0)
        finally:
            unwound.append(True)
    kernel.spawn(forever)
    kernel.run(1.0)
    kernel.close()
    assert unwound == [True]
    assert not any(r.is_alive() for r in kernel._runners)


def test_wait_outside_a_task_is_refused(kernel):
    with pytest.raises(RuntimeError, match='outside a task'):
        kernel.sleep(0.1)
