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
make bench-fidelity: predicted vs observed mean latency over a matrix of cells.

One robot node set (robot.launch.xml, camera on real footage with Poisson arrivals) runs in a
robot namespace pinned to core 0, one gpu_worker in an edge namespace on core 1, joined by a
tbf-shaped veth pair (offload_ros.scenarios). Cells: bandwidth x frame rate x target
(forced: local or the worker) x payload (JPEG or raw uint8 tensor), changed live through
parameters and `tc`, so the node keeps its estimators running as a robot would.

Per cell: warm-up (the rate estimator's window), then frames until the 95% confidence
half-width of the observed mean (batch means over consecutive frames) is under 2% or the time
cap is reached. The prediction is the model at the mean of the node's online estimates over
the cell's frames (its offload/decisions records): nothing is fitted to the cell's
observations. Each frame's record also times its stages (link, worker queue, inference, the
node's own), held against the terms that predict them. A cell
is run only where the node's estimates (taken at 1 Hz on the cell's target and payload) say
every stage will be below `--max-utilisation` at the cell's rate.

Writes bench/results/fidelity.json (schema in docs/validation.md) and, with --report, the
scatter plot docs/img/fidelity_scatter.png and the table docs/fidelity.md.
"""
import argparse
import json
import math
import os
import pathlib
import sys
import time
from typing import List, Optional

import numpy as np

from offload_ros import analysis
from offload_ros.core.scenario import (as_mapping, mean_estimates, predict_from_estimates,
                                       predict_terms_from_estimates)
from offload_ros.scenarios import harness
from offload_ros.scenarios.netns import capable

BANDWIDTHS_MBPS = (50, 20, 10, 5, 2)
RATES_HZ = (1, 2, 4, 8)
PAYLOADS = ('jpeg', 'raw')
WIDTH, HEIGHT = 320, 240          # QVGA: raw frames are 230 kB, JPEG ~12 kB


def utilisation(estimates: dict, target: str, rate_hz: float) -> Optional[dict]:
    """Each stage's utilisation at `rate_hz` by the node's own estimates."""
    estimates = as_mapping(estimates)
    if target == 'local':
        return {'robot': rate_hz * estimates['device']['service_s']}
    net = estimates.get('networks', {}).get(target)
    worker = next((w for w in estimates.get('workers', []) if w['name'] == target), None)
    if net is None or worker is None:
        return None
    return {'uplink': rate_hz * net['request_bytes'] * 8 / net['bandwidth_bps'],
            'worker': (rate_hz + worker['tenant_rate_hz']) * worker['service_s']
            / worker['parallelism']}


class Bench:
    def __init__(self, args):
        self.args = args
        self.spec = {
            'name': 'fidelity', 'duration_s': 0,
            'camera': {'rate_hz': 1.0, 'width': WIDTH, 'height': HEIGHT,
                       'arrival': 'poisson', 'seed': 11},
            # No quota: the robot gets core 0, the worker core 1.
            'robot': {'params': {'deadline_s': 3.0, 'request_timeout_s': 3.0,
                                 'epoch_s': 0.25, 'force_target': 'local',
                                 'probe_bytes': 0, 'probe_period_s': 1.0,
                                 'max_local_queue': 64}},
            'workers': [{'name': 'edge1', 'threads': 1}],
            'link': {'bandwidth_mbps': getattr(args, 'bandwidths', BANDWIDTHS_MBPS)[0],
                     'queue_ms': 5000}}
        self.run = harness.Run(self.spec, 'model', pathlib.Path(args.work), verbose=False)
        self.cells: List[dict] = []

    def utilisation(self, estimates: dict, target: str, rate_hz: float) -> Optional[dict]:
        return utilisation(estimates, target, rate_hz)

    def log(self, text: str) -> None:
        print(f'[fidelity {time.strftime("%H:%M:%S")}] {text}', flush=True)

    def plan(self) -> List[dict]:
        a = self.args
        # The robot's cells at the fastest and the slowest link: its latency should not
        # depend on the link (the payload setting does not matter to it: the camera publishes
        # raw images), which checks that probing a slow link does not disturb the robot.

        def local(bw):
            return [{'target': 'local', 'payload': 'raw', 'bandwidth_mbps': bw, 'rate_hz': r}
                    for r in a.rates]
        cells = local(a.bandwidths[0])
        for bw in a.bandwidths:
            for payload in a.payloads:
                cells += [{'target': 'edge1', 'payload': payload, 'bandwidth_mbps': bw,
                           'rate_hz': r} for r in a.rates]
        if len(a.bandwidths) > 1:
            cells += local(a.bandwidths[-1])
        if a.limit:
            cells = cells[:a.limit]
        return cells

    def _records_since(self, start_s: float) -> List[dict]:
        return [r for r in list(self.run.records) if r.finished_at_s >= start_s]

    def measure(self, cell: dict) -> dict:
        run, a = self.run, self.args
        if cell['bandwidth_mbps'] != self.bandwidth:
            run.topology.shape('edge1', float(cell['bandwidth_mbps']), run.queue_ms)
            self.bandwidth = cell['bandwidth_mbps']
        # Settle on the new target and payload at a safe 1 Hz, then judge the cell from the
        # node's own estimates before raising the rate: an overloaded cell is never run (its
        # backlog would spill into the next cells). Where only the rate rises after a stable
        # cell, that cell's frames already carry the estimates to judge from (no backlog
        # to drain: it was stable), which saves the settling (~4 s a cell).
        rho = None
        before = self.cells[-1] if self.cells else None
        if before is not None and before['stable'] and cell['rate_hz'] > before['rate_hz'] \
                and all(before.get(k) == cell.get(k) for k in (
                    'target', 'payload', 'bandwidth_mbps')):
            recent = [r for r in self._records_since(time.time() - 5.0)
                      if r.target == cell['target'] and r.estimates]
            if recent:
                rho = self.utilisation(recent[-1].estimates, cell['target'],
                                       cell['rate_hz'])
        if rho is None:
            run.set_params('camera', {'rate_hz': 1.0})
            run.set_params('offload', {'force_target': cell['target'],
                                       'payload': cell['payload']})
        # Judge from frames decided after the change took effect (the next epoch), so the
        # request size is the new payload's.
        changed = time.time() + 1.0
        for _ in range(0 if rho is not None else 20):
            time.sleep(1.0)
            recent = [r for r in self._records_since(max(changed, time.time() - 3.0))
                      if r.target == cell['target'] and r.estimates]
            if len(recent) >= 2:
                rho = self.utilisation(recent[-1].estimates, cell['target'],
                                       cell['rate_hz'])
                if rho is not None:
                    break
        result = {**cell, 'utilisation': rho}
        if rho is None or max(rho.values()) >= a.max_utilisation:
            result['stable'] = False
            return result
        run.set_params('camera', {'rate_hz': float(cell['rate_hz'])})
        # Warm-up: the node's rate estimate spans its last 20 frames, and those must all be
        # at the cell's rate. A 1 Hz cell gets none beyond the settling above (at 1 Hz):
        # the node lets faster frames from before go once it detects the drop (~5 s).
        time.sleep(max(a.warmup_s, 6.0 / cell['rate_hz'],
                       20.0 / cell['rate_hz'] + 1.0 if cell['rate_hz'] != 1.0 else 0.0))
        begin = time.time()
        deadline = begin + a.cell_s
        while True:
            time.sleep(1.0)
            done = [r for r in self._records_since(begin)
                    if r.target == cell['target'] and r.outcome == 'detections'
                    and not r.fallback and r.stamp_s >= begin]
            observed = [r.observed_latency_s for r in done]
            if len(observed) >= a.min_frames:
                mean = float(np.mean(observed))
                if analysis.batch_half_width(observed) < a.half_width * mean:
                    break
            if time.time() >= deadline:
                break
        records = [r for r in self._records_since(begin) if r.stamp_s >= begin]
        predicted = [r.predicted_s(cell['target']) for r in done
                     if r.predicted_s(cell['target'])]
        # Too few answered frames in the cap means the cell could not keep up (a backlog),
        # whatever the gate estimated: not a stable cell.
        if len(observed) < max(10, a.min_frames // 4) or not predicted:
            result.update({'stable': False, 'frames': len(observed)})
            return result
        mean, hw = float(np.mean(observed)), analysis.batch_half_width(observed)
        # The prediction of the cell's mean: the model at the mean of the node's online
        # estimates over the cell's frames (as the paper predicts a mean from mean
        # parameters). Two robustness checks from the same records: the mean and the median
        # of the per-frame predictions (near capacity a few frames predicted from a noisy
        # rate or bandwidth estimate dominate the mean: the wait is convex in the load).
        averaged = mean_estimates([r.estimates for r in done if r.estimates],
                                  cell['target'])
        pred = predict_from_estimates(averaged, cell['target'])
        over_cell = self.utilisation(averaged, cell['target'], averaged['rate_hz'])
        if not math.isfinite(pred) or max(over_cell.values()) >= a.max_utilisation:
            # The node's own estimates over the cell put a stage past the same gate as
            # before the cell (or saturated it): not a steady state to predict.
            result.update({'stable': False, 'frames': len(observed),
                           'utilisation': over_cell, 'observed_mean_s': float(np.mean(observed)),
                           'predicted_mean_s': pred if math.isfinite(pred) else None})
            return result
        alternative = other_link_model(averaged, cell['target'])
        pred_framewise = float(np.mean(predicted))
        pred_median = float(np.median(predicted))
        last = done[-1].estimates.to_dict() if done[-1].estimates else {}
        terms = {k: float(np.mean([r.predictions[cell['target']].terms.get(k) or 0.0
                                   for r in done])) for k in
                 done[-1].predictions[cell['target']].terms}
        result.update({
            'stable': True, 'frames': len(observed),
            'stages': stages(done, cell['target'],
                             predict_terms_from_estimates(averaged, cell['target'])),
            'frames_other': len(records) - len(done),
            'observed_mean_s': mean, 'observed_p95_s': float(np.percentile(observed, 95)),
            'half_width_pct': 100.0 * hw / mean if math.isfinite(hw) else None,
            'predicted_mean_s': pred, 'error_pct': 100.0 * (pred - mean) / mean,
            'predicted_framewise_mean_s': pred_framewise,
            'error_framewise_pct': 100.0 * (pred_framewise - mean) / mean,
            'predicted_median_s': pred_median,
            **({'predicted_other_link_s': alternative[1], 'other_link_model': alternative[0],
                'error_other_link_pct': 100.0 * (alternative[1] - mean) / mean}
               if alternative and alternative[1] is not None else {}),
            'mean_estimates': averaged,
            'error_median_pct': 100.0 * (pred_median - mean) / mean,
            'paired_error': analysis.paired_error(done, cell['target']),
            'terms_s': terms, 'measured_s': round(time.time() - begin, 1),
            'utilisation': self.utilisation(last, cell['target'], cell['rate_hz']) or rho,
            'estimates': last})
        return result

    def save_records(self) -> None:
        path = pathlib.Path(self.args.work) / 'records.jsonl'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(''.join(r.to_json() + '\n' for r in self.run.records))

    def execute(self) -> dict:
        cells = self.plan()
        self.bandwidth = self.spec['link']['bandwidth_mbps']
        started = time.time()
        try:
            self.run.start()
            for i, cell in enumerate(cells):
                result = self.measure(cell)
                self.cells.append(result)
                if result['stable']:
                    self.log(f'{i + 1}/{len(cells)} {cell["target"]:5s} {cell["payload"]:4s} '
                             f'{cell["bandwidth_mbps"]:>2} Mbit/s {cell["rate_hz"]} Hz: '
                             f'observed {result["observed_mean_s"] * 1e3:.1f} ms '
                             f'+-{result["half_width_pct"] or math.nan:.1f}% (n '
                             f'{result["frames"]}), predicted '
                             f'{result["predicted_mean_s"] * 1e3:.1f} '
                             f'({result["error_pct"]:+.1f}%)')
                else:
                    rho = result.get('utilisation') or {}
                    self.log(f'{i + 1}/{len(cells)} {cell["target"]} {cell["payload"]} '
                             f'{cell["bandwidth_mbps"]} Mbit/s {cell["rate_hz"]} Hz: '
                             f'skipped (utilisation '
                             f'{ {k: round(v, 2) for k, v in rho.items()} })')
        finally:
            self.run.teardown()
            self.save_records()
        return summarise(self.cells, {
            'cpus': os.cpu_count(), 'robot_core': self.run.robot_cores,
            'worker_core': self.run.edge_cores, 'wall_s': round(time.time() - started),
            'settings': {k: v for k, v in vars(self.args).items()
                         if k not in ('out', 'report', 'work')}})


UTILISATION_BANDS = ((0.0, 0.3), (0.3, 0.6), (0.6, 1.0))


def other_link_model(averaged: dict, target: str) -> Optional[tuple]:
    """
    Return the cell predicted from the same mean estimates with the other uplink model.

    FIFO M/G/1 at the measured spread of payload sizes where the node used the exponential link
    (M/M/1, the exact mean of a link shared by concurrent uploads), or the reverse. Which fits a
    tbf link under TCP is a question the matrix answers.
    """
    nets = averaged.get('networks') or {}
    net = nets.get(target)
    if net is None or net.get('size_scv') is None:
        return None
    exponential = net.get('request_scv') == 1.0
    swapped = {**averaged, 'networks': {**nets, target: {
        **net, 'request_scv': net['size_scv'] if exponential else 1.0}}}
    predicted = predict_from_estimates(swapped, target)
    return ('measured' if exponential else 'exponential',
            predicted if math.isfinite(predicted) else None)


# Which predicted terms make up each stage that a frame's record times on its own.
STAGE_TERMS = {
    'link': ('uplink_wait_s', 'uplink_transfer_s', 'downlink_wait_s', 'downlink_transfer_s',
             'overhead_s'),
    'worker_wait': ('queue_wait_s',), 'service': ('service_s',),
    'node': ('ingress_s', 'handling_s')}


def observed_stages(record: dict) -> Optional[dict]:
    """
    One frame's latency cut into the stages the model predicts separately.

    Remote: the link is the round trip less the worker's queue and inference (so it holds the
    server's HTTP overhead, as overhead_s does), plus any wait here for a request slot (a wait for
    the link, with max_inflight uploads on it); node is the rest (ingress, handling). Local:
    worker_wait is the wait for the detector.
    """
    total = record.observed_latency_s
    if record.target == 'local':
        wait, service = record.pool_wait_s, record.service_s
        if wait is None or service is None:
            return None
        return {'worker_wait': wait, 'service': service, 'node': total - wait - service}
    queue, service, rt = (record.server_queue_s, record.service_s,
                          record.round_trip_s)
    slot = record.pool_wait_s
    if queue is None or service is None or rt is None or slot is None:
        return None
    return {'link': slot + rt - queue - service, 'worker_wait': queue, 'service': service,
            'node': total - rt - slot}


def stages(done: List[dict], target: str, terms: dict) -> dict:
    """
    Observed mean of each stage against the model's terms at the cell's mean estimates.

    Which term is off when the total is.
    """
    cut = [c for c in (observed_stages(r) for r in done) if c]
    out = {}
    for stage, names in STAGE_TERMS.items():
        if not cut or stage not in cut[0]:
            continue
        observed = float(np.mean([c[stage] for c in cut]))
        predicted = float(sum(terms.get(n) or 0.0 for n in names))
        out[stage] = {'observed_s': observed, 'predicted_s': predicted,
                      'error_s': predicted - observed}
    return out


def regate(cell: dict, max_utilisation: float) -> dict:
    """
    Return a stored cell judged by the gate over its frames (as `measure` now does).

    A cell whose mean estimates put a stage at or past `max_utilisation` is not stable.
    """
    if not cell['stable'] or not cell.get('mean_estimates'):
        return cell
    averaged = cell['mean_estimates']
    rho = utilisation(averaged, cell['target'], averaged['rate_hz'])
    if rho is None or max(rho.values()) < max_utilisation:
        return cell
    return {**cell, 'stable': False, 'utilisation': rho}


def by_utilisation(stable: List[dict]) -> List[dict]:
    """MAPE per band of the busiest stage's utilisation (by the node's estimates)."""
    bands = []
    for low, high in UTILISATION_BANDS:
        errors = [abs(c['error_pct']) for c in stable
                  if low <= max((c.get('utilisation') or {'-': 0.0}).values()) < high]
        bands.append({'from': low, 'to': high, 'cells': len(errors),
                      'mape_pct': float(np.mean(errors)) if errors else None,
                      'within_5_pct': float(100.0 * np.mean([e <= 5 for e in errors]))
                      if errors else None})
    return bands


def largest_stage_error(cell: dict) -> Optional[dict]:
    """Return the stage whose predicted mean is furthest from its observed mean."""
    found = cell.get('stages') or {}
    if not found:
        return None
    name = max(found, key=lambda k: abs(found[k]['error_s']))
    return {'stage': name, 'error_ms': round(found[name]['error_s'] * 1e3, 1),
            'error_pct_of_total': round(100.0 * found[name]['error_s']
                                        / cell['observed_mean_s'], 1)}


def stage_errors(stable: List[dict]) -> dict:
    """
    Per stage, over the cells that timed it.

    Mean signed and absolute error as a share of the cell's observed total (which term of the model
    is off, and which way).
    """
    out = {}
    for stage in STAGE_TERMS:
        shares = [100.0 * c['stages'][stage]['error_s'] / c['observed_mean_s']
                  for c in stable if stage in (c.get('stages') or {})]
        if shares:
            out[stage] = {'cells': len(shares), 'mean_pct': float(np.mean(shares)),
                          'mean_abs_pct': float(np.mean(np.abs(shares)))}
    return out


def other_link_summary(stable: List[dict]) -> Optional[dict]:
    errors = [abs(c['error_other_link_pct']) for c in stable
              if c.get('error_other_link_pct') is not None]
    remote = [abs(c['error_pct']) for c in stable if c.get('error_other_link_pct') is not None]
    if not errors:
        return None
    return {'model': next(c['other_link_model'] for c in stable if c.get('other_link_model')),
            'cells': len(errors), 'mape_pct': float(np.mean(errors)),
            'mape_in_use_pct': float(np.mean(remote)),
            'within_5_pct': float(100.0 * np.mean([e <= 5 for e in errors]))}


def paired_summary(stable: List[dict]) -> Optional[dict]:
    """
    Return the cells whose error is known to +-2% (paired half-width under 2%, paired_error).

    How many, and their errors against the goal's bands.
    """
    paired = [c['paired_error'] for c in stable if c.get('paired_error')]
    if not paired:
        return None
    known = np.array([abs(p['error_pct']) for p in paired if p['half_width_pct'] < 2.0])
    return {'cells': len(paired), 'known_to_2_pct': int(known.size),
            'mape_pct': float(known.mean()) if known.size else None,
            'within_2_pct': float(100.0 * (known <= 2.0).mean()) if known.size else None,
            'within_5_pct': float(100.0 * (known <= 5.0).mean()) if known.size else None}


def summarise(cells: List[dict], machine: dict) -> dict:
    stable = [c for c in cells if c['stable']]
    errors = np.array([abs(c['error_pct']) for c in stable]) if stable else np.array([])
    by_median = np.array([abs(c['error_median_pct']) for c in stable
                          if c.get('error_median_pct') is not None])
    framewise = np.array([abs(c['error_framewise_pct']) for c in stable
                          if c.get('error_framewise_pct') is not None])
    return {
        'mape_framewise_prediction_pct': float(framewise.mean()) if framewise.size else None,
        'mape_median_prediction_pct': float(by_median.mean()) if by_median.size else None,
        'within_5_median_prediction_pct': float(100.0 * (by_median <= 5).mean())
        if by_median.size else None,
        'cells': cells, 'stable_cells': len(stable), 'machine': machine,
        'mape_pct': float(errors.mean()) if errors.size else None,
        'within_5_pct': float(100.0 * (errors <= 5).mean()) if errors.size else None,
        'within_10_pct': float(100.0 * (errors <= 10).mean()) if errors.size else None,
        'half_width_met_pct': float(100.0 * np.mean([
            (c['half_width_pct'] or math.inf) < 2.0 for c in stable])) if stable else None,
        # What sampling noise alone would give: E|N(0, sigma)| = sigma sqrt(2/pi) per cell,
        # sigma its mean's standard error (the 95% half-width / 1.96).
        'noise_mape_pct': float(np.mean([(c['half_width_pct'] or 0.0) / 1.96
                                         * math.sqrt(2.0 / math.pi) for c in stable]))
        if stable else None,
        'paired': paired_summary(stable),
        'other_link_model': other_link_summary(stable),
        'by_utilisation': by_utilisation(stable),
        'stage_errors': stage_errors(stable),
        'worst': sorted(({**{k: c[k] for k in ('target', 'payload', 'bandwidth_mbps',
                                               'rate_hz', 'error_pct', 'utilisation')},
                          'largest_stage_error': largest_stage_error(c)} for c in stable),
                        key=lambda c: -abs(c['error_pct']))[:5],
        'goal': {'mape_pct': 2.0, 'within_5_pct': 92.0, 'within_10_pct': 100.0}}


def plot(result: dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    stable = [c for c in result['cells'] if c['stable']]
    fig, ax = plt.subplots(figsize=(6.5, 6))
    top = max(max(c['observed_mean_s'], c['predicted_mean_s']) for c in stable) * 1.1e3
    low = min(min(c['observed_mean_s'], c['predicted_mean_s']) for c in stable) * 0.8e3
    ax.fill_between([low, top], [0.95 * low, 0.95 * top], [1.05 * low, 1.05 * top],
                    color='0.85', label='within 5%')
    ax.plot([low, top], [low, top], color='0.4', lw=0.8)
    styles = {('local', 'raw'): ('o', 'tab:orange', 'local'),
              ('edge1', 'jpeg'): ('s', 'tab:blue', 'remote, JPEG'),
              ('edge1', 'raw'): ('^', 'tab:green', 'remote, raw tensor')}
    for key, (marker, colour, label) in styles.items():
        sel = [c for c in stable if (c['target'], c['payload']) == key]
        if sel:
            ax.errorbar([c['observed_mean_s'] * 1e3 for c in sel],
                        [c['predicted_mean_s'] * 1e3 for c in sel],
                        xerr=[(c['half_width_pct'] or 0) / 100 * c['observed_mean_s'] * 1e3
                              for c in sel], fmt=marker, color=colour, label=label, ms=5)
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('observed mean latency (ms, 95% CI)')
    ax.set_ylabel('predicted mean latency (ms)')
    ax.set_title(f'Fidelity: {result["stable_cells"]} cells, MAPE '
                 f'{result["mape_pct"]:.1f}%, {result["within_5_pct"]:.0f}% within 5%')
    ax.legend(loc='upper left')
    analysis.save_figure(fig, path)


def markdown(result: dict) -> str:
    lines = ['Predicted: the model at the mean of the node\'s online estimates over the cell; '
             'per-frame: the mean and the median of the node\'s own per-frame predictions.', '',
             'Stage most off: the stage (link, worker queue, inference, the node\'s own) whose '
             'predicted mean is furthest from its measured mean, predicted minus measured.', '',
             'Paired: the error and its 95% half-width over 10 batches of consecutive frames, '
             'each predicted from its own frames\' estimates (the machine\'s drift cancels).',
             '',
             '| target | payload | Mbit/s | Hz | n | observed ms | +-% | predicted ms | '
             'error % | paired error % | per-frame mean / median error % | stage most off | '
             'utilisation |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for c in result['cells']:
        rho = ', '.join(f'{k} {v:.2f}' for k, v in (c.get('utilisation') or {}).items())
        if not c['stable']:
            lines.append(f'| {c["target"]} | {c["payload"]} | {c["bandwidth_mbps"]} | '
                         f'{c["rate_hz"]} | - | unstable/skipped | | | | | | | {rho} |')
            continue
        lines.append(f'| {c["target"]} | {c["payload"]} | {c["bandwidth_mbps"]} | '
                     f'{c["rate_hz"]} | {c["frames"]} | {c["observed_mean_s"] * 1e3:.1f} | '
                     f'{c["half_width_pct"] or math.nan:.1f} | '
                     f'{c["predicted_mean_s"] * 1e3:.1f} | {c["error_pct"]:+.1f} | '
                     f'{analysis.paired_text(c.get("paired_error"))} | '
                     f'{c.get("error_framewise_pct", math.nan):+.1f} / '
                     f'{c.get("error_median_pct", math.nan):+.1f} | '
                     f'{stage_text(largest_stage_error(c))} | {rho} |')
    return '\n'.join(lines) + '\n'


def stage_text(largest: Optional[dict]) -> str:
    if not largest:
        return '-'
    return f'{largest["stage"]} {largest["error_ms"]:+.1f} ms'


def parse_cell_args(parser: argparse.ArgumentParser, argv, cell_s: float, min_frames: int,
                    quick_cell_s: float = 10.0, quick_min_frames: int = 10
                    ) -> argparse.Namespace:
    """Return the options every cell-matrix bench shares (this one, split, tenants), parsed."""
    parser.add_argument('--quick', action='store_true', help='short cells (development)')
    parser.add_argument('--cell-s', type=float, default=cell_s, help='time cap per cell')
    parser.add_argument('--warmup-s', type=float, default=6.0)
    parser.add_argument('--min-frames', type=int, default=min_frames)
    parser.add_argument('--half-width', type=float, default=0.02)
    parser.add_argument('--max-utilisation', type=float, default=0.85)
    parser.add_argument('--limit', type=int, default=0, help='first N cells only')
    args = parser.parse_args(argv)
    if args.quick:
        args.cell_s, args.warmup_s, args.min_frames = quick_cell_s, 4.0, quick_min_frames
    return args


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', default='bench/results/fidelity.json')
    parser.add_argument('--report', action='store_true',
                        help='write docs/img/fidelity_scatter.png and docs/fidelity.md')
    parser.add_argument('--work', default='bench_out/fidelity')
    parser.add_argument('--reuse', action='store_true',
                        help='no run: the report from the JSON at --out')
    parser.add_argument('--bandwidths', type=float, nargs='+', default=BANDWIDTHS_MBPS,
                        help='Mbit/s, run in this order (the robot cells at the first)')
    parser.add_argument('--rates', type=float, nargs='+', default=RATES_HZ)
    parser.add_argument('--payloads', nargs='+', default=PAYLOADS, choices=PAYLOADS)
    args = parse_cell_args(parser, argv, cell_s=23.0, min_frames=40, quick_min_frames=20)
    if args.reuse:
        result = json.loads(pathlib.Path(args.out).read_text())
        result = summarise([regate(c, args.max_utilisation) for c in result['cells']],
                           result['machine'])
    else:
        if not capable('bench-fidelity'):
            return 77
        result = Bench(args).execute()
    analysis.write_json(pathlib.Path(args.out), result)
    print(f'fidelity: {result["stable_cells"]} stable cells, MAPE '
          f'{result["mape_pct"]:.2f}%, within 5%: {result["within_5_pct"]:.0f}%, within 10%: '
          f'{result["within_10_pct"]:.0f}%; wrote {args.out}')
    if args.report and result['stable_cells']:
        plot(result, pathlib.Path('docs/img/fidelity_scatter.png'))
        pathlib.Path('docs/fidelity.md').write_text(
            '# Fidelity matrix (generated by `make bench-fidelity`)\n\n' + markdown(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
