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

"""Our client against a real Triton server (opt-in: make test-triton).

PyTriton ships Triton with its Python backend only, so the exported ONNX file is bound through
onnxruntime inside a PyTriton function; the HTTP/KServe v2 surface the client meets (binary
tensors, metadata, cumulative /stats) is Triton's own.
"""
import pathlib
import socket
import sys

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offload_ros.inference import models  # noqa: E402
from offload_ros.graph.procs import WorkerProcess  # noqa: E402
from offload_ros.worker.client import WorkerClient  # noqa: E402

pytriton = pytest.importorskip('pytriton.triton')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def triton_url():
    from pytriton.model_config import ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig
    session = ort.InferenceSession(str(models.ensure_default_model()),
                                   providers=['CPUExecutionProvider'])

    def infer(requests_):
        out = []
        for request in requests_:
            boxes, scores = session.run(None, {'images': request['images']})
            out.append({'boxes': boxes, 'scores': scores})
        return out
    port = free_port()
    config = TritonConfig(http_port=port, grpc_port=free_port(), metrics_port=free_port())
    # PyTriton protects /stats with a token by default; a plain Triton deployment (as in
    # docs/triton.md) serves it openly, which is what the robots' load estimate needs.
    triton = Triton(config=config, security_config=TritonSecurityConfig(restricted_endpoints=[]))
    triton.bind(model_name='yolov3_tiny', infer_func=infer,
                inputs=[Tensor(name='images', dtype=np.uint8, shape=(1, -1, -1, 3))],
                outputs=[Tensor(name='boxes', dtype=np.float32, shape=(1, -1, 4)),
                         Tensor(name='scores', dtype=np.float32, shape=(1, -1, 80))],
                config=ModelConfig(batching=False))
    triton.run()
    yield f'http://127.0.0.1:{port}'
    triton.stop()


@pytest.fixture(scope='module')
def person():
    return cv2.imread(str(models.cache_dir() / 'media/person.jpg'))


def test_triton_is_a_v2_server(triton_url):
    assert requests.get(triton_url + '/v2/health/ready', timeout=5).status_code == 200
    meta = requests.get(triton_url + '/v2/models/yolov3_tiny', timeout=5).json()
    assert meta['inputs'][0]['name'] == 'images'


def test_client_detections_match_gpu_worker(triton_url, person):
    names = models.default_names_path().read_text().splitlines()
    triton = WorkerClient(triton_url, names=names, payload='raw', server_nms=False)
    got = triton.infer(person, budget_s=30.0).detections
    triton.close()  # Triton waits for open keep-alive connections at shutdown
    worker = WorkerProcess(bin_dir=ROOT / '.venv/bin', env={'PYTHONPATH': str(ROOT)})
    try:
        ours_client = WorkerClient(worker.url, names=names, payload='raw')
        ours = ours_client.infer(person).detections
        ours_client.close()
    finally:
        worker.stop()
    assert sorted(d.class_name for d in got) == sorted(d.class_name for d in ours) == \
        ['dog', 'horse', 'person']
    for a, b in zip(sorted(got, key=lambda d: d.x), sorted(ours, key=lambda d: d.x)):
        assert abs(a.x - b.x) < 1 and abs(a.h - b.h) < 1 and abs(a.score - b.score) < 1e-3


def test_load_from_triton_stats(triton_url, person):
    client = WorkerClient(triton_url, payload='raw', server_nms=False)
    first = client.fetch_load(now_s=0.0)
    assert first.source == 'triton_stats'
    for _ in range(5):
        client.infer(person)
    load = client.fetch_load(now_s=1.0)
    client.close()
    assert load.arrival_rate_hz == pytest.approx(5.0)
    assert 0.001 < load.service_mean_s < 1.0 and load.service_var_s2 == 0.0
