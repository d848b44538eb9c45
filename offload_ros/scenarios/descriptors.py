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
What a process's open descriptors are, for the endurance bench: a leak is told from a pool.

A count of descriptors alone cannot tell a leak from a connection pool that grew by one when
requests overlapped (the soak's offload node: 27 -> 28 after a worker restart, one more
pooled connection). So descriptors are read by kind from /proc/<pid>/fd, and TCP sockets by
state from the process's own /proc/<pid>/net/tcp[6] (its network namespace: psutil's
per-process connections read the caller's namespace, and the robot runs in another one).

A process leaks when its other descriptors (files, pipes, listening and non-TCP sockets,
event fds) grow, when its TCP connections exceed what its pools allow, or when a connection
stays in CLOSE_WAIT from one sample to the next (the peer closed it and we kept it; one
caught in the moment between a worker's death and the next poll is no leak).
"""
import collections
import os
from typing import Dict, List, Optional

# /proc/net/tcp 'st' column (include/net/tcp_states.h)
TCP_STATES = {'01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1',
              '05': 'FIN_WAIT2', '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT',
              '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING'}


def tcp_socket_states(pid: int) -> Dict[int, str]:
    """Socket inode -> TCP state, for every TCP socket in `pid`'s network namespace."""
    states = {}
    for table in ('tcp', 'tcp6'):
        try:
            with open(f'/proc/{pid}/net/{table}') as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            states[int(fields[9])] = TCP_STATES.get(fields[3], fields[3])
    return states


def descriptors(pid: int) -> Optional[dict]:
    """
    Return a live process's descriptors by kind.

    {'total', 'kinds': {kind: n}, 'tcp_states': {state: n}, 'close_wait': [inode]} of a live
    process (None once it is gone). Kinds: 'tcp' (a TCP connection), 'listen', 'socket' (UDP,
    Unix, netlink), 'pipe', 'anon' (eventfd, epoll, timerfd), 'file'.
    """
    try:
        names = os.listdir(f'/proc/{pid}/fd')
    except OSError:
        return None
    tcp = tcp_socket_states(pid)
    kinds, states = collections.Counter(), collections.Counter()
    close_wait = []
    for name in names:
        try:
            target = os.readlink(f'/proc/{pid}/fd/{name}')
        except OSError:
            continue                      # closed while we looked
        if target.startswith('socket:['):
            state = tcp.get(int(target[8:-1]))
            if state is None:
                kinds['socket'] += 1
            elif state == 'LISTEN':
                kinds['listen'] += 1
            else:
                kinds['tcp'] += 1
                states[state] += 1
                if state == 'CLOSE_WAIT':
                    close_wait.append(int(target[8:-1]))
        elif target.startswith('pipe:['):
            kinds['pipe'] += 1
        elif target.startswith('anon_inode:'):
            kinds['anon'] += 1
        else:
            kinds['file'] += 1
    return {'total': sum(kinds.values()), 'kinds': dict(kinds), 'tcp_states': dict(states),
            'close_wait': sorted(close_wait)}


def fixed(sample: dict) -> int:
    """Descriptors that a process holding steady keeps constant: all but TCP connections."""
    return sample['total'] - sample['kinds'].get('tcp', 0)


def growth(series: List[dict], tcp_bound: int) -> dict:
    """
    Judge a process's descriptor samples (first = settled start, last = end).

    Its fixed descriptors must not grow, its TCP connections stay within `tcp_bound`, and no
    connection may be in CLOSE_WAIT in two consecutive samples.
    """
    if not series:
        raise ValueError('growth needs at least one sample')
    tcp = [s['kinds'].get('tcp', 0) for s in series]
    kept = sorted({inode for a, b in zip(series, series[1:])
                   for inode in set(a['close_wait']) & set(b['close_wait'])})
    first, end = fixed(series[0]), fixed(series[-1])
    return {'fixed_start': first, 'fixed_end': end, 'fixed_growth': end - first,
            'tcp_max': max(tcp), 'tcp_end': tcp[-1], 'tcp_bound': tcp_bound,
            'close_wait_max': max(len(s['close_wait']) for s in series),
            'close_wait_kept': len(kept),
            'leak': end > first or max(tcp) > tcp_bound or bool(kept)}
