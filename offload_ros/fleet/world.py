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
What the robots share in a fleet simulation: workers, links, and the robot-side stand-ins.

A SimWorker queues and serves requests as the gpu_worker does (FIFO, a request whose deadline
passed before it starts is refused with 504, a queued request can be cancelled) and reports its
load with the worker's own LoadTracker. A SimWorkerClient has the surface of
worker.client.WorkerClient that the dispatcher and the worker monitor use, and keeps its rules
(budget, circuit breaker, 'slow' versus 'timeout', serial uploads on the robot's link); its
/load answers go through the robot's own report check (answers.load_from_report). Service
times are drawn from a profile (a gamma distribution with the measured mean and coefficient of
variation).
"""
import math
import random
from dataclasses import dataclass, field
from typing import List, Optional, Set

import numpy as np
import simpy

from offload_ros.fleet.kernel import Kernel
from offload_ros.inference.picture import Picture
from offload_ros.worker.answers import (InferResult, WorkerRequestError, WorkerUnavailable,
                                        load_from_report)
from offload_ros.worker.client import CircuitBreaker
from offload_ros.worker.load import LoadTracker

# A stand-in for each camera frame: the dispatcher only hands it on (the payload's size is the
# client's request_bytes).
PICTURE = Picture.of(np.zeros((8, 8, 3), np.uint8))


@dataclass(frozen=True)
class ServiceProfile:
    """Service times: gamma with this mean and coefficient of variation (cv 0: constant)."""

    mean_s: float
    cv: float = 0.1

    def __post_init__(self):
        if not (self.mean_s > 0 and self.cv >= 0):
            raise ValueError('need mean_s > 0 and cv >= 0')

    def sample(self, rng: random.Random) -> float:
        if self.cv == 0:
            return self.mean_s
        shape = 1.0 / self.cv ** 2
        return rng.gammavariate(shape, self.mean_s / shape)


@dataclass(frozen=True)
class LinkSpec:
    """A robot's link to the workers: rates each way and the round-trip propagation."""

    up_bps: float = 20e6
    down_bps: float = 20e6
    rtt_s: float = 0.002


class Link:
    """A robot's link: uploads one at a time (the client's serial uploads), FIFO."""

    def __init__(self, kernel: Kernel, spec: LinkSpec):
        self.kernel, self.spec = kernel, spec
        self.uplink = simpy.Resource(kernel.env, 1)

    def upload_s(self, size: int) -> float:
        return size * 8.0 / self.spec.up_bps

    def download_s(self, size: int) -> float:
        return size * 8.0 / self.spec.down_bps


@dataclass
class WorkerStats:
    served: int = 0
    expired: int = 0
    cancelled: int = 0
    polls: int = 0
    busy: List[tuple] = field(default_factory=list)     # (start_s, end_s) of each service


class SimWorker:
    """A GPU worker: `parallelism` servers, FIFO, its load reported by LoadTracker."""

    def __init__(self, kernel: Kernel, name: str, service: ServiceProfile, rng: random.Random,
                 parallelism: int = 1, window_s: float = 10.0, overhead_s: float = 0.0):
        self.kernel, self.name, self.service, self.rng = kernel, name, service, rng
        self.overhead_s = overhead_s    # per request outside the queue (decoding, HTTP)
        self.server = simpy.Resource(kernel.env, parallelism)
        self.tracker = LoadTracker(window_s, parallelism, started_at_s=kernel.now,
                                   prior_service_s=service.mean_s)
        self.slowdown = 1.0
        self.stats = WorkerStats()
        self._cancelled: Set[str] = set()

    def serve(self, client: str, deadline_at_s: Optional[float], request_id: str):
        """Serve a request (SimPy process): (ok, deadline or cancelled; queue_s, service_s)."""
        env = self.kernel.env
        if self.overhead_s:
            yield env.timeout(self.overhead_s)
        arrived = env.now
        self.tracker.arrival(arrived, client)
        with self.server.request() as slot:
            yield slot
            queue_s = env.now - arrived
            if request_id and request_id in self._cancelled:
                self._cancelled.discard(request_id)
                self.stats.cancelled += 1
                return 'cancelled', queue_s, 0.0
            if deadline_at_s is not None and env.now > deadline_at_s:
                self.stats.expired += 1
                return 'deadline', queue_s, 0.0
            service_s = self.service.sample(self.rng) * self.slowdown
            start = env.now
            yield env.timeout(service_s)
            self.tracker.service(env.now, client, service_s)
            self.stats.served += 1
            self.stats.busy.append((start, env.now))
            return 'ok', queue_s, service_s

    def cancel(self, request_id: str) -> None:
        if len(self._cancelled) < 10000:
            self._cancelled.add(request_id)

    def report(self, client: str) -> dict:
        """Return the /load answer, as the worker computes and serialises it."""
        self.stats.polls += 1
        self.tracker.polled(self.kernel.now, client)
        return self.tracker.snapshot(self.kernel.now, len(self.server.queue), self.server.count,
                                     caller=client).to_dict()


class SimDetector:
    """The robot's detector: each run takes a draw from its profile (times slowdown)."""

    def __init__(self, kernel: Kernel, service: ServiceProfile, rng: random.Random,
                 overhead_s: float = 0.0):
        self.kernel, self.service, self.rng = kernel, service, rng
        self.overhead_s = overhead_s    # the robot's own work around an inference
        self.slowdown = 1.0

    def detect(self, image) -> list:
        self.kernel.sleep(self.service.sample(self.rng) * self.slowdown + self.overhead_s)
        return []


class SimWorkerClient:
    """One robot's client of one SimWorker (the WorkerClient surface the dispatcher uses)."""

    model = 'yolov3_tiny'

    def __init__(self, kernel: Kernel, worker: SimWorker, link: Link, client_id: str,
                 request_bytes: int = 50_000, response_bytes: int = 600,
                 breaker: Optional[CircuitBreaker] = None, overhead_s: float = 0.0,
                 request_overhead_s: float = 0.0):
        self.kernel, self.worker, self.link, self.client_id = kernel, worker, link, client_id
        self.url = f'sim://{worker.name}'
        self.request_bytes, self.response_bytes = request_bytes, response_bytes
        self.breaker = breaker or CircuitBreaker(clock=lambda: kernel.now)
        self._last_answer_at_s = -math.inf
        self.overhead_s = overhead_s    # the robot's own work around a request
        self.request_overhead_s = request_overhead_s   # ... and inside it (encoding)

    # -- frames -----------------------------------------------------------------------------
    def infer(self, picture, budget_s: Optional[float] = None, request_id: str = '',
              on_upload=None) -> InferResult:
        kernel = self.kernel
        start = kernel.now
        if budget_s is not None and budget_s <= 0:
            raise WorkerUnavailable('no deadline budget left', 'deadline')
        if not self.breaker.allow():
            raise WorkerUnavailable(f'{self.url}: circuit breaker open', 'breaker_open')
        limit_s = budget_s if budget_s is not None else 10.0
        done = kernel.env.event()
        kernel.env.process(self._exchange(done, start + limit_s, request_id, on_upload))
        if not kernel.wait_for(done, limit_s):
            if self._last_answer_at_s > start:
                raise WorkerUnavailable(f'{self.url}: no answer in {limit_s:.3f} s but '
                                        'answering others', 'slow')
            self.breaker.failure()
            raise WorkerUnavailable(f'{self.url}: timed out', 'timeout')
        status, queue_s, service_s, upload_wait_s = done.value
        self._last_answer_at_s = kernel.now
        if status == 'deadline':
            raise WorkerUnavailable(f'{self.url}: HTTP 504: deadline passed before inference '
                                    'started', 'deadline')
        if status == 'cancelled':
            raise WorkerRequestError(f'{self.url}: HTTP 409: cancelled by the client')
        self.breaker.success()
        result = InferResult([], kernel.now - start, self.request_bytes, self.response_bytes,
                             queue_s + service_s, queue_s, service_s, upload_wait_s)
        kernel.sleep(self.overhead_s)   # outside the round trip, as on the robot
        return result

    def _exchange(self, done: simpy.Event, deadline_at_s: float, request_id: str, on_upload):
        env, link = self.kernel.env, self.link
        if self.request_overhead_s:
            yield env.timeout(self.request_overhead_s)
        asked = env.now
        with link.uplink.request() as uplink:
            yield uplink
            upload_wait_s = env.now - asked
            if on_upload is not None:
                on_upload()
            yield env.timeout(link.upload_s(self.request_bytes))
        yield env.timeout(link.spec.rtt_s / 2)
        status, queue_s, service_s = yield env.process(
            self.worker.serve(self.client_id, deadline_at_s, request_id))
        yield env.timeout(link.spec.rtt_s / 2 + link.download_s(self.response_bytes))
        done.succeed((status, queue_s, service_s, upload_wait_s))

    def answered_since(self, monotonic_s: float) -> bool:
        return self._last_answer_at_s > monotonic_s

    def cancel(self, request_id: str, timeout_s: float = 0.5) -> bool:
        self.kernel.sleep(self.link.spec.rtt_s / 2)
        self.worker.cancel(request_id)
        self.kernel.sleep(self.link.spec.rtt_s / 2)
        return True

    # -- polls and probes -------------------------------------------------------------------
    def fetch_load(self, timeout_s: float = 0.5, now_s: float = None):
        half = self.link.spec.rtt_s / 2 + self.link.download_s(200)
        self.kernel.sleep(half)
        data = self.worker.report(self.client_id)
        self.kernel.sleep(half + self.link.download_s(800))
        self._last_answer_at_s = self.kernel.now
        return load_from_report(self.url, data)

    def request_body(self, image) -> tuple:
        return bytes(self.request_bytes), 0

    def probe(self, payload_bytes: int, timeout_s: float = 1.0, data=None) -> Optional[float]:
        kernel, link = self.kernel, self.link
        start = kernel.now
        uplink = link.uplink.request()
        kernel.wait(uplink)
        try:
            kernel.sleep(link.upload_s(payload_bytes))
        finally:
            link.uplink.release(uplink)
        kernel.sleep(link.spec.rtt_s + link.download_s(100))
        self._last_answer_at_s = kernel.now
        return kernel.now - start

    def close(self) -> None:
        pass
