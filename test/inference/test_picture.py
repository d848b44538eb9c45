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

"""Received JPEGs: header parsing, lazy decoding, offloading the bytes as they came."""
import cv2
import numpy as np
import pytest

from conftest import jpeg_header_only
from offload_ros.inference.picture import BadImage, Picture, jpeg_size
from offload_ros.worker.client import WorkerClient


def encode(image, *flags) -> bytes:
    ok, data = cv2.imencode('.jpg', image, list(flags))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize('size', [(640, 480), (320, 240), (77, 31)])
@pytest.mark.parametrize('progressive', [0, 1])
def test_jpeg_size_reads_the_frame_header(street, size, progressive):
    data = encode(cv2.resize(street, size), cv2.IMWRITE_JPEG_PROGRESSIVE, progressive)
    assert jpeg_size(data) == size
    # Fill bytes before a marker are allowed.
    assert jpeg_size(data[:2] + b'\xff\xff' + data[2:]) == size


def test_jpeg_size_rejects_what_is_not_a_jpeg(street):
    data = encode(street)
    cases = [(b'\x89PNG\r\n\x1a\n' + data, 'no start-of-image'),
             (data[:20], 'no frame header'),
             (b'\xff\xd8\x00\x10' + bytes(20), 'marker expected')]
    i = data.index(b'\xff\xc0')
    zero = bytearray(data)
    zero[i + 5:i + 9] = b'\x00\x00\x00\x00'     # height and width 0
    cases.append((bytes(zero), '0x0'))
    for bad, needle in cases:
        with pytest.raises(BadImage, match=needle):
            jpeg_size(bad)


def test_picture_decodes_on_first_use_only(street):
    data = encode(street)
    picture = Picture(jpeg=data)
    assert picture.size == (street.shape[1], street.shape[0]) and not picture.decoded
    pixels = picture.bgr
    assert picture.decoded and picture.bgr is pixels   # once
    assert np.array_equal(pixels, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    bad = Picture(jpeg=jpeg_header_only(data))    # the header parses: the damage shows on decode
    assert bad.size == picture.size
    with pytest.raises(BadImage, match='does not decode'):
        bad.bgr
    with pytest.raises(ValueError, match='pixels or JPEG'):
        Picture()


def test_client_forwards_a_received_jpeg_unchanged(street):
    data = encode(street, cv2.IMWRITE_JPEG_QUALITY, 95)
    client = WorkerClient('http://127.0.0.1:1', jpeg_quality=50)
    tensor = client.encode(Picture(jpeg=data))
    assert tensor.name == 'image_jpeg' and tensor.data == [data]
    # Pass-through off: decoded and re-encoded at the client's quality (smaller at 50).
    client.forward_jpeg = False
    again = client.encode(Picture(jpeg=data)).data[0]
    assert again != data and len(again) < 0.7 * len(data)
    assert jpeg_size(again) == jpeg_size(data)
    # Pixels are encoded as before; the raw payload always sends pixels.
    assert client.encode(street).data[0] == encode(street, cv2.IMWRITE_JPEG_QUALITY, 50)
    client.payload = 'raw'
    raw = client.encode(Picture(jpeg=data))
    assert raw.name == 'images' and raw.shape == [1, *street.shape]
