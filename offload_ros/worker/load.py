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
The worker's live load, in the terms of the decision models (ROS-free, injected clocks).

Arrival rate over a sliding window, service-time mean and variance over the same window
(hiccups left out), per model and per client, and the M/G/1 predicted wait.
"""
import collections
import math
import statistics
from dataclasses import dataclass, replace
from typing import Deque, Dict, Optional, Tuple

from offload_ros.core import queueing
from offload_ros.worker.protocol import LoadReport, StreamFigures

MIN_LIVE_SAMPLES = 3   # requests in the window before their mean replaces a faster profile
# A service time above this multiple of the window's median is a hiccup (a start-up or
# another process's burst), not the worker's speed; inference times here spread to 1.4x the
# median at the 99th percentile.
HICCUP_RATIO = 2.0


class WindowedSamples:
    """The samples of a time window (time, value), oldest first."""

    def __init__(self, window_s: float):
        if not window_s > 0:
            raise ValueError(f'window_s must be > 0, got {window_s!r}')
        self.window_s = window_s
        self._samples: Deque[Tuple[float, float]] = collections.deque()

    def add(self, now_s: float, value: float) -> None:
        self._samples.append((now_s, value))
        self.trim(now_s)

    def trim(self, now_s: float) -> None:
        while self._samples and self._samples[0][0] < now_s - self.window_s:
            self._samples.popleft()

    @property
    def count(self) -> int:
        return len(self._samples)

    def moments(self, ratio: float = HICCUP_RATIO) -> Tuple[Optional[float], float, int]:
        """
        Mean and variance of the values.

        Leaving out those above `ratio` times their median where there are three or more; returns
        (mean or None, variance, left out).

        One slow request (a first one's one-off costs) must not move a short window's mean
        for the whole window: it sent a Case 2 robot to a slower worker (CHANGELOG, session
        11). A worker that really slows down shows it once half the window is slow.
        """
        values = [v for _, v in self._samples]
        if not values:
            return None, 0.0, 0
        limit = ratio * statistics.median(values) if len(values) >= 3 else math.inf
        kept = [v for v in values if v <= limit]
        mean = statistics.fmean(kept)
        var = statistics.variance(kept, mean) if len(kept) > 1 else 0.0
        return mean, var, len(values) - len(kept)


@dataclass
class _Stream:
    arrivals: WindowedSamples
    services: WindowedSamples


class LoadTracker:
    """Arrivals and service times of one model, overall and per client."""

    def __init__(self, window_s: float = 10.0, parallelism: int = 1, started_at_s: float = 0.0,
                 prior_service_s: Optional[float] = None, prior_service_var_s2: float = 0.0):
        """prior_service_*: the start-up profile, reported while the window holds no samples."""
        self.prior = (prior_service_s, prior_service_var_s2)
        self.prior_kind = 'start-up'
        self._startup_s = prior_service_s
        self._idle: Deque[float] = collections.deque(maxlen=5)
        self.window_s = window_s
        self.parallelism = parallelism
        self.started_at_s = started_at_s
        self._all = self._stream()
        self._clients: Dict[str, _Stream] = {}
        self._polled_at: Dict[str, float] = {}     # client -> its last /load poll

    def _stream(self) -> _Stream:
        return _Stream(WindowedSamples(self.window_s), WindowedSamples(self.window_s))

    def _client(self, client: str) -> _Stream:
        if client not in self._clients:
            if len(self._clients) >= 256:  # bound memory: forget the quietest client
                quiet = min(self._clients, key=lambda c: self._clients[c].arrivals.count)
                del self._clients[quiet]
            self._clients[client] = self._stream()
        return self._clients[client]

    def idle_profile(self, service_s: float) -> None:
        """
        Take an inference timed while idle.

        Reported while the window holds no live samples: the fastest of the start-up profile and
        the last five idle runs (with their variance). The fastest, because an idle worker's runs
        are slowed only by other processes on its machine: the start-up profile is taken while
        everything starts (Case 2: 2x slow), idle runs beside a robot running its own detector on
        the same machine (the demo: it never offloaded again). An optimistic figure for an unused
        worker gets it tried; its live figures then replace it.
        """
        self._idle.append(service_s)
        n = len(self._idle)
        mean = sum(self._idle) / n
        var = sum((x - mean) ** 2 for x in self._idle) / (n - 1) if n > 1 else 0.0
        fastest = min(self._idle)
        if self._startup_s is not None and self._startup_s < fastest:
            self.prior, self.prior_kind = (self._startup_s, var), 'start-up'
        else:
            self.prior, self.prior_kind = (fastest, var), 'idle'

    def polled(self, now_s: float, client: str) -> None:
        """Count a client that asked for the load report as a watcher, for a window."""
        if client not in self._polled_at and len(self._polled_at) >= 256:
            del self._polled_at[min(self._polled_at, key=self._polled_at.get)]
        self._polled_at[client] = now_s

    def arrival(self, now_s: float, client: str) -> None:
        self._all.arrivals.add(now_s, 1.0)
        self._client(client).arrivals.add(now_s, 1.0)

    def service(self, now_s: float, client: str, service_s: float) -> None:
        self._all.services.add(now_s, service_s)
        self._client(client).services.add(now_s, service_s)

    def _rate(self, stream: _Stream, now_s: float) -> float:
        stream.arrivals.trim(now_s)
        span = min(self.window_s, max(1e-9, now_s - self.started_at_s))
        return stream.arrivals.count / span

    def _figures(self, stream: _Stream, now_s: float) -> StreamFigures:
        stream.services.trim(now_s)
        mean, var, hiccups = stream.services.moments()
        return StreamFigures(self._rate(stream, now_s), mean,
                             var if mean is not None else None,
                             stream.services.count - hiccups, hiccups)

    def snapshot(self, now_s: float, queue_length: int, in_service: int,
                 caller: Optional[str] = None) -> LoadReport:
        """
        Return the load figures, overall and the caller's own ('client').

        Other tenants are counted ('tenants'), never named.
        """
        figures = self._figures(self._all, now_s)
        live = figures.service_mean_s
        # With fewer than MIN_LIVE_SAMPLES in the window, the profile where it is faster: a
        # first request carries one-off costs, and alone in the window it would be reported
        # for a whole window (docs/validation.md, worker load reports); a slow worker still
        # shows within MIN_LIVE_SAMPLES requests.
        profile = 'live'
        if self.prior[0] is not None and (live is None or (
                figures.samples < MIN_LIVE_SAMPLES and self.prior[0] < live)):
            figures = replace(figures, service_mean_s=self.prior[0],
                              service_var_s2=self.prior[1])
            profile = self.prior_kind
        mean, var = figures.service_mean_s, figures.service_var_s2
        rate = figures.arrival_rate_hz
        utilisation = rate * mean / self.parallelism if mean else 0.0
        wait = queueing.mg1k_wait_s(rate, mean, var or 0.0, self.parallelism) if mean else 0.0
        tenants = 0
        for stream in self._clients.values():
            stream.arrivals.trim(now_s)
            tenants += stream.arrivals.count > 0
        own = self._clients.get(caller) if caller is not None else None
        watchers = sum(1 for t in self._polled_at.values() if t >= now_s - self.window_s)
        return LoadReport(figures, profile, self.window_s, self.parallelism, queue_length,
                          in_service, utilisation, wait if math.isfinite(wait) else None,
                          tenants, self._figures(own, now_s) if own is not None and
                          own.arrivals.count else None, watchers=watchers)
