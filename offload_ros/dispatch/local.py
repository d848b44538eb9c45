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

"""The robot's accelerator: its detector's queue, partition heads and re-timing."""
import threading
from typing import TYPE_CHECKING, Mapping, Optional

from offload_ros.core.policy import LOCAL
from offload_ros.dispatch.frames import Frame, Result
from offload_ros.inference.picture import BadImage, Picture

if TYPE_CHECKING:
    from offload_ros.dispatch.dispatcher import Dispatcher


class LocalRunner:
    """
    One accelerator on the robot: the detector and partition heads run on it one at a time.

    Frames queue for it on the dispatcher's `local` pool, at most max_local_queue of them.
    """

    def __init__(self, dispatcher: 'Dispatcher', detector, heads: Mapping[int, object]):
        self.d = dispatcher
        self.detector = detector
        self.heads = dict(heads)
        self._device = threading.Lock()
        self.backlog = 0    # frames given to the local pool and not finished (and re-timings)
        self.waiting = 0    # of those, not yet started
        self.profiles = 0   # re-timings of the detector (profile_if_due)
        self.latest: Optional[Picture] = None

    def on_device(self, run, image) -> tuple:
        """Run one model on the robot's accelerator, alone on it: (its result, seconds)."""
        with self._device:
            start = self.d.clock.monotonic()
            result = run(image)
            return result, self.d.clock.monotonic() - start

    def head(self, frame: Frame, layer: int) -> tuple:
        """Run a partition's head on the robot: (crossing tensors, seconds)."""
        tensors, head_s = self.on_device(self.heads[layer].run, frame.image)
        with self.d.lock:
            self.d.planner.head_done(layer, head_s)
        return tensors, head_s

    def submit(self, frame: Frame, fallback: bool, reason: str) -> None:
        d = self.d
        with d.lock:
            full = self.backlog >= d.settings.max_local_queue
            if not full:
                self.backlog += 1
                self.waiting += 1
                d.planner.local_queue(self.waiting)
        if full:
            d.finish(frame, 'drop', LOCAL, 'local queue full', fallback=fallback)
            return
        d.pools.local.submit(self._run, frame, fallback, reason)

    def _run(self, frame: Frame, fallback: bool, reason: str) -> None:
        d = self.d
        with d.lock:
            self.waiting -= 1
            d.planner.local_queue(self.waiting)
        try:
            if frame.hedge is not None and d.is_finished(frame):
                return  # the worker answered while this hedge waited for the detector
            frame.started_mono = d.clock.monotonic()
            if d.settings.drop_late and d.now_s() > frame.deadline_at_s:
                d.finish(frame, 'drop', LOCAL, 'deadline passed in queue', fallback=fallback)
                return
            try:
                image = frame.image
            except BadImage as e:
                d.malformed(frame, e, fallback)
                return
            detections, service_s = self.on_device(self.detector.detect, image)
            frame.core_done_mono = d.clock.monotonic()
            with d.lock:
                d.planner.local_done(service_s, frame.core_done_mono)
            d.finish(frame, 'detections', LOCAL, reason, Result(detections, service_s),
                     fallback)
            with d.lock:   # this thread was busy besides inference: frames behind waited
                d.planner.local_released(d.clock.monotonic() - frame.started_mono - service_s)
        except Exception as e:  # one outcome per frame even if the detector fails
            if not d.is_finished(frame):
                d.finish(frame, 'error', LOCAL, f'local inference failed: {e!r}'[:300],
                         fallback=fallback)
        finally:
            with d.lock:
                self.backlog -= 1

    def profile_if_due(self) -> None:
        """
        Re-time the detector on the latest frame (Planner.local_profile_due).

        It runs in the detector's thread like a frame: one arriving for the robot meanwhile
        waits for it, as behind any frame.
        """
        d = self.d
        with d.lock:
            now = d.clock.monotonic()
            picture = self.latest
            if picture is None or self.backlog or not d.planner.local_profile_due(now):
                return
            d.planner.local_profile_started(now)
            self.backlog += 1
        d.pools.local.submit(self._profile, picture)

    def _profile(self, picture: Picture) -> None:
        d = self.d
        try:
            service_s = self.on_device(self.detector.detect, picture.bgr)[1]
            with d.lock:
                d.planner.local_retimed(service_s, d.clock.monotonic())
                self.profiles += 1
        except BadImage:
            pass    # that frame's own outcome says so; the next due time tries a newer one
        except Exception as e:  # a failed re-timing must not stop the epochs
            d.log.warning(f're-timing the local detector failed: {e}')
        finally:
            with d.lock:
                self.backlog -= 1
