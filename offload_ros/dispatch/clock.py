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
The clocks and thread pools a dispatcher is given.

Two clocks, never mixed: `now_ns` is the robot's clock of record (ROS time on a robot,
simulated time in a simulation), in which capture stamps and deadlines are instants;
`monotonic` times durations and feeds the estimators. `call_later` is how a hedge waits for
its latest safe start.
"""
import concurrent.futures
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now_ns(self) -> int: ...

    def monotonic(self) -> float: ...

    def call_later(self, delay_s: float, callback: Callable, *args) -> Cancellable: ...


class SystemClock:
    """Wall time (or the given `now_ns`, e.g. a ROS clock), time.monotonic, threading.Timer."""

    def __init__(self, now_ns: Callable[[], int] = time.time_ns):
        self.now_ns = now_ns

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()

    @staticmethod
    def call_later(delay_s: float, callback: Callable, *args) -> Cancellable:
        timer = threading.Timer(max(0.0, delay_s), callback, args)
        timer.daemon = True
        timer.start()
        return timer


# Threads for worker calls besides frames (/load polls, cancels): with max_inflight, the
# most requests one worker's connection pool can hold at once.
IO_THREADS = 2


@dataclass
class Pools:
    """
    Where the work runs.

    `local`: the robot's detector, one frame at a time; `remote`: worker requests, up to
    max_inflight; `io`: /load polls, probes and cancels.
    """

    local: concurrent.futures.Executor
    remote: concurrent.futures.Executor
    io: concurrent.futures.Executor

    @classmethod
    def threads(cls, max_inflight: int, io_threads: int = IO_THREADS) -> 'Pools':
        return cls(concurrent.futures.ThreadPoolExecutor(1, 'local'),
                   concurrent.futures.ThreadPoolExecutor(max_inflight, 'remote'),
                   concurrent.futures.ThreadPoolExecutor(io_threads, 'refresh'))

    def shutdown(self) -> None:
        for pool in (self.io, self.remote, self.local):
            pool.shutdown(wait=True, cancel_futures=False)
