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
A real multi-robot run: N robots share M workers, each robot in its own network namespace.

Each robot is a camera and an offload node (robot.launch.xml's decision path; the tracker,
controller and deadline monitor do not change where frames run) on its own share of a core
and its own ROS domain, with a link to every worker shaped by tbf in both directions. Each
worker's namespace joins its robots' links on a bridge. An observer per robot records the
decision records. The summary has the fleet simulator's figures (robots, mean and p99 latency,
misses, switches per robot per minute) and the parameters measured from the run, which
`offload_ros.fleet` takes to predict the same run.
"""
import argparse
import json
import os
import pathlib
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from typing import Dict, List

import yaml

from offload_ros.core.records import DecisionRecord
from offload_ros.fleet import sim
from offload_ros.fleet.world import LinkSpec, ServiceProfile
from offload_ros.graph import launcher as launch
from offload_ros.graph.procs import WorkerProcess
from offload_ros.inference import models
from offload_ros.scenarios.harness import robot_cpu_fraction
from offload_ros.scenarios.netns import RADIO_MBPS, CpuQuota, _run, capable

PORT = 8000


class FleetNet:
    """Robot and worker namespaces; robot r reaches worker j on its own veth pair."""

    def __init__(self, robots: int, workers: List[str]):
        self.tag = f'{os.getpid() % 1000}{random.randint(10, 99)}'
        self.robots, self.workers = robots, workers
        self.subnet = random.randint(64, 250)
        self.created: List[str] = []
        self.devices: List[tuple] = []      # (ns, dev) of every link end, for shaping

    def robot_ns(self, r: int) -> str:
        return f'ofr{self.tag}_r{r}'

    def worker_ns(self, j: int) -> str:
        return f'ofr{self.tag}_{self.workers[j]}'

    def worker_ip(self, j: int) -> str:
        return f'10.{self.subnet}.{j + 1}.1'

    def build(self) -> None:
        for j in range(len(self.workers)):
            ns = self.worker_ns(j)
            _run('ip', 'netns', 'add', ns)
            self.created.append(ns)
            _run('ip', '-n', ns, 'link', 'set', 'lo', 'up')
            _run('ip', '-n', ns, 'link', 'add', 'br0', 'type', 'bridge')
            _run('ip', '-n', ns, 'addr', 'add', f'{self.worker_ip(j)}/24', 'dev', 'br0')
            _run('ip', '-n', ns, 'link', 'set', 'br0', 'up')
        for r in range(self.robots):
            ns = self.robot_ns(r)
            _run('ip', 'netns', 'add', ns)
            self.created.append(ns)
            _run('ip', '-n', ns, 'link', 'set', 'lo', 'up')
            for j in range(len(self.workers)):
                mine, theirs = f'r{self.tag}{r}e{j}'[:15], f'e{self.tag}{j}r{r}'[:15]
                _run('ip', 'link', 'add', mine, 'netns', ns, 'type', 'veth', 'peer', 'name',
                     theirs, 'netns', self.worker_ns(j))
                _run('ip', '-n', ns, 'addr', 'add', f'10.{self.subnet}.{j + 1}.{10 + r}/24',
                     'dev', mine)
                _run('ip', '-n', ns, 'link', 'set', mine, 'up')
                _run('ip', '-n', self.worker_ns(j), 'link', 'set', theirs, 'master', 'br0')
                _run('ip', '-n', self.worker_ns(j), 'link', 'set', theirs, 'up')
                self.devices += [(ns, mine), (self.worker_ns(j), theirs)]

    def shape(self, rate_mbps: float, queue_ms: float = 300.0) -> None:
        """Each robot's link to each worker: tbf both ways (as netns.Topology.shape)."""
        burst = max(3_000, int(rate_mbps * 1e6 / 8 / 200))
        for ns, dev in self.devices:
            if rate_mbps <= RADIO_MBPS:
                _run('ip', '-n', ns, 'link', 'set', 'dev', dev, 'gso_max_segs', '1')
            _run('tc', '-n', ns, 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate',
                 f'{rate_mbps}mbit', 'burst', str(burst), 'latency', f'{queue_ms:g}ms')

    def destroy(self) -> None:
        for ns in reversed(self.created):
            subprocess.run(['ip', 'netns', 'del', ns], capture_output=True)
        self.created.clear()


def summarise(records: Dict[int, List[DecisionRecord]], duration_s: float, deadline_s: float,
              warmup_s: float) -> dict:
    """Return the simulator's figures and the parameters measured from the records."""
    frames, switches = [], 0
    for robot, recs in records.items():
        recs = sorted(recs, key=lambda r: r.seq)
        if not recs:
            continue
        t0 = recs[0].finished_at_s
        kept = [r for r in recs if warmup_s <= r.finished_at_s - t0 < duration_s - 2.0]
        frames += kept
        switches += sum(1 for a, b in zip(kept, kept[1:]) if a.planned_target != b.planned_target)
    minutes = (duration_s - 2.0 - warmup_s) / 60.0
    local = [r for r in frames if r.target == 'local' and r.service_s]
    remote = [r for r in frames if r.target != 'local' and r.round_trip_s and r.server_s]
    by_worker: Dict[str, List[float]] = {}
    for r in remote:
        if r.service_s:
            by_worker.setdefault(r.target, []).append(r.service_s)
    request = [n.request_bytes for r in remote if r.estimates
               for n in r.estimates.networks.values()]

    def median(xs):
        return statistics.median(xs) if xs else None
    return {
        'robots': len(records),
        **sim.figures([(r.target, r.outcome, r.observed_latency_s) for r in frames],
                      deadline_s, switches, len(records), minutes),
        'measured': {
            'rates_hz': [len([r for r in recs if r.outcome]) / duration_s
                         for recs in records.values()],
            # Each camera's phase: its frame stamps on the one host clock, modulo its period.
            'camera_phases_s': phases(records),
            'local_service_s': median([r.service_s for r in local]),
            'worker_service_s': {w: statistics.fmean(v) for w, v in sorted(by_worker.items())},
            'worker_service_cv': {w: statistics.pstdev(v) / statistics.fmean(v)
                                  for w, v in sorted(by_worker.items()) if len(v) > 1},
            'request_bytes': median(request),
            'ingress_s': median([r.ingress_s for r in frames if r.ingress_s is not None]),
            # What the robot adds to a remote frame besides the request (handling, publish),
            # and inside the request besides the worker and the wire (encoding, HTTP).
            'remote_overhead_s': median([r.observed_latency_s - r.round_trip_s
                                         - (r.ingress_s or 0.0) for r in remote]),
            'local_overhead_s': median([r.observed_latency_s - r.service_s
                                        - (r.ingress_s or 0.0) for r in local]),
            'server_overhead_s': median([r.server_s - (r.server_queue_s or 0.0) - r.service_s
                                         for r in remote if r.service_s]),
            'round_trip_outside_server_s': median([r.round_trip_s - r.server_s
                                                   for r in remote]),
        }}


def node_config(deadline_s: float):
    """Return the offload node's configuration, as robot.yaml sets it."""
    from offload_ros.nodes.offload_params import SPECS, OffloadConfig
    params = yaml.safe_load((launch.package_share() / 'config/robot.yaml').read_text())
    values = {spec.name: spec.default for spec in SPECS}
    values.update({k: v for k, v in params['/**/offload']['ros__parameters'].items()
                   if k in values})
    values['deadline_s'] = deadline_s
    return OffloadConfig(values)


def simulated(summary: dict, seeds: int = 3) -> dict:
    """Run the fleet simulator on the run's measured parameters: its figures per seed."""
    m = summary['measured']
    config = node_config(summary['deadline_s'])
    names = [f'edge{j + 1}' for j in range(summary['workers'])]
    known = list(m['worker_service_s'].values())
    services = tuple(ServiceProfile(m['worker_service_s'].get(n, statistics.fmean(known)),
                                    m['worker_service_cv'].get(n, 0.1)) for n in names)
    link = LinkSpec(summary['bandwidth_mbps'] * 1e6, summary['bandwidth_mbps'] * 1e6, 0.0005)
    fleet = sim.FleetConfig(
        summary['robots'], services, config.planner(), config.dispatch(),
        detector=ServiceProfile(m['local_service_s'] or summary['detector_ms'] / 1e3, 0.1),
        link=link, request_bytes=int(m['request_bytes'] or 50_000),
        max_inflight=config['max_inflight'], probe_bytes=config['probe_bytes'],
        duration_s=summary['duration_s'], warmup_s=10.0,
        robot_rates_hz=tuple(m['rates_hz']), ingress_s=m['ingress_s'] or 0.0,
        camera_phases_s=tuple(m['camera_phases_s']) or None,
        remote_overhead_s=max(0.0, m['remote_overhead_s'] or 0.0),
        local_overhead_s=max(0.0, m['local_overhead_s'] or 0.0),
        server_overhead_s=max(0.0, m['server_overhead_s'] or 0.0),
        # The round trip besides the server and the wire: the robot's encoding and HTTP.
        request_overhead_s=max(0.0, (m['round_trip_outside_server_s'] or 0.0) - (
            (m['request_bytes'] or 50_000) + 600) * 8.0 / link.up_bps - link.rtt_s))
    runs = [sim.simulate(fleet, seed).metrics(10.0, summary['duration_s'] - 2.0)
            for seed in range(seeds)]
    mean = statistics.fmean(r['mean_latency_s'] for r in runs)
    return {'mean_latency_s': mean, 'per_seed': runs,
            'ratio_to_run': mean / summary['mean_latency_s']}


def phases(records: Dict[int, List[DecisionRecord]]) -> List[float]:
    """Each robot's camera phase (s) within its frame period, relative to the earliest."""
    starts = {}
    for robot, recs in records.items():
        stamps = sorted(r.stamp_ns for r in recs)
        if len(stamps) > 2:
            period = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
            starts[robot] = (stamps[len(stamps) // 2], period)
    if not starts:
        return []
    origin = min(s for s, _ in starts.values())
    return [((starts[r][0] - origin) % starts[r][1]) * 1e-9 if r in starts else 0.0
            for r in sorted(records)]


def run(robots: int, workers: int, duration_s: float, rate_hz: float, detector_ms: float,
        worker_fraction: float, bandwidth_mbps: float, deadline_s: float,
        out: pathlib.Path, log=print) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    names = [f'edge{j + 1}' for j in range(workers)]
    net = FleetNet(robots, names)
    bin_dir = pathlib.Path(sys.executable).parent
    share = launch.package_share()
    base_env = {**os.environ, 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
                'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
                'FASTDDS_DEFAULT_PROFILES_FILE': str(share / 'config/fastdds_profile.xml')}
    procs: List[subprocess.Popen] = []
    quotas: List[CpuQuota] = []
    worker_procs: List[WorkerProcess] = []
    records: Dict[int, List[DecisionRecord]] = {r: [] for r in range(robots)}
    received: Dict[int, int] = {r: 0 for r in range(robots)}   # the offload nodes' counts
    cameras: List[subprocess.Popen] = []
    pumps: List[threading.Thread] = []
    node_log = open(out / 'nodes.log', 'w')
    fraction = robot_cpu_fraction({'detector_ms': detector_ms})
    try:
        net.build()
        net.shape(bandwidth_mbps)
        for j in range(workers):
            quota = CpuQuota(f'ofr{net.tag}_{names[j]}', worker_fraction)
            quotas.append(quota)
            worker_procs.append(WorkerProcess(
                '--host', net.worker_ip(j), '--port', str(PORT), '--threads', '1',
                env=base_env, bin_dir=bin_dir,
                prefix=quota.wrap(['ip', 'netns', 'exec', net.worker_ns(j)])))
        params = yaml.safe_load((share / 'config/robot.yaml').read_text())
        params['/**']['ros__parameters']['deadline_s'] = deadline_s
        params['/**/camera']['ros__parameters'].update({'rate_hz': rate_hz})
        workers_arg = ','.join(f'{n}=http://{net.worker_ip(j)}:{PORT}'
                               for j, n in enumerate(names))
        for r in range(robots):
            env = {**base_env, 'ROS_DOMAIN_ID': str(150 + r)}
            # Its own identity at the workers (the host name is the same in every namespace).
            params['/**/offload']['ros__parameters']['client_id'] = f'robot{r}'
            params_file = out / f'params_robot{r}.yaml'
            params_file.write_text(yaml.safe_dump(params))
            quota = CpuQuota(f'ofr{net.tag}_r{r}', fraction)
            quotas.append(quota)
            nodes = [n for n in launch.plan(share / 'launch/robot.launch.xml', {
                'source': str(models.cache_dir() / 'media/vtest.avi'), 'workers': workers_arg,
                'params_file': str(params_file)}) if n.name in ('camera', 'offload')]
            for node in nodes:
                procs.append(subprocess.Popen(
                    quota.wrap(['ip', 'netns', 'exec', net.robot_ns(r)]
                               + node.command(bin_dir)),
                    env=env, stdout=node_log,
                    stderr=subprocess.STDOUT))
                if node.name == 'camera':
                    cameras.append(procs[-1])
            observer = subprocess.Popen(
                ['ip', 'netns', 'exec', net.robot_ns(r), str(bin_dir / 'python'), '-m',
                 'offload_ros.scenarios.observe'], env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            procs.append(observer)

            def pump(stream, robot):
                for line in stream:
                    item = json.loads(line)
                    if item.get('kind') == 'record':
                        records[robot].append(DecisionRecord.from_dict(item['record']))
                    elif item.get('kind') == 'received':
                        received[robot] = max(received[robot], item['n'])
            pumps.append(threading.Thread(target=pump, args=(observer.stdout, r), daemon=True))
            pumps[-1].start()
        log(f'{robots} robots ({fraction:.3f} of a core each), {workers} workers '
            f'({worker_fraction} of a core each), {bandwidth_mbps} Mbit/s links')
        started = time.monotonic()
        while not all(records.values()):     # every robot's first decision
            if time.monotonic() - started > 120.0:
                raise RuntimeError(f'no decision records within 120 s; see {out}/nodes.log')
            time.sleep(0.5)
        started = time.monotonic()
        while time.monotonic() - started < duration_s:
            time.sleep(min(10.0, duration_s - (time.monotonic() - started)))
            log(f'  {time.monotonic() - started:4.0f} s: records '
                f'{[len(v) for v in records.values()]}')
        for camera in cameras:   # stop the cameras; every frame received must end
            camera.send_signal(signal.SIGINT)
        time.sleep(5.0)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for thread in pumps:   # the observers' output read to its end
            thread.join(10)
        for p in procs:
            for stream in (p.stdin, p.stdout):
                if stream is not None:
                    stream.close()
        for w in worker_procs:
            w.stop(10)
        net.destroy()
        for q in quotas:
            q.remove()
        node_log.close()
    summary = summarise(records, duration_s, deadline_s, warmup_s=10.0)
    summary['frames_without_outcome'] = sum(max(0, received[r] - len(records[r]))
                                            for r in records)
    summary['received'] = sum(received.values())
    summary.update({'workers': workers, 'rate_hz': rate_hz, 'detector_ms': detector_ms,
                    'robot_cpu_fraction': fraction, 'worker_cpu_fraction': worker_fraction,
                    'bandwidth_mbps': bandwidth_mbps, 'deadline_s': deadline_s,
                    'duration_s': duration_s})
    with open(out / 'records.jsonl', 'w') as f:
        for r, recs in records.items():
            for record in recs:
                f.write(json.dumps({'robot': r, **record.to_dict()}) + '\n')
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--robots', type=int, default=4)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--duration-s', type=float, default=90.0)
    parser.add_argument('--rate-hz', type=float, default=2.0)
    parser.add_argument('--detector-ms', type=float, default=200.0)
    parser.add_argument('--worker-fraction', type=float, default=0.3)
    parser.add_argument('--bandwidth-mbps', type=float, default=20.0)
    parser.add_argument('--deadline-s', type=float, default=1.0)
    parser.add_argument('--out', default='scenario_out/multirobot')
    args = parser.parse_args(argv)
    if not capable('multirobot'):
        return 77
    summary = run(args.robots, args.workers, args.duration_s, args.rate_hz, args.detector_ms,
                  args.worker_fraction, args.bandwidth_mbps, args.deadline_s,
                  pathlib.Path(args.out))
    summary['simulator'] = simulated(summary)
    path = pathlib.Path(args.out) / 'summary.json'
    path.write_text(json.dumps(summary, indent=1) + '\n')
    print(json.dumps({k: v for k, v in summary.items() if k != 'measured'}, indent=1))
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
