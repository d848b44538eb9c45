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
make bench-scheduling: per-tenant deadline-miss rate of the worker under FIFO and EDF.

The Case 2 setting reduced to its worker: one gpu_worker pinned to core 1, two synthetic
tenants sending the same real frame (Poisson, open loop, from core 0): a robot with a tight
deadline (3 service times, 30% of the requests) and a fleet with a loose one (15 service
times, 70%). Total utilisation 0.6 .. 0.95. A miss is an answer later than the deadline or
none (the worker drops a request whose deadline passed in the queue). Also the decision
model's FCFS (M/G/1) prediction of the mean latency against what each tenant observed: EDF
favours the tight tenant, so the model is pessimistic for it and optimistic for the loose one.
Writes bench/results/scheduling.json.
"""
import argparse
import os
import pathlib
import sys
import threading

import numpy as np
import requests

from offload_ros import analysis
from offload_ros.core import queueing
from offload_ros.scenarios import loadgen
from offload_ros.graph.procs import WorkerProcess

TENANTS = {'robot': {'share': 0.3, 'deadline_x': 3.0}, 'fleet': {'share': 0.7, 'deadline_x': 15.0}}


def run_point(discipline: str, rho: float, seconds: float, service_s: float,
              var_s2: float, seed: int) -> dict:
    prefix = ['taskset', '-c', '1'] if (os.cpu_count() or 1) >= 2 else []
    worker = WorkerProcess('--threads', '1', '--scheduling', discipline, '--max-queue', '512',
                           prefix=prefix)
    stop, results, threads = threading.Event(), {}, []
    try:
        total_hz = rho / service_s
        for i, (name, t) in enumerate(TENANTS.items()):
            def go(name=name, t=t, i=i):
                results[name] = loadgen.run(worker.url, t['share'] * total_hz, seconds,
                                            name, seed + i, stop, t['deadline_x'] * service_s)
            threads.append(threading.Thread(target=go))
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        worker.stop()
    wait = queueing.mg1_wait_s(total_hz, 1.0 / service_s, var_s2)
    point = {'discipline': discipline, 'utilisation': rho, 'tenants': {},
             'fcfs_predicted_latency_s': wait + service_s}
    for name, t in TENANTS.items():
        lat = results[name]['latencies_s']
        deadline = t['deadline_x'] * service_s
        answered = [x for x in lat if x is not None]
        point['tenants'][name] = {
            'requests': len(lat), 'deadline_s': deadline,
            'miss_rate': sum(1 for x in lat if x is None or x > deadline) / max(1, len(lat)),
            'mean_latency_s': float(np.mean(answered)) if answered else None}
    return point


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', default='bench/results/scheduling.json')
    parser.add_argument('--seconds', type=float, default=30.0)
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 10.0
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})
    probe = WorkerProcess('--threads', '1', prefix=['taskset', '-c', '1'])
    try:
        load = requests.get(probe.url + '/v2/models/yolov3_tiny/load', timeout=5).json()
    finally:
        probe.stop()
    service_s = float(load['service_mean_s'])
    var_s2 = float(load.get('service_var_s2') or 0.0)
    print(f'[scheduling] worker service {service_s * 1e3:.1f} ms (start-up profile)', flush=True)
    points = []
    for rho in (0.6, 0.7, 0.8, 0.9, 0.95):
        for discipline in ('fifo', 'edf'):
            point = run_point(discipline, rho, args.seconds, service_s, var_s2, 1000)
            points.append(point)
            print(f"[scheduling] rho {rho:.2f} {discipline}: " + ', '.join(
                f"{n} miss {v['miss_rate']:.1%} mean {1e3 * (v['mean_latency_s'] or 0):.0f} ms"
                for n, v in point['tenants'].items()) +
                f"; FCFS model {point['fcfs_predicted_latency_s'] * 1e3:.0f} ms", flush=True)
    analysis.write_json(pathlib.Path(args.out), {'service_s': service_s, 'points': points,
                                                 'tenants': TENANTS})
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
