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

"""The real yolov3-tiny detector on real photographs and footage, and its ONNX export."""
import json
import pathlib
import subprocess

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import darknet_reference
from conftest import venv_exe
from offload_ros.inference import darknet, models
from offload_ros.inference.detector import Detector, DetectorError, default_detector, nms


@pytest.fixture(scope='module')
def detector():
    return default_detector()


@pytest.fixture(scope='module')
def source():
    files = models._source_files()
    sections = darknet.parse_cfg(files['cfg'].read_text(), models.YOLOV3_TINY_MASK_FIX)
    return sections, darknet.load_weights(files['weights'], sections)


def test_weights_are_the_official_ones():
    assert models.sha256_of(models._source_files()['weights']) == models.WEIGHTS_SHA256


def test_cfg_mask_defect_is_fixed(source):
    sections, _ = source
    masks = [s.options['mask'] for s in sections if s.kind == 'yolo']
    assert masks == ['3,4,5', '1,2,3']
    heads = darknet.yolo_heads(sections)
    assert heads[1].anchors == ((23.0, 27.0), (37.0, 58.0), (81.0, 82.0))


def test_export_matches_numpy_reference(source):
    sections, convs = source
    model = darknet.build_onnx(sections, convs, 416, preprocess=False)
    session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    rng = np.random.default_rng(7)
    image = cv2.imread(str(pathlib.Path.home() / '.cache/offload_ros/media/basketball1.png'))
    tensor = cv2.resize(image, (416, 416))[:, :, ::-1].transpose(2, 0, 1) / 255.0
    tensor = np.clip(tensor + rng.normal(0, 0.01, tensor.shape), 0, 1).astype(np.float32)
    got = session.run(None, {'input': tensor[None]})
    expected = darknet_reference.forward(sections, convs, tensor)
    assert [g.shape[1:] for g in got] == [e.shape for e in expected] == \
        [(255, 13, 13), (255, 26, 26)]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g[0], e, atol=1e-4, rtol=1e-4)


def test_people_found_in_photographs(detector, media_dir):
    people = [d for d in detector.detect(cv2.imread(str(media_dir / 'person.jpg')))
              if d.class_name == 'person']
    assert len(people) == 1 and people[0].score > 0.8
    p = people[0]  # the standing woman: tall box in the left-centre of the 640x424 photo
    assert 150 < p.x < 230 and 60 < p.y < 150 and p.h > 2 * p.w and 200 < p.h < 330
    names = {d.class_name for d in detector.detect(cv2.imread(str(media_dir / 'person.jpg')))}
    assert {'dog', 'horse'} <= names
    player = [d for d in detector.detect(cv2.imread(str(media_dir / 'basketball1.png')))
              if d.class_name == 'person']
    assert player and player[0].h > 300


def test_pedestrians_found_in_footage(detector, media_dir):
    capture = cv2.VideoCapture(str(media_dir / 'vtest.avi'))
    counts = []
    for index in range(100):
        ok, frame = capture.read()
        assert ok
        if index % 10 == 0:
            people = [d for d in detector.detect(frame) if d.class_name == 'person']
            assert all(d.h > d.w for d in people), 'pedestrians are taller than wide'
            assert all(0 <= d.x and d.x + d.w <= 768 + 1e-3 for d in people)
            counts.append(len(people))
    assert min(counts) >= 2 and np.mean(counts) >= 3


def test_profile_is_measured(detector, media_dir):
    profile = detector.profile(cv2.imread(str(media_dir / 'basketball1.png')), runs=5)
    assert 0.001 < profile.mean_s < 2.0 and profile.var_s2 >= 0 and profile.samples == 5
    assert profile.provider == 'CPUExecutionProvider'


def test_bad_images_are_refused(detector):
    for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                np.zeros((0, 10, 3), np.uint8)):
        with pytest.raises(DetectorError, match='uint8'):
            detector.detect(bad)


def test_nms_suppresses_overlaps_per_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [1, 1, 10, 10], [50, 50, 5, 5]], float)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), np.array([0, 0, 1, 0]), 0.5)
    assert keep.tolist() == [0, 2, 3]


def _synthetic_ultralytics(tmp_path, layout):
    """
    Return a synthetic graph with the Ultralytics output layout (no real weights exist offline).

    It emits a fixed tensor, which checks our decoding of the layout, nothing more.
    """
    n, classes = 8400, 80
    if layout == 'yolov8':
        out = np.zeros((1, 4 + classes, n), np.float32)
        out[0, :4, 0] = [320, 320, 100, 200]  # one person box in the middle of a 640 input
        out[0, 4, 0] = 0.9
        shape = [1, 4 + classes, n]
    else:
        out = np.zeros((1, n, 5 + classes), np.float32)
        out[0, 0, :6] = [320, 320, 100, 200, 0.9, 1.0]
        shape = [1, n, 5 + classes]
    node = helper.make_node('Constant', [], ['output0'],
                            value=onnx.numpy_helper.from_array(out))
    graph = helper.make_graph([node], 'synthetic',
                              [helper.make_tensor_value_info('images', TensorProto.FLOAT,
                                                             [1, 3, 640, 640])],
                              [helper.make_tensor_value_info('output0', TensorProto.FLOAT,
                                                             shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    path = tmp_path / f'{layout}.onnx'
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize('layout', ['yolov8', 'yolov5'])
def test_ultralytics_layouts_detected_and_mapped_to_image_pixels(tmp_path, layout):
    det = Detector(_synthetic_ultralytics(tmp_path, layout), models.default_names_path())
    assert det.layout == layout and det.classes == 80
    (d,) = det.detect(np.zeros((480, 640, 3), np.uint8))  # scale 1, pad 80 rows at the top
    assert d.class_name == 'person'
    assert (d.x, d.y, d.w, d.h) == pytest.approx((270, 140, 100, 200))


def test_offload_detect_cli(media_dir):
    out = subprocess.run([venv_exe('offload_detect'), str(media_dir / 'person.jpg'), '--json'],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (result,) = json.loads(out.stdout)
    assert result['file'].endswith('person.jpg') and result['latency_s'] > 0
    assert any(d['class_name'] == 'person' and d['score'] > 0.8 for d in result['detections'])
    bad = subprocess.run([venv_exe('offload_detect'), '--model', '/nope.onnx', 'x.jpg'],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and 'model file not found' in bad.stderr
