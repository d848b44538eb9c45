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
Cost of one policy evaluation (predict every option + decide) for 1, 4 and 16 workers.

Part of the overhead benchmark (goal: <= 50 us for 4 workers). Writes
bench/results/policy.json. Pure core, no ROS: median and p99 over many evaluations.
"""
import argparse
import json
import pathlib
import sys
import time

import numpy as np

from offload_ros import analysis
from offload_ros.core.planner import Planner, PlannerConfig


def planner_with(workers: int, mode: str) -> Planner:
    names = [f'edge{i}' for i in range(workers)]
    from offload_ros.core.policy import PolicyConfig
    planner = Planner(PlannerConfig(policy=PolicyConfig(mode=mode)), names, 0.05)
    for i in range(100):
        planner.frame_arrived(i * 0.1)
        planner.frame_ingress(0.003)
    for n, name in enumerate(names):
        planner.load_report(name, 0.002, 5.0 + n, 0.01 + 0.001 * n, 1e-6, 1, 0.0, 0)
        planner.remote_done(name, 9.9, 50_000, 1_000, 0.03, 0.012, 0.001, 0.01)
    return planner


def measure(runs_argmin: int = 3000, rounds: int = 5) -> dict:
    """
    Median and p99 over every evaluation.

    Taken in `rounds` interleaved rounds (each configuration's share of a round back to back, the
    order rotated): a slow spell of the shared core then lands in every configuration, and the per-
    round medians show it.
    """
    configs = [(mode, workers) for mode in ('argmin', 'share') for workers in (1, 4, 16)]
    planners = {c: planner_with(c[1], c[0]) for c in configs}
    samples = {c: [] for c in configs}
    round_medians = {c: [] for c in configs}
    for k in range(rounds):
        for mode, workers in configs[k % len(configs):] + configs[:k % len(configs)]:
            runs = runs_argmin if mode == 'argmin' else max(50, runs_argmin // 30)
            planner, own = planners[(mode, workers)], []
            for i in range(max(1, runs // rounds)):
                now = 10.0 + (k * runs + i) * 1e-4
                start = time.perf_counter()
                planner.evaluate(now)
                own.append(time.perf_counter() - start)
            samples[(mode, workers)] += own
            round_medians[(mode, workers)].append(round(float(np.median(own)) * 1e6, 1))
    results = {}
    for c in configs:
        us = np.array(samples[c]) * 1e6
        results[f'{c[0]}_{c[1]}_workers'] = {
            'median_us': round(float(np.median(us)), 1),
            'p99_us': round(float(np.percentile(us, 99)), 1), 'runs': len(us),
            'round_medians_us': round_medians[c]}
    results['goal_4_workers_us'] = 50
    results['met'] = results['argmin_4_workers']['median_us'] <= 50
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', default='bench/results/policy.json')
    parser.add_argument('--runs', type=int, default=3000)
    args = parser.parse_args(argv)
    results = measure(args.runs)
    analysis.write_json(pathlib.Path(args.out), results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
