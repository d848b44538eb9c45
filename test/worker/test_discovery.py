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
Worker discovery: DNS-SD records (python-zeroconf) and DNS names with several addresses.

The unit tests resolve names with a FAKE resolver (named so) where a real one would need a DNS
server with several A records; the network-namespace test runs real workers announcing on
their links, a real browser in the robot's namespace, and /etc/hosts with several addresses.
"""
import json
import pathlib
import subprocess
import sys
import time

import pytest

from offload_ros.graph.procs import WorkerProcess
from offload_ros.scenarios.netns import ScenarioUnavailable, Topology, check_capabilities
from offload_ros.worker import discovery


def test_service_types_and_names():
    assert discovery.service_type('_kserve._tcp') == '_kserve._tcp.local.'
    assert discovery.service_type('_kserve._tcp.local.') == '_kserve._tcp.local.'
    for bad in ('kserve', '_kserve', '_kserve._sctp', '_a_very_long_service_name._tcp', ''):
        with pytest.raises(ValueError, match='RFC 6763'):
            discovery.service_type(bad)
    t = '_kserve._tcp.local.'
    assert discovery.worker_name(f'edge 1.{t}', t) == 'edge-1'
    assert discovery.worker_name(f'a/split@3.{t}', t) == 'a-split-3'
    assert discovery.worker_name(f'local.{t}', t) == 'local-worker'   # not the robot


def fake_resolver(table):
    """FAKE getaddrinfo: host -> addresses, as a DNS server with several A records would."""
    def resolve(host, port, family, kind):
        if host not in table:
            raise OSError(f'{host}: not found')
        return [(family, kind, 6, '', (a, port)) for a in table[host]]
    return resolve


def test_a_name_with_several_addresses_is_one_worker_per_address():
    resolve = fake_resolver({'workers.pool': ['10.0.0.6', '10.0.0.5'],
                             'one.pool': ['10.0.0.9']})
    expanded = discovery.expand({'pool': 'http://workers.pool:8000/',
                                 'single': 'http://one.pool:8000',
                                 'tls': 'https://workers.pool:8443',
                                 'ip': 'http://10.1.2.3:8000',
                                 'gone': 'http://nowhere.pool:8000'}, resolve)
    assert expanded == {'pool-10-0-0-5': 'http://10.0.0.5:8000/',
                        'pool-10-0-0-6': 'http://10.0.0.6:8000/',
                        'single': 'http://one.pool:8000',
                        'tls': 'https://workers.pool:8443',   # its certificate names the host
                        'ip': 'http://10.1.2.3:8000',
                        'gone': 'http://nowhere.pool:8000'}
    directory = discovery.Directory({'pool': 'http://workers.pool:8000'}, resolve=resolve)
    assert sorted(directory.current()) == ['pool-10-0-0-5', 'pool-10-0-0-6']
    assert directory.dynamic     # names to re-resolve: the node refreshes each epoch
    directory.set_static({'pool': 'http://one.pool:8000'})
    assert directory.current() == {'pool': 'http://one.pool:8000'}
    directory.set_static({'edge1': 'http://10.0.0.7:8000'})
    assert not directory.dynamic   # addresses only, no browser: nothing to refresh
    directory.close()


def test_the_node_refuses_a_malformed_discover_parameter():
    from offload_ros.nodes.offload_params import SPECS, OffloadConfig
    values = {spec.name: spec.default for spec in SPECS}
    with pytest.raises(ValueError, match='^discover: '):
        OffloadConfig({**values, 'discover': 'kserve'})
    assert OffloadConfig({**values, 'discover': '_kserve._tcp'})['discover'] == '_kserve._tcp'


BROWSE = '''
import json, sys, time
from offload_ros.worker import discovery
browser = discovery.Browser('_kserve._tcp', 'yolov3_tiny')
for wanted in json.loads(sys.argv[1]):
    end = time.monotonic() + 20
    while time.monotonic() < end and sorted(browser.workers()) != wanted:
        time.sleep(0.05)
    print(json.dumps(browser.workers()), flush=True)
    sys.stdin.readline()
print(json.dumps(discovery.expand({'pool': 'http://workers.pool:8000'})), flush=True)
browser.close()
'''


@pytest.mark.scenario
def test_workers_announced_in_their_namespaces_are_found_and_dropped_on_sigterm():
    try:
        check_capabilities()
    except ScenarioUnavailable as e:
        pytest.skip(f'network namespaces unavailable: {e}')
    topology, workers = Topology(), {}
    hosts = pathlib.Path('/etc/netns') / topology.robot_ns / 'hosts'
    robot = None
    try:
        topology.build(['edge1', 'edge2'])
        hosts.parent.mkdir(parents=True, exist_ok=True)
        hosts.write_text('127.0.0.1 localhost\n' + ''.join(
            f'{link.edge_ip} workers.pool\n' for link in topology.links.values()))
        for name, link in topology.links.items():
            workers[name] = WorkerProcess(
                '--host', link.edge_ip, '--port', '8000', '--threads', '1',
                '--announce', '_kserve._tcp', '--announce-name', name,
                prefix=['ip', 'netns', 'exec', link.edge_ns])
        robot = subprocess.Popen(
            ['ip', 'netns', 'exec', topology.robot_ns, sys.executable, '-c', BROWSE,
             json.dumps([['edge1', 'edge2'], ['edge1']])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        found = json.loads(robot.stdout.readline())
        assert found == {name: f'http://{link.edge_ip}:8000'
                         for name, link in topology.links.items()}
        stopped_at = time.monotonic()
        assert workers['edge2'].stop() == 0       # SIGTERM: withdraw, then drain
        robot.stdin.write('\n')
        robot.stdin.flush()
        left = json.loads(robot.stdout.readline())
        assert left == {'edge1': f'http://{topology.links["edge1"].edge_ip}:8000'}
        assert time.monotonic() - stopped_at < 10.0
        assert 'announced as edge2._kserve._tcp.local.' in workers['edge2'].output
        robot.stdin.write('\n')
        robot.stdin.flush()
        pool = json.loads(robot.stdout.readline())   # /etc/hosts: two addresses, two workers
        assert sorted(pool.values()) == sorted(f'http://{link.edge_ip}:8000'
                                               for link in topology.links.values())
        assert robot.wait(10) == 0
    finally:
        if robot is not None:
            if robot.poll() is None:
                robot.kill()
                robot.wait()
            robot.stdin.close()
            robot.stdout.close()
        for worker in workers.values():
            worker.stop()
        topology.destroy()
        if hosts.exists():
            hosts.unlink()
            hosts.parent.rmdir()


def test_the_node_and_the_worker_start_without_zeroconf():
    # A robot without python-zeroconf that does not discover must still run.
    code = ('import sys; sys.modules["zeroconf"] = None; sys.modules["ifaddr"] = None\n'
            'import offload_ros.nodes.offload_node, offload_ros.worker.server\n'
            'from offload_ros.worker import discovery\n'
            'print(discovery.expand({"a": "http://127.0.0.1:8000"}))\n'
            'try:\n'
            '    discovery.Browser("_kserve._tcp")\n'
            'except RuntimeError as e:\n'
            '    print(e)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "{'a': 'http://127.0.0.1:8000'}" in out.stdout
    assert 'worker discovery needs python-zeroconf' in out.stdout
