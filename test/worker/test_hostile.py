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
Off the happy path: empty scenes, decompression bombs, hostile protocol bytes.

Greedy and forging tenants, slowloris, TLS, a worker that lies or drips (a FAKE worker: no real one
lies), and malformed camera messages, against the real worker, client and nodes.
"""
import concurrent.futures
import json
import socket
import statistics
import subprocess
import time
import urllib.parse

import cv2
import numpy as np
import psutil
import pytest
import requests
from geometry_msgs.msg import Twist
from hypothesis import HealthCheck, given, settings, strategies as st
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from conftest import WorkerProcess, venv_exe
from offload_ros.inference import models
from offload_ros.ros import conversions, qos, topics
from offload_ros.nodes.controller_node import ControllerNode
from offload_ros.nodes.offload_params import OffloadConfig, parse_workers
from offload_ros.nodes.tracker_node import TrackerNode
from offload_ros.scenarios import hostile
from offload_ros.worker import protocol
from offload_ros.worker.answers import load_from_report
from offload_ros.worker.client import (CircuitBreaker, MalformedAnswer, WorkerClient,
                                       WorkerUnavailable)
from rosutil import spinning, wait_until
from rosutil import Probe, header, offload_node

NAMES = models.default_names_path().read_text().splitlines()
INFER = '/v2/models/yolov3_tiny/infer'


@pytest.fixture(scope='module')
def worker():
    w = WorkerProcess('--threads', '1')
    yield w
    assert w.stop() == 0


def scenes(media_dir) -> dict:
    """
    Scenes with nobody in them.

    Grey, black, and a real photo of a dog, a bicycle and a truck (no person).
    """
    return {'grey': np.full((480, 640, 3), 128, np.uint8),
            'black': np.zeros((480, 640, 3), np.uint8),
            'no_people': cv2.resize(cv2.imread(str(media_dir / 'dog.jpg')), (640, 480))}


def post(url, body, headers=None, path=INFER, timeout=10):
    return requests.post(url + path, data=body, headers=headers or {}, timeout=timeout)


def infer_body(tensors, header=None):
    return protocol.encode({'outputs': [{'name': 'detections'}], **(header or {})}, tensors,
                           'inputs')


# -- the worker ------------------------------------------------------------------------------
@pytest.mark.parametrize('payload', ['jpeg', 'raw'])
def test_empty_scenes_are_answered_with_no_detections(worker, media_dir, payload):
    client = WorkerClient(worker.url, names=NAMES, payload=payload, client_id='empty')
    found = {name: client.infer(image, budget_s=5.0).detections
             for name, image in scenes(media_dir).items()}
    assert found['grey'] == [] and found['black'] == []
    assert found['no_people'] and 'person' not in {d.class_name for d in found['no_people']}
    assert client.breaker.failures == 0


def test_decompression_bombs_are_refused_from_their_header(worker):
    rss_before = psutil.Process(worker.proc.pid).memory_info().rss
    for name, data in hostile.all_bombs().items():
        body, n = infer_body([protocol.Tensor('image_jpeg', 'BYTES', [1], [data])])
        start = time.monotonic()
        r = post(worker.url, body, {protocol.HEADER_LENGTH: str(n)})
        assert r.status_code in (400, 415) and time.monotonic() - start < 1.0, (name, r.text)
        assert ('max_' in r.json()['error']) != ('accepted' in r.json()['error']), name
    # A raw tensor declaring more pixels than the limit: refused before it is read.
    big = protocol.Tensor('images', 'UINT8', [1, 4000, 4000, 3], np.zeros(1, np.uint8))
    body, n = protocol.encode({}, [big], 'inputs')
    assert post(worker.url, body, {protocol.HEADER_LENGTH: str(n)}).status_code == 400
    grown = psutil.Process(worker.proc.pid).memory_info().rss - rss_before
    assert grown < 50e6, grown
    ok = WorkerClient(worker.url, names=NAMES).infer(np.zeros((48, 64, 3), np.uint8))
    assert ok.detections == []


def _raw_http(url: str, data: bytes, timeout_s: float = 5.0) -> str:
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as s:
        s.settimeout(timeout_s)
        s.sendall(data)
        return s.recv(65536).decode('latin-1')


def _whole(head: bytes) -> tuple:
    return head, len(head)


@pytest.mark.parametrize('name,make', [
    ('deep_json', lambda: _whole(b'[' * 100000 + b']' * 100000)),
    ('deep_json_small', lambda: _whole(b'{"a":' * 5000 + b'1' + b'}' * 5000)),
    ('shape_overflow', lambda: _whole(json.dumps({'inputs': [{
        'name': 'images', 'datatype': 'UINT8', 'shape': [2 ** 62, 2 ** 62, 16],
        'parameters': {'binary_data_size': 0}}]}).encode())),
    ('outputs_number', lambda: infer_body(
        [protocol.Tensor('images', 'UINT8', [1, 8, 8, 3], np.zeros((1, 8, 8, 3), np.uint8))],
        {'outputs': 7})),
    ('outputs_repeated', lambda: infer_body(
        [protocol.Tensor('images', 'UINT8', [1, 8, 8, 3], np.zeros((1, 8, 8, 3), np.uint8))],
        {'outputs': [{'name': 'detections'}] * 3})),
    ('million_bytes_elements', lambda: protocol.encode({}, [protocol.Tensor(
        'image_jpeg', 'BYTES', [1_000_000], [b''] * 1_000_000)], 'inputs')),
    ('parameters_list', lambda: infer_body(
        [protocol.Tensor('images', 'UINT8', [1, 8, 8, 3], np.zeros((1, 8, 8, 3), np.uint8))],
        {'parameters': [1]})),
    ('rank_40', lambda: _whole(json.dumps({'inputs': [{
        'name': 'x', 'datatype': 'FP32', 'shape': [1] * 40,
        'parameters': {'binary_data_size': 0}}]}).encode())),
])
def test_hostile_requests_get_a_4xx_with_a_reason(worker, name, make):
    body, n = make()
    r = post(worker.url, body, {protocol.HEADER_LENGTH: str(n)})
    assert 400 <= r.status_code < 500 and r.json()['error'], (name, r.status_code, r.text)


def test_http_layer_errors_and_cancel_abuse_are_json_4xx(worker):
    line = _raw_http(worker.url, b'GARBAGE / HTTP/1.1\r\n\r\n')
    assert line.startswith('HTTP/1.') and ' 400 ' in line and '"error"' in line
    long_header = b'GET /v2 HTTP/1.1\r\nHost: x\r\nX-Long: ' + b'a' * 20000 + b'\r\n\r\n'
    reply = _raw_http(worker.url, long_header)
    assert reply.split(' ')[1].startswith('4') and '"error"' in reply
    # /cancel: an over-cap body is refused before it is sent; a charset nobody knows is 400.
    started = time.monotonic()
    reply = _raw_http(worker.url, b'POST /v2/offload/cancel HTTP/1.1\r\nHost: x\r\n'
                      b'Content-Length: 999999999\r\n\r\n')
    assert reply.startswith('HTTP/1.1 413') and time.monotonic() - started < 1.0
    r = requests.post(worker.url + '/v2/offload/cancel', data=b'{"id": "x"}',
                      headers={'Content-Type': 'application/json; charset=klingon'})
    assert r.status_code == 200 and r.json()['cancelled'] is False   # bytes read as JSON
    for body in (b'\xff\xfe\x00', b'[]', b'{"id": 5}', b'{"id": ""}'):
        r = requests.post(worker.url + '/v2/offload/cancel', data=body)
        assert r.status_code == 400 and r.json()['error'], body


def test_cancel_bodies_are_read_within_the_time_limit(start_worker):
    w = start_worker('--threads', '1', '--read-timeout-s', '0.5')
    started = time.monotonic()
    reply = _raw_http(w.url, b'POST /v2/offload/cancel HTTP/1.1\r\nHost: x\r\n'
                      b'Content-Length: 100\r\n\r\n{"id"')
    assert reply.startswith('HTTP/1.1 408') and time.monotonic() - started < 3.0


def _tokens_file(tmp_path, **tokens):
    path = tmp_path / 'tokens.yaml'
    path.write_text(''.join(f'{name}: {token}\n' for name, token in tokens.items()))
    return str(path)


def test_per_client_tokens_give_identity_and_cancel_only_ones_own(start_worker, tmp_path,
                                                                  person_image):
    w = start_worker('--threads', '1', '--tokens-file',
                     _tokens_file(tmp_path, robot='robot-secret', intruder='intruder-secret'))
    robot = WorkerClient(w.url, names=NAMES, token='robot-secret', pool_size=24,
                         client_id='robot', serial_uploads=False)
    # The intruder claims to be the robot: the header is not trusted, its token is.
    forged = requests.Session()
    forged.headers.update({'Authorization': 'Bearer intruder-secret',
                           protocol.CLIENT_HEADER: 'robot'})
    # 16 requests, ~25 ms each here: the last few stay queued for a few hundred ms, through
    # the intruder's attempts on them and the owner's.
    ids = [f'req-{i}' for i in range(16)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(robot.infer, person_image, 10.0, None, i) for i in ids]
        assert wait_until(lambda: robot.fetch_load().queue_length >= 10, 5, 0.005)
        last = ids[-4:]
        stolen = [forged.post(w.url + '/v2/offload/cancel', json={'id': i}).json()
                  for i in last]
        own = [False] * 12 + [robot.cancel(i) for i in reversed(last)][::-1]
        outcomes = []
        for f in futures:
            try:
                outcomes.append(len(f.result().detections) > 0)
            except Exception as e:
                outcomes.append(repr(e))
    assert not any(answer['cancelled'] for answer in stolen)
    assert any(own) and all(('409' in o) if c else o is True for c, o in zip(own, outcomes)), \
        (own, outcomes)
    # /load tells each client its own figures and counts the others, naming none.
    seen_by_intruder = forged.get(w.url + '/v2/models/yolov3_tiny/load').text
    assert 'robot' not in seen_by_intruder
    assert requests.get(w.url + '/v2/models/yolov3_tiny/load',
                        headers={'Authorization': 'Bearer nope'}).status_code == 401
    assert robot.fetch_load().own_rate_hz > 0
    assert 'internal error' not in w.output   # a cancel behind other jobs was a 500


@pytest.fixture(scope='module')
def person_image(media_dir):
    return cv2.imread(str(media_dir / 'person.jpg'))


def test_a_flooder_is_refused_before_a_robot_within_its_share(start_worker, person_image):
    w = start_worker('--threads', '1', '--max-queue', '8')
    flooder = WorkerClient(w.url, names=NAMES, payload='raw', client_id='flooder',
                           pool_size=32, breaker=CircuitBreaker(threshold=10 ** 6),
                           serial_uploads=False)
    robot = WorkerClient(w.url, names=NAMES, payload='raw', client_id='robot',
                         serial_uploads=False)
    refused = []

    def flood():
        try:
            flooder.infer(person_image, 30.0)
        except WorkerUnavailable as e:
            refused.append(str(e))
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        for _ in range(24):
            pool.submit(flood)
        time.sleep(0.2)
        answered = [len(robot.infer(person_image, 30.0).detections) > 0 for _ in range(3)]
    assert answered == [True] * 3
    assert refused and all('queue share full' in r for r in refused), refused[:3]
    assert 'internal error' not in w.output


def test_slowloris_connections_do_not_deny_health_checks(start_worker):
    w = start_worker('--threads', '1', '--max-connections', '32')
    parts = urllib.parse.urlsplit(w.url)
    held = []
    for _ in range(80):   # each sends a partial request head and waits
        s = socket.create_connection((parts.hostname, parts.port))
        s.sendall(b'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ')
        held.append(s)
    latencies = []
    try:
        for _ in range(20):
            start = time.perf_counter()
            r = requests.get(w.url + '/v2/health/live', timeout=5)
            latencies.append(time.perf_counter() - start)
            assert r.status_code == 200
    finally:
        for s in held:
            s.close()
    assert statistics.median(latencies) < 0.05, latencies


def _self_signed(tmp_path):
    cert, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
                    '-keyout', str(key), '-out', str(cert)], check=True,
                   capture_output=True)
    return cert, key


def test_tls_worker_and_a_verifying_client(start_worker, tmp_path, person_image):
    cert, key = _self_signed(tmp_path)
    w = start_worker('--threads', '1', '--tls-cert', str(cert), '--tls-key', str(key))
    assert w.url.startswith('https://')
    trusted = WorkerClient(w.url, names=NAMES, ca_file=str(cert))
    assert 'person' in {d.class_name for d in trusted.infer(person_image, 5.0).detections}
    untrusted = WorkerClient(w.url, names=NAMES)   # verifies against the system's store
    with pytest.raises(WorkerUnavailable) as refused:
        untrusted.infer(person_image, 5.0)
    assert refused.value.kind == 'connection'
    with pytest.raises(requests.ConnectionError):     # plain HTTP to the TLS port
        requests.get(w.url.replace('https', 'http') + '/v2/health/live', timeout=5)


def test_bad_tls_files_are_a_clear_start_up_error(tmp_path):
    missing = tmp_path / 'missing.pem'
    result = subprocess.run([venv_exe('gpu_worker'), '--tls-cert',
                             str(missing), '--tls-key', str(missing)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and 'gpu_worker:' in result.stderr
    assert 'Traceback' not in result.stderr


# Fuzz: structured requests over every route, most of them wrong in some field.
_dims = st.one_of(st.integers(0, 8), st.integers(0, 2 ** 70), st.just(-1), st.text(max_size=2))
_tensor = st.fixed_dictionaries({
    'name': st.one_of(st.sampled_from(['images', 'image_jpeg', 'x']), st.integers()),
    'datatype': st.one_of(st.sampled_from(['UINT8', 'BYTES', 'FP32', 'INT64', 'FP16', 'BOOL']),
                          st.text(max_size=4)),
    'shape': st.one_of(st.lists(_dims, max_size=5), st.integers(), st.none()),
    'parameters': st.one_of(st.fixed_dictionaries({'binary_data_size': st.one_of(
        st.integers(-2, 64), st.floats(), st.text(max_size=3))}), st.none(), st.integers()),
})
_header = st.fixed_dictionaries({
    'inputs': st.one_of(st.lists(_tensor, max_size=3), st.none(), st.integers()),
}, optional={
    'outputs': st.one_of(st.lists(st.one_of(st.fixed_dictionaries(
        {'name': st.sampled_from(['detections', 'boxes', 'scores', 'x'])}), st.integers()),
        max_size=4), st.integers(), st.text(max_size=3)),
    'id': st.one_of(st.text(max_size=20), st.integers()),
    'parameters': st.one_of(st.dictionaries(st.text(max_size=5), st.integers()), st.text()),
})
_image = st.sampled_from([
    cv2.imencode('.jpg', np.zeros((16, 16, 3), np.uint8))[1].tobytes(),
    cv2.imencode('.png', np.full((8, 8, 3), 200, np.uint8))[1].tobytes(),
    hostile.jpeg_bomb(9000, 9000), hostile.png_header_bomb(70000, 10),
    *hostile.other_format_bombs().values()])


@st.composite
def requests_of_every_kind(draw):
    route = draw(st.sampled_from(['infer', 'infer', 'infer', 'image', 'cancel', 'probe',
                                  'load', 'tail']))
    if route in ('infer', 'tail'):
        head = json.dumps(draw(_header)).encode()
        tail = draw(st.binary(max_size=64))
        length = draw(st.one_of(st.just(str(len(head))), st.integers(-3, 200).map(str),
                                st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                        max_size=4)))
        model = 'yolov3_tiny' if route == 'infer' else draw(st.sampled_from(
            ['yolov3_tiny_tail7', '..', 'x' * 300]))
        return f'/v2/models/{model}/infer', head + tail, {protocol.HEADER_LENGTH: length}
    if route == 'image':
        body, n = infer_body([protocol.Tensor('image_jpeg', 'BYTES', [1], [draw(_image)])])
        return INFER, body, {protocol.HEADER_LENGTH: str(n),
                             protocol.DEADLINE_HEADER: draw(st.sampled_from(
                                 ['5', '0', '-1', 'nan', 'inf', '1e400', 'x']))}
    if route == 'cancel':
        return '/v2/offload/cancel', draw(st.one_of(
            st.binary(max_size=40), st.builds(lambda v: json.dumps({'id': v}).encode(),
                                              st.one_of(st.text(max_size=8), st.integers(),
                                                        st.none())))), {}
    if route == 'probe':
        return '/v2/offload/probe', draw(st.binary(max_size=256)), {}
    return '/v2/models/yolov3_tiny/load', None, {}


@settings(max_examples=2000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(request=requests_of_every_kind())
def test_fuzz_2000_requests_never_5xx_never_hang(worker, request):
    path, body, headers = request
    if body is None:
        r = requests.get(worker.url + path, timeout=10)
    else:
        r = requests.post(worker.url + path, data=body, headers=headers, timeout=10)
    assert r.status_code < 500, (path, r.status_code, r.text[:200])
    if r.status_code >= 400:
        assert r.json()['error']


# -- the robot's client ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def liar():
    fake = hostile.FakeHostileWorker(list(hostile.hostile_answers()))
    yield fake
    fake.stop()


@pytest.mark.parametrize('kind', list(hostile.hostile_answers()))
def test_client_refuses_each_hostile_answer(kind):
    fake = hostile.FakeHostileWorker([kind])
    try:
        client = WorkerClient(fake.url, names=NAMES, serial_uploads=False)
        start = time.monotonic()
        with pytest.raises(WorkerUnavailable) as refused:
            client.infer(np.zeros((48, 64, 3), np.uint8), budget_s=0.5)
        took = time.monotonic() - start
    finally:
        fake.stop()
    # A drip is cut at the budget (not after a read timeout per byte); the rest at once.
    assert took < 0.9, took
    assert refused.value.kind == ('timeout' if kind == 'drip' else 'malformed'), refused.value
    assert client.breaker.failures == 1   # the worker's fault, counted against it
    if kind != 'drip':
        assert isinstance(refused.value, MalformedAnswer)


def test_client_refuses_a_malformed_load_report():
    fake = hostile.FakeHostileWorker(['no_outputs'])
    try:
        client = WorkerClient(fake.url)
        assert client.fetch_load().parallelism == 1
        for report in ({'parallelism': 'x'}, [], {'arrival_rate_hz': float('nan')}):
            with pytest.raises(MalformedAnswer):
                load_from_report(client.url, report)
    finally:
        fake.stop()


@pytest.mark.parametrize('url,needle', [
    ('http://', 'HOST'), ('http://[::1', 'not a URL'), ('ftp://host:1', 'HOST'),
    ('http://user:secret@host:8000', 'credentials'), ('http://host:99999', 'not a URL'),
    ('http://host:8000/?q=1', 'query'), ('host:8000', 'HOST')])
def test_worker_urls_are_checked_as_urls(url, needle):
    with pytest.raises(ValueError, match=needle) as refused:
        parse_workers([f'edge1={url}'])
    assert 'secret' not in str(refused.value)
    assert parse_workers(['edge1=https://gpu.local:8443/']) == {
        'edge1': 'https://gpu.local:8443'}


# -- the robot's nodes -----------------------------------------------------------------------
def test_worker_url_refused_by_the_parameter_service(ros_context):
    node = offload_node(ros_context)
    try:
        for bad in (['edge1=http://'], ['edge1=http://[::1'], ['e=http://u:pw@h:1']):
            result = node.set_parameters([Parameter('workers', value=bad)])[0]
            assert not result.successful and 'workers' in result.reason
        assert not node.set_parameters([Parameter('force_target', value='edge9')])[0].successful
    finally:
        node.close()
        node.destroy_node()
    with pytest.raises(ValueError, match='workers'):
        OffloadConfig({**{s.name: s.default for s in __import__(
            'offload_ros.nodes.offload_node', fromlist=['SPECS']).SPECS},
            'workers': ['edge1=http://']})


def _compressed(data: bytes, fmt: str, probe, i) -> CompressedImage:
    msg = CompressedImage(format=fmt, header=header(probe, i))
    msg.data = data
    return msg


def test_header_bombs_on_the_compressed_topic_are_dropped_and_the_node_lives(
        ros_context, frames):
    node = offload_node(ros_context, image_transport='compressed')
    probe = Probe(ros_context)
    bombs = hostile.all_bombs()
    good = conversions.bgr_to_compressed(frames[0], Header())
    sent = [(name, 'png' if name.startswith('png') else 'jpeg', data)
            for name, data in bombs.items()]
    sent += [('png_as_jpeg', 'jpeg', bombs['png_5000']), ('good', 'jpeg', bytes(good.data))]
    with spinning(ros_context, node, probe):
        assert wait_until(lambda: probe.comp_pub.get_subscription_count() > 0)
        for i, (name, fmt, data) in enumerate(sent):
            probe.comp_pub.publish(_compressed(data, fmt, probe, i))
            assert wait_until(lambda: len(probe.records) > i, 20), name
        # A raw frame declaring more pixels than the limit (data as its header says).
        raw = Image(header=header(probe, 99), height=2200, width=4000, encoding='mono8',
                    step=4000)
        raw.data = bytes(4000 * 2200)
        node.destroy_subscription(node._image_sub)
        node._image_sub = node.create_subscription(Image, topics.IMAGE, node._on_image,
                                                   qos.SENSOR_DATA)
        assert wait_until(lambda: probe.image_pub.get_subscription_count() > 0)
        probe.image_pub.publish(raw)
        assert wait_until(lambda: len(probe.records) > len(sent), 20)
    records = sorted(probe.records, key=lambda r: r.seq)
    assert [r.seq for r in records] == list(range(1, len(sent) + 2))   # one outcome each
    for (name, _, _), r in zip(sent[:-1], records):
        assert r.outcome == 'drop' and 'malformed image' in r.reason, (name, r)
        assert 'max_' in r.reason or 'accepted' in r.reason, (name, r.reason)
    assert records[len(sent) - 1].outcome == 'detections'
    assert records[-1].outcome == 'drop' and 'max_pixels' in records[-1].reason
    assert max(r.finished_at_s - r.stamp_s for r in records[:-2]) < 0.5   # none was decoded


def test_hostile_worker_answers_end_each_frame_once(ros_context, liar, frames):
    """
    Hostile worker answers end each frame exactly once.

    The node offloads to a FAKE worker that answers every request with a different lie or drips
    it: every frame still ends in exactly one outcome, on the robot, and nothing the liar said
    is published.
    """
    node = offload_node(ros_context, workers=[f'edge1={liar.url}'], image_transport='raw',
                        force_target='edge1', deadline_s=2.0, request_timeout_s=0.3)
    for client in node.dispatcher.clients.values():   # every lie reaches the node: no breaker
        client.breaker = CircuitBreaker(threshold=10 ** 6)
    probe = Probe(ros_context)
    count = len(liar.kinds)
    with spinning(ros_context, node, probe):
        assert wait_until(lambda: probe.image_pub.get_subscription_count() > 0)
        assert wait_until(lambda: node.dispatcher.planner.decision.target == 'edge1', 10)
        for i in range(count):
            probe.image_pub.publish(conversions.bgr_to_image(frames[i % len(frames)],
                                                             header(probe, i)))
            assert wait_until(lambda: len(probe.records) > i, 20), i
            # A lie fails the worker until its next /load poll: wait for it to be used again.
            wait_until(lambda: node.dispatcher.planner.workers['edge1'].available
                       and node.dispatcher.planner.decision.target == 'edge1', 3)
    records = sorted(probe.records, key=lambda r: r.seq)
    assert [r.seq for r in records] == list(range(1, count + 1))
    assert all(r.target == 'local' for r in records), \
        [(r.target, r.reason) for r in records]
    assert len(liar.received) >= count - 2, liar.received
    assert {r.outcome for r in records} <= {'detections', 'miss', 'drop'}
    classes = {d.results[0].hypothesis.class_id for m in probe.detections
               for d in m.detections}
    assert 'toothbrush' not in classes and not any(c.startswith('class_') for c in classes)


def test_empty_scenes_through_the_node_graph(ros_context, start_worker, media_dir):
    """
    Nobody in view: offloaded, answered with nothing (or no person), tracked as nothing.

    And the robot stands still.
    """
    worker = start_worker('--threads', '1')
    node = offload_node(ros_context, workers=[f'edge1={worker.url}'], image_transport='raw',
                        force_target='edge1')
    tracker = TrackerNode(context=ros_context)
    controller = ControllerNode(context=ros_context)
    probe = Probe(ros_context)
    images = scenes(media_dir)
    with spinning(ros_context, node, tracker, controller, probe):
        assert wait_until(lambda: probe.image_pub.get_subscription_count() > 0)
        assert wait_until(lambda: node.dispatcher.planner.decision.target == 'edge1', 10)
        for i, image in enumerate(images.values()):
            probe.image_pub.publish(conversions.bgr_to_image(image, header(probe, i)))
            assert wait_until(lambda: len(probe.records) > i, 20)
        assert wait_until(lambda: len(probe.cmd) > 5, 5)
    records = sorted(probe.records, key=lambda r: r.seq)
    assert [(r.outcome, r.target) for r in records] == [('detections', 'edge1')] * 3
    by_frame = {d.header.frame_id: [x.results[0].hypothesis.class_id for x in d.detections]
                for d in probe.detections}
    assert by_frame['cam0'] == [] and by_frame['cam1'] == []
    assert by_frame['cam2'] and 'person' not in by_frame['cam2']
    assert all(isinstance(c, Twist) and c.linear.x == 0.0 and c.angular.z == 0.0
               for c in probe.cmd)
    assert node.dispatcher.clients['edge1'].breaker.failures == 0


def test_unexpected_exceptions_still_end_each_frame(ros_context, frames, monkeypatch):
    """
    Faults of the node's own.

    (injected: the planner's routing raising, a detections message that cannot be built) end the
    frame as an 'error' naming it; the node goes on.
    """
    node = offload_node(ros_context, image_transport='raw')
    probe = Probe(ros_context)
    calls = {'n': 0}
    route = node.dispatcher.planner.route

    def flaky_route():   # injected fault
        calls['n'] += 1
        if calls['n'] == 2:
            raise RuntimeError('injected routing fault')
        return route()
    monkeypatch.setattr(node.dispatcher.planner, 'route', flaky_route)
    to_msg = conversions.detections_to_msg
    broken = {'n': 0}

    def flaky_msg(detections, hdr):   # injected fault
        broken['n'] += 1
        if broken['n'] == 2:
            raise ValueError('injected message fault')
        return to_msg(detections, hdr)
    monkeypatch.setattr(conversions, 'detections_to_msg', flaky_msg)
    with spinning(ros_context, node, probe):
        assert wait_until(lambda: probe.image_pub.get_subscription_count() > 0)
        for i in range(4):
            probe.image_pub.publish(conversions.bgr_to_image(frames[i], header(probe, i)))
            assert wait_until(lambda: len(probe.records) > i, 20)
    records = sorted(probe.records, key=lambda r: r.seq)
    assert [r.seq for r in records] == [1, 2, 3, 4]
    errors = [r for r in records if r.outcome == 'error']
    assert len(errors) == 2
    assert any('injected routing fault' in r.reason for r in errors)
    assert any('injected message fault' in r.reason for r in errors)
