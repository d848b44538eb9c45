"""make scenarios: every scenario under every policy, compared with the hindsight oracle.

Policies: the model-driven decision, always-local, always-remote (first worker), and a
FogROS2-LS-style windowed threshold. The oracle knows each phase's best static target in
hindsight (the lower phase mean of the always-local and always-remote runs). Writes
scenario_out/NAME/POLICY/{summary.json,timeline.png,run.bag} and
scenario_out/comparison.{json,md}.
"""
import argparse
import json
import math
import pathlib
import sys
from typing import Dict, List, Optional

import numpy as np

from offload_ros.inference import models  # noqa: F401  (fails early if not provisioned)
from offload_ros.scenarios import harness
from offload_ros.scenarios.netns import capable

DEFAULT = ['case1_fluctuating', 'case2_multitenant', 'crossover_rate', 'fault_kill',
           'fault_linkdown', 'fault_hang']


def _latencies(records: List[dict], t0: float, start: float, end: float) -> List[float]:
    return [r['observed_latency_s'] if r['outcome'] == 'detections' else math.inf
            for r in records if start <= r['t_s'] - t0 < end]


def _stats(values: List[float], deadline_s: float) -> dict:
    finite = np.array([v for v in values if math.isfinite(v)])
    return {'frames': len(values),
            'mean_s': float(finite.mean()) if finite.size else None,
            # Standard error of the mean (frames taken as independent: a lower bound).
            'sem_s': float(finite.std(ddof=1) / math.sqrt(finite.size))
            if finite.size > 1 else None,
            'p99_s': float(np.percentile(finite, 99)) if finite.size else None,
            'miss_rate': (sum(1 for v in values if not v <= deadline_s) / len(values))
            if values else None}


def gap_half_width(model: dict, oracle: dict) -> Optional[float]:
    """95% half-width of model mean / oracle mean - 1, the two means from separate runs
    (delta method on their standard errors)."""
    m, o = model.get('mean_s'), oracle.get('mean_s')
    sm, so = model.get('sem_s'), oracle.get('sem_s')
    if not (m and o and sm is not None and so is not None):
        return None
    return 1.96 * math.sqrt((sm / o) ** 2 + (m * so / o ** 2) ** 2)


def compare(name: str, runs: Dict[str, dict], records: Dict[str, List[dict]]) -> dict:
    spec = runs['model']
    deadline = spec['deadline_s']
    phases = spec['phases']
    result = {'scenario': name, 'deadline_s': deadline, 'policies': {}, 'oracle': {}}
    t0s = {p: min(r['t_s'] for r in recs) for p, recs in records.items() if recs}
    for policy, recs in records.items():
        overall = _stats(_latencies(recs, t0s[policy], 0, 1e9), deadline)
        per_phase = [_stats(_latencies(recs, t0s[policy], ph['start_s'], ph['end_s']),
                            deadline) for ph in phases]
        steps = [e['t_s'] for e in runs[policy].get('events', [])]
        switches = runs[policy]['switches']
        to_switch, at_change = [], []
        first = min(recs, key=lambda r: r['seq']) if recs else {}
        for i, step in enumerate(steps):  # the first switch before the next change, if any
            until = steps[i + 1] if i + 1 < len(steps) else math.inf
            after = [s['t_s'] - step for s in switches if step - 0.05 <= s['t_s'] < until]
            to_switch.append(round(max(0.0, after[0]), 3) if after else None)
            # the planned target when the change comes (the last switch's, or the first's)
            before = [s['to'] for s in switches if s['t_s'] < step - 0.05]
            at_change.append(before[-1] if before else
                             first.get('planned_target', first.get('target')))
        result['policies'][policy] = {**overall, 'phases': per_phase,
                                      'switches': len(switches),
                                      'time_to_switch_s': to_switch,
                                      'target_at_change': at_change}
    oracle_phases = []
    for i, ph in enumerate(phases):
        static = {p: result['policies'][p]['phases'][i] for p in ('local', 'remote')
                  if p in result['policies']}
        best = min(static, key=lambda p: (static[p]['mean_s'] is None,
                                          static[p]['miss_rate'] or 0,
                                          static[p]['mean_s'] or math.inf))
        oracle_phases.append({'phase': ph['name'], 'best': best, **static[best]})
        model = result['policies']['model']['phases'][i]
        oracle_phases[-1]['model_mean_s'] = model['mean_s']
        oracle_phases[-1]['model_vs_oracle'] = (
            model['mean_s'] / static[best]['mean_s'] - 1.0
            if model['mean_s'] and static[best]['mean_s'] else None)
        oracle_phases[-1]['model_vs_oracle_ci95'] = gap_half_width(model, static[best])
    result['oracle']['phases'] = oracle_phases
    return result


def markdown(results: List[dict]) -> str:
    def ms(v):
        return '-' if v is None else f'{v * 1e3:.0f}'

    def pct(v):
        return '-' if v is None else f'{v:.1%}'
    lines = ['# Scenario comparison (make scenarios)', '',
             'Mean and p99 latency over delivered frames, deadline-miss rate over all frames '
             '(lost frames count as misses), time from each scheduled change to the next '
             'decision switch.', '']
    for r in results:
        lines += [f"## {r['scenario']} (deadline {r['deadline_s'] * 1e3:.0f} ms)", '',
                  '| policy | mean ms | p99 ms | miss rate | switches | time to switch (s) |',
                  '|---|---|---|---|---|---|']
        for policy, s in r['policies'].items():
            times = ', '.join('-' if t is None else str(t) for t in s['time_to_switch_s'])
            lines.append(f"| {policy} | {ms(s['mean_s'])} | {ms(s['p99_s'])} | "
                         f"{pct(s['miss_rate'])} | {s['switches']} | {times} |")
        lines += ['', 'Oracle: per phase, the better of the always-local and always-remote runs '
                  '(remote = the first worker; in case 2 the model may also use edge2).', '',
                  '| phase | oracle target | oracle mean ms | model mean ms | model vs oracle |',
                  '|---|---|---|---|---|']
        for ph in r['oracle']['phases']:
            lines.append(f"| {ph['phase']} | {ph['best']} | {ms(ph['mean_s'])} | "
                         f"{ms(ph['model_mean_s'])} | {pct(ph['model_vs_oracle'])} |")
        lines.append('')
    return '\n'.join(lines)


def run_all(scenarios: List[str], policies: List[str], root: pathlib.Path,
            reuse: bool = False):
    """Run (or with reuse, reload) every scenario under every policy; returns the
    comparisons and the scenarios whose model run failed its assertions."""
    share = harness.launch.package_share()
    results, failed = [], []
    for name in scenarios:
        spec = harness.load_spec(share / 'config/scenarios' / f'{name}.yaml')
        runs, records = {}, {}
        for policy in policies:
            out = root / name / policy
            if reuse:
                summary = json.loads((out / 'summary.json').read_text())
            else:
                summary = harness.Run(spec, policy, out).execute()
            runs[policy] = summary
            records[policy] = [json.loads(line) for line in
                               (out / 'records.jsonl').read_text().splitlines() if line]
            if policy == 'model' and not summary['passed']:
                failed.append(name)
        if {'model', 'local', 'remote'} <= set(runs):
            results.append(compare(name, runs, records))
    return results, failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='offload_scenarios', description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='scenario_out')
    parser.add_argument('--scenarios', nargs='+', default=DEFAULT)
    parser.add_argument('--policies', nargs='+',
                        default=['model', 'local', 'remote', 'threshold'])
    parser.add_argument('--reuse', action='store_true',
                        help='recompute the comparison from runs already in --out')
    args = parser.parse_args(argv)
    if not args.reuse:
        if not capable('offload_scenarios'):
            return 77
    results, failed = run_all(args.scenarios, args.policies, pathlib.Path(args.out),
                              args.reuse)
    root = pathlib.Path(args.out)
    (root / 'comparison.json').write_text(json.dumps(results, indent=2))
    (root / 'comparison.md').write_text(markdown(results))
    print(markdown(results))
    if failed:
        print(f'offload_scenarios: assertions failed in {failed}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
