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
make bench-fuzz: the real gpu_worker under hostile clients, with 256 descriptors.

Phases, each against one worker started with `ulimit -n 256`:
1. classes: >= 10,000 requests cycling through every class of bad input (decompression
   bombs of ten formats, protocol abuse, bad HTTP, random bytes and JSON, cancel and probe
   abuse) and a few valid empty scenes, from 8 concurrent clients; counted by class and
   status; a request with no answer in 15 s is a hang.
2. parsing: two clients sending 8 MB bodies of 2,000,000 empty BYTES elements, while a
   health checker (a fresh connection every 20 ms) measures its latency.
3. slowloris: waves of 300 connections each sending a partial request head, health as above.
4. slow bodies: 60 uploads dripping a byte every 100 ms, health as above.
5. flooder: a robot-like client (the robot's WorkerClient, a real frame as JPEG, 4 Hz, a 1 s
   budget) beside a flooder sending 20x its rate (80 Hz: past the worker's capacity here),
   under FIFO and fair scheduling: the share of the robot's requests answered.
Worker RSS before and after, 5xx and tracebacks in its log. Writes bench/results/fuzz.json.
"""
import argparse
import collections
import concurrent.futures
import json
import pathlib
import socket
import statistics
import threading
import time
import urllib.parse

import cv2
import numpy as np
import psutil
import requests

from offload_ros.scenarios import hostile
from offload_ros.graph.procs import WorkerProcess
from offload_ros.worker import protocol
from offload_ros.worker.client import CircuitBreaker, WorkerClient, WorkerUnavailable

INFER = '/v2/models/yolov3_tiny/infer'
ULIMIT = ['bash', '-c', 'ulimit -n 256 && exec "$0" "$@"']
HANG_S = 15.0


def _body(tensors, header=None):
    return protocol.encode({'outputs': [{'name': 'detections'}], **(header or {})}, tensors,
                           'inputs')


def _jpeg_tensor(data: bytes):
    return [protocol.Tensor('image_jpeg', 'BYTES', [1], [data])]


def request_classes(rng: np.random.Generator) -> dict:
    """Class name -> a function making one request: (method, path, body, headers)."""
    classes = {}
    for name, data in hostile.all_bombs().items():
        body, n = _body(_jpeg_tensor(data))
        classes[f'bomb_{name}'] = lambda b=body, n=n: (
            'POST', INFER, b, {protocol.HEADER_LENGTH: str(n)})

    def whole(head: bytes):
        return lambda: ('POST', INFER, head, {protocol.HEADER_LENGTH: str(len(head))})
    tiny = [protocol.Tensor('images', 'UINT8', [1, 8, 8, 3], np.zeros((1, 8, 8, 3), np.uint8))]
    classes.update({
        'deep_json': whole(b'{"a":' * 5000 + b'1' + b'}' * 5000),
        'header_over_limit': whole(b'[' * 70000 + b']' * 70000),
        'shape_overflow': whole(json.dumps({'inputs': [{
            'name': 'images', 'datatype': 'UINT8', 'shape': [2 ** 62, 2 ** 62, 16],
            'parameters': {'binary_data_size': 0}}]}).encode()),
        'rank_40': whole(json.dumps({'inputs': [{
            'name': 'x', 'datatype': 'FP32', 'shape': [1] * 40,
            'parameters': {'binary_data_size': 0}}]}).encode()),
        'json_tensor_data': whole(json.dumps({'inputs': [{
            'name': 'images', 'datatype': 'UINT8', 'shape': [1], 'data': [1]}]}).encode()),
        'bytes_elements_10k': lambda: ('POST', INFER, *_with_length(protocol.encode(
            {}, [protocol.Tensor('image_jpeg', 'BYTES', [10000], [b''] * 10000)], 'inputs'))),
    })
    for label, header in (('outputs_number', {'outputs': 7}),
                          ('outputs_repeated', {'outputs': [{'name': 'detections'}] * 3}),
                          ('outputs_unknown', {'outputs': [{'name': 'logits'}]}),
                          ('parameters_list', {'parameters': [1]})):
        body, n = _body(tiny, header)
        classes[label] = lambda b=body, n=n: ('POST', INFER, b, {protocol.HEADER_LENGTH: str(n)})
    good, n = _body(tiny)
    classes.update({
        'header_length_lie': lambda: ('POST', INFER, good, {protocol.HEADER_LENGTH: '999999'}),
        'header_length_text': lambda: ('POST', INFER, good, {protocol.HEADER_LENGTH: '1e3'}),
        'header_length_huge': lambda: ('POST', INFER, good,
                                       {protocol.HEADER_LENGTH: '9' * 5000}),
        'truncated_body': lambda: ('POST', INFER, good[:-10],
                                   {protocol.HEADER_LENGTH: str(n)}),
        'bad_deadline': lambda: ('POST', INFER, good, {protocol.HEADER_LENGTH: str(n),
                                                       protocol.DEADLINE_HEADER: str(
                                                           rng.choice(['nan', '-1', '1e400',
                                                                       'x', 'inf']))}),
        'unknown_model': lambda: ('POST', '/v2/models/' + 'x' * int(rng.integers(1, 300))
                                  + '/infer', good, {protocol.HEADER_LENGTH: str(n)}),
        'random_bytes': lambda: ('POST', INFER, rng.bytes(int(rng.integers(0, 4096))),
                                 {protocol.HEADER_LENGTH: str(int(rng.integers(-5, 5000)))}),
        'random_json': lambda: ('POST', INFER, *_with_length(_random_json(rng))),
        'cancel_garbage': lambda: ('POST', '/v2/offload/cancel',
                                   rng.bytes(int(rng.integers(0, 64))), {}),
        'cancel_charset': lambda: ('POST', '/v2/offload/cancel', b'{"id": "x"}',
                                   {'Content-Type': 'application/json; charset=klingon'}),
        'cancel_over_cap': lambda: ('POST', '/v2/offload/cancel', b'{"id":"' + b'x' * 8000
                                    + b'"}', {}),
        'probe_random': lambda: ('POST', '/v2/offload/probe',
                                 rng.bytes(int(rng.integers(0, 65536))), {}),
        'tail_without_split': lambda: ('POST', '/v2/models/yolov3_tiny_tail7/infer', good,
                                       {protocol.HEADER_LENGTH: str(n)}),
        'bad_method': lambda: ('RAW', b'GARBAGE / HTTP/1.1\r\n\r\n', None, None),
        'huge_header': lambda: ('RAW', b'GET /v2 HTTP/1.1\r\nHost: x\r\nX: ' + b'a' * 20000
                                + b'\r\n\r\n', None, None),
    })
    grey = cv2.imencode('.jpg', np.full((480, 640, 3), 128, np.uint8))[1].tobytes()
    body, n = _body(_jpeg_tensor(grey))
    classes['valid_empty_scene'] = lambda: ('POST', INFER, body,
                                            {protocol.HEADER_LENGTH: str(n)})
    return classes


def _with_length(encoded) -> tuple:
    body, n = encoded
    return body, {protocol.HEADER_LENGTH: str(n)}


def _random_json(rng) -> tuple:
    def value(depth):
        kind = rng.integers(0, 6 if depth < 4 else 3)
        if kind == 0:
            return int(rng.integers(-2 ** 63, 2 ** 63 - 1))
        if kind == 1:
            return rng.choice(['images', 'image_jpeg', 'BYTES', 'UINT8', 'FP32', ''])
        if kind == 2:
            return None
        if kind == 3:
            return [value(depth + 1) for _ in range(rng.integers(0, 4))]
        keys = ['inputs', 'name', 'datatype', 'shape', 'parameters', 'binary_data_size',
                'outputs', 'id']
        return {str(rng.choice(keys)): value(depth + 1) for _ in range(rng.integers(0, 5))}
    head = json.dumps({'inputs': [value(1) for _ in range(rng.integers(0, 3))],
                       'outputs': value(1)}).encode()
    return head + rng.bytes(int(rng.integers(0, 128))), len(head)


def _raw(url: str, data: bytes) -> int:
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=HANG_S) as s:
        s.sendall(data)
        reply = s.recv(4096).decode('latin-1')
    return int(reply.split(' ')[1])


def send(url: str, session: requests.Session, request) -> object:
    method, path, body, headers = request
    try:
        if method == 'RAW':
            return _raw(url, path)
        return session.post(url + path, data=body, headers=headers, timeout=HANG_S).status_code
    except requests.Timeout:
        return 'hang'
    except socket.timeout:
        return 'hang'
    except (requests.ConnectionError, OSError) as e:
        return f'connection error ({e.__class__.__name__})'


def phase_classes(url: str, total: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    classes = request_classes(rng)
    names = sorted(classes)
    plan = [names[i % len(names)] for i in range(total)]
    counts = collections.defaultdict(collections.Counter)
    local = threading.local()
    started = time.monotonic()
    done = [0]
    lock = threading.Lock()

    def one(name):
        if not hasattr(local, 'session'):
            local.session = requests.Session()
        with lock:
            request = classes[name]()    # the generator is not thread-safe
        status = send(url, local.session, request)
        with lock:
            counts[name][str(status)] += 1
            done[0] += 1
            if done[0] % 2000 == 0:
                print(f'  classes: {done[0]}/{total} requests', flush=True)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, plan))
    by_status = collections.Counter()
    for c in counts.values():
        by_status.update(c)
    return {'requests': total, 'classes': len(names), 'seconds': time.monotonic() - started,
            'by_status': dict(sorted(by_status.items())),
            'by_class': {n: dict(sorted(c.items())) for n, c in sorted(counts.items())},
            'http_5xx': sum(n for s, n in by_status.items() if s.isdigit() and s[0] == '5'),
            'hangs': by_status.get('hang', 0),
            'connection_errors': sum(n for s, n in by_status.items()
                                     if s.startswith('connection'))}


class HealthChecker:
    """
    GET /v2/health/live on a fresh connection every 20 ms.

    The latency a new client sees; failures counted.
    """

    def __init__(self, url: str):
        self.url, self.latencies, self.failures = url, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                ok = requests.get(self.url + '/v2/health/live', timeout=5).status_code == 200
            except requests.RequestException:
                ok = False
            if ok:
                self.latencies.append(time.perf_counter() - start)
            else:
                self.failures += 1
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        return {'checks': len(lat) + self.failures, 'failures': self.failures,
                'p50_ms': statistics.median(lat) * 1e3 if lat else None,
                'p95_ms': lat[int(0.95 * (len(lat) - 1))] * 1e3 if lat else None}


def phase_parsing(url: str, seconds: float) -> dict:
    body, n = protocol.encode({}, [protocol.Tensor('image_jpeg', 'BYTES', [2_000_000],
                                                   [b''] * 2_000_000)], 'inputs')
    statuses = collections.Counter()
    stop = threading.Event()

    def attacker():
        session = requests.Session()
        while not stop.is_set():
            statuses[str(send(url, session, ('POST', INFER, body,
                                             {protocol.HEADER_LENGTH: str(n)})))] += 1
    with HealthChecker(url) as health:
        threads = [threading.Thread(target=attacker) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(HANG_S + 5)
    return {'body_bytes': len(body), 'attack_statuses': dict(statuses),
            'health': health.summary()}


def phase_slowloris(url: str, seconds: float, wave: int = 300) -> dict:
    parts = urllib.parse.urlsplit(url)
    opened = refused = 0
    dropped_by_worker = 0
    with HealthChecker(url) as health:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            held = []
            for _ in range(wave):
                try:
                    s = socket.create_connection((parts.hostname, parts.port), timeout=2)
                    s.sendall(b'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ')
                    held.append(s)
                    opened += 1
                except OSError:
                    refused += 1
            wave_end = min(end, time.monotonic() + 3.0)
            while time.monotonic() < wave_end:   # keep dripping a header byte
                for s in held:
                    try:
                        s.sendall(b'a')
                    except OSError:
                        pass
                time.sleep(0.5)
            for s in held:
                try:
                    s.settimeout(0.01)
                    if s.recv(1) == b'':
                        dropped_by_worker += 1
                except socket.timeout:
                    pass
                except OSError:
                    dropped_by_worker += 1
                s.close()
    return {'connections_opened': opened, 'connects_refused': refused,
            'closed_by_worker': dropped_by_worker, 'health': health.summary()}


def phase_slow_bodies(url: str, seconds: float, count: int = 60) -> dict:
    """
    Drip uploads, a byte every 100 ms, for `seconds`.

    (past the worker's 10 s read limit in the full run: they end in 408).
    """
    parts = urllib.parse.urlsplit(url)
    statuses = collections.Counter()

    def drip():
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
                s.sendall(b'POST /v2/offload/probe HTTP/1.1\r\nHost: x\r\n'
                          b'Content-Length: 100000\r\n\r\n')
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    s.sendall(b'x')
                    time.sleep(0.1)
                    s.settimeout(0.001)
                    try:
                        reply = s.recv(4096)
                        statuses[reply.split(b' ')[1].decode() if reply else 'closed'] += 1
                        return
                    except socket.timeout:
                        s.settimeout(30)
                statuses['still open'] += 1
        except OSError as e:
            statuses[f'error ({e.__class__.__name__})'] += 1
    with HealthChecker(url) as health:
        threads = [threading.Thread(target=drip) for _ in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 30)
    return {'uploads': count, 'statuses': dict(statuses), 'health': health.summary()}


def phase_flooder(url: str, frame: np.ndarray, seconds: float, robot_hz: float = 4.0,
                  factor: int = 20) -> dict:
    jpeg = cv2.imencode('.jpg', frame)[1].tobytes()
    flooder = WorkerClient(url, client_id='flooder', pool_size=64, serial_uploads=False,
                           breaker=CircuitBreaker(threshold=10 ** 9))
    robot = WorkerClient(url, client_id='robot', serial_uploads=False,
                         breaker=CircuitBreaker(threshold=10 ** 9))
    from offload_ros.inference.picture import Picture
    picture = Picture(jpeg=jpeg)
    flood = collections.Counter()
    robot_results, robot_latency = collections.Counter(), []
    stop = threading.Event()
    pool = concurrent.futures.ThreadPoolExecutor(48)

    def flood_one():
        try:
            flooder.infer(picture, 5.0)
            flood['answered'] += 1
        except WorkerUnavailable as e:
            flood['503' if '503' in str(e) else e.kind] += 1

    def flooding():
        period = 1.0 / (robot_hz * factor)
        next_at = time.monotonic()
        while not stop.is_set():
            pool.submit(flood_one)
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))
    thread = threading.Thread(target=flooding)
    thread.start()
    time.sleep(1.0)   # the flood's queue builds first
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        try:
            robot.infer(picture, 1.0)
            robot_results['answered'] += 1
            robot_latency.append(time.perf_counter() - start)
        except WorkerUnavailable as e:
            robot_results['503' if '503' in str(e) else e.kind] += 1
        time.sleep(max(0.0, 1.0 / robot_hz - (time.perf_counter() - start)))
    stop.set()
    thread.join()
    pool.shutdown(wait=True)
    sent = sum(robot_results.values())
    return {'robot_hz': robot_hz, 'flooder_hz': robot_hz * factor, 'robot_budget_s': 1.0,
            'robot': dict(robot_results), 'robot_requests': sent,
            'robot_answered_share': robot_results['answered'] / sent if sent else None,
            'robot_latency_p50_ms': statistics.median(robot_latency) * 1e3
            if robot_latency else None,
            'flooder': dict(flood)}


def rss_mb(worker: WorkerProcess) -> float:
    return psutil.Process(worker.proc.pid).memory_info().rss / 1e6


def attack(result: dict, args) -> None:
    """Phases 1-4 against one worker with 256 descriptors; its log kept in bench_out."""
    worker = WorkerProcess('--threads', '1', prefix=ULIMIT)
    try:
        print(f'worker {worker.url} (ulimit -n 256)', flush=True)
        result['rss_before_mb'] = rss_mb(worker)
        print(f'classes: {args.requests} requests', flush=True)
        result['classes'] = phase_classes(worker.url, args.requests, args.seed)
        for name, phase in (('parsing', phase_parsing), ('slowloris', phase_slowloris),
                            ('slow_bodies', phase_slow_bodies)):
            print(f'{name}: {args.seconds:.0f} s', flush=True)
            seconds = 12.0 if name == 'slow_bodies' and not args.quick else args.seconds
            result[name] = phase(worker.url, seconds)
            print(f"  health p50 {result[name]['health']['p50_ms']:.1f} ms, "
                  f"{result[name]['health']['failures']} failed", flush=True)
        result['rss_after_mb'] = rss_mb(worker)
    finally:
        worker.stop()
    log = worker.output
    pathlib.Path('bench_out').mkdir(exist_ok=True)
    pathlib.Path('bench_out/fuzz_worker.log').write_text(log)
    result['worker_log'] = {'lines': log.count('\n'), 'bytes': len(log),
                            'tracebacks': log.count('Traceback')}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', default='bench/results/fuzz.json')
    parser.add_argument('--requests', type=int, default=10500)
    parser.add_argument('--seconds', type=float, default=10.0, help='per attack phase')
    parser.add_argument('--seed', type=int, default=19)
    parser.add_argument('--quick', action='store_true', help='2,000 requests, 4 s phases')
    parser.add_argument('--flooder-only', action='store_true',
                        help='re-run the flooder phase only, keeping the rest of --out')
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.seconds = 2000, 4.0
    from offload_ros.inference import models
    media = models.cache_dir() / 'media'
    frame = cv2.resize(cv2.VideoCapture(str(media / 'vtest.avi')).read()[1], (640, 480))
    result = {'requests_goal': 10000, 'descriptor_limit': 256}
    if args.flooder_only:
        result = json.loads(pathlib.Path(args.out).read_text())
    else:
        attack(result, args)
    result['flooder'] = {}
    for discipline in ('fifo', 'fair'):
        print(f'flooder beside a robot, {discipline}: {2 * args.seconds:.0f} s', flush=True)
        worker = WorkerProcess('--threads', '1', '--scheduling', discipline, prefix=ULIMIT)
        try:
            result['flooder'][discipline] = phase_flooder(worker.url, frame, 2 * args.seconds)
        finally:
            worker.stop()
        print(f"  robot answered {result['flooder'][discipline]['robot_answered_share']:.0%}",
              flush=True)
    c = result['classes']
    result['goals'] = {
        'requests_10000': c['requests'] >= 10000,
        'no_5xx': c['http_5xx'] == 0 and all(
            not s.startswith('5') for p in ('parsing',) for s in result[p]['attack_statuses']),
        'no_hangs': c['hangs'] == 0,
        'rss_growth_under_100mb': result['rss_after_mb'] - result['rss_before_mb'] < 100,
        'health_p50_under_20ms': all(result[p]['health']['p50_ms'] is not None and
                                     result[p]['health']['p50_ms'] < 20
                                     for p in ('parsing', 'slowloris')),
        'robot_answered_95pct_fair': result['flooder']['fair']['robot_answered_share'] >= 0.95,
        'no_tracebacks': result['worker_log']['tracebacks'] == 0,
    }
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1) + '\n')
    print(json.dumps(result['goals'], indent=1))
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
