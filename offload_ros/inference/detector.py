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

"""onnxruntime object detector: model layouts, NMS, and a measured service-time profile."""
import dataclasses
import pathlib
import time
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import onnxruntime as ort

LAYOUTS = ('auto', 'e2e', 'yolov8', 'yolov5')
PREFERRED_PROVIDERS = ('TensorrtExecutionProvider', 'CUDAExecutionProvider',
                       'CPUExecutionProvider')


class DetectorError(ValueError):
    """A model or image the detector cannot use; the message says why."""


@dataclasses.dataclass(frozen=True)
class Detection:
    """One detection in pixel coordinates of the original image (x, y = top-left corner)."""

    x: float
    y: float
    w: float
    h: float
    class_id: int
    class_name: str
    score: float

    def to_json(self) -> dict:
        return {'class_id': self.class_id, 'class_name': self.class_name,
                'score': round(float(self.score), 4),
                'box_xywh': [round(float(v), 1) for v in (self.x, self.y, self.w, self.h)]}


@dataclasses.dataclass(frozen=True)
class ServiceProfile:
    """Measured inference service time (the s_dev / s_E of the latency models)."""

    mean_s: float
    var_s2: float
    samples: int
    provider: str


def load_class_names(path: Optional[pathlib.Path], count: int) -> List[str]:
    if path is None:
        return [f'class_{i}' for i in range(count)]
    names = [line.strip() for line in pathlib.Path(path).read_text().splitlines()
             if line.strip()]
    if len(names) < count:
        raise DetectorError(f'{path}: {len(names)} class names for a {count}-class model')
    return names


def choose_providers(available: Sequence[str] = None) -> List[str]:
    available = ort.get_available_providers() if available is None else available
    return [p for p in PREFERRED_PROVIDERS if p in available] or ['CPUExecutionProvider']


def nms(boxes_xywh: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
        iou_threshold: float) -> np.ndarray:
    """Per-class greedy non-maximum suppression; returns kept indices by descending score."""
    order = np.argsort(-scores, kind='stable')
    x1, y1 = boxes_xywh[:, 0], boxes_xywh[:, 1]
    x2, y2 = x1 + boxes_xywh[:, 2], y1 + boxes_xywh[:, 3]
    area = boxes_xywh[:, 2] * boxes_xywh[:, 3]
    keep = []
    suppressed = np.zeros(len(scores), dtype=bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        same = (class_ids == class_ids[i]) & ~suppressed
        inter_w = np.clip(np.minimum(x2[i], x2) - np.maximum(x1[i], x1), 0, None)
        inter_h = np.clip(np.minimum(y2[i], y2) - np.maximum(y1[i], y1), 0, None)
        inter = inter_w * inter_h
        iou = inter / np.maximum(area[i] + area - inter, 1e-9)
        suppressed |= same & (iou > iou_threshold)
    return np.array(keep, dtype=np.int64)


def postprocess(boxes_cxcywh: np.ndarray, scores: np.ndarray, names: Sequence[str],
                score_threshold: float, iou_threshold: float,
                image_size: Tuple[int, int]) -> List[Detection]:
    """
    Class-wise best score, threshold, clip to the image, NMS.

    image_size is (width, height).
    """
    class_ids = scores.argmax(axis=1)
    best = scores[np.arange(len(scores)), class_ids]
    mask = best >= score_threshold
    if not mask.any():
        return []
    b, s, c = boxes_cxcywh[mask], best[mask], class_ids[mask]
    width, height = image_size
    x1 = np.clip(b[:, 0] - b[:, 2] / 2, 0, width)
    y1 = np.clip(b[:, 1] - b[:, 3] / 2, 0, height)
    x2 = np.clip(b[:, 0] + b[:, 2] / 2, 0, width)
    y2 = np.clip(b[:, 1] + b[:, 3] / 2, 0, height)
    xywh = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)
    keep = nms(xywh, s, c, iou_threshold)
    return [Detection(*map(float, xywh[i]), int(c[i]), names[int(c[i])], float(s[i]))
            for i in keep]


def letterbox(image_bgr: np.ndarray, size: int) -> Tuple[np.ndarray, float, Tuple[int, int]]:
    """Client-side letterbox for float-input (Ultralytics) models: RGB 0..1 NCHW, grey pad."""
    height, width = image_bgr.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = int(round(width * scale)), int(round(height * scale))
    resized = cv2.resize(image_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas = np.full((size, size, 3), 114, dtype=np.uint8)
    canvas[top:top + new_h, left:left + new_w] = resized
    tensor = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    return np.ascontiguousarray(tensor), scale, (left, top)


def make_session(model, threads: int = 0, providers: Optional[Sequence[str]] = None,
                 label: str = 'model') -> ort.InferenceSession:
    """Return an onnxruntime session for a model file path or serialized bytes."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle intra-op threads spin by default, stealing the cores that HTTP handling, JPEG
    # decoding and the ROS executor need between inferences (measured on 2 cores).
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    try:
        return ort.InferenceSession(model, options,
                                    providers=list(providers or choose_providers()))
    except Exception as e:  # onnxruntime raises its own untyped errors on bad files
        raise DetectorError(f'{label}: onnxruntime cannot load it ({e})') from e


class Detector:
    """
    A detector over an ONNX model in one of the supported output layouts.

    'e2e': our Darknet export (uint8 BGR image in; boxes + scores out, in image pixels).
    'yolov8': Ultralytics v8/11, float [1,3,S,S] in, [1, 4+C, N] out (no objectness).
    'yolov5': Ultralytics v5, float [1,3,S,S] in, [1, N, 5+C] out (with objectness).
    'auto' picks from the input type and output shape.
    """

    def __init__(self, model_path: pathlib.Path, names_path: Optional[pathlib.Path] = None,
                 layout: str = 'auto', score_threshold: float = 0.3,
                 iou_threshold: float = 0.45, threads: int = 0,
                 providers: Optional[Sequence[str]] = None):
        if layout not in LAYOUTS:
            raise DetectorError(f'layout must be one of {LAYOUTS}, got {layout!r}')
        if not 0.0 <= score_threshold <= 1.0 or not 0.0 <= iou_threshold <= 1.0:
            raise DetectorError('score_threshold and iou_threshold must be in [0, 1]')
        if threads < 0:
            raise DetectorError(f'threads must be >= 0 (0: onnxruntime default), got {threads}')
        model_path = pathlib.Path(model_path)
        if not model_path.is_file():
            raise DetectorError(f'model file not found: {model_path}')
        self.model_path = model_path
        self.threads = threads
        self.session = make_session(str(model_path), threads, providers, str(model_path))
        self.providers = self.session.get_providers()
        self.provider = self.providers[0]
        self.input = self.session.get_inputs()[0]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.layout = self._detect_layout() if layout == 'auto' else layout
        self.classes = self._class_count()
        self.names = load_class_names(names_path, self.classes)
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        shape = self.input.shape
        self.input_size = shape[2] if self.layout != 'e2e' and isinstance(shape[2], int) \
            else 640

    def _detect_layout(self) -> str:
        if self.input.type == 'tensor(uint8)' and len(self.outputs) == 2:
            return 'e2e'
        shape = self.session.get_outputs()[0].shape
        if len(shape) == 3 and isinstance(shape[1], int) and isinstance(shape[2], int):
            return 'yolov8' if shape[1] < shape[2] else 'yolov5'
        if len(shape) == 3 and isinstance(shape[1], int):
            return 'yolov8'
        if len(shape) == 3 and isinstance(shape[2], int):
            return 'yolov5'
        raise DetectorError(f'cannot tell the layout from output shape {shape}; set layout')

    def _class_count(self) -> int:
        shape = self.session.get_outputs()[1 if self.layout == 'e2e' else 0].shape
        if self.layout == 'e2e':
            return int(shape[2])
        if self.layout == 'yolov8':
            return int(shape[1]) - 4
        return int(shape[2]) - 5

    def run_raw(self, image_bgr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Inference only: (boxes cx,cy,w,h in image pixels [N,4], scores [N,C])."""
        check_image(image_bgr)
        if self.layout == 'e2e':
            boxes, scores = self.session.run(self.outputs, {self.input.name: image_bgr[None]})
            return boxes[0], scores[0]
        tensor, scale, (left, top) = letterbox(image_bgr, self.input_size)
        out = self.session.run(self.outputs[:1], {self.input.name: tensor})[0][0]
        if self.layout == 'yolov8':
            out = out.T
            boxes, scores = out[:, :4].copy(), out[:, 4:]
        else:
            boxes, scores = out[:, :4].copy(), out[:, 5:] * out[:, 4:5]
        boxes[:, 0] = (boxes[:, 0] - left) / scale
        boxes[:, 1] = (boxes[:, 1] - top) / scale
        boxes[:, 2:] /= scale
        return boxes, scores

    def detect(self, image_bgr: np.ndarray) -> List[Detection]:
        boxes, scores = self.run_raw(image_bgr)
        return postprocess(boxes, scores, self.names, self.score_threshold, self.iou_threshold,
                           (image_bgr.shape[1], image_bgr.shape[0]))

    def profile(self, image_bgr: np.ndarray, runs: int = 20, warmup: int = 3,
                clock=time.perf_counter) -> ServiceProfile:
        """Warm up, then measure the service time (inference + NMS) of `runs` calls."""
        if runs < 2:
            raise DetectorError(f'runs must be >= 2, got {runs}')
        for _ in range(warmup):
            self.detect(image_bgr)
        samples = []
        for _ in range(runs):
            start = clock()
            self.detect(image_bgr)
            samples.append(clock() - start)
        return ServiceProfile(float(np.mean(samples)), float(np.var(samples, ddof=1)), runs,
                              self.provider)


def check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise DetectorError('image must be a uint8 array of shape [H, W, 3] (BGR), got '
                            f'{getattr(image, "dtype", type(image))} '
                            f'{getattr(image, "shape", "")}')


def default_detector(**kwargs) -> Detector:
    from offload_ros.inference import models
    return Detector(models.ensure_default_model(), models.default_names_path(), **kwargs)
