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
make scenarios: every scenario under every policy, compared with the hindsight oracle.

Policies: the model-driven decision, always-local, always-remote (first worker), and a
FogROS2-LS-style windowed threshold. The oracle knows each phase's best static target in
hindsight (the lower phase mean of the always-local and always-remote runs). Writes
scenario_out/NAME/POLICY/{summary.json,timeline.png,run.bag} and
scenario_out/comparison.{json,md}.
"""
import argparse
import collections
import json
import math
import pathlib
import sys
from typing import Dict, List, Optional

import numpy as np

from offload_ros import analysis
from offload_ros.core.records import read_records
from offload_ros.inference import models  # noqa: F401  (fails early if not provisioned)
from offload_ros.scenarios import harness
from offload_ros.scenarios.netns import capable

DEFAULT = ['case1_fluctuating', 'case2_multitenant', 'crossover_rate', 'fault_kill',
           'fault_linkdown', 'fault_hang']


def _latencies(records: List[dict], t0: float, start: float, end: float) -> List[float]:
    return [r.observed_latency_s if r.outcome == 'detections' else math.inf
            for r in records if start <= r.finished_at_s - t0 < end]


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


def _by_phase(records: List[dict], phases: List[dict]):
    """Return the run's latencies (all, per phase) and its frames' targets per phase."""
    t0 = min(r.finished_at_s for r in records)
    latencies = [_latencies(records, t0, ph['start_s'], ph['end_s']) for ph in phases]
    targets = [collections.Counter(r.target for r in records
                                   if ph['start_s'] <= r.finished_at_s - t0 < ph['end_s'])
               for ph in phases]
    return _latencies(records, t0, 0, 1e9), latencies, targets


def oracle_phase(name: str, static: Dict[str, dict], model: dict) -> dict:
    """
    One phase of the oracle.

    The better static run (fewer misses, then lower mean), the target its frames used most, the
    share of the model's frames on that same target (where it is 1.0, a gap in the means is the
    runs' execution, not the decision) and the gap.
    """
    best = min(static, key=lambda p: (static[p]['mean_s'] is None, static[p]['miss_rate'] or 0,
                                      static[p]['mean_s'] or math.inf))
    oracle = static[best]
    counts = oracle.get('targets') or {}
    target = max(counts, key=counts.get) if counts else None
    frames = sum((model.get('targets') or {}).values())
    return {'phase': name, 'best': best, **oracle, 'oracle_target': target,
            'model_same_target': model['targets'].get(target, 0) / frames
            if frames and target else None,
            'model_mean_s': model['mean_s'],
            'model_vs_oracle': model['mean_s'] / oracle['mean_s'] - 1.0
            if model['mean_s'] and oracle['mean_s'] else None}


def gap_half_width(model: dict, oracle: dict) -> Optional[float]:
    """
    95% half-width of model mean / oracle mean - 1.

    The two means from separate runs (delta method on their standard errors).
    """
    m, o = model.get('mean_s'), oracle.get('mean_s')
    sm, so = model.get('sem_s'), oracle.get('sem_s')
    if not (m and o and sm is not None and so is not None):
        return None
    return 1.96 * math.sqrt((sm / o) ** 2 + (m * so / o ** 2) ** 2)


def paired_half_width(gaps: List[float]) -> Optional[float]:
    """
    95% half-width of the mean of per-repeat gaps.

    (each repeat's model run against its own, adjacent oracle run): the spread between repeats
    holds the machine's drift from run to run, which the frames of one run cannot show.
    """
    return analysis.mean_half_width(gaps)


def compare(name: str, runs: Dict[str, dict], records: Dict[str, List[dict]]) -> dict:
    spec = runs['model']
    deadline = spec['deadline_s']
    phases = spec['phases']
    result = {'scenario': name, 'deadline_s': deadline, 'policies': {}, 'oracle': {}}
    for policy, recs in records.items():
        everything, latencies, targets = _by_phase(recs, phases)
        overall = _stats(everything, deadline)
        per_phase = [{**_stats(v, deadline), 'targets': dict(t)}
                     for v, t in zip(latencies, targets)]
        steps = [e['t_s'] for e in runs[policy].get('events', [])]
        switches = runs[policy]['switches']
        to_switch, at_change = [], []
        first = min(recs, key=lambda r: r.seq) if recs else None
        for i, step in enumerate(steps):  # the first switch before the next change, if any
            until = steps[i + 1] if i + 1 < len(steps) else math.inf
            after = [s['t_s'] - step for s in switches if step - 0.05 <= s['t_s'] < until]
            to_switch.append(round(max(0.0, after[0]), 3) if after else None)
            # the planned target when the change comes (the last switch's, or the first's)
            before = [s['to'] for s in switches if s['t_s'] < step - 0.05]
            at_change.append(before[-1] if before else
                             first.planned_target if first else None)
        result['policies'][policy] = {**overall, 'phases': per_phase,
                                      'switches': len(switches),
                                      'time_to_switch_s': to_switch,
                                      'target_at_change': at_change}
    oracle_phases = []
    for i, ph in enumerate(phases):
        static = {p: result['policies'][p]['phases'][i] for p in ('local', 'remote')
                  if p in result['policies']}
        model = result['policies']['model']['phases'][i]
        phase = oracle_phase(ph['name'], static, model)
        phase['model_vs_oracle_ci95'] = gap_half_width(model, static[phase['best']])
        oracle_phases.append(phase)
    result['oracle']['phases'] = oracle_phases
    return result


def switch_changes(model: dict, phases: List[dict]) -> List[dict]:
    """
    Each change after which the oracle's target changes, with the model run's time to switch.

    Ok where within 1 s or the model was already on the new side (robot or a worker) when the
    change came.
    """
    changes: List[dict] = []
    at_change = model.get('target_at_change') or [None] * len(model['time_to_switch_s'])
    for i, step_to_switch in enumerate(model['time_to_switch_s']):
        # Change i starts phase i + 1.
        if i + 1 < len(phases) and phases[i + 1]['best'] != phases[i]['best']:
            there = at_change[i] is not None and \
                (at_change[i] == 'local') == (phases[i + 1]['best'] == 'local')
            changes.append({'phase': phases[i + 1]['phase'], 'time_to_switch_s': step_to_switch,
                            'on_new_side_at_change': there,
                            'ok': there or step_to_switch is not None and step_to_switch <= 1.0})
    return changes


def compare_repeats(name: str, runs: List[Dict[str, dict]],
                    records: List[Dict[str, List[dict]]]) -> dict:
    """
    Return the comparison over repeats of every policy, run interleaved.

    Statistics over the frames of every repeat, the oracle's target per phase from them, and each
    phase's gap with a half-width from the spread of the per-repeat gaps (`paired_half_width`). The
    per-repeat comparisons stay under 'runs' (switch times are judged run by run).
    """
    each = [compare(name, r, rec) for r, rec in zip(runs, records)]
    if len(each) == 1:
        return each[0]
    spec = runs[0]['model']
    deadline, phases = spec['deadline_s'], spec['phases']
    result = {'scenario': name, 'deadline_s': deadline, 'repeats': len(each),
              'policies': {}, 'oracle': {}, 'runs': each}
    for policy in each[0]['policies']:
        overall: List[float] = []
        per_phase: List[List[float]] = [[] for _ in phases]
        targets = [collections.Counter() for _ in phases]
        for rec in records:
            everything, latencies, used = _by_phase(rec[policy], phases)
            overall += everything
            for i in range(len(phases)):
                per_phase[i] += latencies[i]
                targets[i] += used[i]
        result['policies'][policy] = {
            **_stats(overall, deadline),
            'phases': [{**_stats(v, deadline), 'targets': dict(t)}
                       for v, t in zip(per_phase, targets)],
            'switches': [e['policies'][policy]['switches'] for e in each],
            'time_to_switch_s': [e['policies'][policy]['time_to_switch_s'] for e in each]}
    oracle_phases = []
    for i, ph in enumerate(phases):
        static = {p: result['policies'][p]['phases'][i] for p in ('local', 'remote')}
        phase = oracle_phase(ph['name'], static, result['policies']['model']['phases'][i])
        gaps = [e['policies']['model']['phases'][i]['mean_s'] /
                e['policies'][phase['best']]['phases'][i]['mean_s'] - 1.0 for e in each
                if e['policies']['model']['phases'][i]['mean_s']
                and e['policies'][phase['best']]['phases'][i]['mean_s']]
        phase['model_vs_oracle_per_repeat'] = [round(g, 4) for g in gaps]
        phase['model_vs_oracle_ci95'] = paired_half_width(gaps)
        oracle_phases.append(phase)
    result['oracle']['phases'] = oracle_phases
    return result


def switch_times(times: list) -> str:
    """'0.4, -' for one run; '0.4, - / 0.5, 0.3' for repeats (a list per run)."""
    if times and isinstance(times[0], list):
        return ' / '.join(switch_times(t) for t in times)
    return ', '.join('-' if t is None else f'{t:.2f}' for t in times)


def switch_counts(counts) -> str:
    return ' / '.join(map(str, counts)) if isinstance(counts, list) else str(counts)


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
            times = switch_times(s['time_to_switch_s'])
            lines.append(f"| {policy} | {ms(s['mean_s'])} | {ms(s['p99_s'])} | "
                         f"{pct(s['miss_rate'])} | {switch_counts(s['switches'])} | {times} |")
        lines += ['', 'Oracle: per phase, the better of the always-local and always-remote runs '
                  '(remote = the first worker; in case 2 the model may also use edge2).', '',
                  '| phase | oracle | oracle mean ms | model mean ms | model vs oracle | '
                  "model's frames on the oracle's target |",
                  '|---|---|---|---|---|---|']
        for ph in r['oracle']['phases']:
            lines.append(f"| {ph['phase']} | {ph['best']} ({ph.get('oracle_target')}) | "
                         f"{ms(ph['mean_s'])} | {ms(ph['model_mean_s'])} | "
                         f"{pct(ph['model_vs_oracle'])} | {pct(ph.get('model_same_target'))} |")
        lines.append('')
    return '\n'.join(lines)


def run_all(scenarios: List[str], policies: List[str], root: pathlib.Path,
            reuse: bool = False, repeats: int = 1):
    """
    Run (or with reuse, reload) every scenario under every policy, `repeats` times.

    Returns the comparisons and the scenarios whose model run failed its assertions.

    Repeats are interleaved: each round runs every policy of a scenario back to back, in an
    order rotated from round to round, so that a model run and its oracle runs are minutes
    apart and no policy always runs first. With repeats > 1 a run's folder is
    root/NAME/rK/POLICY (K from 1), else root/NAME/POLICY.
    """
    share = harness.launch.package_share()
    specs = {name: harness.load_spec(share / 'config/scenarios' / f'{name}.yaml')
             for name in scenarios}
    runs = {name: [{} for _ in range(repeats)] for name in scenarios}
    records = {name: [{} for _ in range(repeats)] for name in scenarios}
    failed: List[str] = []
    for k in range(repeats):
        for name in scenarios:
            for policy in policies[k % len(policies):] + policies[:k % len(policies)]:
                out = run_dir(root, name, policy, k, repeats)
                if reuse:
                    summary = json.loads((out / 'summary.json').read_text())
                else:
                    summary = harness.Run(specs[name], policy, out).execute()
                runs[name][k][policy] = summary
                records[name][k][policy] = read_records(
                    (out / 'records.jsonl').read_text().splitlines())
                if policy == 'model' and not summary['passed'] and name not in failed:
                    failed.append(name)
    results = [compare_repeats(name, runs[name], records[name]) for name in scenarios
               if {'model', 'local', 'remote'} <= set(policies)]
    return results, failed


def run_dir(root: pathlib.Path, name: str, policy: str, k: int = 0,
            repeats: int = 1) -> pathlib.Path:
    return root / name / (f'r{k + 1}' if repeats > 1 else '') / policy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='offload_scenarios',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', default='scenario_out')
    parser.add_argument('--scenarios', nargs='+', default=DEFAULT)
    parser.add_argument('--policies', nargs='+',
                        default=['model', 'local', 'remote', 'threshold'])
    parser.add_argument('--reuse', action='store_true',
                        help='recompute the comparison from runs already in --out')
    parser.add_argument('--repeats', type=int, default=1,
                        help='interleaved rounds of every policy (phase gaps get a half-width '
                             'from the spread between rounds)')
    args = parser.parse_args(argv)
    if not args.reuse:
        if not capable('offload_scenarios'):
            return 77
    results, failed = run_all(args.scenarios, args.policies, pathlib.Path(args.out),
                              args.reuse, args.repeats)
    root = pathlib.Path(args.out)
    (root / 'comparison.json').write_text(json.dumps(results, indent=2))
    (root / 'comparison.md').write_text(markdown(results))
    print(markdown(results))
    if failed:
        print(f'offload_scenarios: assertions failed in {failed}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
