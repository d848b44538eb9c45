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
Regenerate the benchmark part of docs/validation.md from bench/results/*.json.

Everything between the `<!-- bench:begin -->` and `<!-- bench:end -->` markers is rewritten;
the hand-written parts around it stay. Scenario timelines of the decisions benchmark are
copied to docs/img/. Run by `make bench`; safe to run alone (missing results are named).
"""
import json
import pathlib
import shutil
import sys

from offload_ros import analysis
from offload_ros.scenarios import compare

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench/results'
BEGIN, END = '<!-- bench:begin -->', '<!-- bench:end -->'


def load(name: str):
    path = RESULTS / f'{name}.json'
    return json.loads(path.read_text()) if path.exists() else None


def ms(v, digits=0):
    return '-' if v is None else f'{v * 1e3:.{digits}f}'


def pct(v, digits=1):
    return '-' if v is None else f'{v * 100:.{digits}f}%'


def fidelity_section(f) -> list:
    if not f:
        return ['### Fidelity matrix', '', 'Not run yet (`make bench-fidelity`).', '']
    stable = [c for c in f['cells'] if c['stable']]
    hw = [c['half_width_pct'] for c in stable if c.get('half_width_pct') is not None]
    lines = ['### Fidelity matrix (`make bench-fidelity`)', '',
             f"{len(f['cells'])} cells tried, {f['stable_cells']} stable (every stage below "
             f"85% utilisation by the node's own estimates). Prediction = the model at the "
             f"mean of the node's online estimates over the cell's frames (from its "
             f"`offload/decisions` records); nothing fitted to the cell. Full table: "
             f"[fidelity.md](fidelity.md).", '',
             '| metric | measured | goal |', '|---|---|---|',
             f"| MAPE of the mean | {f['mape_pct']:.2f}% | <= 2.0% |",
             *([f"| MAPE, mean of the per-frame predictions | "
                f"{f['mape_framewise_prediction_pct']:.2f}% | (robustness check) |"]
               if f.get('mape_framewise_prediction_pct') is not None else []),
             *([f"| MAPE, median of the per-frame predictions | "
                f"{f['mape_median_prediction_pct']:.2f}% "
                f"({f['within_5_median_prediction_pct']:.0f}% of cells within +-5%) | "
                f"(robustness check) |"]
               if f.get('mape_median_prediction_pct') is not None else []),
             f"| cells within +-5% | {f['within_5_pct']:.0f}% | >= 92% |",
             f"| cells within +-10% | {f['within_10_pct']:.0f}% | 100% |",
             f"| stable cells | {f['stable_cells']} | >= 40 |",
             *([f"| MAPE of the worker cells with the other uplink model "
                f"({f['other_link_model']['model']}; same estimates) | "
                f"{f['other_link_model']['mape_pct']:.2f}% against "
                f"{f['other_link_model']['mape_in_use_pct']:.2f}% "
                f"({f['other_link_model']['cells']} cells) | (which link model fits) |"]
               if f.get('other_link_model') else []),
             *([f"| MAPE that sampling noise alone would give (each cell's CI) | "
                f"{f['noise_mape_pct']:.2f}% | (the floor of the MAPE at these cell lengths) |"]
               if f.get('noise_mape_pct') is not None else []),
             *([f"| cells whose error is known to +-2% (paired by batch: the error's "
                f"95% half-width under 2%) | {f['paired']['known_to_2_pct']} of "
                f"{f['paired']['cells']}"
                + (f", MAPE {f['paired']['mape_pct']:.2f}%, "
                   f"{f['paired']['within_2_pct']:.0f}% within +-2%"
                   if f['paired']['known_to_2_pct'] else '') + " | (what the goal asks of "
                "cells measured well enough to judge it) |"]
               if f.get('paired') else []),
             f"| 95% CI half-width of the observed mean | median "
             f"{sorted(hw)[len(hw) // 2]:.1f}%, {f['half_width_met_pct']:.0f}% of cells under "
             f"2% | < 2% in every cell |" if hw else '| CI half-width | - | < 2% |', '',
             '![fidelity scatter](img/fidelity_scatter.png)', '',
             *(['By the busiest stage\'s utilisation:', '',
                '| utilisation | cells | MAPE | within +-5% |', '|---|---|---|---|']
               + [f"| {b['from']:.1f}-{b['to']:.1f} | {b['cells']} | "
                  + ('-' if b['mape_pct'] is None else f"{b['mape_pct']:.1f}%") + ' | '
                  + ('-' if b['within_5_pct'] is None else f"{b['within_5_pct']:.0f}%") + ' |'
                  for b in f['by_utilisation']] + ['']
               if f.get('by_utilisation') else []),
             *(['Which term is off: each stage timed per frame (link = round trip less the '
                'worker\'s queue and inference; worker queue; inference; the node\'s own = '
                'ingress, handling, slot waits) against the terms predicting it, as a share '
                'of the cell\'s observed mean (predicted minus measured):', '',
                '| stage | cells | mean error | mean abs error |', '|---|---|---|---|']
               + [f"| {k} | {v['cells']} | {v['mean_pct']:+.1f}% | {v['mean_abs_pct']:.1f}% |"
                  for k, v in f['stage_errors'].items()] + ['']
               if f.get('stage_errors') else []),
             'Worst cells:', '', '| target | payload | Mbit/s | Hz | error | stage most off | '
             'utilisation |', '|---|---|---|---|---|---|---|']
    for c in f['worst']:
        rho = ', '.join(f'{k} {v:.2f}' for k, v in (c.get('utilisation') or {}).items())
        most = c.get('largest_stage_error')
        most = f"{most['stage']} {most['error_ms']:+.1f} ms" if most else '-'
        lines.append(f"| {c['target']} | {c['payload']} | {c['bandwidth_mbps']} | "
                     f"{c['rate_hz']} | {c['error_pct']:+.1f}% | {most} | {rho} |")
    machine = f.get('machine', {})
    lines += ['', f"Machine: {machine.get('cpus')} CPUs; robot nodes on core "
              f"{machine.get('robot_core')}, worker on core {machine.get('worker_core')}; "
              f"{machine.get('wall_s')} s in all.", '']
    return lines


def fidelity_long_section(f, short) -> list:
    """Return the long-cell subset (`make bench-fidelity-long`): the same model with less noise."""
    if not f:
        return []
    stable = [c for c in f['cells'] if c['stable']]
    settings = f.get('machine', {}).get('settings', {})
    short_s = ((short or {}).get('machine') or {}).get('settings', {}).get('cell_s')
    lines = ['#### Long cells (`make bench-fidelity-long`)', '',
             f"A subset of the matrix with cells of up to {settings.get('cell_s', '?'):.0f} s "
             f"(the matrix above: {short_s or '?'} s), to see the model's error below the "
             f"short cells' noise. MAPE {f['mape_pct']:.2f}% over {len(stable)} cells, "
             f"{f['within_5_pct']:.0f}% within +-5%, {f['within_10_pct']:.0f}% within +-10%; "
             f"sampling noise alone would give "
             + ('-' if f.get('noise_mape_pct') is None else f"{f['noise_mape_pct']:.2f}%")
             + f"; {f.get('machine', {}).get('wall_s')} s in all.", '',
             '| target | payload | Mbit/s | Hz | frames | observed ms | 95% CI | predicted ms '
             '| error | paired error (95% CI) | stage most off |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for c in stable:
        stages = c.get('stages') or {}
        worst = max(stages, key=lambda k: abs(stages[k]['error_s']), default=None)
        most = f"{worst} {stages[worst]['error_s'] * 1e3:+.1f} ms" if worst else '-'
        lines.append(f"| {c['target']} | {c['payload']} | {c['bandwidth_mbps']:g} | "
                     f"{c['rate_hz']:g} | {c['frames']} | {ms(c['observed_mean_s'], 1)} | "
                     f"+-{c['half_width_pct']:.1f}% | {ms(c['predicted_mean_s'], 1)} | "
                     f"{c['error_pct']:+.1f}% | "
                     f"{analysis.paired_text(c.get('paired_error'))} | {most} |")
    return lines + ['']


def decisions_section(d) -> list:
    if not d:
        return ['### Decision quality', '', 'Not run yet (`make bench-decisions`).', '']
    lines = ['### Decision quality (`make bench-decisions`)', '',
             'Model policy vs always-local, always-remote, FogROS2-LS-style threshold and the '
             'hindsight oracle (best static target per phase, from the local and remote runs). '
             'Miss rate over all frames (lost frames count).', '']
    repeats = max(r.get('repeats', 1) for r in d['scenarios'])
    if repeats > 1:
        lines += [f'Every policy ran {repeats} times per scenario, interleaved (order rotated '
                  'per round). Means pool the rounds\' frames; a phase gap\'s half-width is '
                  'Student\'s t over the per-round gaps (each model run against its own '
                  'oracle runs), so it holds the drift between runs. Switch counts and times '
                  'are per round (r1 / r2 / ...).', '']
    for r in d['scenarios']:
        g = r.get('goals', {})
        lines += [f"#### {r['scenario']} (deadline {ms(r['deadline_s'])} ms)", '',
                  '| policy | mean ms | p99 ms | miss rate | switches | time to switch (s) |',
                  '|---|---|---|---|---|---|']
        for policy, s in r['policies'].items():
            times = compare.switch_times(s['time_to_switch_s'])
            lines.append(f"| {policy} | {ms(s['mean_s'])} | {ms(s['p99_s'])} | "
                         f"{pct(s['miss_rate'])} | {compare.switch_counts(s['switches'])} | "
                         f"{times} |")
        gaps = g.get('mean_within_5pct_of_oracle', {}).get('per_phase', [])
        cis = g.get('mean_within_5pct_of_oracle', {}).get('ci95_per_phase') or \
            [None] * len(gaps)
        misses = g.get('miss_rate_at_most_half_best_static', {})
        best_static = misses.get('best_static')
        lines += ['', '| goal | met | measured |', '|---|---|---|',
                  f"| phase means within 5% of the oracle | "
                  f"{g.get('mean_within_5pct_of_oracle', {}).get('ok')} | "
                  + ', '.join('-' if x is None else f'{x:+.1%}' + (
                      '' if c is None else f' (+-{c:.1%})') for x, c in zip(gaps, cis))
                  + ' |']
        lines.append("| (model's frames on the oracle's target) | | " + ', '.join(
            '-' if ph.get('model_same_target') is None else
            f"{ph['model_same_target']:.0%} ({ph['oracle_target']})"
            for ph in r['oracle']['phases']) + ' |')
        if r.get('repeats', 1) > 1:
            lines.append('| (phase gaps per round) | | ' + '; '.join(
                ', '.join(f'{x:+.1%}' for x in ph.get('model_vs_oracle_per_repeat', []))
                for ph in r['oracle']['phases']) + ' |')
        lines += [f"| miss rate <= half the best static | "
                  f"{misses.get('ok')} | model {pct(misses.get('model'))}, best "
                  f"static {pct(best_static)} |",
                  f"| switch within 1 s of a change | "
                  f"{g.get('switch_within_1s', {}).get('ok')} | " + ', '.join(
                      f"{c['phase']}" + (f" (r{c['repeat']})" if 'repeat' in c else '')
                      + ': ' + ('on the new side already'
                                if c.get('on_new_side_at_change') else
                                f"{c['time_to_switch_s']} s") for c in
                      g.get('switch_within_1s', {}).get('changes', [])) + ' |', '']
        img = compare.run_dir(ROOT / 'bench_out/decisions', r['scenario'], 'model', 0,
                              r.get('repeats', 1)) / 'timeline.png'
        if img.exists():
            shutil.copy(img, ROOT / f"docs/img/decisions_{r['scenario']}.png")
        if (ROOT / f"docs/img/decisions_{r['scenario']}.png").exists():
            lines += [f"![{r['scenario']}](img/decisions_{r['scenario']}.png)", '']
    return lines


def overhead_section(o) -> list:
    if not o:
        return ['### Overheads', '', 'Not run yet (`make bench-overhead`).', '']
    p = o['policy']
    lines = ['### Overheads (`make bench-overhead`)', '',
             '| measure | median | p99 | goal |', '|---|---|---|---|']
    for n in (1, 4, 16):
        v = p[f'argmin_{n}_workers']
        goal = '<= 50 us' if n == 4 else ''
        rounds = v.get('round_medians_us')
        spread = f' (medians of {len(rounds)} interleaved rounds: ' + ', '.join(
            f'{r:g}' for r in rounds) + ' us)' if rounds else ''
        lines.append(f'| policy evaluation, {n} worker(s){spread} | {v["median_us"]} us | '
                     f'{v["p99_us"]} us | {goal} |')
    if 'uplink_lock' in o:
        v = o['uplink_lock']
        lines.append(f'| serial-uploads lock, uncontended acquire + release | '
                     f'{v["median_us"]} us | {v["p99_us"]} us | |')
    for transport, rates in o.get('graph', {}).items():
        if not isinstance(rates, dict) or 'skipped' in rates:
            continue
        for rate, v in rates.items():
            g = v['graph_latency']
            lines.append(f"| node graph, {transport}, {rate.replace('_', ' ')} (camera publish "
                         f"-> detections handed to the middleware, minus inference and "
                         f"transfer; {g['n']} frames) | "
                         f"{g['p50_ms']:.2f} ms | {g['p99_ms']:.2f} ms | p50 <= 3 ms |")
    parts = [(t, rate, v) for t, rates in o.get('graph', {}).items() if isinstance(rates, dict)
             for rate, v in rates.items() if isinstance(v, dict) and v.get('handling_parts')]
    if parts:
        lines += ['', 'Where it goes (p50 ms): ingress = camera publish -> receipt by the '
                  'decision node (DDS, deserialisation); receipt = decoding and deciding; '
                  'pool = besides the worker call in its thread (payload encoding, response '
                  'decoding); update = planner update after the answer; build = the '
                  'detections message. The publish call (last column, not in the graph '
                  'latency) lasts as long as the subscribers it wakes on the robot\'s one '
                  'core run first (docs/design.md).', '',
                  '| images | rate | ingress | receipt | pool | update | build | publish call |',
                  '|---|---|---|---|---|---|---|---|']
        for t, rate, v in parts:
            hp = v['handling_parts']
            cells = [hp[k]['p50_ms'] if k in hp else float('nan')
                     for k in ('receipt_s', 'pool_s', 'update_s', 'build_s', 'publish_s')]
            lines.append(f"| {t} | {rate.replace('_', ' ')} | {v['ingress']['p50_ms']:.2f} | "
                         + ' | '.join(f'{c:.2f}' for c in cells) + ' |')
    cpu = o.get('graph', {}).get('raw', {}).get('15_fps', {}).get('cpu_percent_of_one_core')
    if cpu:
        lines += ['', 'CPU share at 15 fps (raw), % of one core: ' + ', '.join(
            f'{k} {v}' for k, v in cpu.items()) + '.']
    return lines + ['']


def soak_section(s) -> list:
    if not s:
        return ['### Endurance', '', 'Not run yet (`make bench-soak`).', '']
    lines = [f"### Endurance (`make bench-soak`, {s['minutes']:g} min)", '',
             f"{s['frames']} frames, {s['frames_without_outcome']} without outcome; events: "
             + ', '.join(f"{k}={v}" for e in s['events'] for k, v in e.items()
                         if k not in ('at_s', 't_s')) + '.', '',
             '| process | RSS from -> to (MB) | growth | fds from -> to | of which not TCP '
             'connections | TCP connections max (bound) | CLOSE_WAIT max / kept |',
             '|---|---|---|---|---|---|---|']
    for name, g in s['growth'].items():
        if g:
            d = g.get('descriptors')
            kinds = (f"{d['fixed_start']} -> {d['fixed_end']} | {d['tcp_max']} "
                     f"({d['tcp_bound']}) | {d['close_wait_max']} / "
                     f"{d.get('close_wait_kept', '-')}") if d else '| |'
            lines.append(f"| {name} | {g['rss_start_mb']} -> {g['rss_end_mb']} | "
                         f"{g['rss_growth_pct']:+.1f}% | {g['fds_start']} -> {g['fds_end']} | "
                         f"{kinds} |")
    lines += ['', 'Miss rate per window: ' + ', '.join(
        f"{w['from_s'] / 60:.0f} min: {pct(w['miss_rate'])}" for w in s['windows']) + '.',
        '', f"Goals: {s['goals']}", '']
    return lines


def issue7_section() -> list:
    lines = ['### Energy, hedging, worker scheduling', '']
    e = load('energy')
    if e:
        lines += [f"Energy (`make bench-energy`, {e['scenario']}, energy from "
                  f"{e['energy_source']}):", '',
                  '| policy | robot mJ/frame | total mJ/frame | mean ms | p99 ms | misses |',
                  '|---|---|---|---|---|---|']
        for p, v in e['policies'].items():
            lines.append(f"| {p} | {ms(v['robot_j_per_frame'])} | {ms(v['total_j_per_frame'])}"
                         f" | {ms(v['mean_latency_s'])} | {ms(v['p99_latency_s'])} | "
                         f"{pct(v['miss_rate'])} |")
        lines += ['', f"Goal (energy mode: misses no worse, less robot energy than the latency "
                  f"mode): {e['goal']}", '']
    h = load('hedging')
    if h:
        lines += ['Deadline hedging (`make bench-hedging`):', '',
                  '| scenario | hedging | miss rate | p99 ms | hedged frames | local runs '
                  'started | wasted |', '|---|---|---|---|---|---|---|']
        for name, v in h.items():
            for mode in ('none', 'hedging'):
                m = v.get(mode)
                if m:
                    lines.append(f"| {name} | {mode} | {pct(m['miss_rate'])} | "
                                 f"{ms(m['p99_s'])} | {m['hedged_frames']} | "
                                 f"{m['local_runs_started']} | {m['wasted_local_runs']} |")
        idle = [n for n, v in h.items() if not (v.get('hedging') or {}).get('hedged_frames')]
        if idle:
            lines += [f"Hedging did not trigger in {', '.join(idle)}: no remote frame was "
                      'predicted to miss with probability above 0.1 (a hang is detected by the '
                      'request timeout and the decision leaves the worker within 0.5 s; Case 1 '
                      'keeps slack). Against a hung worker the node test shows every frame '
                      'raced and answered by the robot, exactly one outcome each.']
        lines.append('')
    s = load('scheduling')
    if s:
        lines += [f"Worker scheduling (`make bench-scheduling`, service "
                  f"{s['service_s'] * 1e3:.0f} ms; robot tenant deadline 3 service times, "
                  f"fleet 15; means over answered requests, misses include unanswered):", '',
                  '| utilisation | discipline | robot miss | fleet miss | robot mean ms | '
                  'fleet mean ms | FCFS model ms |', '|---|---|---|---|---|---|---|']
        for p in s['points']:
            t = p['tenants']
            lines.append(f"| {p['utilisation']:.2f} | {p['discipline']} | "
                         f"{pct(t['robot']['miss_rate'])} | {pct(t['fleet']['miss_rate'])} | "
                         f"{ms(t['robot']['mean_latency_s'])} | "
                         f"{ms(t['fleet']['mean_latency_s'])} | "
                         f"{ms(p['fcfs_predicted_latency_s'])} |")
        lines.append('')
    return lines + split_section(load('split')) + tenants_section(load('tenants'))


def at_mean_estimates(cells) -> bool:
    """
    Whether a cell bench's `predicted_mean_s` is the model at the mean estimates.

    (from session 4) or, in older results, the mean of the per-frame predictions.
    """
    return any('predicted_framewise_mean_s' in c for c in cells)


def tenants_section(r) -> list:
    if not r:
        return []
    settings = r['machine']['settings']
    lines = [f"Multi-tenant sweep (`make bench-tenants`, Ng et al. Fig. 5c: the robot at "
             f"{settings['rate_hz']:g} Hz Poisson, half a core; N synthetic tenants like it on "
             f"its worker; 20 Mbit/s):", '',
             '| tenants | target | n | observed ms | +-% | predicted ms ('
             + ('at mean estimates' if at_mean_estimates(r['cells']) else 'mean')
             + ' / median of per-frame) | error (mean / median) | worker utilisation |',
             '|---|---|---|---|---|---|---|---|']
    for c in r['cells']:
        rho = (c.get('utilisation') or {}).get('worker')
        if not c['stable']:
            lines.append(f"| {c['tenants']} | {c['target']} | - | skipped | | | | "
                         f"{'-' if rho is None else f'{rho:.2f}'} |")
            continue
        med, err = c.get('predicted_median_s'), c.get('error_median_pct')
        lines.append(f"| {c['tenants']} | {c['target']} | {c['frames']} | "
                     f"{ms(c['observed_mean_s'], 1)} | {c['half_width_pct'] or 0:.1f} | "
                     f"{ms(c['predicted_mean_s'], 1)} / {ms(med, 1)} | "
                     f"{c['error_pct']:+.1f}% / {'-' if err is None else f'{err:+.1f}%'} | "
                     f"{'-' if rho is None else f'{rho:.2f}'} |")
    pred = (r.get('crossover_predicted') or {}).get('tenants')
    lines += ['', f"Crossover tenant count: predicted by `offload_plan crossover --vary "
              f"tenants` from the N = 0 estimates {'-' if pred is None else f'{pred:.1f}'}; "
              f"observed bracket {r.get('crossover_observed_bracket')} (the worker still faster "
              f"at the first, not at the second or past the stability gate).", '',
              '![tenants](img/tenants_sweep.png)', '']
    return lines


def split_section(r) -> list:
    if not r:
        return []
    settings = r['machine']['settings']
    lines = [f"Split inference (`make bench-split`: VGA frames, Poisson "
             f"{settings['rate_hz']:g} Hz, robot at {settings['robot_cpu']:g} of a core, worker "
             f"on its own core, FP16 feature maps; prediction = "
             + ("the tandem model at the mean of the node's online estimates"
                if at_mean_estimates(r['cells']) else
                "mean of the node's per-frame tandem predictions")
             + f"): {r['stable_cells']} cells, MAPE {r['mape_pct']:.1f}%.", '',
             '| Mbit/s | option | wire kB | n | observed ms | +-% | predicted ms | error |',
             '|---|---|---|---|---|---|---|---|']
    for c in r['cells']:
        if not c['stable']:
            continue
        worker, _, layer = c['target'].partition('/split@')
        option = f'split@{layer}' if layer else ('local' if worker == 'local'
                                                 else f"offload ({c['payload']})")
        est = c.get('estimates') or {}
        wire = (est.get('splits', {}).get(layer, {}).get('intermediate_bytes') if layer else
                None if worker == 'local' else
                est.get('networks', {}).get(worker, {}).get('request_bytes'))
        hw = c['half_width_pct']
        lines.append(f"| {c['bandwidth_mbps']} | {option} | "
                     f"{'-' if wire is None else f'{wire / 1e3:.0f}'} | {c['frames']} | "
                     f"{ms(c['observed_mean_s'], 1)} | {'-' if hw is None else f'{hw:.1f}'} | "
                     f"{ms(c['predicted_mean_s'], 1)} | {c['error_pct']:+.1f}% |")
    lines.append('')
    for bw, comp in r.get('comparison', {}).items():
        lines.append(f"- {bw} Mbit/s: fastest observed {comp['best_observed']} (predicted: "
                     f"{comp['best_predicted']}); the best split beats local and every full "
                     f"offload: {'yes' if comp['split_beats_local_and_offload'] else 'no'}; "
                     f"beats offloading the raw frame: "
                     f"{'yes' if comp['split_beats_raw_offload'] else 'no'}.")
    return lines + ['', '![split](img/split_latency.png)', '']


def main() -> int:
    body = ['## Validation benchmarks (generated by `make bench` from bench/results/)', '']
    body += fidelity_section(load('fidelity'))
    body += fidelity_long_section(load('fidelity_long'), load('fidelity'))
    body += decisions_section(load('decisions'))
    body += overhead_section(load('overhead'))
    body += soak_section(load('soak'))
    body += issue7_section()
    path = ROOT / 'docs/validation.md'
    text = path.read_text()
    if BEGIN not in text:
        text = text.rstrip() + f'\n\n{BEGIN}\n{END}\n'
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(head + BEGIN + '\n' + '\n'.join(body) + '\n' + END + tail)
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
