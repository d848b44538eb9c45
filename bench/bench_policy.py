"""Cost of one policy evaluation (predict every option + decide) for 1, 4 and 16 workers.

Part of the overhead benchmark (goal: <= 50 us for 4 workers). Writes
bench/results/policy.json. Pure core, no ROS: median and p99 over many evaluations.
"""
import argparse
import json
import pathlib
import sys
import time

import numpy as np

from offload_ros import report
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


def measure(runs_argmin: int = 3000) -> dict:
    results = {}
    for mode in ('argmin', 'split'):
        for workers in (1, 4, 16):
            planner = planner_with(workers, mode)
            runs = runs_argmin if mode == 'argmin' else max(50, runs_argmin // 30)
            samples = []
            for i in range(runs):
                now = 10.0 + i * 1e-4
                start = time.perf_counter()
                planner.evaluate(now)
                samples.append(time.perf_counter() - start)
            us = np.array(samples) * 1e6
            results[f'{mode}_{workers}_workers'] = {
                'median_us': round(float(np.median(us)), 1),
                'p99_us': round(float(np.percentile(us, 99)), 1), 'runs': runs}
    results['goal_4_workers_us'] = 50
    results['met'] = results['argmin_4_workers']['median_us'] <= 50
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='bench/results/policy.json')
    parser.add_argument('--runs', type=int, default=3000)
    args = parser.parse_args(argv)
    results = measure(args.runs)
    report.write_json(pathlib.Path(args.out), results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
