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
make bench-split: split inference, predicted vs observed, against local and full offload.

The fidelity bench's set-up (one robot node set on core 0, gpu_worker on core 1, tbf-shaped
veth, camera on real footage with Poisson frames, targets forced live through parameters),
with the worker serving the detector's tails after Darknet layers 3, 5 and 7 and the robot
held to half a core (a robot's CPU is the slower one). VGA frames, so the raw payload is the
921 kB a robot camera gives. Cells: two bandwidths x {local, whole frame as JPEG, whole frame
as raw tensor, split@3, split@5, split@7} at 1 Hz. The prediction is the node's own tandem
prediction per frame (M/D/1 head on the robot -> uplink -> M/G/1 tail at the worker, Ng et
al. Sec. 3), averaged over the cell's frames; nothing is fitted to the observations.

Writes bench/results/split.json and, with --report, docs/img/split_latency.png.
"""
import argparse
import math
import pathlib
import sys
from typing import List, Optional

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_fidelity import Bench, parse_cell_args, utilisation  # noqa: E402

from offload_ros import analysis  # noqa: E402
from offload_ros.core.policy import parse_target  # noqa: E402
from offload_ros.scenarios.netns import capable  # noqa: E402

LAYERS = (3, 5, 7)
BANDWIDTHS_MBPS = (20, 8)
TARGETS = [('local', 'jpeg'), ('edge1', 'jpeg'), ('edge1', 'raw')] + \
    [(f'edge1/split@{k}', 'jpeg') for k in LAYERS]


class SplitBench(Bench):
    def __init__(self, args):
        super().__init__(args)
        layers = ','.join(map(str, LAYERS))
        self.spec['camera'].update({'width': 640, 'height': 480})
        self.spec['robot']['cpu_fraction'] = args.robot_cpu
        self.spec['robot']['params'].update({'split_layers': layers, 'max_inflight': 1})
        self.spec['workers'][0]['args'] = ['--split-layers', layers]
        self.spec['link']['bandwidth_mbps'] = BANDWIDTHS_MBPS[0]
        self.run.spec = self.spec

    def plan(self) -> List[dict]:
        cells = [{'target': t, 'payload': p, 'bandwidth_mbps': bw, 'rate_hz': self.args.rate_hz}
                 for bw in BANDWIDTHS_MBPS for t, p in TARGETS]
        return cells[:self.args.limit] if self.args.limit else cells

    def utilisation(self, estimates: dict, target: str, rate_hz: float) -> Optional[dict]:
        worker, layer = parse_target(target)
        if layer is None:
            return utilisation(estimates, target, rate_hz)
        point = estimates.get('splits', {}).get(str(layer))
        net = estimates.get('networks', {}).get(worker)
        state = next((w for w in estimates.get('workers', []) if w['name'] == worker), None)
        if point is None or net is None or state is None or \
                str(layer) not in state.get('tail_service_s', {}):
            return None
        return {'robot': rate_hz * point['head_s'],
                'uplink': rate_hz * point['intermediate_bytes'] * 8 / net['bandwidth_bps'],
                'worker': (rate_hz + state['tenant_rate_hz'])
                * state['tail_service_s'][str(layer)] / state['parallelism']}


def label(cell: dict) -> str:
    worker, layer = parse_target(cell['target'])
    if layer is not None:
        return f'split@{layer}'
    return 'local' if worker == 'local' else f'offload ({cell["payload"]})'


def compare(cells: List[dict]) -> dict:
    """
    Return, per bandwidth, the fastest option and whether a split beat the others.

    Per bandwidth: the fastest observed option and whether a split beat both local and full
    offload.
    """
    out = {}
    for bw in sorted({c['bandwidth_mbps'] for c in cells}):
        stable = {label(c): c for c in cells if c['bandwidth_mbps'] == bw and c['stable']}
        if not stable:
            continue
        observed = {k: c['observed_mean_s'] for k, c in stable.items()}
        predicted = {k: c['predicted_mean_s'] for k, c in stable.items()}
        splits = {k: v for k, v in observed.items() if k.startswith('split@')}
        whole = {k: v for k, v in observed.items() if not k.startswith('split@')}
        best_split = min(splits, key=splits.get) if splits else None
        out[str(bw)] = {
            'observed_ms': {k: round(v * 1e3, 1) for k, v in observed.items()},
            'predicted_ms': {k: round(v * 1e3, 1) for k, v in predicted.items()},
            'best_observed': min(observed, key=observed.get),
            'best_predicted': min(predicted, key=predicted.get),
            'best_split': best_split,
            'split_beats_local_and_offload': bool(best_split and whole and
                                                  splits[best_split] < min(whole.values())),
            'split_beats_raw_offload': bool(best_split and 'offload (raw)' in whole and
                                            splits[best_split] < whole['offload (raw)'])}
    return out


def plot(result: dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    bands = sorted(result['comparison'], key=float, reverse=True)
    fig, axes = plt.subplots(1, len(bands), figsize=(5.2 * len(bands), 4.2), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, bw in zip(axes, bands):
        comp = result['comparison'][bw]
        names = list(comp['observed_ms'])
        x = np.arange(len(names))
        ax.bar(x - 0.2, [comp['observed_ms'][n] for n in names], 0.4, label='observed',
               color='tab:blue')
        ax.bar(x + 0.2, [comp['predicted_ms'][n] for n in names], 0.4, label='predicted',
               color='tab:orange')
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha='right')
        ax.set_title(f'{bw} Mbit/s')
        ax.set_yscale('log')
    axes[0].set_ylabel('mean latency (ms)')
    axes[0].legend()
    fig.suptitle('Split inference vs local and full offload (1 Hz, robot at half a core)')
    analysis.save_figure(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', default='bench/results/split.json')
    parser.add_argument('--report', action='store_true', help='write docs/img/split_latency.png')
    parser.add_argument('--work', default='bench_out/split')
    parser.add_argument('--rate-hz', type=float, default=1.0)
    parser.add_argument('--robot-cpu', type=float, default=0.5,
                        help='CPU quota of the robot namespace (fraction of a core)')
    args = parse_cell_args(parser, argv, cell_s=40.0, min_frames=40, quick_cell_s=15.0)
    if not capable('bench-split'):
        return 77
    bench = SplitBench(args)
    result = bench.execute()
    result['comparison'] = compare(result['cells'])
    analysis.write_json(pathlib.Path(args.out), result)
    mape = result['mape_pct']
    print(f'split: {result["stable_cells"]} stable cells, MAPE '
          f'{mape if mape is not None else math.nan:.2f}%; wrote {args.out}')
    for bw, comp in result['comparison'].items():
        print(f'  {bw} Mbit/s: best observed {comp["best_observed"]}, best predicted '
              f'{comp["best_predicted"]}, split beats local and offload: '
              f'{comp["split_beats_local_and_offload"]}, beats raw offload: '
              f'{comp["split_beats_raw_offload"]}')
    if args.report and result['stable_cells']:
        plot(result, pathlib.Path('docs/img/split_latency.png'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
