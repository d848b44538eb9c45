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

"""Worker queue disciplines: the pure JobQueue, then the real gpu_worker serving in that order."""
import threading
import time

import cv2
import pytest
import requests

from offload_ros.worker import protocol
from offload_ros.worker.scheduling import JobQueue


def drain(queue):
    out = []
    while len(queue):
        out.append(queue.pop())
    return out


def test_fifo_keeps_arrival_order():
    q = JobQueue('fifo')
    for i, deadline in enumerate([3.0, 1.0, None, 2.0]):
        q.push(i, 'a', deadline)
    assert drain(q) == [0, 1, 2, 3] and q.pop() is None


def test_edf_serves_earliest_deadline_first_and_undated_last():
    q = JobQueue('edf')
    for i, deadline in enumerate([3.0, 1.0, None, 2.0, 1.0, None]):
        q.push(i, 'a', deadline)
    assert drain(q) == [1, 4, 3, 0, 2, 5]     # ties and undated jobs in arrival order


def test_fair_round_robin_between_backlogged_clients():
    q = JobQueue('fair')
    for i in range(6):
        q.push(f'flood{i}', 'flood')
    q.push('robot0', 'robot')
    q.push('robot1', 'robot')
    q.push('other0', 'other')
    assert drain(q) == ['flood0', 'robot0', 'other0', 'flood1', 'robot1', 'flood2',
                        'flood3', 'flood4', 'flood5']


def test_unknown_discipline_is_refused():
    with pytest.raises(ValueError, match='scheduling must be one of'):
        JobQueue('lifo')


def _post(url, body, n, deadline_s, client, done, name):
    headers = {protocol.HEADER_LENGTH: str(n), protocol.CLIENT_HEADER: client}
    if deadline_s is not None:
        headers[protocol.DEADLINE_HEADER] = str(deadline_s)
    response = requests.post(url + '/v2/models/yolov3_tiny/infer', data=body, headers=headers,
                             timeout=60)
    done.append((time.monotonic(), name, response.status_code))


def _served_order(worker, requests_to_send, media_dir):
    """Send (name, client, deadline_s, delay_before_s) requests; returns names by finish."""
    image = cv2.imread(str(media_dir / 'person.jpg'))
    body, n = protocol.encode({'outputs': [{'name': 'detections'}]},
                              [protocol.Tensor('images', 'UINT8', [1, *image.shape], image)],
                              'inputs')
    done, threads = [], []
    for name, client, deadline, delay in requests_to_send:
        time.sleep(delay)
        t = threading.Thread(target=_post, args=(worker.url, body, n, deadline, client, done,
                                                 name))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    assert all(code == 200 for _, _, code in done), done
    return [name for _, name, _ in sorted(done)]


# Enough queued work that some is still waiting when the late request comes (inference here
# takes 20-50 ms: 16 blockers outlast its 0.1 s delay).
BLOCKERS = [(f'b{i}', 'tenant', 30.0, 0.0) for i in range(16)]


@pytest.mark.parametrize('discipline', ['fifo', 'edf'])
def test_worker_edf_lets_a_tight_deadline_overtake(start_worker, media_dir, discipline):
    w = start_worker('--threads', '1', '--scheduling', discipline)
    order = _served_order(w, BLOCKERS + [('tight', 'robot', 5.0, 0.1)], media_dir)
    if discipline == 'edf':
        assert order.index('tight') < len(order) - 4, order    # overtook the queued ones
    else:
        assert order[-1] == 'tight', order


def test_worker_fair_share_serves_a_robot_behind_a_flood(start_worker, media_dir):
    w = start_worker('--threads', '1', '--scheduling', 'fair')
    order = _served_order(w, BLOCKERS + [('robot', 'robot', None, 0.1)], media_dir)
    # Round robin: behind at most the job in service and the flood's next turn.
    assert order.index('robot') < len(order) - 4, order
