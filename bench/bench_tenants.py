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
make bench-tenants: the multi-tenant sweep (Ng et al.

Fig. 5c), predicted vs observed.

The fidelity bench's set-up (robot node set on core 0 held to half a core, gpu_worker on
core 1, tbf-shaped 20 Mbit/s veth, camera on real footage with Poisson frames at 2 Hz), with
N synthetic tenants like this robot (each 2 Hz Poisson JPEG requests for a real frame, one
open-loop load generator at N x 2 Hz in the worker's namespace) for N = 0, 1, ... The robot is
forced onto the worker for the sweep and onto itself for the local reference; the prediction
is the node's own per frame (M/G/1 at the worker with the tenants' rate it reads from
/load), averaged over the cell. The crossover tenant count is predicted by `offload_plan
crossover --vary tenants` from the node's estimates in the N = 0 cell, and observed where the
worker's mean latency crosses the robot's.

Writes bench/results/tenants.json and, with --report, docs/img/tenants_sweep.png.
"""
import argparse
import math
import pathlib
import sys
import time
from typing import List, Optional

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_fidelity import Bench, parse_cell_args  # noqa: E402

from offload_ros import analysis  # noqa: E402
from offload_ros.core import crossover as crossover_mod  # noqa: E402
from offload_ros.core.scenario import ScenarioError, scenario_from_estimates  # noqa: E402
from offload_ros.scenarios.netns import capable  # noqa: E402

BANDWIDTH_MBPS = 20


class TenantBench(Bench):
    def __init__(self, args):
        super().__init__(args)
        self.spec['robot']['cpu_fraction'] = args.robot_cpu
        self.spec['link']['bandwidth_mbps'] = BANDWIDTH_MBPS
        self.tenants = 0

    def plan(self) -> List[dict]:
        cell = {'payload': 'jpeg', 'bandwidth_mbps': BANDWIDTH_MBPS,
                'rate_hz': self.args.rate_hz}
        cells = [{**cell, 'target': 'local', 'tenants': 0}]
        cells += [{**cell, 'target': 'edge1', 'tenants': n}
                  for n in range(self.args.max_tenants + 1)]
        cells.append({**cell, 'target': 'local', 'tenants': self.args.max_tenants})
        return cells[:self.args.limit] if self.args.limit else cells

    def measure(self, cell: dict) -> dict:
        if cell['tenants'] != self.tenants:
            self.run._apply({'at_s': 0.0, 'load': {
                'worker': 'edge1', 'rate_hz': cell['tenants'] * self.args.rate_hz}})
            self.tenants = cell['tenants']
            time.sleep(6.0)   # the worker's /load window sees the new tenants
        result = super().measure(cell)
        result['tenants'] = cell['tenants']
        return result


def predicted_crossover(cells: List[dict], high: float) -> Optional[dict]:
    base = next((c for c in cells if c['stable'] and c['target'] == 'edge1'
                 and c['tenants'] == 0), None)
    if base is None:
        return None
    try:
        plan = scenario_from_estimates(base['estimates'], 'edge1')
        found = crossover_mod.crossovers(plan, 'tenants', 0.0, high, 'edge1')
    except ScenarioError as e:
        return {'error': str(e)}
    return {'crossovers': found,
            'tenants': found[0]['value'] if len(found) == 1 else None}


def observed_crossover(cells: List[dict]) -> Optional[float]:
    """
    Tenant count where the worker's observed mean rises through the robot's.

    (linear interpolation between the cells either side).
    """
    local = [c['observed_mean_s'] for c in cells if c['stable'] and c['target'] == 'local']
    remote = sorted((c['tenants'], c['observed_mean_s']) for c in cells
                    if c['stable'] and c['target'] == 'edge1')
    if not local or len(remote) < 2:
        return None
    level = float(np.mean(local))
    for (n0, t0), (n1, t1) in zip(remote, remote[1:]):
        if t0 <= level < t1:
            return n0 + (level - t0) / (t1 - t0) * (n1 - n0)
    return None


def observed_bracket(cells: List[dict]) -> Optional[list]:
    """
    Return the observed crossover bracket.

    [last tenant count where the worker was still faster, first where it was not or could not
    keep up (a skipped cell: its utilisation was past the gate)].
    """
    local = [c['observed_mean_s'] for c in cells if c['stable'] and c['target'] == 'local']
    if not local:
        return None
    level = float(np.mean(local))
    faster = None
    for c in sorted((c for c in cells if c['target'] == 'edge1'), key=lambda c: c['tenants']):
        if c['stable'] and c['observed_mean_s'] < level:
            faster = c['tenants']
        elif faster is not None:
            return [faster, c['tenants']]
    return [faster, None]


def plot(result: dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    remote = sorted((c for c in result['cells'] if c['stable'] and c['target'] == 'edge1'),
                    key=lambda c: c['tenants'])
    local = [c for c in result['cells'] if c['stable'] and c['target'] == 'local']
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    n = [c['tenants'] for c in remote]
    ax.errorbar(n, [c['observed_mean_s'] * 1e3 for c in remote],
                yerr=[(c['half_width_pct'] or 0) / 100 * c['observed_mean_s'] * 1e3
                      for c in remote], fmt='o-', color='tab:blue', label='worker, observed')
    ax.plot(n, [c['predicted_mean_s'] * 1e3 for c in remote], 's--', color='tab:blue',
            mfc='none', label='worker, predicted')
    if local:
        level = np.mean([c['observed_mean_s'] for c in local]) * 1e3
        ax.axhline(level, color='tab:orange', label='robot, observed')
    pred = (result.get('crossover_predicted') or {}).get('tenants')
    if pred is not None:
        ax.axvline(pred, color='0.4', ls=':', label=f'predicted crossover {pred:.1f}')
    obs = result.get('crossover_observed')
    if obs is not None:
        ax.axvline(obs, color='k', ls='-.', lw=0.8, label=f'observed crossover {obs:.1f}')
    ax.set_xlabel('other tenants on the worker (each like this robot)')
    ax.set_ylabel('mean latency (ms)')
    ax.set_title('Multi-tenant sweep (Ng et al. Fig. 5c)')
    ax.legend(fontsize=8)
    analysis.save_figure(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', default='bench/results/tenants.json')
    parser.add_argument('--report', action='store_true', help='write docs/img/tenants_sweep.png')
    parser.add_argument('--work', default='bench_out/tenants')
    parser.add_argument('--rate-hz', type=float, default=2.0)
    parser.add_argument('--max-tenants', type=int, default=7)
    parser.add_argument('--robot-cpu', type=float, default=0.5)
    args = parse_cell_args(parser, argv, cell_s=40.0, min_frames=60, quick_cell_s=15.0)
    if not capable('bench-tenants'):
        return 77
    result = TenantBench(args).execute()
    result['crossover_predicted'] = predicted_crossover(result['cells'], 4.0 * args.max_tenants)
    result['crossover_observed'] = observed_crossover(result['cells'])
    result['crossover_observed_bracket'] = observed_bracket(result['cells'])
    analysis.write_json(pathlib.Path(args.out), result)
    pred = (result['crossover_predicted'] or {}).get('tenants')
    obs = result['crossover_observed']
    print(f'tenants: {result["stable_cells"]} stable cells, MAPE '
          f'{result["mape_pct"] if result["mape_pct"] is not None else math.nan:.2f}%; '
          f'crossover predicted {pred if pred is not None else math.nan:.2f} tenants, observed '
          f'{obs if obs is not None else math.nan:.2f} (bracket '
          f'{result["crossover_observed_bracket"]}); wrote {args.out}')
    if args.report and result['stable_cells']:
        plot(result, pathlib.Path('docs/img/tenants_sweep.png'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
