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
Run summaries and timeline plots from per-frame decision records (ROS-free).

Used by the demo, offload_report (bags) and the scenario harness, so they all count the same.
"""
import collections
import json
import math
import pathlib
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from offload_ros.core.hedging import quantile_s
from offload_ros.core.records import OUTCOMES, DecisionRecord, read_records
from offload_ros.core.scenario import mean_estimates, predict_from_estimates
from offload_ros.core.stats import mean_half_width, t95  # noqa: F401  (analysis.t95)

# 'error': a fault of the node's own (a bug or an unexpected exception), with its reason.
OUTCOME_KINDS = OUTCOMES


def _stats(values: Sequence[float]) -> Dict[str, Optional[float]]:
    finite = np.array([v for v in values if v is not None and math.isfinite(v)])
    if finite.size == 0:
        return {'n': 0, 'mean': None, 'p50': None, 'p95': None, 'p99': None}
    return {'n': int(finite.size), 'mean': float(finite.mean()),
            'p50': float(np.percentile(finite, 50)), 'p95': float(np.percentile(finite, 95)),
            'p99': float(np.percentile(finite, 99))}


def batch_half_width(values: List[float], batches: int = 10) -> float:
    """
    95% half-width of the mean from batch means (consecutive latencies are correlated).

    5 batches where there are too few values for 10 (a 25 s cell at 1 Hz: ~20 frames).
    """
    if len(values) < 2 * batches:
        if batches > 5 and len(values) >= 10:
            return batch_half_width(values, 5)
        return math.inf
    means = [float(b.mean()) for b in np.array_split(np.asarray(values), batches)]
    return mean_half_width(means)


def paired_error(done: List[DecisionRecord], target: str, batches: int = 10) -> Optional[dict]:
    """
    Return the model's error on `target`, with its 95% half-width.

    From `done` (a period's answered frame records, in order) cut into batches of consecutive
    frames: each batch is predicted from its own frames' mean estimates and held against its own
    observed mean. The machine's speed drifts over minutes; the observed mean's half-width holds
    that drift, while the online estimates follow it, so the error's half-width (paired by batch)
    says how close the model is with fewer frames (half or less of the observed mean's in the long
    fidelity cells). None with fewer than two frames a batch.
    """
    done = [r for r in done if r.estimates]
    if len(done) < 2 * batches:
        return None
    errors = []
    for chunk in np.array_split(np.arange(len(done)), batches):
        part = [done[i] for i in chunk]
        predicted = predict_from_estimates(
            mean_estimates([r.estimates for r in part], target), target)
        errors.append(predicted - float(np.mean([r.observed_latency_s for r in part])))
    if not all(math.isfinite(e) for e in errors):
        return None
    mean_s = float(np.mean([r.observed_latency_s for r in done]))
    return {'error_pct': 100.0 * float(np.mean(errors)) / mean_s,
            'half_width_pct': 100.0 * mean_half_width(errors) / mean_s,
            'batches': batches}


def paired_text(paired: Optional[dict]) -> str:
    """Return a paired_error as '+x.x% +-y.y' ('-' where there is none)."""
    return f"{paired['error_pct']:+.1f}% +-{paired['half_width_pct']:.1f}" if paired else '-'


def switches_of(records: Sequence[DecisionRecord], t0_s: float) -> List[dict]:
    """
    Return changes of the planned target between consecutive frames (by sequence number).

    Timed when the decision changed (decided_at_s), else when the first such frame finished.
    """
    out, previous = [], None
    for r in sorted(records, key=lambda r: r.seq):
        planned = r.planned_target
        if previous is not None and planned != previous:
            when = r.decided_at_s or r.finished_at_s
            out.append({'t_s': round(when - t0_s, 3), 'from': previous, 'to': planned,
                        'reason': r.reason, 'seq': r.seq})
        previous = planned
    return out


def summarise(records: Sequence[DecisionRecord], frames_received: int, deadline_s: float,
              t0_s: Optional[float] = None, phases: Sequence[dict] = ()) -> dict:
    """
    Return the demo summary: outcomes, latency observed vs predicted per target, misses, switches.

    frames_received: frames that reached the decision node (its own count).
    """
    records = sorted(records, key=lambda r: r.seq)
    t0_s = t0_s if t0_s is not None else (records[0].finished_at_s if records else 0.0)
    seqs = collections.Counter(r.seq for r in records)
    duplicated = sorted(s for s, n in seqs.items() if n > 1)
    missing = sorted(set(range(1, frames_received + 1)) - set(seqs))
    outcomes: Dict[str, Dict[str, int]] = collections.defaultdict(
        lambda: {k: 0 for k in OUTCOME_KINDS})
    for r in records:
        outcomes[r.target][r.outcome] += 1
    latency = {}
    for target in sorted({r.target for r in records}):
        mine = [r for r in records if r.target == target and r.outcome == 'detections']
        latency[target] = {
            'observed': _stats([r.observed_latency_s for r in mine]),
            'predicted': _stats([r.predicted_latency_s for r in mine])}
    misses = [r for r in records if r.outcome != 'detections'
              or r.observed_latency_s > deadline_s]
    per_phase = []
    for phase in phases:
        inside = [r for r in records
                  if phase['start_s'] <= r.finished_at_s - t0_s < phase['end_s']]
        counts = collections.Counter(r.target for r in inside)
        per_phase.append({**phase, 'frames': len(inside),
                          'targets': dict(counts),
                          'majority_target': counts.most_common(1)[0][0] if counts else None,
                          'latency_s': _stats([r.observed_latency_s for r in inside
                                               if r.outcome == 'detections'])})
    return {'frames': frames_received, 'records': len(records),
            'frames_without_outcome': len(missing), 'missing_seqs': missing[:20],
            'duplicate_outcomes': len(duplicated),
            'outcomes': {t: dict(v) for t, v in outcomes.items()},
            'outcomes_by_kind': {k: sum(v[k] for v in outcomes.values())
                                 for k in OUTCOME_KINDS},
            'latency_s': latency, 'deadline_s': deadline_s,
            'deadline_misses': len(misses),
            'deadline_miss_rate': len(misses) / len(records) if records else 0.0,
            'switches': switches_of(records, t0_s), 'phases': per_phase}


def table(summary: dict) -> str:
    lines = [f"frames {summary['frames']}  without outcome {summary['frames_without_outcome']}"
             f"  deadline misses {summary['deadline_misses']} "
             f"({summary['deadline_miss_rate']:.1%} at {summary['deadline_s'] * 1e3:.0f} ms)",
             f"{'target':<10}{'detections':>11}{'miss':>6}{'drop':>6}{'error':>6}"
             f"{'obs mean':>10}{'obs p95':>9}{'pred mean':>10}{'pred p95':>9}  (ms)"]

    def ms(v):
        return f'{v * 1e3:.1f}' if v is not None else '-'
    for target, counts in sorted(summary['outcomes'].items()):
        lat = summary['latency_s'].get(target, {'observed': {}, 'predicted': {}})
        lines.append(f"{target:<10}{counts['detections']:>11}{counts['miss']:>6}"
                     f"{counts['drop']:>6}{counts['error']:>6}"
                     f"{ms(lat['observed'].get('mean')):>10}"
                     f"{ms(lat['observed'].get('p95')):>9}{ms(lat['predicted'].get('mean')):>10}"
                     f"{ms(lat['predicted'].get('p95')):>9}")
    lines.append(f"switches ({len(summary['switches'])}):")
    for s in summary['switches']:
        lines.append(f"  t={s['t_s']:6.1f} s  {s['from']} -> {s['to']}  ({s['reason']})")
    return '\n'.join(lines)


def plot_timeline(records: Sequence[DecisionRecord], path: pathlib.Path, t0_s: float,
                  deadline_s: float, phases: Sequence[dict] = (), title: str = '') -> None:
    """
    Observed latency per frame coloured by target, predicted latency of every option.

    Switches marked (after Ng et al. Figs. 6 and 7).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    records = sorted(records, key=lambda r: r.seq)
    fig, ax = plt.subplots(figsize=(11, 5), dpi=110)
    targets = sorted({r.target for r in records} |
                     {n for r in records for n in r.predictions})
    colours = {t: plt.cm.tab10(i % 10) for i, t in enumerate(targets)}
    for phase in phases:
        ax.axvspan(phase['start_s'], phase['end_s'], alpha=0.06 if phase.get('shade') else 0,
                   color='grey')
        ax.text(phase['start_s'] + 0.3, 0.02, phase['name'], transform=ax.get_xaxis_transform(),
                va='bottom', fontsize=8, color='dimgrey')
    for target in targets:
        pts = [(r.finished_at_s - t0_s, r.observed_latency_s * 1e3) for r in records
               if r.target == target and r.outcome == 'detections']
        if pts:
            x, y = zip(*pts)
            ax.scatter(x, y, s=7, color=colours[target], label=f'observed on {target}')
        # Unstable predictions become NaN: the line breaks instead of bridging.
        pred = [(r.finished_at_s - t0_s, r.predicted_s(target) * 1e3
                 if r.predicted_s(target) is not None else np.nan)
                for r in records if target in r.predictions]
        if pred:
            x, y = zip(*pred)
            ax.plot(x, y, color=colours[target], lw=1.2, alpha=0.8,
                    label=f'predicted {target} (gap: unstable)')
    lost = [(r.finished_at_s - t0_s) for r in records if r.outcome != 'detections']
    if lost:
        ax.scatter(lost, [deadline_s * 1e3] * len(lost), marker='x', color='red', s=16,
                   label='miss / drop')
    ax.axhline(deadline_s * 1e3, color='red', ls='--', lw=0.8, label='deadline')
    for s in switches_of(records, t0_s):
        ax.axvline(s['t_s'], color='black', lw=0.8, ls=':')
    ax.set_xlabel('time since start (s)')
    ax.set_ylabel('end-to-end latency (ms)')
    finite = [r.observed_latency_s * 1e3 for r in records if r.outcome == 'detections']
    if finite:
        ax.set_ylim(0, max(deadline_s * 1e3 * 1.3, np.percentile(finite, 99) * 1.2))
    ax.set_title(title or 'offload_ros timeline (dotted: decision switches)')
    ax.legend(loc='upper left', fontsize=7, ncol=3, framealpha=0.9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def save_figure(fig, path: pathlib.Path, dpi: int = 110) -> None:
    """Lay out, write (making the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def write_json(path: pathlib.Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=False))


def load_jsonl(lines: Iterable[str]) -> List[DecisionRecord]:
    return read_records(lines)


def fidelity(records: Sequence[DecisionRecord], batches: int = 10) -> Dict[str, dict]:
    """
    Return each target's predicted vs observed mean over its answered frames.

    The prediction is the decision's own for each frame (the model's: any self-check
    calibration taken off); the paired error is the mean over `batches` batches of consecutive
    frames of (batch mean predicted / batch mean observed - 1) with its 95% half-width, so
    drift the estimates follow is not error; `inside_p95` is the share of frames observed
    within the prediction's 95% quantile (core.hedging.quantile_s).
    """
    out = {}
    by_target: Dict[str, list] = collections.defaultdict(list)
    for r in sorted(records, key=lambda r: r.seq):
        p = r.predictions.get(r.target)
        if r.outcome == 'detections' and not r.fallback and r.hedge is None and p is not None \
                and p.stable:
            model = p.latency_s - p.terms.get('calibration_s', 0.0)
            by_target[r.target].append((model, r.observed_latency_s,
                                        quantile_s(p, 0.95) * model / p.latency_s))
    for target, pairs in sorted(by_target.items()):
        predicted = float(np.mean([p for p, _, _ in pairs]))
        observed = float(np.mean([o for _, o, _ in pairs]))
        errors = []
        if len(pairs) >= 2 * batches:
            for chunk in np.array_split(np.arange(len(pairs)), batches):
                part = [pairs[i] for i in chunk]
                errors.append(sum(p for p, _, _ in part) / sum(o for _, o, _ in part) - 1.0)
        out[target] = {'frames': len(pairs), 'predicted_mean_s': predicted,
                       'observed_mean_s': observed,
                       'paired_error_pct': 100.0 * float(np.mean(errors)) if errors else None,
                       'half_width_pct': 100.0 * mean_half_width(errors) if errors else None,
                       'inside_p95': sum(o <= q for _, o, q in pairs) / len(pairs)}
    return out


def fidelity_table(view: Mapping[str, dict]) -> str:
    """Return the fidelity view as text."""
    lines = ['target      frames  predicted  observed   paired error      inside p95  (ms)']
    for target, f in view.items():
        error = '-' if f['paired_error_pct'] is None else \
            f"{f['paired_error_pct']:+.1f}% +-{f['half_width_pct']:.1f}"
        lines.append(f"{target:<10}{f['frames']:>8}{f['predicted_mean_s'] * 1e3:>11.1f}"
                     f"{f['observed_mean_s'] * 1e3:>10.1f}   {error:<17}"
                     f"{f['inside_p95']:>8.0%}")
    return '\n'.join(lines)


def _side(targets: Sequence[str], latencies: Sequence[float], energies: Sequence,
          deadline_s: float) -> dict:
    finite = [x for x in latencies if math.isfinite(x)]
    switches = sum(1 for a, b in zip(targets, targets[1:]) if a != b)
    joules = [e for e in energies if e is not None]
    return {'targets': dict(collections.Counter(targets)),
            'mean_s': float(np.mean(finite)) if finite else None,
            'p99_s': float(np.percentile(finite, 99)) if finite else None,
            'misses': sum(1 for x in latencies if not x <= deadline_s),
            'switches': switches,
            'robot_mj_per_frame': 1e3 * float(np.mean(joules)) if joules else None}


def whatif_summary(records: Sequence[DecisionRecord], replayed, deadline_s: float,
                   whatif_deadline_s: float, settings: Sequence[str],
                   assumptions: Sequence[str]) -> dict:
    """
    Return what happened and what the what-if would have done, side by side.

    Misses on both sides are counted against the what-if's deadline (the run's where it keeps
    it): the question is what each would have done against it.
    """
    records = sorted(records, key=lambda r: r.seq)
    happened = _side([r.planned_target for r in records],
                     [r.observed_latency_s if r.outcome == 'detections' else math.inf
                      for r in records],
                     [((r.energy or {}).get(r.target) or {}).get('robot_j') for r in records],
                     whatif_deadline_s)
    happened['targets'] = dict(collections.Counter(r.target for r in records))
    whatif = _side([f.target for f in replayed], [f.latency_s for f in replayed],
                   [f.robot_j for f in replayed], whatif_deadline_s)
    whatif['modelled_frames'] = sum(f.modelled for f in replayed)
    whatif['same_decisions'] = sum(f.target == r.planned_target
                                   for f, r in zip(replayed, records))
    return {'settings': list(settings), 'assumptions': list(assumptions),
            'frames': len(records), 'deadline_s': deadline_s,
            'whatif_deadline_s': whatif_deadline_s, 'happened': happened, 'whatif': whatif}


def whatif_table(summary: dict) -> str:
    """Return a what-if summary as text."""
    def ms(v):
        return '-' if v is None else f'{v * 1e3:.1f}'

    def targets(counts):
        return ', '.join(f'{t} {n}' for t, n in sorted(counts.items()))
    h, w = summary['happened'], summary['whatif']
    rows = [('targets', targets(h['targets']), targets(w['targets'])),
            ('mean latency ms', ms(h['mean_s']), ms(w['mean_s'])),
            ('p99 latency ms', ms(h['p99_s']), ms(w['p99_s'])),
            (f"misses at {summary['whatif_deadline_s'] * 1e3:.0f} ms", str(h['misses']),
             str(w['misses'])),
            ('switches', str(h['switches']), str(w['switches'])),
            ('robot energy mJ/frame', '-' if h['robot_mj_per_frame'] is None
             else f"{h['robot_mj_per_frame']:.0f}",
             '-' if w['robot_mj_per_frame'] is None else f"{w['robot_mj_per_frame']:.0f}")]
    width = max(len(r[1]) for r in rows) + 2
    lines = [f"what-if {' '.join(summary['settings']) or '(the run unchanged)'}, "
             f"{summary['frames']} frames: {w['same_decisions']} decided as recorded, "
             f"{w['modelled_frames']} on another target (latency modelled)",
             f"{'':<24}{'happened':<{width}}what-if"]
    lines += [f'{name:<24}{a:<{width}}{b}' for name, a, b in rows]
    lines += [f'assumed: {a}' for a in summary['assumptions']]
    return '\n'.join(lines)


def plot_whatif(records: Sequence[DecisionRecord], replayed, path: pathlib.Path, t0_s: float,
                deadline_s: float, title: str = '') -> None:
    """Latency per frame by target: what happened (top) and the what-if (bottom)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    records = sorted(records, key=lambda r: r.seq)
    names = sorted({r.target for r in records} | {f.target for f in replayed})
    colours = {t: plt.cm.tab10(i % 10) for i, t in enumerate(names)}
    fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True, sharey=True, dpi=110)
    for target in names:
        pts = [(r.finished_at_s - t0_s, r.observed_latency_s * 1e3) for r in records
               if r.target == target and r.outcome == 'detections']
        if pts:
            axes[0].scatter(*zip(*pts), s=7, color=colours[target], label=target)
        for modelled, marker in ((False, 'o'), (True, 'x')):
            pts = [(f.at_s - t0_s, f.latency_s * 1e3) for f in replayed
                   if f.target == target and f.modelled == modelled and math.isfinite(f.latency_s)]
            if pts:
                axes[1].scatter(*zip(*pts), s=9, marker=marker, color=colours[target],
                                label=f'{target}' + (' (modelled)' if modelled else ''))
    for ax, name in zip(axes, ('happened (observed)', 'what-if')):
        ax.axhline(deadline_s * 1e3, color='red', ls='--', lw=0.8)
        ax.set_ylabel(f'{name}\nlatency (ms)')
        ax.legend(loc='upper left', fontsize=7, ncol=4)
    axes[1].set_xlabel('time since start (s)')
    axes[0].set_title(title or 'what-if replay')
    save_figure(fig, path)
