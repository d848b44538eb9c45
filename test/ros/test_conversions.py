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

"""The one conversion module: round trips and typed errors."""
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from offload_ros.core.types import Box, Observation
from conftest import jpeg_header_only
from offload_ros.inference.detector import Detection
from offload_ros.inference.picture import BadImage
from offload_ros.ros import conversions as conv


@pytest.fixture
def image():
    rng = np.random.default_rng(3)
    return rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)


def header():
    return Header(stamp=conv.s_to_stamp(1700000000.123456789), frame_id='cam')


def test_bgr_round_trip(image):
    msg = conv.bgr_to_image(image, header())
    assert msg.step == 64 * 3 and msg.encoding == 'bgr8'
    np.testing.assert_array_equal(conv.image_to_bgr(msg), image)


def test_padded_step_and_other_encodings(image):
    padded = np.zeros((48, 64 * 3 + 8), np.uint8)
    padded[:, :192] = image[:, :, ::-1].reshape(48, 192)        # rgb8 with 8 bytes of padding
    msg = Image(height=48, width=64, encoding='rgb8', step=200)
    msg.data = padded.tobytes()
    np.testing.assert_array_equal(conv.image_to_bgr(msg), image)
    mono = Image(height=2, width=2, encoding='mono8', step=2)
    mono.data = bytes([0, 50, 100, 255])
    assert conv.image_to_bgr(mono)[1, 1].tolist() == [255, 255, 255]


@pytest.mark.parametrize('mutate,needle', [
    (lambda m: setattr(m, 'encoding', '16UC1'), 'unsupported encoding'),
    (lambda m: setattr(m, 'step', 10), 'step'),
    (lambda m: setattr(m, 'data', b'\x00' * 5), 'data size'),
    (lambda m: setattr(m, 'height', 0), 'empty image'),
])
def test_malformed_images_raise_conversion_error(image, mutate, needle):
    msg = conv.bgr_to_image(image, header())
    mutate(msg)
    with pytest.raises(conv.ConversionError, match=needle):
        conv.image_to_bgr(msg)


def test_compressed_round_trip_and_errors():
    yy, xx = np.mgrid[0:48, 0:64]  # smooth content, as in camera images
    image = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=2).astype(np.uint8)
    msg = conv.bgr_to_compressed(image, header(), quality=95)
    assert msg.format == 'jpeg'
    decoded = conv.compressed_to_picture(msg).bgr
    assert decoded.shape == image.shape and np.abs(decoded.astype(int) - image).mean() < 3
    assert conv.compressed_to_picture(msg).size == (64, 48)
    # A JPEG is checked by its header on receipt; its data only when pixels are needed.
    lazy = conv.compressed_to_picture(CompressedImage(
        format='jpeg', data=jpeg_header_only(bytes(msg.data))))
    assert lazy.size == (64, 48)
    with pytest.raises(BadImage, match='does not decode'):
        lazy.bgr
    for fmt, data, needle in (('tiff', msg.data, 'unsupported compressed format'),
                              ('jpeg', b'', 'empty'), ('jpeg', b'\xff\xd8junk', 'not a JPEG'),
                              ('jpeg', b'\xff\xd8\xff\x00junk', 'frame header'),
                              ('png', b'\x89PNG\r\n\x1a\njunk', 'no IHDR'),
                              ('png', b'GIF89a' + bytes(20), 'GIF')):
        bad = CompressedImage(format=fmt)
        bad.data = data
        with pytest.raises(conv.ConversionError, match=needle):
            conv.compressed_to_picture(bad)


def test_stamp_round_trip():
    stamp = conv.s_to_stamp(12.5)
    assert (stamp.sec, stamp.nanosec) == (12, 500_000_000)
    assert conv.stamp_to_s(stamp) == 12.5


def test_detections_round_trip_keeps_header_and_boxes():
    dets = [Detection(10, 20, 30, 60, 0, 'person', 0.9), Detection(1, 2, 3, 4, 16, 'dog', 0.4)]
    h = header()
    msg = conv.detections_to_msg(dets, h)
    assert msg.header.stamp == h.stamp and msg.header.frame_id == 'cam'
    assert all(d.header.stamp == h.stamp for d in msg.detections)
    obs = conv.msg_to_observations(msg)
    assert obs[0].box == Box(10, 20, 30, 60) and obs[0].class_name == 'person'
    assert obs[1].score == pytest.approx(0.4)
    tracks = conv.observations_to_msg([Observation(Box(1, 2, 3, 4), 'person', 0.5, '7')], h)
    assert tracks.detections[0].id == '7'
    assert conv.msg_to_observations(tracks)[0].track_id == '7'
