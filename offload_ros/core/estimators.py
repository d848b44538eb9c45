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
Online estimators with injected timestamps (seconds from any monotonic clock).

None of them reads a clock: callers pass `now_s`, so tests and replays are deterministic.
"""
import collections
import math
import statistics
from dataclasses import dataclass
from typing import Deque, Dict, Iterable, List, Optional, Sequence, Tuple

from offload_ros.core import queueing


def _check_window(window_s: float) -> None:
    if not window_s > 0:
        raise ValueError(f'window_s must be > 0, got {window_s!r}')


class ArrivalRateEstimator:
    """
    Arrival rate over a sliding window: (n - 1) / (t_last - t_first) of the events in it.

    With n events the estimate's relative error is about 1/sqrt(n): at 1 Hz a 5 s window
    holds 5 frames (+-45%), and a wait predicted near capacity from such a noisy rate is
    biased upwards (the wait is convex in the rate). `min_events` keeps at least that many
    of the latest events even when older than the window (never older than `max_age_s`,
    default 6 windows), so slow streams are measured over enough frames while fast ones keep
    the short window's responsiveness.

    Events kept beyond the window would hold a drop in the rate back for `min_events`
    frames (8 -> 1 Hz: about 1.7 Hz 10 s after the step, 1.2 Hz after 15 s). So each new
    event tests whether the window's own events are too few for one rate over all the events
    kept (given n events from the first to now, the n - 2 between them fall uniformly: the
    window's share of them is binomial); below `drop_alpha` the rate has dropped, and only
    the window's events, and the last one before it, are kept.
    """

    def __init__(self, window_s: float, min_events: int = 0, max_age_s: float = None,
                 drop_alpha: float = 1e-3):
        _check_window(window_s)
        if min_events < 0:
            raise ValueError(f'min_events must be >= 0, got {min_events!r}')
        if not 0.0 <= drop_alpha < 1.0:
            raise ValueError(f'drop_alpha must be in [0, 1), got {drop_alpha!r}')
        self._window_s = window_s
        self._min_events = min_events
        self._max_age_s = 6.0 * window_s if max_age_s is None else max_age_s
        self._drop_alpha = drop_alpha
        self._times: Deque[float] = collections.deque()
        self._scv_key: tuple = ()
        self._scv: Optional[float] = None

    def add(self, now_s: float) -> None:
        self._times.append(now_s)
        self._trim(now_s)
        self._forget_before_a_drop(now_s)

    def _forget_before_a_drop(self, now_s: float) -> None:
        times = self._times
        cut = now_s - self._window_s
        if len(times) < 3 or times[0] >= cut:
            return     # no event kept beyond the window (then len(times) <= min_events)
        older = sum(1 for t in times if t < cut)
        interior, inside = len(times) - 2, len(times) - older - 1
        share = self._window_s / (now_s - times[0])
        if _binomial_cdf(inside, interior, share) < self._drop_alpha:
            for _ in range(older - 1):
                times.popleft()

    def _trim(self, now_s: float) -> None:
        times = self._times
        while times and (times[0] < now_s - self._max_age_s or (
                times[0] < now_s - self._window_s and len(times) > self._min_events)):
            times.popleft()

    def rate_hz(self, now_s: float) -> float:
        """
        (n-1)/span of the events in the window, less its bias.

        Decays once the stream goes quiet.
        """
        self._trim(now_s)
        n = len(self._times)
        if n < 2:
            return 0.0
        span_s = self._times[-1] - self._times[0]
        if span_s <= 0:
            return 0.0
        mean_gap_s = span_s / (n - 1)
        if now_s - self._times[-1] > 2.0 * mean_gap_s:
            return n / (now_s - self._times[0])
        # (n-1)/span reads a Poisson rate 1/(n-2) high (the mean of 1/span for a gamma
        # span: +5.6% with the 20 frames kept at 1 Hz); to first order any stream's bias is
        # scv/(n-1), none for a periodic camera. Removed where the gaps' scv is known.
        scv = self.interarrival_scv(now_s) or 0.0
        return (n - 1 - min(scv, 0.5 * (n - 1))) / span_s

    def interarrival_scv(self, now_s: float) -> Optional[float]:
        """
        Squared coefficient of variation of the gaps in the window.

        (1 for Poisson, 0 for a periodic camera); None with fewer than 10 gaps.
        """
        self._trim(now_s)
        if len(self._times) < 11:
            return None
        key = (len(self._times), self._times[0], self._times[-1])
        if key != self._scv_key:   # every prediction asks; the window changes per frame
            self._scv_key, self._scv = key, self._gaps_scv()
        return self._scv

    def _gaps_scv(self) -> Optional[float]:
        times = list(self._times)
        gaps = [b - a for a, b in zip(times, times[1:])]
        mean = sum(gaps) / len(gaps)
        if mean <= 0:
            return None
        var = sum((g - mean) ** 2 for g in gaps) / (len(gaps) - 1)
        return var / (mean * mean)


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p ** i * (1.0 - p) ** (n - i) for i in range(k + 1))


class BandwidthEstimator:
    """
    Throughput of the link while it was busy with recent transfers.

    The median, over the busy periods in a short window, of their bits / their length.

    Each transfer is an interval [start, start + duration]; overlapping ones form one busy
    period. Concurrent uploads share a link (TCP flows: processor sharing), so one transfer's
    own bits / time reads the link as slower than it is while it shares it, and the one that
    finishes last as faster; a work-conserving link moves all of a busy period's bits in its
    length, whatever the sharing (on the fidelity matrix's raw frames near saturation the
    per-transfer estimate read 15-20% low, and the M/M/1 uplink wait near rho 0.8 amplified
    that 3x). Idle gaps between frames do not dilute the estimate. The median over busy
    periods ignores a single isolated transfer stretched by a stall on the sender (a robot
    throttled by its CPU quota). A busy period that a transfer still in flight overlaps is
    not complete (that transfer used part of it): it counts only while there is no other
    (`transfer_started` registers a transfer, its completion or `transfer_abandoned` ends it);
    nor is one that began before a transfer the window has already let go of ended.
    The window is short (seconds) and capped in samples. A step restarts the window, so it
    shows after one transfer: a transfer whose own bits / time (a lower bound of the link's
    rate, shared or not) exceed the estimate by `change_ratio`, or whose busy period's rate is
    below it by that ratio.
    With no recent transfer the last estimate is kept (not the prior). Transfers below
    `min_bytes` are ignored (they measure latency, not bandwidth).
    """

    def __init__(self, window_s: float, min_bytes: int = 1000, max_samples: int = 32,
                 change_ratio: float = 3.0):
        _check_window(window_s)
        if max_samples < 1:
            raise ValueError(f'max_samples must be >= 1, got {max_samples!r}')
        self._window_s = window_s
        self._min_bytes = min_bytes
        # (start_s, end_s, bits), in order of completion
        self._samples: Deque[Tuple[float, float, float]] = collections.deque()
        self._max_samples = max_samples
        self._let_go_until = -math.inf    # latest end of a transfer dropped from the window
        self._last: Optional[float] = None
        self._change_ratio = change_ratio
        self._open: Dict[object, float] = {}     # transfers in flight: token -> start

    def transfer_started(self, token, start_s: float) -> None:
        self._open[token] = start_s

    def transfer_abandoned(self, token) -> None:
        self._open.pop(token, None)

    def add_transfer(self, now_s: float, payload_bytes: float, duration_s: float,
                     start_s: Optional[float] = None, token=None) -> None:
        """
        Return a transfer of `duration_s` seconds that began at `start_s`.

        (default: it ended at `now_s`); `token`: the one it was registered with, if any.
        """
        self._open.pop(token, None)
        if payload_bytes < self._min_bytes or not duration_s > 0:
            return
        start = now_s - duration_s if start_s is None else start_s
        bits = 8.0 * payload_bytes
        if len(self._samples) >= self._max_samples:
            self._let_go()
        self._samples.append((start, start + duration_s, bits))
        self._trim(now_s)
        # A transfer lost without a word (a bug, a killed thread) must not hold every later
        # busy period open: in-flight registrations expire after a few windows.
        for t in [t for t, s in self._open.items() if s < now_s - 10 * self._window_s]:
            del self._open[t]
        own_bps = bits / duration_s    # a lower bound of the link's rate, shared or not
        if self._last and own_bps > self._last * self._change_ratio:
            # A step up: this transfer alone was faster than the link was thought to be.
            # Forget the old regime at once instead of averaging across it for a window.
            while self._samples[0][1] <= start:
                self._let_go()
            self._last = own_bps
            return
        periods = self._complete_periods()
        if not periods:
            # Every busy period still shares time with a transfer in flight: keep the
            # estimate (the first one excepted).
            if self._last is None:
                self._last = float(statistics.median(
                    b / (e - a) for a, e, b in _busy_periods(self._samples)))
            return
        newest = periods[-1]
        if self._last and newest[0] <= start and newest[2] / (newest[1] - newest[0]) \
                < self._last / self._change_ratio:
            # A step down: this transfer's whole busy period moved far fewer bits.
            while self._samples and self._samples[0][1] <= newest[0]:
                self._let_go()
            periods = [newest]
        self._last = float(statistics.median(b / (e - a) for a, e, b in periods))

    def _complete_periods(self) -> List[Tuple[float, float, float]]:
        oldest_open = min(self._open.values(), default=math.inf)
        return [p for p in _busy_periods(self._samples)
                if p[1] <= oldest_open and p[0] >= self._let_go_until]

    def _let_go(self) -> None:
        self._let_go_until = max(self._let_go_until, self._samples.popleft()[1])

    def _trim(self, now_s: float) -> None:
        while self._samples and self._samples[0][1] < now_s - self._window_s:
            self._let_go()

    def bandwidth_bps(self, now_s: float) -> Optional[float]:
        """Return the estimate from the window's transfers, else the last (None before any)."""
        return self._last

    def sample_count(self, now_s: float) -> int:
        self._trim(now_s)
        return len(self._samples)


def _busy_periods(samples) -> List[Tuple[float, float, float]]:
    """(start, end, bits) of each maximal run of overlapping (start, end, bits) transfers."""
    periods: List[Tuple[float, float, float]] = []
    for start, end, bits in sorted(samples):
        if periods and start < periods[-1][1]:
            a, b, total = periods[-1]
            periods[-1] = (a, max(b, end), total + bits)
        else:
            periods.append((start, end, bits))
    return periods


@dataclass(frozen=True)
class ServiceProfile:
    mean_s: float
    var_s2: float
    count: int


class MedianWindow:
    """
    The last `maxlen` samples, their median and their mean.

    Each computed once per new sample (policy evaluations read them far more often than frames add
    to them).
    """

    def __init__(self, maxlen: int):
        self._samples: Deque[float] = collections.deque(maxlen=maxlen)
        self._median: Optional[float] = None
        self._mean: Optional[float] = None

    def append(self, value: float) -> None:
        self._samples.append(value)
        self._median = self._mean = None

    def __len__(self) -> int:
        return len(self._samples)

    def __bool__(self) -> bool:
        return bool(self._samples)

    def __iter__(self):
        return iter(self._samples)

    def median(self, default: float = 0.0) -> float:
        if not self._samples:
            return default
        if self._median is None:
            self._median = statistics.median(self._samples)
        return self._median

    def mean(self, default: float = 0.0) -> float:
        if not self._samples:
            return default
        if self._mean is None:
            self._mean = math.fsum(self._samples) / len(self._samples)
        return self._mean


class ServiceTimeEstimator:
    """
    Service-time mean and variance over a window of the last `window` samples, plus EWMA.

    With `max_age_s`, a new sample also lets go of those older than that, down to the
    latest `min_samples`: a robot's detector slows down while its CPU is busier (8 Hz of
    frames), and 100 samples from then would otherwise describe it for 100 s at 1 Hz, or
    for as long as it ran nothing locally. Samples added without a time count as older
    than any.
    """

    def __init__(self, window: int = 200, ewma_alpha: float = 0.1,
                 max_age_s: Optional[float] = None, min_samples: int = 10):
        if window < 2:
            raise ValueError(f'window must be >= 2, got {window!r}')
        if not 0.0 < ewma_alpha <= 1.0:
            raise ValueError(f'ewma_alpha must be in (0, 1], got {ewma_alpha!r}')
        if max_age_s is not None and not max_age_s > 0:
            raise ValueError(f'max_age_s must be > 0, got {max_age_s!r}')
        self._samples: Deque[float] = collections.deque(maxlen=window)
        self._times: Deque[float] = collections.deque(maxlen=window)   # -inf: no time
        self._max_age_s = max_age_s
        self._min_samples = max(1, min_samples)
        self._alpha = ewma_alpha
        self._ewma_mean: Optional[float] = None
        self._ewma_var = 0.0
        self._windowed: Optional[ServiceProfile] = None   # cached until the next sample

    def add(self, service_s: float, now_s: Optional[float] = None) -> None:
        if not (math.isfinite(service_s) and service_s >= 0):
            raise ValueError(f'service_s must be finite and >= 0, got {service_s!r}')
        self._samples.append(service_s)
        self._times.append(-math.inf if now_s is None else now_s)
        self._windowed = None
        if self._max_age_s is not None and now_s is not None:
            while len(self._samples) > self._min_samples \
                    and self._times[0] < now_s - self._max_age_s:
                self._samples.popleft()
                self._times.popleft()
        if self._ewma_mean is None:
            self._ewma_mean = service_s
        else:
            # West's incremental EWMA of mean and variance.
            delta = service_s - self._ewma_mean
            self._ewma_mean += self._alpha * delta
            self._ewma_var = (1.0 - self._alpha) * (self._ewma_var + self._alpha * delta * delta)

    def seed(self, samples: Iterable[float]) -> None:
        for sample in samples:
            self.add(sample)

    def windowed(self) -> Optional[ServiceProfile]:
        n = len(self._samples)
        if n == 0:
            return None
        if self._windowed is None:   # every prediction asks; samples come once per frame
            mean = sum(self._samples) / n
            var = sum((s - mean) ** 2 for s in self._samples) / (n - 1) if n > 1 else 0.0
            self._windowed = ServiceProfile(mean, var, n)
        return self._windowed

    def ewma(self) -> Optional[ServiceProfile]:
        if self._ewma_mean is None:
            return None
        return ServiceProfile(self._ewma_mean, self._ewma_var, len(self._samples))


def fit_parallelism(observations: Sequence[Tuple[float, float]], service_s: float,
                    candidates: Sequence[float] = (1, 2, 3, 4, 6, 8)) -> float:
    """
    Effective parallelism k.

    The candidate whose M/D/1 (aggregated k*mu) prediction of the mean latency W + s best fits
    observed (rate_hz, mean_latency_s) pairs (least squares).
    """
    if not observations:
        raise ValueError('fit_parallelism needs at least one (rate_hz, latency_s) observation')
    best_k, best_error = candidates[0], math.inf
    for k in candidates:
        error = 0.0
        for rate_hz, latency_s in observations:
            predicted = queueing.md1_wait_s(rate_hz, 1.0 / service_s, k) + service_s
            error += (predicted - latency_s) ** 2 if math.isfinite(predicted) else math.inf
        if error < best_error:
            best_k, best_error = k, error
    return best_k
