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
make bench-energy: energy per frame and latency of always-local, always-remote.

The latency (argmin) mode and the energy mode in Case 1 (20 -> 10 -> 2 -> 20 Mbit/s).

Energy comes from the platform model of the decision node (core/energy.py; robot.yaml
parameters) applied to each frame's realised target and its predicted terms, because this
machine exposes no energy counters (no /sys/class/powercap RAPL, no NVML); where RAPL exists
the report notes it. Goal: the energy mode's deadline misses no worse than the latency mode's,
with less robot energy per frame. Writes bench/results/energy.json.
"""
import argparse
import math
import pathlib
import sys

import numpy as np

from offload_ros import analysis
from offload_ros.core.records import read_records
from offload_ros.scenarios import harness
from offload_ros.scenarios.netns import capable

POLICIES = ('local', 'remote', 'model', 'energy')


def per_frame(records, deadline_s: float) -> dict:
    robot, total, latency, missed = [], [], [], 0
    for r in records:
        e = (r.energy or {}).get(r.target) or {}
        if e.get('robot_j') is not None:
            robot.append(e['robot_j'])
            total.append(e['total_j'])
        ok = r.outcome == 'detections' and r.observed_latency_s <= deadline_s
        missed += not ok
        if r.outcome == 'detections':
            latency.append(r.observed_latency_s)
    return {'frames': len(records),
            'robot_j_per_frame': float(np.mean(robot)) if robot else None,
            'total_j_per_frame': float(np.mean(total)) if total else None,
            'mean_latency_s': float(np.mean(latency)) if latency else None,
            'p99_latency_s': float(np.percentile(latency, 99)) if latency else None,
            'miss_rate': missed / len(records) if records else None,
            'targets': {t: sum(1 for r in records if r.target == t)
                        for t in sorted({r.target for r in records})}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', default='bench/results/energy.json')
    parser.add_argument('--work', default='bench_out/energy')
    parser.add_argument('--reuse', action='store_true', help='recompute from --work')
    parser.add_argument('--quick', action='store_true', help='accepted for make bench; same')
    args = parser.parse_args(argv)
    if not args.reuse:
        if not capable('bench-energy'):
            return 77
    spec = harness.load_spec(harness.launch.package_share()
                             / 'config/scenarios/case1_fluctuating.yaml')
    deadline = float(spec['robot']['params']['deadline_s'])
    result = {'scenario': spec['name'], 'deadline_s': deadline,
              'energy_source': 'rapl' if pathlib.Path('/sys/class/powercap/intel-rapl:0')
              .exists() else 'model (no RAPL or NVML counters on this machine)',
              'policies': {}}
    for policy in POLICIES:
        out = pathlib.Path(args.work) / policy
        if not args.reuse:
            harness.Run(spec, policy, out).execute()
        records = read_records((out / 'records.jsonl').read_text().splitlines())
        t0 = min(r.finished_at_s for r in records)
        phases = harness.schedule_phases(spec)
        result['policies'][policy] = {
            **per_frame(records, deadline),
            'phases': [{'phase': ph['name'], **per_frame(
                [r for r in records
                 if ph['start_s'] <= r.finished_at_s - t0 < ph['end_s']],
                deadline)} for ph in phases]}
        s = result['policies'][policy]
        print(f"[energy] {policy:7s} robot {s['robot_j_per_frame'] * 1e3:.0f} mJ/frame, "
              f"total {s['total_j_per_frame'] * 1e3:.0f} mJ/frame, mean "
              f"{s['mean_latency_s'] * 1e3:.0f} ms, misses {s['miss_rate']:.1%}", flush=True)
    lat, eng = result['policies']['model'], result['policies']['energy']
    result['goal'] = {'misses_no_worse': eng['miss_rate'] <= lat['miss_rate'],
                      'less_robot_energy': eng['robot_j_per_frame'] < lat['robot_j_per_frame'],
                      'robot_energy_ratio': eng['robot_j_per_frame'] / lat['robot_j_per_frame']
                      if lat['robot_j_per_frame'] else math.nan}
    analysis.write_json(pathlib.Path(args.out), result)
    print(f"goal {result['goal']}; wrote {args.out}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
