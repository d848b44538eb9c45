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
offload_plan: capacity planning with the latency models (prints JSON).

Bad input exits 2 with one line naming the field; never a traceback.
"""
import argparse
import json
import math
import sys
from typing import List, Optional

import yaml

from offload_ros.core import crossover, dualmode, latency, sharing
from offload_ros.core.policy import LOCAL, PolicyConfig, decide
from offload_ros.core.scenario import ScenarioError, predict_all, scenario_from_mapping


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f'offload_plan: {message}', file=sys.stderr)
        sys.exit(2)


def _finite(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None


def load_scenario(path: str):
    try:
        with open(path, encoding='utf-8') as handle:
            data = yaml.safe_load(handle)  # YAML is a superset of JSON
    except OSError as e:
        raise ScenarioError(f'{path}: cannot read ({e.strerror})') from e
    except yaml.YAMLError as e:
        raise ScenarioError(f'{path}: not valid YAML or JSON ({str(e).splitlines()[0]})') from e
    return scenario_from_mapping(data)


def cmd_predict(args) -> dict:
    scenario = load_scenario(args.scenario)
    local, remote = predict_all(scenario)
    choice = decide({LOCAL: local, **remote}, PolicyConfig()).target
    return {'local': local.to_json(), 'workers': {n: p.to_json() for n, p in remote.items()},
            'choice': choice}


def cmd_crossover(args) -> dict:
    scenario = load_scenario(args.scenario)
    if not scenario.workers:
        raise ScenarioError('workers: crossover needs at least one worker')
    worker = args.worker or scenario.workers[0].name
    low, high = args.range
    if not low < high:
        raise ScenarioError(f'--range: LO must be below HI, got {low} {high}')
    found = crossover.crossovers(scenario, args.vary, low, high, worker)
    return {'vary': args.vary, 'worker': worker, 'range': [low, high], 'crossovers': found,
            'found': bool(found)}


def cmd_dual_mode(args) -> dict:
    try:
        system = dualmode.DualModeSystem(args.mu0, args.K, args.f1, args.f2)
    except ValueError as e:
        raise ScenarioError(str(e)) from e
    result = {'lambda_max': system.lambda_max, 'rho_max': system.rho_max,
              'mu_l1': system.mu_l1, 'mu_c2': system.mu_c2,
              'touch_points': system.touch_points(),
              'breakaway_load': _finite(dualmode.breakaway_load(system))}
    if args.load is not None:
        if not 0 < args.load < system.rho_max:
            raise ScenarioError(f'--load: must be in (0, rho_max={system.rho_max:.4f}), '
                                f'got {args.load}')
        rate = system.load_to_rate(args.load)
        best = dualmode.optimal_assignment(system, rate)
        result['at_load'] = {'load': args.load, 'arrival_rate': rate, 'p_star': best.p,
                             'alpha_star': best.alpha, 'beta_star': best.beta,
                             'delay': best.delay_s,
                             'tunable_f_star': system.tunable_fraction(rate)}
    return result


def cmd_share(args) -> dict:
    scenario = load_scenario(args.scenario)
    targets = {LOCAL: lambda r: latency.predict_local(r, scenario.device).latency_s}
    for worker in scenario.workers:
        targets[worker.name] = (lambda w: lambda r: latency.predict_offload(
            r, scenario.network, w).latency_s)(worker)
    result = sharing.optimal_shares(scenario.rate_hz, targets)
    return {'rate_hz': scenario.rate_hz, 'stable': result.stable,
            'rates_hz': {n: _finite(r) for n, r in result.rates_hz.items()},
            'fractions': {n: _finite(f) for n, f in result.fractions.items()},
            'mean_latency_s': _finite(result.mean_latency_s)}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog='offload_plan', description=__doc__.strip().splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True, parser_class=_Parser)
    p = sub.add_parser('predict', help='predict latency of every target for a scenario')
    p.add_argument('scenario')
    p.set_defaults(run=cmd_predict)
    p = sub.add_parser('crossover', help='where offloading and local trade places')
    p.add_argument('scenario')
    p.add_argument('--vary', required=True, choices=crossover.VARIABLES)
    p.add_argument('--range', required=True, nargs=2, type=float, metavar=('LO', 'HI'))
    p.add_argument('--worker')
    p.set_defaults(run=cmd_crossover)
    p = sub.add_parser('dual-mode', help='Jeff & Modiano dual-mode analysis')
    p.add_argument('--mu0', required=True, type=float)
    p.add_argument('--K', required=True, type=float)
    p.add_argument('--f1', required=True, type=float)
    p.add_argument('--f2', required=True, type=float)
    p.add_argument('--load', type=float)
    p.set_defaults(run=cmd_dual_mode)
    p = sub.add_parser('share', aliases=['split'],
                       help='delay-optimal shares of the frame rate across targets')
    p.add_argument('scenario')
    p.set_defaults(run=cmd_share)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.run(args)
    except ScenarioError as e:
        print(f'offload_plan: {e}', file=sys.stderr)
        return 2
    except ValueError as e:  # a model refused an argument; say which, no traceback
        print(f'offload_plan: {e}', file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
