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
A plain numpy implementation of the Darknet forward pass, as the test oracle for the export.

Written from Darknet's semantics (unfolded batch norm with sqrt(var)+1e-6, leaky 0.1,
bottom/right-padded maxpool), independent of the ONNX graph builder.
"""
import numpy as np

from offload_ros.inference import darknet


def conv2d(x, weight, stride, pad):
    c, h, w = x.shape
    out_c, _, k, _ = weight.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    cols = np.empty((c, k, k, oh, ow), dtype=np.float64)
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = xp[:, i:i + stride * oh:stride, j:j + stride * ow:stride]
    return np.tensordot(weight.astype(np.float64), cols, axes=([1, 2, 3], [0, 1, 2]))


def maxpool(x, size, stride):
    c, h, w = x.shape
    extra = size - 1 if stride == 1 else 0
    xp = np.pad(x, ((0, 0), (0, extra), (0, extra)), constant_values=-np.inf)
    oh = (h + extra - size) // stride + 1
    ow = (w + extra - size) // stride + 1
    out = np.full((c, oh, ow), -np.inf)
    for i in range(size):
        for j in range(size):
            out = np.maximum(out, xp[:, i:i + stride * oh:stride, j:j + stride * ow:stride])
    return out


def forward(sections, convs, image_chw):
    """Raw head outputs for a float [3, S, S] input."""
    outputs, x = [], image_chw.astype(np.float64)
    conv_iter = iter(convs)
    for index, section in enumerate(sections[1:]):
        if section.kind == 'convolutional':
            raw = next(conv_iter).raw
            size = section.int('size')
            y = conv2d(x, raw['weight'], section.int('stride', 1),
                       size // 2 if section.int('pad', 0) else 0)
            if 'gamma' in raw:
                y = (y - raw['mean'][:, None, None]) / (
                    np.sqrt(raw['var'][:, None, None]) + darknet.BN_EPSILON)
                y = y * raw['gamma'][:, None, None] + raw['beta'][:, None, None]
            else:
                y = y + raw['bias'][:, None, None]
            if section.options.get('activation') == 'leaky':
                y = np.where(y > 0, y, 0.1 * y)
        elif section.kind == 'maxpool':
            y = maxpool(x, section.int('size'), section.int('stride', 1))
        elif section.kind == 'upsample':
            s = section.int('stride', 2)
            y = x.repeat(s, axis=1).repeat(s, axis=2)
        elif section.kind == 'route':
            layers = [i if i >= 0 else index + i for i in section.ints('layers')]
            y = np.concatenate([outputs[i] for i in layers], axis=0)
        else:
            y = x
        outputs.append(y)
        x = y
    return [outputs[h.layer] for h in darknet.yolo_heads(sections)]
