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
The fleet benchmark: N robots sharing M workers, in the fleet simulator (offload_ros.fleet).

Each robot runs the node's own Dispatcher, Planner and WorkerMonitor in simulated time (SimPy),
with 4-8 Hz cameras, 50 kB JPEGs on its own 20 Mbit/s link, a 60 ms detector, and workers of
10-25 ms that report their load with the worker's own LoadTracker. Per configuration and seed:
the coordinated references (the best fractional and whole-stream assignments from the true
parameters, run in the same simulator), then each policy for `duration_s`, with the fastest
worker serving 3x slower from `slow_at_s` on. Steady figures are taken from the warm-up to the
slowdown; the slowdown's misses over the 20 s after it. Writes bench/results/fleet.json and
a plot of worker utilisation over time.
"""
import argparse
import json
import pathlib
import statistics
import sys
import time
from dataclasses import replace

from offload_ros.core.planner import PlannerConfig
from offload_ros.core.policy import PolicyConfig
from offload_ros.dispatch.frames import DispatchSettings
from offload_ros.fleet import sim
from offload_ros.fleet.world import ServiceProfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
# GPU-class workers of 10-25 ms (the fleet issue's configuration), fastest first in no order.
WORKER_MEANS_S = (0.010, 0.025, 0.015, 0.020, 0.012, 0.018, 0.022, 0.014)
POLICIES = {
    'argmin': dict(mode='argmin', damped=False),      # each robot alone: the former default
    'damped': dict(mode='argmin', damped=True),       # the default
    'share': dict(mode='share', damped=False),        # delay-optimal shares per robot
}


def base_config(robots: int, workers: int, duration_s: float, warmup_s: float) -> sim.FleetConfig:
    return sim.FleetConfig(
        robots, tuple(ServiceProfile(s, 0.1) for s in WORKER_MEANS_S[:workers]),
        PlannerConfig(policy=PolicyConfig('argmin', 0.1, 0.25), epoch_s=0.5),
        DispatchSettings(0.25), duration_s=duration_s, warmup_s=warmup_s)


def run_config(robots: int, workers: int, seeds: int, policies, duration_s: float,
               warmup_s: float, slow_at_s: float, log) -> list:
    """Rows for one (robots, workers): each policy's figures and the references, per seed."""
    base = base_config(robots, workers, duration_s, warmup_s)
    fastest = min(range(workers), key=lambda j: WORKER_MEANS_S[j])
    per_policy = {p: [] for p in policies}
    references, wholes = [], []
    utilisation = {}
    for seed in range(seeds):
        steady = replace(base, duration_s=slow_at_s + 1.0)
        for whole, sink in ((False, references), (True, wholes)):
            started = time.monotonic()
            run = sim.simulate(sim.coordinated(steady, seed, whole=whole), seed)
            sink.append(run.metrics(warmup_s, slow_at_s)['mean_latency_s'])
            log(f'N={robots} M={workers} seed {seed} reference ({"whole" if whole else "frac"})'
                f' {sink[-1] * 1e3:.1f} ms [{time.monotonic() - started:.0f} s]')
        for name in policies:
            config = replace(sim.with_policy(base, **POLICIES[name]),
                             slowdowns=(sim.Slowdown(slow_at_s, fastest, 3.0),))
            started = time.monotonic()
            run = sim.simulate(config, seed)
            if run.submitted != len(run.results):
                raise SystemExit(f'{run.submitted - len(run.results)} frames without outcome')
            figures = run.metrics(warmup_s, slow_at_s)
            figures['slow_miss_rate'] = run.metrics(slow_at_s, slow_at_s + 20.0)['miss_rate']
            figures['polls_per_worker_s'] = statistics.fmean(run.polls.values()) / duration_s
            per_policy[name].append(figures)
            if seed == 0:
                utilisation[name] = {'bin_s': run.bin_s, 'workers': run.utilisation}
            log(f'N={robots} M={workers} seed {seed} {name}: mean '
                f'{figures["mean_latency_s"] * 1e3:.1f} ms, misses {figures["miss_rate"]:.2%}, '
                f'{figures["switches_per_robot_min"]:.1f} switches/robot/min, after slowdown '
                f'{figures["slow_miss_rate"]:.2%} [{time.monotonic() - started:.0f} s]')
    reference = statistics.fmean(references)
    rows = []
    for name, runs in per_policy.items():
        mean = statistics.fmean(r['mean_latency_s'] for r in runs)
        rows.append({
            'robots': robots, 'workers': workers, 'policy': name, 'seeds': seeds,
            'mean_latency_s': mean,
            'p99_latency_s': statistics.fmean(r['p99_latency_s'] for r in runs),
            'miss_rate': statistics.fmean(r['miss_rate'] for r in runs),
            'switches_per_robot_min': statistics.fmean(r['switches_per_robot_min']
                                                       for r in runs),
            'slow_miss_rate_20s': statistics.fmean(r['slow_miss_rate'] for r in runs),
            'reference_latency_s': reference,
            'whole_stream_latency_s': statistics.fmean(wholes),
            'ratio_to_reference': mean / reference,
            'ratio_range': [min(r['mean_latency_s'] / ref for r, ref in zip(runs, references)),
                            max(r['mean_latency_s'] / ref for r, ref in zip(runs, references))],
            'polls_per_worker_s': statistics.fmean(r['polls_per_worker_s'] for r in runs),
            'per_seed': runs,
        })
    return rows, utilisation


def plot(utilisation: dict, slow_at_s: float, title: str, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(utilisation), 1, figsize=(9, 2.2 * len(utilisation)),
                             sharex=True, squeeze=False)
    for ax, (name, data) in zip(axes[:, 0], utilisation.items()):
        for worker, series in data['workers'].items():
            smooth = [statistics.fmean(series[max(0, k - 4):k + 1]) for k in range(len(series))]
            ax.plot([k * data['bin_s'] for k in range(len(series))], smooth, lw=0.8,
                    label=worker)
        ax.set_ylabel('utilisation')
        ax.set_ylim(0, 1.05)
        ax.set_title(name, fontsize=9, loc='left')
        ax.axvline(slow_at_s, ls='--', c='k', lw=0.6)
    axes[-1, 0].set_xlabel('simulated time (s); the fastest worker slows 3x at the dashed line')
    axes[0, 0].legend(fontsize=7, ncol=4, loc='upper right')
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=str(ROOT / 'bench/results/fleet.json'))
    parser.add_argument('--plot', default=str(ROOT / 'docs/img/fleet_utilisation.png'))
    parser.add_argument('--robots', default='10,20,50')
    parser.add_argument('--workers', default='2,4,8')
    parser.add_argument('--policies', default='argmin,damped')
    parser.add_argument('--seeds', type=int, default=2)
    parser.add_argument('--duration-s', type=float, default=90.0)
    parser.add_argument('--warmup-s', type=float, default=20.0)
    parser.add_argument('--slow-at-s', type=float, default=60.0)
    parser.add_argument('--plot-config', default='20x2', help='ROBOTSxWORKERS to plot')
    args = parser.parse_args(argv)
    policies = args.policies.split(',')
    unknown = set(policies) - set(POLICIES)
    if unknown:
        parser.error(f'unknown policies {sorted(unknown)}; known: {sorted(POLICIES)}')
    if not args.warmup_s < args.slow_at_s <= args.duration_s - 20.0:
        parser.error('need warmup_s < slow_at_s <= duration_s - 20')

    def log(line):
        print(line, flush=True)
    rows, started = [], time.monotonic()
    for robots in map(int, args.robots.split(',')):
        for workers in map(int, args.workers.split(',')):
            config_rows, utilisation = run_config(robots, workers, args.seeds, policies,
                                                  args.duration_s, args.warmup_s,
                                                  args.slow_at_s, log)
            rows += config_rows
            if f'{robots}x{workers}' == args.plot_config and args.plot:
                plot(utilisation, args.slow_at_s, f'{robots} robots, {workers} workers: '
                     'worker utilisation (0.5 s mean)', pathlib.Path(args.plot))
    result = {'bench': 'fleet', 'duration_s': args.duration_s, 'warmup_s': args.warmup_s,
              'slow_at_s': args.slow_at_s, 'seeds': args.seeds, 'deadline_s': 0.25,
              'worker_means_s': WORKER_MEANS_S, 'rows': rows,
              'wall_s': round(time.monotonic() - started, 1)}
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + '\n')
    print(f'{"N":>3} {"M":>2} {"policy":<8} {"mean ms":>8} {"ref ms":>7} {"ratio":>6} '
          f'{"miss":>6} {"sw/min":>6} {"slow miss":>9}')
    for r in rows:
        print(f'{r["robots"]:>3} {r["workers"]:>2} {r["policy"]:<8} '
              f'{r["mean_latency_s"] * 1e3:8.1f} {r["reference_latency_s"] * 1e3:7.1f} '
              f'{r["ratio_to_reference"]:6.3f} {r["miss_rate"]:6.2%} '
              f'{r["switches_per_robot_min"]:6.2f} {r["slow_miss_rate_20s"]:9.2%}')
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
