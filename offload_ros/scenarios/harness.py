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
offload_scenario SCENARIO.yaml: run a network-emulated scenario and check its assertions.

The robot node set (robot.launch.xml, camera on looping real footage) runs in a robot
namespace, pinned to core 0 and limited to a fraction of it (the robot's weaker computer);
each gpu_worker runs in its own edge namespace pinned to core 1, joined to the robot by a
tbf-shaped veth pair. The harness drives the schedule (bandwidth steps, synthetic tenant load,
kills, link cuts, hangs), captures a bag, and writes a JSON summary and a timeline plot.
"""
import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

import psutil
import yaml

from offload_ros import analysis
from offload_ros.core.records import DecisionRecord
from offload_ros.inference import models
from offload_ros.scenarios.netns import CpuQuota, ScenarioUnavailable, Topology, \
    check_capabilities
from offload_ros.graph import launcher as launch
from offload_ros.graph.procs import WorkerProcess

POLICIES = ('model', 'local', 'remote', 'threshold', 'energy', 'hedge')
ACTIONS = ('bandwidth_mbps', 'rate_hz', 'load', 'kill', 'restart', 'stop', 'link_down',
           'link_up', 'hang', 'resume')
WORKER_PORT = 8000
# With `discover: true` the workers announce themselves and the robot is given none.
DISCOVERY_TYPE = '_kserve._tcp'


class ScenarioError(ValueError):
    """The scenario file is invalid; the message names the field."""


def load_spec(path: pathlib.Path) -> dict:
    try:
        spec = yaml.safe_load(pathlib.Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ScenarioError(f'{path}: {e}') from e
    if not isinstance(spec, dict):
        raise ScenarioError(f'{path}: not a mapping')
    for key in ('name', 'duration_s', 'workers'):
        if key not in spec:
            raise ScenarioError(f'{path}: {key}: missing')
    names = [w['name'] for w in spec['workers']]
    for index, step in enumerate(spec.get('schedule', [])):
        actions = [k for k in step if k != 'at_s']
        if 'at_s' not in step or len(actions) != 1 or actions[0] not in ACTIONS:
            raise ScenarioError(f'{path}: schedule[{index}]: needs at_s and one of {ACTIONS}')
        value = step[actions[0]]
        target = value.get('worker') if isinstance(value, dict) else value
        if actions[0] not in ('bandwidth_mbps', 'rate_hz') and target not in names:
            raise ScenarioError(f'{path}: schedule[{index}]: unknown worker {target!r}')
    return spec


def robot_cpu_fraction(robot: dict) -> Optional[float]:
    """
    Return the robot's share of a core.

    `cpu_fraction` as given, or the share at which the robot's detector takes `detector_ms` on this
    machine (its single-thread time here, timed now, over the target: a CFS quota stretches CPU-
    bound work by its inverse), so that a scenario tuned for a Raspberry-Pi-class robot keeps its
    trade-offs on a faster machine.
    """
    if 'detector_ms' not in robot:
        return robot.get('cpu_fraction')
    import numpy as np
    from offload_ros.inference.detector import Detector
    detector = Detector(str(models.ensure_default_model()), threads=1)
    full_core_s = detector.profile(np.zeros((480, 640, 3), np.uint8), runs=10).mean_s
    return min(1.0, max(0.05, full_core_s / (float(robot['detector_ms']) / 1e3)))


def worker_args(spec: dict, w: dict) -> list:
    """Return a worker's gpu_worker options from the scenario (announced with `discover`)."""
    return ['--threads', str(w.get('threads', 1)), '--parallelism', str(w.get('parallelism', 1)),
            *map(str, w.get('args', ())),
            *(('--announce', DISCOVERY_TYPE, '--announce-name', w['name'])
              if spec.get('discover') else ())]


class Run:
    """One scenario run under one policy; cleans up namespaces and processes on every path."""

    def __init__(self, spec: dict, policy: str, out: pathlib.Path, verbose: bool = True):
        if policy not in POLICIES:
            raise ScenarioError(f'policy must be one of {POLICIES}, got {policy!r}')
        self.spec, self.policy, self.out, self.verbose = spec, policy, out, verbose
        self.topology = Topology()
        self.workers: Dict[str, WorkerProcess] = {}
        self.all_workers: List[WorkerProcess] = []
        self.loadgens: Dict[str, subprocess.Popen] = {}
        self.robot: List[subprocess.Popen] = []
        self.helpers: List[subprocess.Popen] = []
        self.quota: Optional[CpuQuota] = None
        self.robot_fraction: Optional[float] = None
        self.worker_quotas: Dict[str, CpuQuota] = {}
        self.records: List[DecisionRecord] = []
        self.received = 0
        self.events: List[dict] = []
        self.param_errors: List[dict] = []
        self.cpu_samples: List[dict] = []
        two_cores = (os.cpu_count() or 1) >= 2
        self.robot_cores, self.edge_cores = ('0', '1') if two_cores else (None, None)
        self.env = {**os.environ, 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
                    'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
                    'ROS_DOMAIN_ID': str(120 + int(self.topology.tag) % 90),
                    'FASTDDS_DEFAULT_PROFILES_FILE':
                        str(launch.package_share() / 'config/fastdds_profile.xml')}
        self.bin = pathlib.Path(sys.executable).parent

    def log(self, text: str) -> None:
        if self.verbose:
            print(f'[{self.spec["name"]}/{self.policy}] {text}', flush=True)

    # -- set-up ---------------------------------------------------------------------------
    def _worker_core(self, w: dict) -> Optional[str]:
        return str(w['core']) if 'core' in w and self.edge_cores else self.edge_cores

    def _start_worker(self, w: dict) -> None:
        link = self.topology.links[w['name']]
        prefix = self.topology.exec_prefix(link.edge_ns, self._worker_core(w))
        if w.get('cpu_fraction'):
            quota = self.worker_quotas.get(w['name']) or CpuQuota(
                f'ofr{self.topology.tag}_{w["name"]}', w['cpu_fraction'])
            self.worker_quotas[w['name']] = quota
            prefix = quota.wrap(prefix)
        self.workers[w['name']] = WorkerProcess(
            '--host', link.edge_ip, '--port', str(WORKER_PORT), *worker_args(self.spec, w),
            env=self.env, bin_dir=self.bin, prefix=prefix)
        self.all_workers.append(self.workers[w['name']])  # a restart replaces the entry

    def _params_file(self) -> pathlib.Path:
        base = yaml.safe_load((launch.package_share() / 'config/robot.yaml').read_text())
        robot = self.spec.get('robot', {})
        overrides = {'/**/offload': {**({'discover': DISCOVERY_TYPE}
                                        if self.spec.get('discover') else {}),
                                     **robot.get('params', {})},
                     '/**/camera': dict(self.spec.get('camera', {})),
                     # The monitor watches detections only: deserialising every raw frame
                     # for camera liveness would eat the emulated robot's CPU budget.
                     '/**/deadline_monitor': {'deadline_s': robot.get('params', {}).get(
                         'deadline_s', 0.25), 'image_transport': 'none'}}
        first = self.spec['workers'][0]['name']
        policy = {'model': {}, 'local': {'force_target': 'local'},
                  'remote': {'force_target': first},
                  'threshold': {'policy_mode': 'threshold'},
                  'energy': {'policy_mode': 'energy'},
                  'hedge': {'hedge_miss_probability': 0.1}}[self.policy]
        overrides['/**/offload'].update(policy)
        for node, values in overrides.items():
            base.setdefault(node, {'ros__parameters': {}})['ros__parameters'].update(values)
        path = self.out / 'params.yaml'
        path.write_text(yaml.safe_dump(base))
        return path

    def _start_robot(self) -> None:
        workers = '' if self.spec.get('discover') else ','.join(
            f'{n}=http://{link.edge_ip}:{WORKER_PORT}' for n, link in self.topology.links.items())
        nodes = launch.plan(launch.package_share() / 'launch/robot.launch.xml', {
            'source': str(models.cache_dir() / 'media/vtest.avi'), 'workers': workers,
            'params_file': str(self._params_file())})
        fraction = self.robot_fraction = robot_cpu_fraction(self.spec.get('robot', {}))
        if fraction:
            self.log(f'robot: {fraction:.3f} of a core')
            self.quota = CpuQuota(f'ofr{self.topology.tag}_robot', fraction)
        self.node_log = open(self.out / 'nodes.log', 'w')
        for node in nodes:
            # The cgroup is joined first: `ip netns exec` remounts /sys for the namespace.
            command = self.topology.exec_prefix(self.topology.robot_ns,
                                                self.robot_cores) + node.command(self.bin)
            if self.quota:
                command = self.quota.wrap(command)
            self.robot.append(subprocess.Popen(command, env=self.env, stdout=self.node_log,
                                               stderr=subprocess.STDOUT))
        self.robot_names = [n.name for n in nodes]
        self.camera = self.robot[self.robot_names.index('camera')]

    def _start_capture(self) -> None:
        prefix = self.topology.exec_prefix(self.topology.robot_ns, self.edge_cores)
        self.observer = subprocess.Popen(
            prefix + [str(self.bin / 'python'), '-m', 'offload_ros.scenarios.observe'],
            env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        self.helpers.append(self.observer)
        self._reader = threading.Thread(target=self._read_observer, daemon=True)
        self._reader.start()
        self.bag = self.out / 'run.bag'
        if self.bag.exists():
            shutil.rmtree(self.bag)  # a rerun into the same folder replaces its capture
        self.helpers.append(subprocess.Popen(
            prefix + [str(self.bin / 'bag_record'), '/offload/decisions', '/detections',
                      '/tracks', '/cmd_vel', '/diagnostics', str(self.bag),
                      '--discovery-timeout', '60'],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def _read_observer(self) -> None:
        for line in self.observer.stdout:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if item['kind'] == 'record':
                self.records.append(DecisionRecord.from_dict(item['record']))
            elif item['kind'] == 'received':
                self.received = max(self.received, item['n'])
            elif item['kind'] == 'param':
                self.log(f'parameters set: {item}')
                if not item.get('ok'):
                    self.param_errors.append(item)

    # -- schedule --------------------------------------------------------------------------
    def _apply(self, step: dict) -> None:
        (action,) = [k for k in step if k != 'at_s']
        value = step[action]
        if action == 'bandwidth_mbps':
            for name in self.topology.links:
                self.topology.shape(name, float(value), self.queue_ms)
        elif action == 'rate_hz':
            self.set_params('camera', {'rate_hz': float(value)})
        elif action == 'load':
            name = value['worker']
            # A load given as a utilisation is turned into a rate by the load generator from
            # the worker's own /load service time: the same queue on a faster machine.
            rate = float(value.get('rate_hz', value.get('utilisation', 0.0)))
            by = '--utilisation' if 'utilisation' in value else '--rate'
            old = self.loadgens.pop(name, None)
            if old:
                old.terminate()
                old.wait(30)
            if rate > 0:
                link = self.topology.links[name]
                spec = next(w for w in self.spec['workers'] if w['name'] == name)
                self.loadgens[name] = subprocess.Popen(
                    self.topology.exec_prefix(link.edge_ns, self._worker_core(spec))
                    + [str(self.bin / 'python'), '-m', 'offload_ros.scenarios.loadgen',
                       f'http://{link.edge_ip}:{WORKER_PORT}', by, str(rate),
                       '--client-id', f'tenants-{name}'],
                    env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elif action == 'kill':
            self.workers[value].kill()
        elif action == 'stop':   # SIGTERM: a graceful drain
            self.workers[value].stop()
        elif action == 'restart':
            self._start_worker(next(w for w in self.spec['workers'] if w['name'] == value))
        elif action in ('link_down', 'link_up'):
            self.topology.set_link(value, action == 'link_up')
        elif action == 'hang':
            self.workers[value].proc.send_signal(signal.SIGSTOP)  # accepts, never answers
        elif action == 'resume':
            self.workers[value].proc.send_signal(signal.SIGCONT)
        self.log(f't={step["at_s"]:.0f}s {action} {value}')

    # -- run -------------------------------------------------------------------------------
    def start(self) -> float:
        """
        Build the network, start workers, capture and robot.

        Returns the wall time of the first decision record (t0). Call teardown() on every path
        after this.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        self.topology.build([w['name'] for w in self.spec['workers']])
        link = self.spec.get('link', {})
        self.queue_ms = float(link.get('queue_ms', 300.0))
        for name in self.topology.links:
            self.topology.shape(name, float(link.get('bandwidth_mbps', 100.0)), self.queue_ms)
        for w in self.spec['workers']:
            if w.get('started', True):   # else started by a 'restart' in the schedule
                self._start_worker(w)
        self._start_capture()
        self._start_robot()
        end = time.monotonic() + 120
        while not self.records and time.monotonic() < end:
            if any(p.poll() is not None for p in self.robot):
                break
            time.sleep(0.1)
        if not self.records:
            raise RuntimeError('no decision records within 120 s; see nodes.log')
        return self.records[0].finished_at_s

    def set_params(self, node: str, values: dict) -> None:
        """Set parameters of a robot node (through the observer; answered asynchronously)."""
        self.observer.stdin.write(json.dumps({'node': node, 'params': values}) + '\n')
        self.observer.stdin.flush()

    def drain(self) -> None:
        """Stop the camera and let every frame in flight finish."""
        self.camera.send_signal(signal.SIGINT)
        self.camera.wait(30)
        end = time.monotonic() + 30
        while time.monotonic() < end and (self.received == 0 or
                                          len(self.records) < self.received):
            time.sleep(0.2)
        time.sleep(1.5)

    def execute(self) -> dict:
        try:
            t0_wall = self.start()
            start = time.monotonic()
            steps = sorted(self.spec.get('schedule', []), key=lambda s: s['at_s'])
            self._sample_cpu()
            for step in steps:
                time.sleep(max(0.0, start + step['at_s'] - time.monotonic()))
                self._apply(step)
                self.events.append({**step, 't_s': time.time() - t0_wall})
                self._sample_cpu()
            time.sleep(max(0.0, start + self.spec['duration_s'] - time.monotonic()))
            self._sample_cpu()
            self.drain()
        finally:
            self.teardown()
        return self._analyse(t0_wall)

    def teardown(self) -> None:
        """
        Stop everything and remove the namespaces and cgroups.

        A second Ctrl-C (or a `timeout` wrapper forwarding the signal) cannot cut it short.
        """
        main = threading.current_thread() is threading.main_thread()
        saved = [(sig, signal.signal(sig, signal.SIG_IGN))
                 for sig in (signal.SIGINT, signal.SIGTERM)] if main else []
        try:
            self._teardown()
        finally:
            for sig, handler in saved:
                signal.signal(sig, handler)

    def _teardown(self) -> None:
        for proc in self.robot + self.helpers + list(self.loadgens.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.robot + self.helpers + list(self.loadgens.values()):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for worker in self.all_workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGCONT)
            worker.stop(10)
        observer = getattr(self, 'observer', None)
        if observer is not None and observer.stdout:
            self._reader.join(5)
            observer.stdout.close()
            observer.stdin.close()
        if getattr(self, 'node_log', None):
            self.node_log.close()
        self.topology.destroy()
        for quota in [self.quota, *self.worker_quotas.values()]:
            if quota:
                quota.remove()

    # -- CPU ---------------------------------------------------------------------------------
    def _sample_cpu(self) -> None:
        """
        CPU seconds of every process so far.

        (by pid, so a restarted worker starts anew) and the robot group's throttling, at the start,
        after each scheduled change and at the end: what each phase cost, and whether the robot ran
        short of its quota.
        """
        procs = {**{f'robot/{n}': p for n, p in zip(self.robot_names, self.robot)},
                 **{f'worker/{n}': w.proc for n, w in self.workers.items()},
                 **{f'tenants/{n}': p for n, p in self.loadgens.items()},
                 **dict(zip(('observer', 'bag_record'), self.helpers))}
        cpu = {}
        for label, proc in procs.items():
            try:
                cpu[label] = (proc.pid, sum(psutil.Process(proc.pid).cpu_times()[:2]))
            except psutil.Error:
                pass   # gone (a killed worker)
        self.cpu_samples.append({'t': time.monotonic(), 'cpu': cpu,
                                 'robot': self.quota.throttling() if self.quota else {}})

    def _cpu_by_phase(self) -> List[dict]:
        """
        Per phase (between consecutive samples).

        Each process's CPU share (1.0 = one core) and the share of the robot's quota periods that
        ran out.
        """
        phases = []
        for (a, b), phase in zip(zip(self.cpu_samples, self.cpu_samples[1:]), self._phases()):
            span = b['t'] - a['t']
            share = {label: round((cpu - a['cpu'][label][1]) / span, 4)
                     for label, (pid, cpu) in b['cpu'].items()
                     if label in a['cpu'] and a['cpu'][label][0] == pid}
            entry = {'phase': phase['name'], 'span_s': round(span, 2), 'share': share}
            periods = b['robot'].get('periods', 0) - a['robot'].get('periods', 0)
            if periods > 0:
                entry['robot_throttled_share'] = round(
                    (b['robot']['throttled_periods'] - a['robot']['throttled_periods'])
                    / periods, 4)
                entry['robot_throttled_s'] = round(
                    b['robot']['throttled_s'] - a['robot']['throttled_s'], 3)
            phases.append(entry)
        return phases

    # -- analysis --------------------------------------------------------------------------
    def _phases(self) -> List[dict]:
        return schedule_phases(self.spec)

    def _analyse(self, t0: float) -> dict:
        deadline = float(self.spec.get('robot', {}).get('params', {}).get('deadline_s', 0.25))
        phases = self._phases()
        summary = analysis.summarise(self.records, self.received, deadline, t0, phases)
        summary.update({'scenario': self.spec['name'], 'policy': self.policy,
                        'events': self.events,
                        'machine': {'cpus': os.cpu_count(), 'robot_cores': self.robot_cores,
                                    'edge_cores': {w['name']: self._worker_core(w)
                                                   for w in self.spec['workers']},
                                    'worker_cpu_fraction': {
                                        w['name']: w.get('cpu_fraction')
                                        for w in self.spec['workers']},
                                    'robot_cpu_fraction': self.robot_fraction}})
        summary['cpu_by_phase'] = self._cpu_by_phase()
        summary['checks'] = check(self.spec, summary, self.records, t0) \
            if self.policy == 'model' else {}
        if self.param_errors:
            summary['checks']['parameters_set'] = {'ok': False, 'errors': self.param_errors}
        summary['passed'] = all(c['ok'] for c in summary['checks'].values())
        analysis.write_json(self.out / 'summary.json', summary)
        (self.out / 'records.jsonl').write_text(
            ''.join(r.to_json() + '\n' for r in self.records))
        analysis.plot_timeline(self.records, self.out / 'timeline.png', t0, deadline, phases,
                               f'{self.spec["name"]} ({self.policy})')
        return summary


def schedule_phases(spec: dict) -> List[dict]:
    """Return the run's phases: from the start, then from each scheduled change."""
    steps = sorted(spec.get('schedule', []), key=lambda s: s['at_s'])
    bounds = [0.0] + [s['at_s'] for s in steps] + [float(spec['duration_s'])]
    names = ['start'] + [' '.join(f'{k}={v}' for k, v in s.items() if k != 'at_s')
                         for s in steps]
    return [{'name': n, 'start_s': a, 'end_s': b, 'shade': i % 2 == 1}
            for i, (n, a, b) in enumerate(zip(names, bounds, bounds[1:]))]


def _majority(records: List[DecisionRecord], t0: float, start: float, end: float):
    inside = [r.planned_target for r in records
              if start <= r.finished_at_s - t0 < end]
    if not inside:
        return None, 0.0
    best = max(set(inside), key=inside.count)
    return best, inside.count(best) / len(inside)


def check(spec: dict, summary: dict, records: List[DecisionRecord],
          t0: float) -> Dict[str, dict]:
    """Return the scenario's assertions, each with the measured value."""
    expect = spec.get('expect', {})
    checks = {'frames_without_outcome': {'ok': summary['frames_without_outcome'] == 0
                                         and summary['frames'] > 0,
                                         'value': summary['frames_without_outcome'],
                                         'frames': summary['frames']}}
    for i, phase in enumerate(expect.get('phases', [])):
        target, share = _majority(records, t0, phase['from_s'], phase['to_s'])
        allowed = phase['target'] if isinstance(phase['target'], list) else [phase['target']]
        checks[f'phase_{i}_{phase["from_s"]}-{phase["to_s"]}s'] = {
            'ok': target in allowed and share >= phase.get('min_share', 0.8),
            'expected': phase['target'], 'majority': target, 'share': round(share, 3)}
    within = expect.get('switch_within_s')
    for i, switch in enumerate(expect.get('switches', [])):
        # Timed when the decision changed (decided_at_s), so the wait for the next camera
        # frame is not counted.
        after = sorted((r for r in records
                        if r.decided_at_s - t0 >= switch['at_s'] - 0.05
                        and r.planned_target in (
                            switch['to'] if isinstance(switch['to'], list)
                            else [switch['to']])), key=lambda r: r.seq)
        delay = max(0.0, after[0].decided_at_s - t0 - switch['at_s']) \
            if after else None
        checks[f'switch_{i}_at_{switch["at_s"]}s_to_{switch["to"]}'] = {
            'ok': delay is not None and delay <= switch.get('within_s', within),
            'delay_s': None if delay is None else round(delay, 3),
            'limit_s': switch.get('within_s', within)}
    if 'crossover' in expect:
        checks.update(check_crossover(spec, expect['crossover'], records, t0))
    limit = expect.get('max_switches_per_step')
    if limit is not None:
        worst = 0
        for phase in summary['phases']:
            n = sum(1 for s in summary['switches']
                    if phase['start_s'] <= s['t_s'] < phase['end_s'])
            worst = max(worst, n)
        checks['max_switches_per_step'] = {'ok': worst <= limit, 'value': worst,
                                           'limit': limit}
    return checks


def rate_phases(spec: dict) -> List[dict]:
    """Return the camera rate in force in each schedule phase."""
    steps = sorted(spec.get('schedule', []), key=lambda s: s['at_s'])
    rate = float(spec.get('camera', {}).get('rate_hz', 0.0))
    phases = []
    for step, phase in zip([{}] + steps, schedule_phases(spec)):
        rate = float(step.get('rate_hz', rate))
        phases.append({'start_s': phase['start_s'], 'end_s': phase['end_s'], 'rate_hz': rate})
    return phases


def predicted_crossover(records: List[DecisionRecord], worker: str, low: float,
                        high: float) -> Optional[dict]:
    """
    Return the rate crossover for the last estimates of `worker`.

    Where `offload_plan crossover --vary rate_hz` puts the trade-off for the estimates of the
    last record that has them for `worker`.
    """
    from offload_ros.core import crossover as crossover_mod
    from offload_ros.core.scenario import ScenarioError as PlanError, scenario_from_estimates
    for record in reversed(records):
        estimates = record.estimates
        if estimates is None or worker not in estimates.networks:
            continue
        try:
            plan = scenario_from_estimates(estimates, worker)
            found = crossover_mod.crossovers(plan, 'rate_hz', low, high, worker)
        except PlanError:
            continue
        seen = estimates.to_dict()
        return {'seq': record.seq, 'crossovers': found,
                'estimates': {k: seen[k] for k in ('device', 'arrival_scv')}
                | {'network': seen['networks'][worker],
                   'worker': next(w for w in seen['workers'] if w['name'] == worker)}}
    return None


def check_crossover(spec: dict, expect: dict, records: List[DecisionRecord],
                    t0: float) -> Dict[str, dict]:
    """
    Rising frame rate moves the choice as offload_plan crossover predicts.

    The crossover is computed from the online estimates at the end of the first (lowest-rate)
    phase, before the rate rises, and every later phase clear of it by `margin` must choose its
    side.
    """
    phases = rate_phases(spec)
    worker, margin = expect['worker'], float(expect.get('margin', 0.15))
    low, high = expect.get('range', [0.1, 20.0])
    first = phases[0]
    before = [r for r in records
              if first['start_s'] <= r.finished_at_s - t0 < first['end_s']]
    found = predicted_crossover(before, worker, low, high)
    checks = {'crossover_predicted': {
        'ok': bool(found and len(found['crossovers']) == 1),
        'crossovers': found and found['crossovers'], 'estimates': found and found['estimates']}}
    if not checks['crossover_predicted']['ok']:
        return checks
    x = found['crossovers'][0]['value']
    above = found['crossovers'][0]['faster_above']
    below = 'local' if above != 'local' else worker
    for i, phase in enumerate(phases):
        rate = phase['rate_hz']
        if abs(rate - x) < margin * x:
            continue
        expected = above if rate > x else below
        settle = float(expect.get('settle_s', 3.0))
        target, share = _majority(records, t0, phase['start_s'] + settle, phase['end_s'])
        in_phase = [r for r in records
                    if phase['start_s'] <= r.finished_at_s - t0 < phase['end_s']]
        own = predicted_crossover(in_phase, worker, low, high)
        checks[f'rate_{i}_{rate:g}Hz'] = {
            'ok': target == expected and share >= expect.get('min_share', 0.8),
            'crossover_hz': round(x, 3), 'expected': expected, 'majority': target,
            'share': round(share, 3),
            'crossover_from_this_phase_hz': [round(c['value'], 3)
                                             for c in own['crossovers']] if own else None}
    return checks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='offload_scenario',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('scenario')
    parser.add_argument('--policy', choices=POLICIES, default='model')
    parser.add_argument('--out', help='default scenario_out/NAME/POLICY')
    args = parser.parse_args(argv)
    try:
        check_capabilities()
        spec = load_spec(pathlib.Path(args.scenario))
    except ScenarioUnavailable as e:
        print(f'offload_scenario: cannot run here: {e}', file=sys.stderr)
        return 77
    except ScenarioError as e:
        print(f'offload_scenario: {e}', file=sys.stderr)
        return 2
    out = pathlib.Path(args.out or f'scenario_out/{spec["name"]}/{args.policy}')
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    summary = Run(spec, args.policy, out).execute()
    print(analysis.table(summary))
    for name, result in summary['checks'].items():
        print(f"  {'PASS' if result['ok'] else 'FAIL'} {name}: "
              f"{ {k: v for k, v in result.items() if k != 'ok'} }")
    print(f'wrote {out}/summary.json, timeline.png, run.bag')
    return 0 if summary['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
