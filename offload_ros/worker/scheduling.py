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
The worker's request queue under three disciplines (pure Python, no I/O).

- fifo: first come, first served (the order the decision model's M/G/1 assumes);
- edf: earliest deadline first (requests carry their budget in X-Offload-Deadline-S; those
  without a deadline go after every one that has one, in arrival order);
- fair: per-client round robin, so under overload every backlogged client gets an equal
  share of executions however fast it sends (a flooding tenant cannot starve a robot).

All three are non-preemptive and work-conserving. Expired requests are dropped by the
consumer before they start, whatever the discipline.
"""
import collections
import heapq
import itertools
import math
from typing import Deque, Dict, Generic, List, Optional, Tuple, TypeVar

DISCIPLINES = ('fifo', 'edf', 'fair')
T = TypeVar('T')


class JobQueue(Generic[T]):
    """push(job, client, deadline_at_s) / pop() -> the next job under the discipline."""

    def __init__(self, discipline: str = 'fifo'):
        if discipline not in DISCIPLINES:
            raise ValueError(f'scheduling must be one of {DISCIPLINES}, got {discipline!r}')
        self.discipline = discipline
        self._order = itertools.count()
        self._fifo: Deque[T] = collections.deque()
        self._heap: List[Tuple[float, int, T]] = []
        self._per_client: Dict[str, Deque[T]] = collections.OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, job: T, client: str = '', deadline_at_s: Optional[float] = None) -> None:
        if self.discipline == 'fifo':
            self._fifo.append(job)
        elif self.discipline == 'edf':
            key = math.inf if deadline_at_s is None else deadline_at_s
            heapq.heappush(self._heap, (key, next(self._order), job))
        else:
            self._per_client.setdefault(client, collections.deque()).append(job)
        self._size += 1

    def pop(self) -> Optional[T]:
        if not self._size:
            return None
        self._size -= 1
        if self.discipline == 'fifo':
            return self._fifo.popleft()
        if self.discipline == 'edf':
            return heapq.heappop(self._heap)[2]
        # Round robin: serve the client at the front, then move it to the back.
        client, jobs = next(iter(self._per_client.items()))
        job = jobs.popleft()
        del self._per_client[client]
        if jobs:
            self._per_client[client] = jobs
        return job
