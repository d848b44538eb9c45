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
make bench-soak: endurance of the robot node set and one worker.

30 minutes (--minutes N for short runs) at 10 fps on looping real footage, in the scenario
harness (robot namespace on core 0, gpu_worker on core 1, tbf-shaped link at 20 Mbit/s). In
the middle the worker is killed and restarted 10 s later, and a minute later the link steps
to 5 Mbit/s (sooner in short runs). Every process's RSS and open descriptors are sampled
each minute (more often in short runs). Reports frames without outcome and the deadline-miss
rate per 5-minute window.
Goals: RSS growth under 5% after the first 5 minutes (per process lifetime: the restarted
worker is judged from its own start), no descriptor growth, zero frames without outcome.
Descriptors are read by kind (scenarios.descriptors): no growth means the descriptors other
than TCP connections end where they settled, the TCP connections never exceed what the
process's pools allow, and none stays in CLOSE_WAIT from one sample to the next.
Writes bench/results/soak.json.
"""
import argparse
import collections
import math
import pathlib
import sys
import time

import psutil
import yaml

from offload_ros import analysis
from offload_ros.dispatch.clock import IO_THREADS
from offload_ros.scenarios import descriptors, harness
from offload_ros.scenarios.netns import capable


def sample(run: harness.Run) -> dict:
    procs = dict(zip(run.robot_names, run.robot))
    procs['gpu_worker'] = run.workers['edge1'].proc
    out = {}
    for name, popen in procs.items():
        try:
            rss = psutil.Process(popen.pid).memory_info().rss
        except psutil.Error:
            out[name] = None
            continue
        fds = descriptors.descriptors(popen.pid)
        out[name] = None if fds is None else {
            'pid': popen.pid, 'rss_mb': round(rss / 2 ** 20, 2), 'fds': fds['total'],
            'descriptors': fds}
    return out


def tcp_bound(run: harness.Run, name: str) -> int:
    """
    Return the TCP connections a process may hold at once by design.

    The offload node's pool to each worker keeps up to max_inflight connections and opens one more
    per concurrent /load poll or cancel (IO_THREADS); the worker's only client is that node; the
    other nodes speak DDS (UDP and shared memory) only.
    """
    if name not in ('offload', 'gpu_worker'):
        return 0
    params = yaml.safe_load((run.out / 'params.yaml').read_text())
    per_worker = params['/**/offload']['ros__parameters']['max_inflight'] + IO_THREADS
    return per_worker * (len(run.workers) if name == 'offload' else 1)


def growth(samples: list, name: str, settle_s: float, bound: int) -> dict:
    """RSS and descriptors of one process from `settle_s` after its start to the end."""
    series = [(s['t_s'], s['procs'][name]) for s in samples if s['procs'].get(name)]
    if not series:
        return {}
    last_pid = series[-1][1]['pid']
    own = [(t, v) for t, v in series if v['pid'] == last_pid]
    start = own[0][0]
    settled = [(t, v) for t, v in own if t >= start + settle_s] or own[-1:]
    first, end = settled[0][1], own[-1][1]
    fds = descriptors.growth([v['descriptors'] for _, v in settled], bound)
    return {'pid': last_pid, 'from_s': round(settled[0][0]), 'rss_start_mb': first['rss_mb'],
            'rss_end_mb': end['rss_mb'],
            'rss_growth_pct': round(100.0 * (end['rss_mb'] / first['rss_mb'] - 1.0), 2),
            'fds_start': first['fds'], 'fds_end': end['fds'],
            'fd_growth': end['fds'] - first['fds'], 'descriptors': fds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', default='bench/results/soak.json')
    parser.add_argument('--minutes', type=float, default=30.0)
    parser.add_argument('--work', default='bench_out/soak')
    args = parser.parse_args(argv)
    if not capable('bench-soak'):
        return 77
    total_s = args.minutes * 60.0
    period_s = min(60.0, total_s / 10.0)
    window_s = min(300.0, total_s / 6.0)
    settle_s = min(300.0, total_s / 6.0)
    mid = total_s / 2.0
    spec = {'name': 'soak', 'duration_s': total_s,
            'camera': {'rate_hz': 10.0, 'width': 640, 'height': 480},
            'robot': {'params': {'deadline_s': 0.25}},
            'workers': [{'name': 'edge1', 'threads': 1}], 'link': {'bandwidth_mbps': 20},
            'schedule': [{'at_s': mid, 'kill': 'edge1'},
                         {'at_s': mid + min(10.0, total_s / 20), 'restart': 'edge1'},
                         {'at_s': mid + min(60.0, total_s / 6), 'bandwidth_mbps': 5}]}
    run = harness.Run(spec, 'model', pathlib.Path(args.work), verbose=True)
    samples = []
    try:
        t0 = run.start()
        wall0 = time.monotonic()
        steps = list(spec['schedule'])
        next_sample = 0.0
        while (elapsed := time.monotonic() - wall0) < total_s:
            if steps and elapsed >= steps[0]['at_s']:
                step = steps.pop(0)
                run._apply(step)
                run.events.append({**step, 't_s': time.time() - t0})
            if elapsed >= next_sample:
                samples.append({'t_s': round(elapsed, 1), 'procs': sample(run),
                                'frames': len(run.records)})
                print(f'[soak {elapsed / 60:5.1f}/{args.minutes:g} min] frames '
                      f'{len(run.records)}', flush=True)
                next_sample += period_s
            time.sleep(0.5)
        samples.append({'t_s': round(time.monotonic() - wall0, 1), 'procs': sample(run),
                        'frames': len(run.records)})
        run.drain()
    finally:
        run.teardown()
    records = run.records
    deadline = 0.25
    windows = []
    for k in range(int(math.ceil(total_s / window_s))):
        inside = [r for r in records
                  if k * window_s <= r.finished_at_s - t0 < (k + 1) * window_s]
        missed = sum(1 for r in inside if r.outcome != 'detections'
                     or r.observed_latency_s > deadline)
        windows.append({'from_s': k * window_s, 'frames': len(inside),
                        'miss_rate': round(missed / len(inside), 4) if inside else None})
    summary = analysis.summarise(records, run.received, deadline, t0, [])
    names = list(samples[-1]['procs'])
    result = {'minutes': args.minutes, 'frames': summary['frames'],
              'frames_without_outcome': summary['frames_without_outcome'],
              'events': run.events, 'windows': windows, 'window_s': window_s,
              'growth': {n: growth(samples, n, settle_s, tcp_bound(run, n)) for n in names},
              'samples': samples, 'machine': {'robot_core': run.robot_cores,
                                              'worker_core': run.edge_cores}}
    # The model self-check's verdict recorded with each frame (core.selfcheck): a right model
    # raises no WARN; the frames around the kill and the bandwidth step are counted apart.
    off = [r for r in records if any(v.get('status') != 'OK'
                                     for v in (r.selfcheck or {}).values())]
    result['selfcheck'] = {
        'frames_not_ok': len(off),
        'not_ok_at_s': sorted({round(r.finished_at_s - t0) for r in off})[:50],
        'statuses': dict(collections.Counter(
            f'{target}:{v.get("status")}' for r in records
            for target, v in (r.selfcheck or {}).items()))}
    result['goals'] = {
        'rss_growth_under_5pct': all(g and g['rss_growth_pct'] < 5.0
                                     for g in result['growth'].values()),
        'no_fd_growth': all(g and not g['descriptors']['leak']
                            for g in result['growth'].values()),
        'zero_frames_without_outcome': summary['frames_without_outcome'] == 0,
        'no_selfcheck_warning': not off}
    analysis.write_json(pathlib.Path(args.out), result)
    for name, g in result['growth'].items():
        print(f'  {name:18s} RSS {g.get("rss_start_mb")} -> {g.get("rss_end_mb")} MB '
              f'({g.get("rss_growth_pct")}%), fds {g.get("fds_start")} -> {g.get("fds_end")} '
              f'{g.get("descriptors")}')
    print(f'frames {summary["frames"]}, without outcome {summary["frames_without_outcome"]}; '
          f'goals {result["goals"]}; wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
