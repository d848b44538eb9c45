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

"""The endurance bench's descriptor reading: kinds and TCP states of a real process's fds."""
import os
import socket
import subprocess
import sys
import time

import pytest

from offload_ros.scenarios import descriptors


def counts(pid=None):
    d = descriptors.descriptors(pid or os.getpid())
    return d['kinds'], d['tcp_states'], d['total']


def test_kinds_and_states_of_open_descriptors(tmp_path):
    kinds0, states0, total0 = counts()
    before = descriptors.descriptors(os.getpid())
    server = socket.create_server(('127.0.0.1', 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    read_end, write_end = os.pipe()
    handle = open(tmp_path / 'f', 'w')
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        kinds, states, total = counts()
        delta = {k: kinds.get(k, 0) - kinds0.get(k, 0) for k in set(kinds) | set(kinds0)}
        assert delta['listen'] == 1
        assert delta['tcp'] == 2                      # both ends live in this process
        assert states['ESTABLISHED'] - states0.get('ESTABLISHED', 0) == 2
        assert delta['pipe'] == 2 and delta['file'] == 1 and delta['socket'] == 1
        assert total - total0 == 7
        # The peer closes: the end we keep sits in CLOSE_WAIT, the leak signature.
        accepted.close()
        for _ in range(100):
            if counts()[1].get('CLOSE_WAIT', 0) > states0.get('CLOSE_WAIT', 0):
                break
            time.sleep(0.01)
        kinds, states, _ = counts()
        assert states.get('CLOSE_WAIT', 0) - states0.get('CLOSE_WAIT', 0) == 1
        sample = descriptors.descriptors(os.getpid())
        assert len(sample['close_wait']) - len(before['close_wait']) == 1
        judged = descriptors.growth([sample, descriptors.descriptors(os.getpid())], 100)
        assert judged['leak'] and judged['close_wait_kept'] >= 1
    finally:
        for s in (server, client, accepted, udp, handle):
            s.close()
        os.close(read_end)
        os.close(write_end)


def test_a_gone_process_has_no_descriptors():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    assert descriptors.descriptors(proc.pid) is None


def sample(fixed, tcp, close_wait=()):
    states = {'ESTABLISHED': tcp - len(close_wait), 'CLOSE_WAIT': len(close_wait)}
    return {'total': fixed + tcp, 'kinds': {'file': fixed, 'tcp': tcp}, 'tcp_states': states,
            'close_wait': list(close_wait)}


def test_growth_tells_a_pool_from_a_leak():
    # The soak's offload node: one more pooled connection after a restart, within its pool.
    pool = descriptors.growth([sample(26, 1), sample(26, 2), sample(26, 2)], tcp_bound=6)
    assert not pool['leak'] and pool['fixed_growth'] == 0 and pool['tcp_max'] == 2
    assert descriptors.growth([sample(26, 1), sample(27, 1)], 6)['leak']        # a file
    assert descriptors.growth([sample(26, 1), sample(26, 7), sample(26, 1)], 6)['leak']
    # A connection caught between a worker's death and the next poll is no leak; the same
    # socket half-closed in two samples is.
    assert not descriptors.growth([sample(26, 1), sample(26, 1, [7]), sample(26, 1)], 6)['leak']
    assert not descriptors.growth([sample(26, 1, [7]), sample(26, 1, [8])], 6)['leak']
    assert descriptors.growth([sample(26, 2), sample(26, 2, [7]), sample(26, 2, [7])], 6)['leak']
    with pytest.raises(ValueError):
        descriptors.growth([], 6)
