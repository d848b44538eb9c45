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
Network namespaces, veth pairs, tbf shaping and a CPU quota, with cleanup on every path.

Only addresses inside the namespaces created here are used (10.x.k.0/30 per robot-edge link).
"""
import math
import os
import pathlib
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional


class ScenarioUnavailable(RuntimeError):
    """This machine cannot run scenarios (not root, no ip/tc, no netns); says why."""


def check_capabilities() -> None:
    if os.geteuid() != 0:
        raise ScenarioUnavailable('network scenarios need root (ip netns, tc)')
    for tool in ('ip', 'tc', 'taskset'):
        if shutil.which(tool) is None:
            raise ScenarioUnavailable(f'{tool} is not installed (iproute2 / util-linux)')
    probe = f'ofr_probe_{os.getpid()}'
    if subprocess.run(['ip', 'netns', 'add', probe], capture_output=True).returncode != 0:
        raise ScenarioUnavailable('cannot create network namespaces here')
    subprocess.run(['ip', 'netns', 'del', probe], capture_output=True)


def _run(*cmd: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)}: {result.stderr.strip()}')


@dataclass
class Link:
    edge_ns: str
    robot_dev: str
    edge_dev: str
    robot_ip: str
    edge_ip: str
    rate_mbps: float = 0.0
    mtu_packets: bool = False   # GSO off (see Topology.shape)


RADIO_MBPS = 100.0   # links shaped at or below this carry one MTU per packet


@dataclass
class Topology:
    """A robot namespace and one edge namespace per worker, each joined by a veth pair."""

    tag: str = field(default_factory=lambda: f'{os.getpid() % 10000}{random.randint(10, 99)}')
    robot_ns: str = ''
    links: Dict[str, Link] = field(default_factory=dict)
    created: List[str] = field(default_factory=list)

    def __post_init__(self):
        self.robot_ns = f'ofr{self.tag}_robot'
        self._subnet = random.randint(64, 250)

    def build(self, workers: List[str]) -> None:
        _run('ip', 'netns', 'add', self.robot_ns)
        self.created.append(self.robot_ns)
        _run('ip', '-n', self.robot_ns, 'link', 'set', 'lo', 'up')
        for index, name in enumerate(workers, start=1):
            ns = f'ofr{self.tag}_{name}'
            _run('ip', 'netns', 'add', ns)
            self.created.append(ns)
            _run('ip', '-n', ns, 'link', 'set', 'lo', 'up')
            robot_dev, edge_dev = f'r{self.tag}e{index}'[:15], f'e{self.tag}r{index}'[:15]
            _run('ip', 'link', 'add', robot_dev, 'netns', self.robot_ns, 'type', 'veth',
                 'peer', 'name', edge_dev, 'netns', ns)
            base = f'10.{self._subnet}.{index}'
            _run('ip', '-n', self.robot_ns, 'addr', 'add', f'{base}.1/30', 'dev', robot_dev)
            _run('ip', '-n', ns, 'addr', 'add', f'{base}.2/30', 'dev', edge_dev)
            _run('ip', '-n', self.robot_ns, 'link', 'set', robot_dev, 'up')
            _run('ip', '-n', ns, 'link', 'set', edge_dev, 'up')
            self.links[name] = Link(ns, robot_dev, edge_dev, f'{base}.1', f'{base}.2')

    def shape(self, worker: str, rate_mbps: float, queue_ms: float = 300.0) -> None:
        """
        Token-bucket rate on both directions (netem is not available in this kernel).

        The default 300 ms queue limit models a buffered Wi-Fi link rather than tail-dropping
        at 50 ms; queueing experiments raise it so the link queues instead of dropping.
        """
        link = self.links[worker]
        if rate_mbps <= RADIO_MBPS and not link.mtu_packets:
            # One MTU per packet on a radio-rate link: a veth passes TCP's GSO packets (up to
            # 64 kB) to tbf whole when they fit its bucket, and once the rate is lowered (a
            # smaller bucket) a queued packet larger than the new bucket can never be sent:
            # the link wedged for good after a 20 -> 10 Mbit/s step under a raw upload
            # (CHANGELOG, session 6's fidelity matrix). A radio link carries MTU frames
            # anyway; a LAN-rate link keeps GSO, as a wired NIC with segmentation offload
            # would (per-packet work for 921 kB raw frames would land on the robot's core).
            for ns, dev in ((self.robot_ns, link.robot_dev), (link.edge_ns, link.edge_dev)):
                _run('ip', '-n', ns, 'link', 'set', 'dev', dev, 'gso_max_segs', '1')
            link.mtu_packets = True
        # A small bucket (~5 ms of traffic, at least two MTUs): a large one would let short
        # transfers (probes, the first frame after a step) through at line rate.
        burst = max(3_000, int(rate_mbps * 1e6 / 8 / 200))
        verb = 'change' if link.rate_mbps else 'add'
        for ns, dev in ((self.robot_ns, link.robot_dev), (link.edge_ns, link.edge_dev)):
            _run('tc', '-n', ns, 'qdisc', verb, 'dev', dev, 'root', 'tbf', 'rate',
                 f'{rate_mbps}mbit', 'burst', str(burst), 'latency', f'{queue_ms:g}ms')
        link.rate_mbps = rate_mbps

    def set_link(self, worker: str, up: bool) -> None:
        link = self.links[worker]
        _run('ip', '-n', self.robot_ns, 'link', 'set', link.robot_dev, 'up' if up else 'down')

    def exec_prefix(self, ns: str, cores: Optional[str] = None) -> List[str]:
        prefix = ['ip', 'netns', 'exec', ns]
        if cores is not None:
            prefix += ['taskset', '-c', cores]
        return prefix

    def destroy(self) -> None:
        for ns in reversed(self.created):
            subprocess.run(['ip', 'netns', 'del', ns], capture_output=True)
        self.created.clear()


class CpuQuota:
    """
    A cgroup (v1 cpu controller, or v2) limiting processes to a fraction of one core.

    The robot's weaker computer, emulated. Period 10 ms so the quota is smooth at frame scale.
    """

    def __init__(self, name: str, fraction: float):
        if not 0.05 <= fraction <= 1.0:
            raise ValueError(f'cpu fraction must be in [0.05, 1], got {fraction}')
        self.fraction = fraction
        v1 = pathlib.Path('/sys/fs/cgroup/cpu')
        v2 = pathlib.Path('/sys/fs/cgroup')
        # 10 ms periods keep the quota smooth at frame scale; the kernel refuses a quota under
        # 1 ms, so a share under a tenth of a core gets a longer period.
        period = max(10_000, math.ceil(1000 / fraction))
        if (v1 / 'cpu.cfs_quota_us').exists():
            self.path = v1 / name
            self.path.mkdir(exist_ok=True)
            (self.path / 'cpu.cfs_period_us').write_text(str(period))
            (self.path / 'cpu.cfs_quota_us').write_text(str(int(period * fraction)))
        elif (v2 / 'cgroup.controllers').exists() and 'cpu' in (
                v2 / 'cgroup.controllers').read_text():
            self.path = v2 / name
            self.path.mkdir(exist_ok=True)
            (self.path / 'cpu.max').write_text(f'{int(period * fraction)} {period}')
        else:
            raise ScenarioUnavailable('no writable cgroup cpu controller for the robot quota')

    def wrap(self, command: List[str]) -> List[str]:
        """Run command inside the cgroup (the shell joins it, then execs)."""
        procs = self.path / 'cgroup.procs'
        return ['sh', '-c', f'echo $$ > {procs} && exec "$@"', 'cpu-quota', *command]

    def throttling(self) -> Dict[str, float]:
        """
        CFS bandwidth statistics so far.

        Enforcement periods, those that ran out of quota, and the time the group was held back (v1:
        throttled_time ns; v2: throttled_usec).
        """
        try:
            pairs = [line.split() for line in (self.path / 'cpu.stat').read_text().splitlines()]
        except OSError:
            return {}
        stat = {k: int(v) for k, v in (p for p in pairs if len(p) == 2)}
        held = stat['throttled_time'] / 1e9 if 'throttled_time' in stat \
            else stat.get('throttled_usec', 0) / 1e6
        return {'periods': stat.get('nr_periods', 0),
                'throttled_periods': stat.get('nr_throttled', 0), 'throttled_s': held}

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass  # processes still inside: they are being stopped; the kernel reaps it later


def capable(prog: str) -> bool:
    """
    check_capabilities() for a command line.

    False, with the reason on stderr, where network scenarios cannot run (the caller exits 77, the
    "skipped" status).
    """
    try:
        check_capabilities()
    except ScenarioUnavailable as e:
        print(f'{prog}: cannot run here: {e}', file=sys.stderr)
        return False
    return True
