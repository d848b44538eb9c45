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

"""A frame's request to a worker, and its end when the worker fails."""
import collections
from typing import TYPE_CHECKING, Dict, List

from offload_ros.core.deadline import request_timeout_s
from offload_ros.core.policy import LOCAL, parse_target
from offload_ros.dispatch.frames import Frame, Result
from offload_ros.inference.picture import BadImage
from offload_ros.worker.client import WorkerRequestError, WorkerUnavailable

if TYPE_CHECKING:
    from offload_ros.dispatch.dispatcher import Dispatcher


def local_needed_s(frame: Frame) -> float:
    """Return what the robot would take to run the frame (its prediction at decision)."""
    local = frame.predictions.get(LOCAL)
    return local.latency_s if local is not None else 0.0


class RemoteRunner:
    """Runs frames on workers (on the dispatcher's `remote` pool) and tracks what is in flight."""

    def __init__(self, dispatcher: 'Dispatcher'):
        self.d = dispatcher
        # Per worker: each request in flight and its start (monotonic), for unanswered().
        self._inflight: Dict[str, Dict[int, float]] = collections.defaultdict(dict)

    def run(self, frame: Frame) -> None:
        name = parse_target(frame.target)[0]
        with self.d.lock:
            self._inflight[name][id(frame)] = self.d.clock.monotonic()
        try:
            self._remote(frame, name)
        except Exception as e:   # unexpected: the frame still ends, on the robot if it can
            self.d.log_error(f'frame {frame.seq}: {name}: {e!r}')
            if not self.d.is_finished(frame):
                try:
                    self.d.fallback(frame, f'{name} error: {e!r}'[:200])
                except Exception as again:
                    self.d.error(frame, 'fallback', again)
        finally:
            with self.d.lock:
                del self._inflight[name][id(frame)]

    def inflight(self, name: str) -> int:
        """Return the requests to worker `name` not yet answered (call with lock held)."""
        return len(self._inflight[name])

    def unanswered(self, name: str) -> bool:
        """
        Tell whether our oldest request to `name` has waited request_timeout_s with no answer.

        No answer of any kind from the worker since it began. A request may wait past that
        limit (core.deadline.request_timeout_s), but the worker is failed from then on, as
        when the request was cut there: new frames go elsewhere at once. Call with lock held.
        """
        oldest = min(self._inflight[name].values(), default=None)
        client = self.d.clients.get(name)
        return oldest is not None and client is not None and \
            not client.answered_since(oldest) and \
            self.d.clock.monotonic() - oldest > self.d.settings.request_timeout_s

    def _remote(self, frame: Frame, name: str) -> None:
        frame.started_mono = self.d.clock.monotonic()
        client = self.d.clients.get(name)
        layer = parse_target(frame.target)[1]
        head_s = None
        tokens: List[int] = []     # the planner's token for the request, once it uploads

        def upload_begins():
            with self.d.lock:
                tokens.append(self.d.planner.request_started(name, self.d.clock.monotonic()))
        request_id = frame.hedge.request_id if frame.hedge else ''
        try:
            if client is None:
                raise WorkerUnavailable(f'worker {name} was removed', 'connection')
            if layer is None:
                answer = client.infer(frame.picture, self._request_budget(frame),
                                      request_id=request_id, on_upload=upload_begins)
            else:
                try:
                    tensors, head_s = self.d.local.head(frame, layer)
                except Exception as e:  # one outcome per frame even if the head fails
                    self.d.fallback(frame, f'split@{layer} head failed: {e}')
                    return
                answer = client.infer_split(layer, tensors, frame.picture.size,
                                            self._request_budget(frame),
                                            request_id=request_id, on_upload=upload_begins)
        except BadImage as e:   # a JPEG that does not decode, found building the request
            self._abandon(name, tokens)
            self.d.malformed(frame, e)
            return
        except (WorkerUnavailable, WorkerRequestError) as e:
            self._abandon(name, tokens)
            self._remote_failed(frame, name, getattr(e, 'kind', 'request'), e)
            return
        now = frame.core_done_mono = self.d.clock.monotonic()
        with self.d.lock:   # the link's time: from the upload's start, not the wait for it
            self.d.planner.remote_done(
                name, now, answer.request_bytes, answer.response_bytes,
                answer.round_trip_s - answer.upload_wait_s, answer.server_s,
                answer.server_queue_s, answer.server_service_s, whole_frame=layer is None,
                token=tokens[0] if tokens else None)
        predicted = frame.predictions.get(frame.target)
        if predicted is not None and answer.round_trip_s > 1.5 * predicted.latency_s:
            self.d.replan()  # far slower than predicted: re-plan now, not at the next epoch
        self.d.finish(frame, 'detections', frame.target, '', Result(
            answer.detections, answer.server_service_s, answer.round_trip_s, head_s,
            answer.server_s, answer.server_queue_s))

    def _remote_failed(self, frame: Frame, name: str, kind: str, error: Exception) -> None:
        if frame.hedge is not None and self.d.is_finished(frame):
            return  # the robot answered first and cancelled this request
        if kind == 'request' and frame.picture.jpeg is not None:
            try:   # the worker refused a JPEG sent as it came: is the frame at fault?
                frame.image
            except BadImage as bad:
                self.d.malformed(frame, bad)  # the worker is fine; nothing to run here
                return
        if kind in ('deadline', 'slow', 'timeout') and frame.hedge is None:
            # No answer in time: the latency is at least what has passed (a censored
            # observation, still evidence against a model that promised less).
            with self.d.lock:
                self.d.planner.checked(self.d.clock.monotonic(), frame.target,
                                       frame.predictions.get(frame.target),
                                       self.d.now_s() - frame.capture_s)
        if kind not in ('deadline', 'slow'):   # 'slow': it answers others meanwhile
            with self.d.lock:
                self.d.planner.worker_failed(name, f'{kind}: {error}')
            self.d.replan()  # leave the failed worker now, not at the next epoch
        self.d.fallback(frame, f'{name} {kind}')

    def _request_budget(self, frame: Frame) -> float:
        """Return the wait for a worker's answer (core.deadline.request_timeout_s)."""
        return request_timeout_s(frame.deadline_at_s - self.d.now_s(),
                                 self.d.settings.request_timeout_s, local_needed_s(frame))

    def _abandon(self, name: str, tokens: List[int]) -> None:
        with self.d.lock:
            for token in tokens:
                self.d.planner.request_abandoned(name, token)
