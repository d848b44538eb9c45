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
offload_loadgen URL --rate R.

Synthetic tenants sending real inference requests (Poisson, open loop) with a real frame, so a
worker's load rises as if other robots shared it.
"""
import argparse
import concurrent.futures
import signal
import sys
import threading
import time
from typing import List, Optional

import cv2
import numpy as np

from offload_ros.inference import models
from offload_ros.worker.client import (CircuitBreaker, WorkerClient, WorkerRequestError,
                                       WorkerUnavailable)


def run(url: str, rate_hz: float, duration_s: Optional[float], client_id: str, seed: int,
        stop: threading.Event, deadline_s: Optional[float] = None) -> dict:
    """
    Send until stopped; returns counts and each answered request's latency.

    (requests with a deadline carry it, so the worker may schedule by it or drop them unrun).
    """
    frame = cv2.resize(cv2.VideoCapture(str(models.cache_dir() / 'media/vtest.avi')).read()[1],
                       (640, 480))
    # Each synthetic tenant stands for another robot on its own link: no shared uplink.
    client = WorkerClient(url, client_id=client_id, payload='jpeg', pool_size=32,
                          breaker=CircuitBreaker(threshold=10 ** 9), serial_uploads=False)
    tensor = client.encode(frame)
    rng = np.random.default_rng(seed)
    sent, failed = 0, 0
    end = time.monotonic() + duration_s if duration_s else None

    def one():
        start = time.perf_counter()
        try:
            client.infer(frame, deadline_s or 10.0, tensor)
            return time.perf_counter() - start
        except (WorkerUnavailable, WorkerRequestError, ValueError):
            return None
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        futures = []
        due = time.monotonic()
        while not stop.is_set() and (end is None or time.monotonic() < end):
            due += rng.exponential(1.0 / rate_hz)
            if stop.wait(max(0.0, due - time.monotonic())):
                break
            futures.append(pool.submit(one))
            sent += 1
        latencies = [f.result() for f in futures]
        failed = sum(1 for x in latencies if x is None)
    client.close()
    return {'sent': sent, 'failed': failed, 'latencies_s': latencies}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='offload_loadgen',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('url')
    rate = parser.add_mutually_exclusive_group(required=True)
    rate.add_argument('--rate', type=float, help='requests per second')
    rate.add_argument('--utilisation', type=float, help='the worker\'s utilisation to add: '
                      'the rate is this over its service time in /load (times parallelism)')
    parser.add_argument('--duration', type=float)
    parser.add_argument('--client-id', default='tenant')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.utilisation is not None:
        if not 0 < args.utilisation < 10:
            parser.error('--utilisation must be in (0, 10)')
        try:
            load = WorkerClient(args.url).fetch_load(timeout_s=2.0)
        except WorkerUnavailable as e:
            parser.error(f'--utilisation: no /load from {args.url} ({e})')
        if not load.service_mean_s:
            parser.error(f'--utilisation: {args.url} reports no service time yet')
        args.rate = args.utilisation * load.parallelism / load.service_mean_s
        print(f'offload_loadgen: utilisation {args.utilisation} at a service time of '
              f'{load.service_mean_s * 1e3:.1f} ms: {args.rate:.1f} Hz', flush=True)
    if not args.rate > 0:
        parser.error('--rate must be > 0')
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    result = run(args.url, args.rate, args.duration, args.client_id, args.seed, stop)
    print(f"offload_loadgen: sent {result['sent']}, failed {result['failed']}", flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
