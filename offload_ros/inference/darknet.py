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
Darknet cfg + weights -> ONNX, with pre-processing and box decoding inside the graph.

The exported graph takes `images`: uint8 [1, H, W, 3] in BGR order (OpenCV's), letterboxes it
to `net_size` (a multiple of 32) inside the graph, runs the network and decodes the YOLO heads
into `boxes` [1, N, 4] (centre x, centre y, width, height in pixels of the original image) and
`scores` [1, N, classes] (objectness x class probability). Any KServe-v2 server running ONNX
Runtime (Triton's backend included) can serve it unchanged; NMS runs on the client.

Darknet semantics followed here (darknet src/): batch norm is gamma*(x-mean)/(sqrt(var)+1e-6)
+ beta; 'pad=1' means size//2 padding; a maxpool pads size-1 at the bottom/right; leaky slope
0.1; YOLO boxes are (sigmoid(t) + cell) * stride and exp(t) * anchor.
"""
import dataclasses
import json
import pathlib
from typing import Dict, List, Sequence, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
BN_EPSILON = 1e-6
LAYERS_METADATA = 'darknet_layers'   # JSON [[output tensor, section kind], ...] per layer


class DarknetError(ValueError):
    """The cfg or weights file is malformed or unsupported."""


@dataclasses.dataclass
class Section:
    kind: str
    options: Dict[str, str]

    def int(self, key: str, default: int = None) -> int:
        if key not in self.options:
            if default is None:
                raise DarknetError(f'[{self.kind}] lacks {key}')
            return default
        return int(self.options[key])

    def ints(self, key: str) -> List[int]:
        return [int(v) for v in self.options[key].split(',') if v.strip()]


def parse_cfg(text: str, fix_masks: Dict[int, Sequence[int]] = None) -> List[Section]:
    """
    Parse a Darknet cfg.

    fix_masks maps the index of a [yolo] section (0-based among yolo sections) to a corrected mask,
    e.g. {1: (1, 2, 3)} for the yolov3-tiny cfg defect.
    """
    sections: List[Section] = []
    for raw in text.splitlines():
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        if line.startswith('['):
            sections.append(Section(line.strip('[]').strip(), {}))
        elif '=' in line:
            if not sections:
                raise DarknetError(f'option outside a section: {line!r}')
            key, value = line.split('=', 1)
            sections[-1].options[key.strip()] = value.strip()
    if not sections or sections[0].kind not in ('net', 'network'):
        raise DarknetError('cfg must start with [net]')
    yolo_index = 0
    for section in sections:
        if section.kind == 'yolo':
            if fix_masks and yolo_index in fix_masks:
                section.options['mask'] = ','.join(str(m) for m in fix_masks[yolo_index])
            yolo_index += 1
    return sections


@dataclasses.dataclass
class ConvWeights:
    weight: np.ndarray          # [out, in, k, k], batch norm folded in
    bias: np.ndarray            # [out]
    raw: Dict[str, np.ndarray]  # unfolded parameters for the reference implementation


def load_weights(path: pathlib.Path, sections: List[Section]) -> List[ConvWeights]:
    """Read the weights of every [convolutional] section, in order, checking the file size."""
    data = pathlib.Path(path).read_bytes()
    major, minor, _ = np.frombuffer(data[:12], dtype=np.int32)
    offset = 12 + (8 if major * 10 + minor >= 2 and major < 1000 and minor < 1000 else 4)
    floats = np.frombuffer(data[offset:], dtype=np.float32)
    position = 0
    channels = [int(sections[0].options.get('channels', 3))]
    convs: List[ConvWeights] = []

    def take(count: int) -> np.ndarray:
        nonlocal position
        if position + count > floats.size:
            raise DarknetError(f'{path}: weights file too short for the cfg')
        chunk = floats[position:position + count]
        position += count
        return chunk.astype(np.float32)

    for index, section in enumerate(sections[1:]):
        if section.kind == 'convolutional':
            filters, size = section.int('filters'), section.int('size')
            in_channels = channels[-1]
            raw = {}
            if section.int('batch_normalize', 0):
                raw['beta'] = take(filters)
                raw['gamma'] = take(filters)
                raw['mean'] = take(filters)
                raw['var'] = take(filters)
            else:
                raw['bias'] = take(filters)
            raw['weight'] = take(filters * in_channels * size * size).reshape(
                filters, in_channels, size, size)
            if 'gamma' in raw:
                factor = raw['gamma'] / (np.sqrt(raw['var']) + BN_EPSILON)
                weight = raw['weight'] * factor[:, None, None, None]
                bias = raw['beta'] - raw['mean'] * factor
            else:
                weight, bias = raw['weight'], raw['bias']
            convs.append(ConvWeights(weight.astype(np.float32), bias.astype(np.float32), raw))
            channels.append(filters)
        elif section.kind == 'route':
            layers = [i if i >= 0 else index + i for i in section.ints('layers')]
            channels.append(sum(channels[i + 1] for i in layers))
        elif section.kind in ('maxpool', 'upsample', 'yolo'):
            channels.append(channels[-1])
        else:
            raise DarknetError(f'unsupported section [{section.kind}]')
    if position != floats.size:
        raise DarknetError(f'{path}: {floats.size - position} weights left over for the cfg')
    return convs


@dataclasses.dataclass(frozen=True)
class YoloHead:
    layer: int            # index of the layer feeding the head
    anchors: Tuple[Tuple[float, float], ...]
    classes: int


def yolo_heads(sections: List[Section]) -> List[YoloHead]:
    heads = []
    for index, section in enumerate(sections[1:]):
        if section.kind == 'yolo':
            all_anchors = section.ints('anchors')
            pairs = list(zip(all_anchors[0::2], all_anchors[1::2]))
            anchors = tuple((float(pairs[m][0]), float(pairs[m][1]))
                            for m in section.ints('mask'))
            heads.append(YoloHead(index - 1, anchors, section.int('classes')))
    return heads


class _Graph:
    def __init__(self):
        self.nodes, self.inits, self._n = [], [], 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f'{hint}_{self._n}'

    def const(self, value, hint='c', dtype=np.float32) -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], hint: str = None, **attrs) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def _network(g: _Graph, x: str, sections: List[Section], convs: List[ConvWeights]) -> List[str]:
    """Append the Darknet layers; returns the output name of every layer."""
    outputs: List[str] = []
    conv_iter = iter(convs)
    for index, section in enumerate(sections[1:]):
        if section.kind == 'convolutional':
            conv = next(conv_iter)
            size, stride = section.int('size'), section.int('stride', 1)
            pad = size // 2 if section.int('pad', 0) else 0
            y = g.op('Conv', [x, g.const(conv.weight, 'w'), g.const(conv.bias, 'b')], 'conv',
                     kernel_shape=[size, size], strides=[stride, stride],
                     pads=[pad, pad, pad, pad])
            if section.options.get('activation', 'linear') == 'leaky':
                y = g.op('LeakyRelu', [y], 'leaky', alpha=0.1)
        elif section.kind == 'maxpool':
            size, stride = section.int('size'), section.int('stride', 1)
            extra = size - 1  # darknet pads size-1 at the end; ONNX ignores padded cells
            y = g.op('MaxPool', [x], 'pool', kernel_shape=[size, size], strides=[stride, stride],
                     pads=[0, 0, extra, extra] if stride == 1 else [0, 0, 0, 0])
        elif section.kind == 'upsample':
            s = float(section.int('stride', 2))
            y = g.op('Resize', [x, '', g.const([1.0, 1.0, s, s], 'scales')], 'up',
                     mode='nearest')
        elif section.kind == 'route':
            layers = [i if i >= 0 else index + i for i in section.ints('layers')]
            y = outputs[layers[0]] if len(layers) == 1 else g.op(
                'Concat', [outputs[i] for i in layers], 'route', axis=1)
        elif section.kind == 'yolo':
            y = x
        else:
            raise DarknetError(f'unsupported section [{section.kind}]')
        outputs.append(y)
        x = y
    return outputs


def build_onnx(sections: List[Section], convs: List[ConvWeights], net_size: int = 416,
               preprocess: bool = True) -> onnx.ModelProto:
    """
    Build the ONNX model.

    preprocess=True: the deployable end-to-end graph (uint8 BGR image in, boxes/scores out).
    preprocess=False: float NCHW [1, 3, S, S] RGB 0..1 in, raw head tensors out (for
    checking the network against the reference implementation).
    """
    if net_size % 32:
        raise DarknetError(f'net_size must be a multiple of 32, got {net_size}')
    g = _Graph()
    heads = yolo_heads(sections)
    if not preprocess:
        outputs = _network(g, 'input', sections, convs)
        graph = helper.make_graph(
            g.nodes, 'darknet_raw',
            [helper.make_tensor_value_info('input', TensorProto.FLOAT,
                                           [1, 3, net_size, net_size])],
            [helper.make_tensor_value_info(outputs[h.layer], TensorProto.FLOAT,
                                           [1, None, None, None]) for h in heads], g.inits)
        return _finish(graph)

    # Letterbox inside the graph: scale = min(S/H, S/W), resize, pad with 0.5 grey.
    size_f = float(net_size)
    shape = g.op('Shape', ['images'])
    hw = g.op('Cast', [g.op('Gather', [shape, g.const([1, 2], 'idx', np.int64)])], to=1)
    scale = g.op('ReduceMin', [g.op('Div', [g.const([size_f, size_f]), hw])], keepdims=1)
    rounded = g.op('Floor', [g.op('Add', [g.op('Mul', [hw, scale]), g.const([0.5])])])
    new_hw = g.op('Cast', [rounded], to=7)
    pad_total = g.op('Sub', [g.const([net_size, net_size], dtype=np.int64), new_hw])
    pad_begin = g.op('Div', [pad_total, g.const([2, 2], dtype=np.int64)])
    pad_end = g.op('Sub', [pad_total, pad_begin])
    x = g.op('Cast', ['images'], to=1)
    x = g.op('Transpose', [x], perm=[0, 3, 1, 2])
    x = g.op('Gather', [x, g.const([2, 1, 0], 'bgr2rgb', np.int64)], axis=1)
    x = g.op('Mul', [x, g.const(1.0 / 255.0)])
    sizes = g.op('Concat', [g.const([1, 3], dtype=np.int64), new_hw], axis=0)
    x = g.op('Resize', [x, '', '', sizes], 'letterbox', mode='linear',
             coordinate_transformation_mode='half_pixel')
    zeros = g.const([0, 0], dtype=np.int64)
    pads = g.op('Concat', [zeros, pad_begin, zeros, pad_end], axis=0)
    x = g.op('Pad', [x, pads, g.const(0.5)], mode='constant')
    outputs = _network(g, x, sections, convs)
    layers = [[name, section.kind] for name, section in zip(outputs, sections[1:])]

    boxes, scores = [], []
    for head in heads:
        grid = net_size // _stride_of(sections, head)
        stride = net_size / grid
        count = len(head.anchors)
        t = g.op('Reshape', [outputs[head.layer],
                             g.const([1, count, 5 + head.classes, grid, grid], dtype=np.int64)])
        t = g.op('Transpose', [t], perm=[0, 1, 3, 4, 2])
        t = g.op('Reshape', [t, g.const([1, count * grid * grid, 5 + head.classes],
                                        dtype=np.int64)])
        cells_y, cells_x = np.meshgrid(np.arange(grid), np.arange(grid), indexing='ij')
        offset = np.stack([np.tile(cells_x.ravel(), count), np.tile(cells_y.ravel(), count)], -1)
        anchor = np.repeat(np.array(head.anchors), grid * grid, axis=0)

        def part(lo, hi):
            return g.op('Slice', [t, g.const([lo], dtype=np.int64),
                                  g.const([hi], dtype=np.int64),
                                  g.const([2], dtype=np.int64)])
        xy = g.op('Mul', [g.op('Add', [g.op('Sigmoid', [part(0, 2)]), g.const(offset[None])]),
                          g.const(stride)])
        wh = g.op('Mul', [g.op('Exp', [part(2, 4)]), g.const(anchor[None])])
        boxes.append(g.op('Concat', [xy, wh], axis=2))
        scores.append(g.op('Mul', [g.op('Sigmoid', [part(4, 5)]),
                                   g.op('Sigmoid', [part(5, 5 + head.classes)])]))
    box_net = g.op('Concat', boxes, axis=1)
    # Undo the letterbox: centre (c - pad) / scale, size / scale; pad_begin is [top, left].
    pad_xy = g.op('Cast', [g.op('Gather', [pad_begin, g.const([1, 0], 'yx2xy', np.int64)])],
                  to=1)
    shift = g.op('Concat', [pad_xy, g.const([0.0, 0.0])], axis=0)
    nodes_out = g.op('Div', [g.op('Sub', [box_net, shift]), scale], 'boxes')
    g.nodes.append(helper.make_node('Identity', [nodes_out], ['boxes']))
    g.nodes.append(helper.make_node('Identity', [g.op('Concat', scores, axis=1)], ['scores']))
    classes = heads[0].classes
    graph = helper.make_graph(
        g.nodes, 'yolo_e2e',
        [helper.make_tensor_value_info('images', TensorProto.UINT8, [1, 'height', 'width', 3])],
        [helper.make_tensor_value_info('boxes', TensorProto.FLOAT, [1, 'boxes', 4]),
         helper.make_tensor_value_info('scores', TensorProto.FLOAT, [1, 'boxes', classes])],
        g.inits)
    # The tensor each Darknet layer outputs, so split inference can cut after a layer.
    return _finish(graph, {LAYERS_METADATA: json.dumps(layers)})


def _stride_of(sections: List[Section], head: YoloHead) -> int:
    """Total down-sampling of the layer feeding a head (product of strides along its path)."""
    strides: List[int] = []
    for index, section in enumerate(sections[1:]):
        previous = strides[-1] if strides else 1
        if section.kind in ('convolutional', 'maxpool'):
            strides.append(previous * section.int('stride', 1))
        elif section.kind == 'upsample':
            strides.append(previous // section.int('stride', 2))
        elif section.kind == 'route':
            layers = [i if i >= 0 else index + i for i in section.ints('layers')]
            strides.append(strides[layers[0]])
        else:
            strides.append(previous)
    return strides[head.layer]


def _finish(graph, metadata: Dict[str, str] = None) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                              producer_name='offload_ros.darknet')
    if metadata:
        helper.set_model_props(model, metadata)
    model.ir_version = 8  # readable by older ONNX Runtime builds (Triton's included)
    onnx.checker.check_model(model)
    return model


def convert(cfg_path: pathlib.Path, weights_path: pathlib.Path, out_path: pathlib.Path,
            net_size: int = 416, fix_masks: Dict[int, Sequence[int]] = None) -> pathlib.Path:
    sections = parse_cfg(pathlib.Path(cfg_path).read_text(), fix_masks)
    convs = load_weights(weights_path, sections)
    model = build_onnx(sections, convs, net_size)
    out_path = pathlib.Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix('.tmp')
    onnx.save(model, str(tmp))
    tmp.replace(out_path)
    return out_path
