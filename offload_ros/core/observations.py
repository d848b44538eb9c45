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
What the robot has observed, ROS-free: the estimators behind every prediction.

Estimates (all from the robot's own observations):
- frame arrival rate: sliding window over frame receipt times;
- local service time: profiled at start-up, then every local inference (windowed mean);
- per worker: service mean/variance, parallelism and total arrival rate from its /load route
  (other tenants' rate = total - our own share); fixed overhead = small-request round trip
  (the /load GET) + the server's own handling time outside the queue (server_s - queue -
  service, reported per response);
- bandwidth: bytes of each transfer over its network time (round trip - server time - fixed
  round trip), or a probe upload when nothing is being offloaded; a configured override wins.
"""
import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Deque, Dict, List, Mapping, Optional

from offload_ros.core.estimators import (ArrivalRateEstimator, BandwidthEstimator,
                                         MedianWindow, ServiceTimeEstimator)
from offload_ros.core.policy import LOCAL

if TYPE_CHECKING:
    from offload_ros.core.planner import PlannerConfig

MIN_TRANSFER_S = 1e-4  # resolution of transfer-time measurements
HANDLING_MIN_FRAMES = 5   # frames one way before their median is the handling estimate


@dataclass
class WorkerState:
    name: str
    available: bool = False
    reason: str = 'no load report yet'
    service_mean_s: Optional[float] = None
    service_var_s2: float = 0.0
    parallelism: int = 1
    total_rate_hz: float = 0.0
    own_rate_hz: float = 0.0
    queue_length: int = 0
    others: int = 0                   # other robots sending frames here
    watchers: Optional[int] = None    # robots polling it, this one among them (None: unknown)
    rtt_samples: Deque[float] = field(default_factory=lambda: deque(maxlen=20))
    server_overhead_samples: MedianWindow = field(default_factory=lambda: MedianWindow(50))
    bandwidth: BandwidthEstimator = None
    tail_service_s: Dict[int, float] = field(default_factory=dict)   # split layer -> tail
    # The last models built from the estimates, reused while the estimates are unchanged
    # (building validates every field; evaluations outnumber estimate changes).
    models: Dict[str, tuple] = field(default_factory=dict)

    def cached(self, kind: str, key: tuple, build):
        entry = self.models.get(kind)
        if entry is None or entry[0] != key:
            entry = (key, build())
            self.models[kind] = entry
        return entry[1]

    def base_rtt_s(self) -> float:
        """
        Round trip of a small request with empty queues: the minimum of recent ones.

        A median would absorb queueing behind our own uploads on a saturated link, which the M/M/1
        uplink term already models (and would hide the transfer time).
        """
        return min(self.rtt_samples) if self.rtt_samples else 0.0

    def fixed_overhead_s(self) -> float:
        return self.base_rtt_s() + self.server_overhead_samples.median()


@dataclass
class SplitPoint:
    """A split candidate on the robot: its head's service time and the bytes it sends."""

    layer: int
    intermediate_bytes: int
    head: ServiceTimeEstimator


class Observations:
    """The estimators, fed by the dispatcher and the worker monitor (call with its lock held)."""

    def __init__(self, config: 'PlannerConfig', worker_names: List[str],
                 local_service_s: float):
        if len(set(worker_names)) != len(worker_names) or LOCAL in worker_names:
            raise ValueError(f'worker names must be unique and not {LOCAL!r}: {worker_names}')
        self.config = config
        self.arrivals = ArrivalRateEstimator(config.arrival_window_s,
                                             config.arrival_min_frames)
        self.local_service = ServiceTimeEstimator(
            window=100, max_age_s=config.local_service_max_age_s)
        self.local_service.add(local_service_s)
        self._local_timed_at_s = -math.inf   # when the robot's detector was last timed
        self.local_waiting = 0   # frames queued for the robot's detector (not the one it runs)
        self.local_holds = MedianWindow(50)   # its thread's time per frame besides inference
        self.workers: Dict[str, WorkerState] = {
            n: WorkerState(n, bandwidth=BandwidthEstimator(config.bandwidth_window_s))
            for n in worker_names}
        self.request_bytes = 50_000.0
        self.response_bytes = 1_000.0
        self.request_sizes: Deque[int] = deque(maxlen=50)
        self._requests = 0   # tokens of requests in flight (request_started)
        self._payload_generation = 0     # payload settings so far (payload_changed)
        self._request_generation: Dict[int, int] = {}   # token -> its payload setting
        self._size_scv = 1.0
        self.ingress_samples = MedianWindow(100)
        # The node's own handling of a frame outside inference and transfer (image
        # conversion, encoding, publishing), measured per frame, local and remote apart.
        self.handling_samples: Dict[str, MedianWindow] = {
            'local': MedianWindow(100), 'remote': MedianWindow(100)}
        self.observed: Deque[tuple] = deque(maxlen=5000)   # (t_s, target, latency_s)
        # The last 50 per target, so the per-frame hedging check does not scan `observed`.
        self.recent_by_target: Dict[str, Deque[tuple]] = {}
        self._last_remote_at_s: Dict[str, float] = {}   # per worker: its last answer to a frame
        self.split_points: Dict[int, SplitPoint] = {}

    def reconfigure(self, config: 'PlannerConfig') -> None:
        self.config = config

    def set_workers(self, names: List[str]) -> None:
        """Add and remove workers, keeping the estimates of those that stay."""
        if LOCAL in names or len(set(names)) != len(names):
            raise ValueError(f'worker names must be unique and not {LOCAL!r}: {names}')
        self.workers = {n: self.workers.get(n) or WorkerState(
            n, bandwidth=BandwidthEstimator(self.config.bandwidth_window_s)) for n in names}

    def frame_arrived(self, now_s: float) -> None:
        self.arrivals.add(now_s)

    def local_queue(self, waiting: int) -> None:
        """Frames now waiting for the robot's detector, not counting the one it runs."""
        self.local_waiting = max(0, waiting)

    def local_released(self, hold_s: float) -> None:
        """
        Note that the robot's detector thread is free again.

        Hold_s after the inference ended (or besides it: decoding, publishing the detections and
        the record).
        """
        self.local_holds.append(max(0.0, hold_s))

    def local_done(self, service_s: float, now_s: Optional[float] = None) -> None:
        self.local_service.add(service_s, now_s)
        if now_s is not None:
            self._local_timed_at_s = max(self._local_timed_at_s, now_s)

    def local_profile_started(self, now_s: float) -> None:
        """Note a started re-timing of the robot's detector: not due again for a period."""
        self._local_timed_at_s = max(self._local_timed_at_s, now_s)

    def local_retimed(self, service_s: float, now_s: float) -> bool:
        """
        Take the result of a re-timing (local_profile_due); True if it entered the estimate.

        It ran beside the offloading work (the robot's encoding and uploads, a worker on the
        same machine in the demo), which a switch to the robot would partly remove, so it reads
        the robot slow (CHANGELOG, demo runs). So it can only lower the estimate, as the
        worker's idle profile can only lower its own: an optimistic figure gets the robot
        tried, and its own frames then rule.
        """
        self._local_timed_at_s = max(self._local_timed_at_s, now_s)
        if service_s >= self.local_service.windowed().mean_s:
            return False
        self.local_service.add(service_s, now_s)
        return True

    def set_split_points(self, profiles: Mapping[int, tuple]) -> None:
        """
        {layer: (head service s, intermediate bytes)} from the robot's profile.

        Each worker serving that layer's tail adds a `worker/split@layer` target.
        """
        self.split_points = {}
        for layer, (head_s, size) in profiles.items():
            estimator = ServiceTimeEstimator(window=100)
            estimator.add(head_s)
            self.split_points[layer] = SplitPoint(layer, int(size), estimator)

    def head_done(self, layer: int, service_s: float) -> None:
        self.split_points[layer].head.add(service_s)

    def payload_changed(self) -> None:
        """
        Note that the payload setting changed (JPEG <-> raw, quality).

        The next request's size replaces the estimate instead of being averaged into the old
        regime's. Requests started before the change and answered after it are not counted in the
        sizes: one late raw frame among JPEG ones inflates the size spread, and the FIFO uplink's
        wait with it, for the next 50 frames (CHANGELOG, fidelity matrix of session 7).
        """
        self.request_sizes.clear()
        self._payload_generation += 1

    def payload(self, request_bytes: int, response_bytes: int) -> None:
        """
        One request's size.

        The first after start-up or a payload change replaces the prior; later ones are smoothed
        (EWMA 0.2).
        """
        first = not self.request_sizes
        self.request_sizes.append(request_bytes)
        sizes = self.request_sizes
        if len(sizes) >= 5:   # kept here, per frame, not recomputed in every prediction
            mean = sum(sizes) / len(sizes)
            self._size_scv = (sum((x - mean) ** 2 for x in sizes) / len(sizes) / mean ** 2
                              if mean > 0 else 1.0)
        if first:
            self.request_bytes = float(request_bytes)
        else:
            self.request_bytes += 0.2 * (request_bytes - self.request_bytes)
        self.response_bytes += 0.2 * (response_bytes - self.response_bytes)

    def request_started(self, name: str, now_s: float) -> int:
        """
        Note that a request to `name` is on its way.

        Pass the token to remote_done, or to request_abandoned if it fails (the bandwidth estimate
        waits for busy periods it shares to end).
        """
        self._requests += 1
        if name in self.workers:   # (a worker removed while a frame was on its way: nothing)
            self.workers[name].bandwidth.transfer_started(self._requests, now_s)
        generations = self._request_generation
        generations[self._requests] = self._payload_generation
        if len(generations) > 4096:      # a token never ended (its thread lost): let it go
            del generations[next(iter(generations))]
        return self._requests

    def request_abandoned(self, name: str, token: int) -> None:
        self._request_generation.pop(token, None)
        if name in self.workers:
            self.workers[name].bandwidth.transfer_abandoned(token)

    def remote_done(self, name: str, now_s: float, request_bytes: int, response_bytes: int,
                    round_trip_s: float, server_s: Optional[float],
                    queue_s: Optional[float], service_s: Optional[float],
                    whole_frame: bool = True, token: Optional[int] = None) -> None:
        """
        Take a worker's answer; whole_frame False for a split's tail.

        (its bytes say nothing of the image payload, but time the link all the same). The
        answer of a worker removed meanwhile (set_workers) is not an estimate any more.
        """
        if name not in self.workers:
            self._request_generation.pop(token, None)
            return
        state = self.workers[name]
        if server_s is not None and queue_s is not None and service_s is not None:
            state.server_overhead_samples.append(max(0.0, server_s - queue_s - service_s))
        network_s = max(round_trip_s - (server_s or 0.0) - state.base_rtt_s(), MIN_TRANSFER_S)
        state.bandwidth.add_transfer(now_s, request_bytes + response_bytes, network_s,
                                     start_s=now_s - round_trip_s, token=token)
        self._last_remote_at_s[name] = now_s
        generation = self._request_generation.pop(token, self._payload_generation)
        if whole_frame and generation == self._payload_generation:
            self.payload(request_bytes, response_bytes)

    def probe_done(self, name: str, now_s: float, payload_bytes: int,
                   round_trip_s: float) -> None:
        state = self.workers[name]
        # Below the timer resolution (loopback) the link is simply fast: clamp, don't drop.
        state.bandwidth.add_transfer(now_s, payload_bytes,
                                     max(round_trip_s - state.base_rtt_s(), MIN_TRANSFER_S),
                                     start_s=now_s - round_trip_s)

    def frame_handled(self, target: str, handling_s: float) -> None:
        """Time the node spent on a frame besides the detector or the worker round trip."""
        if 0.0 <= handling_s < 10.0:
            self.handling_samples[LOCAL if target == LOCAL else 'remote'].append(handling_s)

    def handling_s(self, target: str) -> float:
        """
        Return the median of the last frames' handling.

        The smallest while fewer than HANDLING_MIN_FRAMES went that way. The first frames after
        start-up carry one-off costs (lazy initialisation, a CPU quota shared with the detector's
        warm-up, two orders of magnitude above later frames), and only frames sent that way
        replace them: a median of those two kept a Case 2 robot off both workers for the whole
        run (CHANGELOG, session 10).
        """
        samples = self.handling_samples[LOCAL if target == LOCAL else 'remote']
        if len(samples) < HANDLING_MIN_FRAMES:
            return min(samples, default=0.0)
        return samples.median()

    def frame_ingress(self, delay_s: float) -> None:
        """
        Capture-to-receipt delay of a frame (camera driver and DDS), common to all targets.

        The mean of the last 100 is added to every prediction so they compare with observed
        latency. The mean, not the median: a mean latency holds every frame's ingress, and with the
        robot's detector busy on its one core the tail is long (the mean about twice the median
        at 8 Hz, CHANGELOG, session 12).
        """
        if 0.0 <= delay_s < 10.0:
            self.ingress_samples.append(delay_s)

    def load_report(self, name: str, rtt_s: float, total_rate_hz: float,
                    service_mean_s: Optional[float], service_var_s2: Optional[float],
                    parallelism: int, own_rate_hz: float, queue_length: int = 0,
                    tail_service_s: Optional[Mapping[int, float]] = None,
                    tenants: int = 0, watchers: Optional[int] = None) -> None:
        state = self.workers[name]
        state.others = max(0, tenants - (1 if own_rate_hz > 0 else 0))
        state.watchers = watchers
        state.tail_service_s = dict(tail_service_s or {})
        state.queue_length = max(0, queue_length)
        state.rtt_samples.append(rtt_s)
        state.total_rate_hz, state.own_rate_hz = total_rate_hz, own_rate_hz
        if service_mean_s:
            state.service_mean_s = service_mean_s
            state.service_var_s2 = service_var_s2 or 0.0
        state.parallelism = max(1, parallelism)
        state.available = state.service_mean_s is not None
        state.reason = '' if state.available else 'worker has no service profile yet'

    def outcome(self, now_s: float, target: str, latency_s: float) -> None:
        """
        Observed end-to-end latency of a frame (inf for a lost one).

        Used by the threshold baseline, which decides from observations instead of models.
        """
        self.observed.append((now_s, target, latency_s))
        self.recent_by_target.setdefault(target, deque(maxlen=50)).append((now_s, latency_s))

    def worker_failed(self, name: str, reason: str) -> None:
        state = self.workers.get(name)
        if state is None:
            return   # removed meanwhile: nothing to mark
        state.available, state.reason = False, reason
