"""A camera frame as the robot received it: pixels, or a JPEG decoded only when needed.

A compressed camera frame that is offloaded as JPEG needs neither decoding nor re-encoding on
the robot: its bytes go to the worker as they came. Only the robot's own detector, a split's
head or a fallback needs pixels, and they decode on first use (once, whichever thread asks
first). The header is parsed on receipt, so a frame that is not a JPEG, or whose header is cut
short, is rejected there; a body damaged past its header is found by whoever decodes it first
(the worker answers 400, the robot's decode raises `BadImage`).
"""
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
    """Pixels (BGR uint8 [H, W, 3]) and, for a received JPEG, its bytes."""

    def __init__(self, bgr: Optional[np.ndarray] = None, jpeg: Optional[bytes] = None):
        if bgr is None and jpeg is None:
            raise ValueError('a Picture needs pixels or JPEG bytes')
        self.jpeg = jpeg
        self._bgr = bgr
        self._lock = threading.Lock()
        if bgr is not None:
            self.size = (bgr.shape[1], bgr.shape[0])
        else:
            self.size = jpeg_size(jpeg)

    @classmethod
    def of(cls, image) -> 'Picture':
        """A Picture from a Picture or from BGR pixels."""
        return image if isinstance(image, Picture) else cls(bgr=image)

    @property
    def decoded(self) -> bool:
        return self._bgr is not None

    @property
    def bgr(self) -> np.ndarray:
        """The pixels; a JPEG is decoded on the first call (BadImage if it does not decode)."""
        if self._bgr is None:
            with self._lock:
                if self._bgr is None:
                    image = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)
                    if image is None:
                        raise BadImage('JPEG data does not decode')
                    if (image.shape[1], image.shape[0]) != self.size:
                        raise BadImage(f'JPEG decodes to {image.shape[1]}x{image.shape[0]}, '
                                       f'its header says {self.size[0]}x{self.size[1]}')
                    self._bgr = image
        return self._bgr
