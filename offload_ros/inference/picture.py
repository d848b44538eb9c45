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
A camera frame as the robot received it: pixels, or a JPEG decoded only when needed.

A compressed camera frame that is offloaded as JPEG needs neither decoding nor re-encoding on
the robot: its bytes go to the worker as they came. Only the robot's own detector, a split's
head or a fallback needs pixels, and they decode on first use (once, whichever thread asks
first). The header is parsed on receipt, so a frame that is not a JPEG, or whose header is cut
short, is rejected there; a body damaged past its header is found by whoever decodes it first
(the worker answers 400, the robot's decode raises `BadImage`).

Every encoded image, on the robot and on the worker, has its format and size read from its
header before anything decodes it (`check_encoded`): a 629-byte JPEG may declare 8000x8000
pixels, and the decoder would allocate them (a decompression bomb). Only the formats in
`ImageLimits.formats` are decoded; OpenCV would otherwise take any format it knows.
"""
import dataclasses
import struct
import threading
from typing import Optional, Tuple

import cv2
import numpy as np

# Start-of-frame markers (baseline, extended, progressive, lossless; Huffman or arithmetic).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}   # TEM and RSTn carry no length


class BadImage(ValueError):
    """The frame's data is not an image we can use."""


FORMATS = ('jpeg', 'png')
_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
# Formats OpenCV decodes that we do not: named in the error so a user knows what was sent.
_OTHER_MAGIC = ((b'GIF8', 'GIF'), (b'BM', 'BMP'), (b'II*\x00', 'TIFF'), (b'MM\x00*', 'TIFF'),
                (b'\x00\x00\x00\x0cjP  ', 'JPEG 2000'), (b'\xffO\xffQ', 'JPEG 2000'),
                (b'v/1\x01', 'OpenEXR'), (b'#?RADIANCE', 'Radiance HDR'),
                (b'\x59\xa6\x6a\x95', 'Sun raster'))


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    """
    What an encoded image may be before it is decoded.

    The defaults admit a 4K (UHD) frame: 3840x2160 decodes to 25 MB of BGR.
    """

    max_pixels: int = 3840 * 2160
    max_side: int = 8192
    formats: Tuple[str, ...] = FORMATS

    def __post_init__(self):
        if not isinstance(self.max_pixels, int) or self.max_pixels < 1:
            raise ValueError(f'max_pixels must be an integer >= 1, got {self.max_pixels!r}')
        if not isinstance(self.max_side, int) or self.max_side < 1:
            raise ValueError(f'max_side must be an integer >= 1, got {self.max_side!r}')
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise ValueError(f'formats must be a non-empty subset of {FORMATS}, got '
                             f'{list(self.formats)}')

    def check_size(self, width: int, height: int, what: str = 'image') -> None:
        """Raise BadImage unless a width x height image is within these limits."""
        if width < 1 or height < 1:
            raise BadImage(f'{what} is {width}x{height}: empty')
        if width > self.max_side or height > self.max_side:
            raise BadImage(f'{what} is {width}x{height}: a side over max_side {self.max_side}')
        if width * height > self.max_pixels:
            raise BadImage(f'{what} is {width}x{height}: {width * height} pixels over '
                           f'max_pixels {self.max_pixels}')


def image_format(data: bytes) -> str:
    """'jpeg' or 'png' from the leading bytes; BadImage naming any other format."""
    if data[:3] == b'\xff\xd8\xff':
        return 'jpeg'
    if data[:8] == _PNG_MAGIC:
        return 'png'
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        raise BadImage('image is WebP: only JPEG or PNG are accepted')
    for magic, name in _OTHER_MAGIC:
        if data[:len(magic)] == magic:
            raise BadImage(f'image is {name}: only JPEG or PNG are accepted')
    if data[:1] == b'P' and data[1:2] in b'1234567f' and len(data) > 1:
        raise BadImage('image is PNM/PFM: only JPEG or PNG are accepted')
    raise BadImage('not a JPEG or PNG image (unknown leading bytes)')


def png_size(data: bytes) -> Tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, which the format requires first."""
    if data[:8] != _PNG_MAGIC:
        raise BadImage('not a PNG (no signature)')
    if len(data) < 24 or data[12:16] != b'IHDR':
        raise BadImage('PNG has no IHDR chunk first (truncated?)')
    return struct.unpack_from('>II', data, 16)


def check_encoded(data: bytes, limits: ImageLimits) -> Tuple[str, int, int]:
    """
    (format, width, height) of an encoded image, from its header only.

    BadImage if its format is not allowed or its size is over the limits.
    """
    fmt = image_format(data)
    if fmt not in limits.formats:
        raise BadImage(f'image is {fmt.upper()}: accepted formats are '
                       f'{", ".join(f.upper() for f in limits.formats)}')
    width, height = jpeg_size(data) if fmt == 'jpeg' else png_size(data)
    limits.check_size(width, height, f'{fmt.upper()} image')
    return fmt, width, height


def decode(data: bytes, limits: ImageLimits) -> np.ndarray:
    """
    Decode an image to BGR uint8 [H, W, 3], its header checked against `limits` first.

    BadImage for anything that does not decode to the size its header declares.
    """
    fmt, width, height = check_encoded(data, limits)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as e:   # a header OpenCV's own limits refuse
        raise BadImage(f'{fmt.upper()} data does not decode ({str(e).strip()[-80:]})') from e
    if image is None:
        raise BadImage(f'{fmt.upper()} data does not decode')
    if (image.shape[1], image.shape[0]) != (width, height):
        raise BadImage(f'{fmt.upper()} decodes to {image.shape[1]}x{image.shape[0]}, its header '
                       f'says {width}x{height}')
    return image


def jpeg_size(data: bytes) -> Tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame header, without decoding the scan."""
    if data[:2] != b'\xff\xd8':
        raise BadImage('not a JPEG (no start-of-image marker)')
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise BadImage(f'JPEG marker expected at byte {i}')
        marker = data[i + 1]
        if marker == 0xFF:          # fill byte before a marker
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker == 0xDA:          # start of scan before any frame header
            break
        length = struct.unpack_from('>H', data, i + 2)[0]
        if marker in _SOF:
            if i + 9 > n:
                break
            height, width = struct.unpack_from('>HH', data, i + 5)
            if width == 0 or height == 0:
                raise BadImage(f'JPEG frame header gives a {width}x{height} image')
            return width, height
        i += 2 + length
    raise BadImage('JPEG has no frame header (truncated?)')


class Picture:
    """
    Pixels (BGR uint8 [H, W, 3]) and, for a received JPEG, its bytes.

    A JPEG's header is checked against `limits` here, before anything decodes it.
    """

    def __init__(self, bgr: Optional[np.ndarray] = None, jpeg: Optional[bytes] = None,
                 limits: ImageLimits = ImageLimits(formats=('jpeg',))):
        if bgr is None and jpeg is None:
            raise ValueError('a Picture needs pixels or JPEG bytes')
        self.jpeg = jpeg
        self._bgr = bgr
        self._lock = threading.Lock()
        self._limits = limits
        if bgr is not None:
            self.size = (bgr.shape[1], bgr.shape[0])
        else:
            if image_format(jpeg) != 'jpeg':
                raise BadImage('not a JPEG (no start-of-image marker)')
            self.size = jpeg_size(jpeg)
            limits.check_size(*self.size, 'JPEG image')

    @classmethod
    def of(cls, image) -> 'Picture':
        """Return a Picture from a Picture or from BGR pixels."""
        return image if isinstance(image, Picture) else cls(bgr=image)

    @property
    def decoded(self) -> bool:
        return self._bgr is not None

    @property
    def bgr(self) -> np.ndarray:
        """Return the pixels; a JPEG is decoded on the first call (BadImage if it cannot be)."""
        if self._bgr is None:
            with self._lock:
                if self._bgr is None:
                    self._bgr = decode(self.jpeg, self._limits)
        return self._bgr
