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
Split (collaborative) inference.

The cut detector, the worker's tails, the planner's split targets and the node running a frame's
head here and its tail on a real worker.
"""
import math

import numpy as np
import pytest
import requests

from offload_ros.core.latency import DeviceModel, NetworkModel, WorkerModel, predict_split
from offload_ros.core.planner import Planner, PlannerConfig
from offload_ros.core.policy import PolicyConfig, parse_target, split_target
from offload_ros.core.scenario import ScenarioError, mean_estimates, predict_from_estimates
from offload_ros.inference import models, split
from offload_ros.inference.detector import default_detector
from offload_ros.worker import protocol
from offload_ros.worker.client import WorkerClient, WorkerRequestError


@pytest.fixture(scope='module')
def graph():
    return split.load(models.ensure_default_model())


@pytest.fixture(scope='module')
def detector():
    return default_detector(threads=1)


def test_crossing_tensors_follow_the_routes(graph):
    layers = split.layer_outputs(graph)
    # After layer 7 only the feature map and the letterbox's scale and padding cross; after
    # layer 9 also layer 8's output, which the second head's route concatenates.
    assert split.crossing_tensors(graph, 7)[0] == layers[7][0]
    assert len(split.crossing_tensors(graph, 7)) == 3
    assert split.crossing_tensors(graph, 9)[:2] == [layers[9][0], layers[8][0]]
    route = next(i for i, (_, kind) in enumerate(layers) if kind == 'route')
    with pytest.raises(split.SplitError, match='route layer'):
        split.crossing_tensors(graph, route)
    with pytest.raises(split.SplitError, match='outside'):
        split.crossing_tensors(graph, len(layers))


def test_head_and_tail_compute_the_whole_detector(graph, street, detector):
    boxes, scores = detector.run_raw(street)
    for layer in (3, 5, 7, 9):
        head = split.Head(graph, layer, threads=1, wire_dtype='FP32')
        tail = split.Tail(graph, layer, threads=1)
        b, s = tail.run(head.run(street))
        np.testing.assert_array_equal(b, boxes)      # the same graph, cut: bit for bit
        np.testing.assert_array_equal(s, scores)
    # Half-precision feature maps: boxes within half a pixel, scores within 1e-3.
    b, s = split.Tail(graph, 7, threads=1).run(split.Head(graph, 7, threads=1).run(street))
    confident = scores.max(axis=1) > 0.3
    assert confident.sum() >= 3
    assert np.abs(b[confident] - boxes[confident]).max() < 0.5
    assert np.abs(s - scores).max() < 1e-3


def test_tail_refuses_wrong_inputs_by_name(graph, street):
    tensors = split.Head(graph, 7, threads=1).run(street)
    tail = split.Tail(graph, 7, threads=1)
    name = split.crossing_tensors(graph, 7)[0]
    with pytest.raises(split.SplitError, match=f'missing .*{name}'):
        tail.check({k: v for k, v in tensors.items() if k != name})
    with pytest.raises(split.SplitError, match=f'{name} has shape'):
        tail.check({**tensors, name: tensors[name][:, :64]})


def test_a_model_without_the_layer_map_is_refused(tmp_path, graph):
    stripped = split.load(models.ensure_default_model())
    del stripped.metadata_props[:]
    with pytest.raises(split.SplitError, match='darknet_layers'):
        split.layer_outputs(stripped)


def test_worker_serves_tails_from_the_shared_queue(start_worker, graph, street, detector):
    worker = start_worker('--threads', '1', '--split-layers', '5,7')
    client = WorkerClient(worker.url, names=detector.names, payload='raw')
    whole = client.infer(street)
    head = split.Head(graph, 7, threads=1, wire_dtype='FP32')
    tail = client.infer_split(7, head.run(street), (street.shape[1], street.shape[0]))
    assert [(d.class_name, round(d.x, 2), round(d.score, 4)) for d in tail.detections] == \
        [(d.class_name, round(d.x, 2), round(d.score, 4)) for d in whole.detections]
    assert len(whole.detections) >= 3
    assert tail.request_bytes < 0.45 * whole.request_bytes   # 346 kB of FP32 vs 1.4 MB raw
    half = client.infer_split(7, split.Head(graph, 7, threads=1).run(street),
                              (street.shape[1], street.shape[0]))
    assert half.request_bytes < 0.55 * tail.request_bytes
    assert [d.class_name for d in half.detections] == [d.class_name for d in whole.detections]
    # The tail skips the first seven layers (~40 vs ~56 ms on one thread here). One sample of
    # each is at the mercy of the parallel suite (CI saw 58.6 vs 57.4 ms), so the means
    # compared are over eight more of each, interleaved so both see the same load.
    tensors = head.run(street)
    for _ in range(8):
        client.infer(street)
        client.infer_split(7, tensors, (street.shape[1], street.shape[0]))
    load = client.fetch_load()
    assert set(load.model_service_s) == {'yolov3_tiny', 'yolov3_tiny_tail5',
                                         'yolov3_tiny_tail7'}
    assert load.model_service_s['yolov3_tiny_tail7'] < load.model_service_s['yolov3_tiny']
    meta = requests.get(f'{worker.url}/v2/models/yolov3_tiny_tail7', timeout=5).json()
    assert meta['parameters']['split_layer'] == 7
    assert [i['shape'] for i in meta['inputs']][0] == [1, 128, 26, 26]
    # Wrong tensors and a missing image size are 400s naming what is wrong.
    with pytest.raises(WorkerRequestError, match='400.*missing'):
        client.infer_split(5, head.run(street), (640, 480))
    body, length = protocol.encode({'outputs': [{'name': 'detections'}]},
                                   [protocol.Tensor(n, 'FP32', list(v.shape), v) for n, v in
                                    head.run(street).items() if v.dtype == np.float32] +
                                   [protocol.Tensor(n, 'INT64', list(v.shape), v) for n, v in
                                    head.run(street).items() if v.dtype == np.int64],
                                   'inputs')
    response = requests.post(f'{worker.url}/v2/models/yolov3_tiny_tail7/infer', data=body,
                             headers={protocol.HEADER_LENGTH: str(length)}, timeout=10)
    assert response.status_code == 400 and 'image_size' in response.json()['error']
    response = requests.post(f'{worker.url}/v2/models/yolov3_tiny_tail9/infer', data=body,
                             headers={protocol.HEADER_LENGTH: str(length)}, timeout=10)
    assert response.status_code == 404 and 'tail7' in response.json()['error']


def test_planner_adds_a_tandem_prediction_per_served_tail():
    planner = Planner(PlannerConfig(PolicyConfig(), bandwidth_override_bps=8e6,
                                    link_model='exponential'), ['edge1'], 0.160)
    planner.set_split_points({5: (0.030, 173_074), 7: (0.040, 86_546)})
    for t in np.arange(0.0, 5.0, 0.5):
        planner.frame_arrived(t)
    planner.load_report('edge1', 0.002, 0.0, 0.060, 0.0, 1, 0.0, 0, {7: 0.045})
    predictions = planner.predict(5.0)
    assert set(predictions) == {'local', 'edge1', 'edge1/split@7'}   # no tail 5 served
    rate = planner.rate_hz(5.0)
    network = planner.network_model('edge1', 5.0)
    expected = predict_split(rate, DeviceModel(0.040),
                             NetworkModel(8e6, 86_546, network.response_bytes,
                                          network.overhead_s, 1.0),
                             WorkerModel('edge1', 0.045, 1, 0.0, 0.0), 86_546,
                             planner.scv(5.0))
    assert predictions['edge1/split@7'].latency_s == pytest.approx(expected.latency_s)
    assert predictions['edge1/split@7'].terms['uplink_transfer_s'] == \
        pytest.approx(86_546 * 8 / 8e6)
    # The record's estimates reproduce it (what the benches predict a cell from).
    snapshot = planner.snapshot(5.0)
    for target in ('edge1/split@7', 'local'):
        assert predict_from_estimates(snapshot, target) == pytest.approx(
            predictions[target].latency_s)
        assert predict_from_estimates(mean_estimates([snapshot] * 2, target), target) == \
            pytest.approx(predictions[target].latency_s)
    with pytest.raises(ScenarioError, match='split@5'):
        predict_from_estimates(snapshot, 'edge1/split@5')
    # A head time observed on the robot moves the prediction.
    for _ in range(100):
        planner.head_done(7, 0.080)
    assert planner.predict(5.0)['edge1/split@7'].terms['device_service_s'] == \
        pytest.approx(0.080, rel=0.05)
    # Energy: the head's compute is the robot's.
    energy = planner.energies(planner.predict(5.0))
    assert energy['edge1/split@7'].robot_j > energy['edge1'].robot_j
    assert parse_target(split_target('edge1', 7)) == ('edge1', 7)
    assert parse_target('edge1') == ('edge1', None)


def test_split_wins_where_the_payload_is_large_and_the_link_slow():
    """
    Raw 640x480 frames (921 kB) on 10 Mbit/s.

    The 87 kB split@7 beats sending the frame and a slow robot; JPEG-sized payloads (40 kB) beat
    the split.
    """
    def best(request_bytes):
        planner = Planner(PlannerConfig(PolicyConfig(), bandwidth_override_bps=10e6,
                                        link_model='exponential'), ['edge1'], 0.400)
        planner.set_split_points({7: (0.060, 86_546)})
        planner.payload(request_bytes, 1000)
        planner.request_bytes = request_bytes
        for t in np.arange(0.0, 5.0, 1.0):
            planner.frame_arrived(t)
        planner.load_report('edge1', 0.002, 0.0, 0.050, 0.0, 1, 0.0, 0, {7: 0.040})
        predictions = planner.predict(5.0)
        return min(predictions, key=lambda n: predictions[n].latency_s), predictions
    assert best(921_600)[0] == 'edge1/split@7'
    choice, predictions = best(40_000)
    assert choice == 'edge1'
    assert math.isfinite(predictions['edge1/split@7'].latency_s)
