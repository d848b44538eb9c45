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
make bench-hedging: deadline hedging against none: hung worker, Case 1, tenant bursts.

Each scenario runs twice with the model policy: hedging off, and on (hedge a remote frame
when its predicted miss probability exceeds 0.1). Reports p99 latency, the deadline-miss
rate (lost frames count as misses) and the extra local compute hedging cost: local runs
started for hedged frames, and those wasted because the worker answered first. Writes
bench/results/hedging.json.
"""
import argparse
import json
import pathlib
import sys

import numpy as np

from offload_ros import analysis
from offload_ros.core.records import read_records
from offload_ros.scenarios import harness
from offload_ros.scenarios.netns import capable

SCENARIOS = ('fault_hang', 'case1_fluctuating', 'hedge_bursts')


def metrics(records, deadline_s: float) -> dict:
    delivered = [r.observed_latency_s for r in records if r.outcome == 'detections']
    missed = sum(1 for r in records if r.outcome != 'detections'
                 or r.observed_latency_s > deadline_s)
    hedged = [r for r in records if r.hedge]
    started = [r for r in hedged if r.hedge.local_started]
    return {'frames': len(records), 'miss_rate': missed / len(records) if records else None,
            'mean_s': float(np.mean(delivered)) if delivered else None,
            'p99_s': float(np.percentile(delivered, 99)) if delivered else None,
            'hedged_frames': len(hedged), 'local_runs_started': len(started),
            'won_by_robot': sum(1 for r in hedged if r.hedge.winner == 'local'),
            'wasted_local_runs': sum(1 for r in started if r.hedge.winner != 'local'),
            'extra_local_share': len(started) / len(records) if records else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', default='bench/results/hedging.json')
    parser.add_argument('--work', default='bench_out/hedging')
    parser.add_argument('--reuse', action='store_true')
    parser.add_argument('--quick', action='store_true', help='the fault only')
    parser.add_argument('--scenarios', nargs='+', choices=SCENARIOS,
                        help='run these only, keeping the others\' results in --out')
    args = parser.parse_args(argv)
    if not args.reuse:
        if not capable('bench-hedging'):
            return 77
    result = {}
    names = SCENARIOS[:1] if args.quick else SCENARIOS
    if args.scenarios:
        names = args.scenarios
        if pathlib.Path(args.out).exists():
            result = json.loads(pathlib.Path(args.out).read_text())
    for name in names:
        spec = harness.load_spec(harness.launch.package_share()
                                 / 'config/scenarios' / f'{name}.yaml')
        deadline = float(spec['robot']['params']['deadline_s'])
        result[name] = {'deadline_s': deadline}
        for policy in ('model', 'hedge'):
            out = pathlib.Path(args.work) / name / policy
            if not args.reuse:
                harness.Run(spec, policy, out).execute()
            records = read_records((out / 'records.jsonl').read_text().splitlines())
            result[name]['hedging' if policy == 'hedge' else 'none'] = m = \
                metrics(records, deadline)
            print(f"[hedging] {name} {policy}: miss {m['miss_rate']:.1%}, p99 "
                  f"{m['p99_s'] * 1e3:.0f} ms, local runs started {m['local_runs_started']} "
                  f"({m['wasted_local_runs']} wasted)", flush=True)
    analysis.write_json(pathlib.Path(args.out), result)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
