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
Split (collaborative) inference: the end-to-end detector cut after a Darknet layer.

The head (uint8 image in -> the tensors crossing the cut) runs on the robot, the tail (those
tensors -> boxes, scores) on a worker. The cut is a position in the exported graph's node
order, right after the node that outputs the chosen layer; the crossing tensors are every
tensor made before the cut and read after it: the layer's output, any earlier layer a later
route concatenates, and the letterbox's scale and padding that the box decoding needs. Head
and tail are extracted with onnx.utils.Extractor, so head + tail computes exactly what the
whole graph does.

Only our Darknet export can be cut: it records each layer's output tensor in its metadata.
"""
import dataclasses
import json
import pathlib
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
import onnx.utils
from onnx import shape_inference

from offload_ros.inference.darknet import LAYERS_METADATA
from offload_ros.inference.detector import DetectorError, check_image, make_session

OUTPUTS = ('boxes', 'scores')
WIRE_DTYPES = {'FP32': np.float32, 'FP16': np.float16}
CUTTABLE = ('convolutional', 'maxpool')


class SplitError(DetectorError):
    """The model cannot be cut there; the message names the layer and why."""


def layer_outputs(model: onnx.ModelProto) -> List[Tuple[str, str]]:
    """(output tensor, section kind) of each Darknet layer, from the export's metadata."""
    props = {p.key: p.value for p in model.metadata_props}
    if LAYERS_METADATA not in props:
        raise SplitError(f'the model has no {LAYERS_METADATA!r} metadata: only the Darknet '
                         'export of offload_ros (make bootstrap provisions it) can be split')
    return [tuple(entry) for entry in json.loads(props[LAYERS_METADATA])]


def crossing_tensors(model: onnx.ModelProto, layer: int) -> List[str]:
    """Tensors made at or before `layer` and read after it, in the order first read."""
    layers = layer_outputs(model)
    if not 0 <= layer < len(layers):
        raise SplitError(f'split layer {layer} outside 0..{len(layers) - 1}')
    name, kind = layers[layer]
    if kind not in CUTTABLE:
        raise SplitError(f'split layer {layer} is a {kind} layer; cut after a '
                         f'convolutional or maxpool layer')
    nodes = list(model.graph.node)
    producer = next(i for i, n in enumerate(nodes) if name in n.output)
    made = {t for n in nodes[:producer + 1] for t in n.output}
    made.update(i.name for i in model.graph.input)
    crossing: List[str] = []
    for node in nodes[producer + 1:]:
        for t in node.input:
            if t in made and t not in crossing:
                crossing.append(t)
    if any(i.name in crossing for i in model.graph.input):
        raise SplitError(f'split layer {layer}: the tail would need the input image')
    return crossing


def cut(model: onnx.ModelProto, layer: int) -> Tuple[onnx.ModelProto, onnx.ModelProto,
                                                     List[str]]:
    """(head, tail, crossing tensor names) for a cut right after Darknet layer `layer`."""
    crossing = crossing_tensors(model, layer)
    inferred = shape_inference.infer_shapes(model)   # value infos for the crossing tensors
    extractor = onnx.utils.Extractor(inferred)
    inputs = [i.name for i in model.graph.input]
    head = extractor.extract_model(inputs, crossing)
    tail = extractor.extract_model(crossing, list(OUTPUTS))
    for part in (head, tail):
        part.ir_version = model.ir_version
        del part.metadata_props[:]
    return head, tail, crossing


@dataclasses.dataclass(frozen=True)
class SplitProfile:
    layer: int
    head_s: float            # mean head time on this machine (s)
    tail_s: float            # mean tail time on this machine (s)
    intermediate_bytes: int  # bytes of the crossing tensors on the wire
    crossing: Tuple[str, ...]


class Head:
    """The robot's part: image -> crossing tensors (cast to the wire type)."""

    def __init__(self, model: onnx.ModelProto, layer: int, threads: int = 0,
                 providers: Optional[Sequence[str]] = None, wire_dtype: str = 'FP16'):
        if wire_dtype not in WIRE_DTYPES:
            raise SplitError(f'wire_dtype must be one of {sorted(WIRE_DTYPES)}, '
                             f'got {wire_dtype!r}')
        head, _, self.crossing = cut(model, layer)
        self.layer, self.wire_dtype = layer, wire_dtype
        self.session = make_session(head.SerializeToString(), threads, providers,
                                    f'head of split@{layer}')
        self.input = self.session.get_inputs()[0].name

    def run(self, image_bgr: np.ndarray) -> Dict[str, np.ndarray]:
        check_image(image_bgr)
        values = self.session.run(self.crossing, {self.input: image_bgr[None]})
        wire = WIRE_DTYPES[self.wire_dtype]
        # Feature maps travel in the wire type; the letterbox's scale and padding as they are
        # (a half-precision scale would shift boxes by ~0.2 px).
        return {n: v.astype(wire) if v.ndim == 4 else v for n, v in zip(self.crossing, values)}


class Tail:
    """The worker's part: crossing tensors -> (boxes [N, 4], scores [N, C])."""

    def __init__(self, model: onnx.ModelProto, layer: int, threads: int = 0,
                 providers: Optional[Sequence[str]] = None):
        head, tail, self.crossing = cut(model, layer)
        self.layer = layer
        self.session = make_session(tail.SerializeToString(), threads, providers,
                                    f'tail of split@{layer}')
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        # The letterbox makes the crossing shapes independent of the image size: learn them
        # from one head run on a small image, so a wrong tensor is refused before inference.
        probe = make_session(head.SerializeToString(), 1, providers, f'head of split@{layer}')
        self.shapes = {n: tuple(v.shape) for n, v in zip(self.crossing, probe.run(
            self.crossing, {probe.get_inputs()[0].name: np.zeros((1, 32, 32, 3), np.uint8)}))}

    def check(self, tensors: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Return the inputs the tail needs, cast to its types; SplitError names what is wrong."""
        missing = [n for n in self.crossing if n not in tensors]
        extra = [n for n in tensors if n not in self.inputs]
        if missing or extra:
            raise SplitError(f'split@{self.layer}: expected inputs {self.crossing}, missing '
                             f'{missing}, unexpected {extra}')
        feed = {}
        for name, info in self.inputs.items():
            value = tensors[name]
            want = np.float32 if info.type == 'tensor(float)' else np.int64
            if value.dtype.kind != np.dtype(want).kind:
                raise SplitError(f'split@{self.layer}: {name} is {value.dtype}, expected '
                                 f'{np.dtype(want).name}')
            if tuple(value.shape) != self.shapes[name]:
                raise SplitError(f'split@{self.layer}: {name} has shape {list(value.shape)}, '
                                 f'expected {list(self.shapes[name])}')
            feed[name] = value.astype(want, copy=False)
        return feed

    def run(self, tensors: Dict[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        return self.run_checked(self.check(tensors))

    def run_checked(self, feed: Dict[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """run() on inputs check() already returned."""
        boxes, scores = self.session.run(list(OUTPUTS), feed)
        return boxes[0], scores[0]


def load(model_path: pathlib.Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(model_path))
    except Exception as e:  # onnx raises DecodeError and friends on a bad file
        raise SplitError(f'{model_path}: not an ONNX model ({e})') from e


def mean_time(run, argument, runs: int, warmup: int = 2, clock=time.perf_counter):
    """(mean seconds of run(argument) over `runs` calls after `warmup`, the last result)."""
    for _ in range(warmup):
        result = run(argument)
    total = 0.0
    for _ in range(runs):
        start = clock()
        result = run(argument)
        total += clock() - start
    return total / runs, result


def profile(head: Head, tail: Tail, image_bgr: np.ndarray, runs: int = 10,
            clock=time.perf_counter) -> SplitProfile:
    """Head and tail times on this machine and the wire size of one split point."""
    head_s, tensors = mean_time(head.run, image_bgr, runs, clock=clock)
    tail_s, _ = mean_time(tail.run, tensors, runs, clock=clock)
    return SplitProfile(head.layer, head_s, tail_s,
                        int(sum(t.nbytes for t in tensors.values())), tuple(head.crossing))
