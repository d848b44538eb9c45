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
All message <-> core conversions, in one place (cf.

cv_bridge), with a typed error.
"""
from typing import List, Sequence

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose

from offload_ros.core.types import Box, Observation
from offload_ros.inference.detector import Detection
from offload_ros.inference import picture as pictures
from offload_ros.inference.picture import BadImage, ImageLimits, Picture

CHANNELS = {'bgr8': 3, 'rgb8': 3, 'mono8': 1, 'bgra8': 4, 'rgba8': 4}


class ConversionError(BadImage):
    """A message that cannot be converted; the message names what is wrong."""


def stamp_to_s(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_to_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def s_to_stamp(t_s: float) -> Time:
    sec = int(t_s // 1)
    return Time(sec=sec, nanosec=min(999_999_999, int(round((t_s - sec) * 1e9))))


def ns_to_stamp(t_ns: int) -> Time:
    """Exact conversion from integer nanoseconds (bag timestamps)."""
    return Time(sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000)


def image_to_bgr(msg: Image, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """sensor_msgs/Image -> uint8 BGR [H, W, 3], honouring row padding (step)."""
    channels = CHANNELS.get(msg.encoding)
    if channels is None:
        raise ConversionError(f'unsupported encoding {msg.encoding!r} '
                              f'(supported: {", ".join(CHANNELS)})')
    if msg.height == 0 or msg.width == 0:
        raise ConversionError('empty image (height or width is 0)')
    try:
        limits.check_size(msg.width, msg.height, f'{msg.encoding} image')
    except BadImage as e:
        raise ConversionError(str(e)) from e
    row = msg.width * channels
    if msg.step < row:
        raise ConversionError(f'step {msg.step} smaller than width*channels {row}')
    if len(msg.data) != msg.step * msg.height:
        raise ConversionError(f'data size {len(msg.data)} != step*height '
                              f'{msg.step * msg.height}')
    buf = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)[:, :row]
    pixels = buf.reshape(msg.height, msg.width, channels)
    if msg.encoding == 'bgr8':
        return np.ascontiguousarray(pixels)
    if msg.encoding == 'rgb8':
        return np.ascontiguousarray(pixels[:, :, ::-1])
    if msg.encoding == 'mono8':
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    code = cv2.COLOR_BGRA2BGR if msg.encoding == 'bgra8' else cv2.COLOR_RGBA2BGR
    return cv2.cvtColor(np.ascontiguousarray(pixels), code)


def bgr_to_image(image: np.ndarray, header: Header) -> Image:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ConversionError(f'expected uint8 [H, W, 3], got {image.dtype} {image.shape}')
    msg = Image(header=header, height=image.shape[0], width=image.shape[1], encoding='bgr8',
                is_bigendian=0, step=image.shape[1] * 3)
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def compressed_to_picture(msg: CompressedImage,
                          limits: ImageLimits = ImageLimits()) -> Picture:
    """
    Convert: a JPEG keeps its bytes (decoded only if pixels are needed), a PNG is decoded.

    Either way its header is checked against `limits` first (the bytes decide the format: the
    `format` field only has to name one of them).
    """
    fmt = msg.format.lower()
    if not any(k in fmt for k in ('jpeg', 'jpg', 'png')):
        raise ConversionError(f'unsupported compressed format {msg.format!r} (jpeg or png)')
    if len(msg.data) == 0:
        raise ConversionError('empty compressed image')
    data = bytes(msg.data)
    try:
        if pictures.image_format(data) == 'png':
            return Picture(bgr=pictures.decode(data, limits))
        return Picture(jpeg=data, limits=limits)
    except BadImage as e:
        raise ConversionError(f'{msg.format}: {e}') from e


def bgr_to_compressed(image: np.ndarray, header: Header, quality: int = 80) -> CompressedImage:
    ok, data = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ConversionError('JPEG encoding failed')
    msg = CompressedImage(header=header, format='jpeg')
    msg.data = data.tobytes()
    return msg


def _detection2d(header: Header, box: Box, class_name: str, score: float,
                 track_id: str = '') -> Detection2D:
    det = Detection2D(header=header, id=track_id)
    cx, cy = box.center
    det.bbox = BoundingBox2D(size_x=float(box.w), size_y=float(box.h))
    det.bbox.center.position.x = float(cx)
    det.bbox.center.position.y = float(cy)
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis.class_id = class_name
    hyp.hypothesis.score = float(score)
    det.results = [hyp]
    return det


def detections_to_msg(detections: Sequence[Detection], header: Header) -> Detection2DArray:
    """Convert detections (pixel boxes) to a Detection2DArray; class_id holds the name."""
    return Detection2DArray(header=header, detections=[
        _detection2d(header, Box(d.x, d.y, d.w, d.h), d.class_name, d.score)
        for d in detections])


def observations_to_msg(observations: Sequence[Observation], header: Header) -> Detection2DArray:
    return Detection2DArray(header=header, detections=[
        _detection2d(header, o.box, o.class_name, o.score, o.track_id or '')
        for o in observations])


def msg_to_observations(msg: Detection2DArray) -> List[Observation]:
    out = []
    for det in msg.detections:
        if not det.results:
            continue
        best = max(det.results, key=lambda r: r.hypothesis.score)
        w, h = det.bbox.size_x, det.bbox.size_y
        box = Box(det.bbox.center.position.x - w / 2, det.bbox.center.position.y - h / 2, w, h)
        out.append(Observation(box, best.hypothesis.class_id, best.hypothesis.score,
                               det.id or None))
    return out
