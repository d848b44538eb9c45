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

"""The worker monitor: each epoch, every worker's load report, and probes of idle links."""
import threading

from offload_ros.dispatch.dispatcher import Dispatcher
from offload_ros.inference.picture import BadImage
from offload_ros.worker import protocol
from offload_ros.worker.client import WorkerUnavailable


class WorkerMonitor:
    """
    Polls the dispatcher's workers (on its io pool, one poll at a time) and re-plans.

    poll_timeout_s bounds each /load; probe_bytes sizes a probe (0: the request the latest
    frame would make, so the payload size and its spread are known before offloading).
    """

    def __init__(self, dispatcher: Dispatcher, poll_timeout_s: float = 0.5,
                 probe_bytes: int = 20000):
        self.d = dispatcher
        self.poll_timeout_s, self.probe_bytes = poll_timeout_s, probe_bytes
        self._polling = False
        self._lock = threading.Lock()

    def epoch(self) -> None:
        """Re-time the robot's detector if due and start a poll unless one is running."""
        self.d.local.profile_if_due()
        with self._lock:
            if self._polling:
                return
            self._polling = True
        self.d.pools.io.submit(self._poll_all)

    def _poll_all(self) -> None:
        try:
            for name, client in list(self.d.clients.items()):
                self.poll(name, client)
            self.d.replan()
        finally:
            with self._lock:
                self._polling = False

    def poll(self, name: str, client) -> None:
        """Take one worker's load report (or fail it) and probe its link if due."""
        d = self.d
        start = d.clock.monotonic()
        try:
            load = client.fetch_load(timeout_s=self.poll_timeout_s)
        except Exception as e:   # WorkerUnavailable, or anything unforeseen
            with d.lock:
                # A poll stuck behind our own uploads on a busy link is no fault, unless the
                # oldest of them has had no answer in request_timeout_s.
                if getattr(e, 'kind', '') == 'timeout' and d.remote.inflight(name) and \
                        not d.remote.unanswered(name):
                    return
                if name in d.planner.workers:
                    d.planner.worker_failed(name, f'load: {e}')
            return
        rtt = d.clock.monotonic() - start
        with d.lock:
            if name not in d.planner.workers:
                return   # removed while polled
            tails = {layer: load.model_service_s[tail] for layer, tail in (
                (k, protocol.tail_model_name(client.model, k)) for k in d.local.heads)
                if tail in load.model_service_s}
            d.planner.load_report(name, rtt, load.arrival_rate_hz, load.service_mean_s,
                                  load.service_var_s2, load.parallelism, load.own_rate_hz,
                                  load.queue_length, tails, load.tenants, load.watchers)
            busy = bool(d.remote.inflight(name))
            due = d.planner.probe_due(name, d.clock.monotonic(), busy=busy)
            latest = d.local.latest
        if due:
            self._probe(name, client, latest)

    def _probe(self, name: str, client, latest) -> None:
        d = self.d
        size, data = self.probe_bytes, None
        if not size and latest is not None:
            try:
                data = client.request_body(latest)[0]
                size = len(data)
            except BadImage:
                pass   # a frame that does not decode: the estimate's size
        size = size or int(d.planner.request_bytes)
        try:
            trip = client.probe(size, timeout_s=1.0, data=data)
        except WorkerUnavailable:
            return
        if trip is None:
            return
        with d.lock:
            if name not in d.planner.workers:
                return
            d.planner.probe_done(name, d.clock.monotonic(), size, trip)
            if data is not None:
                d.planner.payload(size, int(d.planner.response_bytes))
