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
Hostile inputs for tests and bench-fuzz.

Decompression bombs of several formats, and a FAKE worker that answers 200 with bodies a real
worker never sends (a fake: no real worker lies; everything else in these tests is real).

Each bomb is small on the wire and declares more pixels than the default limits admit
(3840x2160): decoded, it would allocate hundreds of megabytes.
"""
import http.server
import itertools
import json
import socketserver
import struct
import threading
import time
import zlib
from typing import Callable, Dict, List

import cv2
import numpy as np

from offload_ros.worker import protocol


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + \
        struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int, height: int) -> bytes:
    """Return a valid PNG of width x height black RGB pixels: zlib packs a zero row ~1000:1."""
    compressor = zlib.compressobj(9)
    row = b'\x00' * (1 + 3 * width)      # filter byte 0, then the pixels
    rows = row * 64
    parts = [compressor.compress(rows) for _ in range(height // 64)]
    parts.append(compressor.compress(row * (height % 64)))
    parts.append(compressor.flush())
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', header)
            + _png_chunk(b'IDAT', b''.join(parts)) + _png_chunk(b'IEND', b''))


def png_header_bomb(width: int, height: int) -> bytes:
    """Return a PNG that is its header only (74 bytes): IHDR declares the size, IDAT is empty."""
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', header) + _png_chunk(b'IDAT', b'')
            + _png_chunk(b'IEND', b''))


def jpeg_bomb(width: int, height: int) -> bytes:
    """
    Return a real 16x16 JPEG whose frame header is rewritten to declare width x height.

    The decoder allocates the declared image and fills what the scan lacks (~600 bytes).
    """
    ok, data = cv2.imencode('.jpg', np.zeros((16, 16, 3), np.uint8))
    data = bytearray(data.tobytes())
    sof = data.index(b'\xff\xc0')
    data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
    return bytes(data)


def other_format_bombs() -> Dict[str, bytes]:
    """Return formats OpenCV would decode and we do not, each declaring a huge image."""
    return {
        'gif': b'GIF89a' + struct.pack('<HH', 65535, 65535) + bytes(32),
        'bmp': b'BM' + bytes(16) + struct.pack('<ii', 60000, 60000) + bytes(32),
        'tiff': b'II*\x00' + bytes(40),
        'webp': b'RIFF' + struct.pack('<I', 30) + b'WEBPVP8X' + bytes(18),
        'ppm': b'P6\n60000 60000\n255\n' + bytes(16),
    }


def all_bombs() -> Dict[str, bytes]:
    return {'jpeg_8000': jpeg_bomb(8000, 8000), 'jpeg_4000': jpeg_bomb(4000, 4000),
            'jpeg_side': jpeg_bomb(20000, 100), 'png_header_60000': png_header_bomb(60000, 60000),
            'png_5000': png_bomb(5000, 5000), **other_format_bombs()}


def _answer(tensors: List[protocol.Tensor], parameters=None) -> tuple:
    header = {'model_name': 'yolov3_tiny', 'id': 'x'}
    if parameters is not None:
        header['parameters'] = parameters
    body, length = protocol.encode(header, tensors, 'outputs')
    return body, {protocol.HEADER_LENGTH: str(length)}


def _detections(rows) -> protocol.Tensor:
    array = np.asarray(rows, np.float32).reshape(-1, 6)
    return protocol.Tensor('detections', 'FP32', list(array.shape), array)


GOOD_ROW = [100.0, 80.0, 40.0, 120.0, 0.9, 0.0]


def hostile_answers() -> Dict[str, Callable[[], tuple]]:
    """Answer kind -> (status, body, headers, drip_s): 200 answers a client must refuse."""
    many = np.tile(np.asarray(GOOD_ROW, np.float32), (50000, 1))
    return {
        'no_outputs': lambda: (200, *_answer([]), 0.0),
        'other_output': lambda: (200, *_answer([protocol.Tensor(
            'logits', 'FP32', [1, 2], np.zeros((1, 2), np.float32))]), 0.0),
        'nan_class': lambda: (200, *_answer([_detections([GOOD_ROW[:5] + [np.nan]])]), 0.0),
        'inf_box': lambda: (200, *_answer([_detections([[np.inf] + GOOD_ROW[1:]])]), 0.0),
        'class_minus_1': lambda: (200, *_answer([_detections([GOOD_ROW[:5] + [-1]])]), 0.0),
        'class_3e9': lambda: (200, *_answer([_detections([GOOD_ROW[:5] + [3e9]])]), 0.0),
        'fractional_class': lambda: (200, *_answer([_detections([GOOD_ROW[:5] + [0.5]])]),
                                     0.0),
        'score_7': lambda: (200, *_answer([_detections([GOOD_ROW[:4] + [7.0, 0]])]), 0.0),
        'int_detections': lambda: (200, *_answer([protocol.Tensor(
            'detections', 'INT32', [1, 6], np.ones((1, 6), np.int32))]), 0.0),
        'wrong_columns': lambda: (200, *_answer([protocol.Tensor(
            'detections', 'FP32', [1, 5], np.ones((1, 5), np.float32))]), 0.0),
        'parameters_string': lambda: (200, *_answer([_detections([GOOD_ROW])], 'fast'), 0.0),
        'parameters_list': lambda: (200, *_answer([_detections([GOOD_ROW])], [1, 2]), 0.0),
        '50000_detections': lambda: (200, *_answer([_detections(many)]), 0.0),
        'header_length_lie': lambda: (200, _answer([_detections([GOOD_ROW])])[0],
                                      {protocol.HEADER_LENGTH: '999999'}, 0.0),
        'no_header_length': lambda: (200, _answer([_detections([GOOD_ROW])])[0], {}, 0.0),
        'json_error_200': lambda: (200, b'{"error": "ok?"}', {}, 0.0),
        'not_json': lambda: (200, b'\xff' * 64, {protocol.HEADER_LENGTH: '64'}, 0.0),
        'redirect_302': lambda: (302, b'', {'Location': 'http://127.0.0.1:1/'}, 0.0),
        'drip': lambda: (200, *_answer([_detections([GOOD_ROW])]), 0.05),
    }


class FakeHostileWorker:
    """
    A FAKE KServe v2 worker on 127.0.0.1.

    /load and health as a real worker answers them (so a robot uses it), and every /infer answered
    with the next kind of `kinds` (cycling). Counts the inference requests it received.
    """

    def __init__(self, kinds: List[str]):
        answers = hostile_answers()
        self.kinds = kinds
        self._next = itertools.cycle(kinds)
        self.received: List[str] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def _send(self, status, body, headers, drip_s=0.0):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                if drip_s:
                    for i in range(len(body)):
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(drip_s)
                else:
                    self.wfile.write(body)

            def do_GET(self):
                if self.path.endswith('/load'):
                    report = protocol.LoadReport(protocol.StreamFigures(0.0, 0.01, 0.0),
                                                 'live', 10.0, 1, 0, 0, 0.0, 0.0, 0)
                    self._send(200, json.dumps(report.to_dict()).encode(),
                               {'Content-Type': 'application/json'})
                else:
                    self._send(200, b'{}', {'Content-Type': 'application/json'})

            def do_POST(self):
                length = int(self.headers.get('Content-Length', 0))
                self.rfile.read(length)
                if not self.path.endswith('/infer'):
                    self._send(200, json.dumps({'bytes': length}).encode(), {})
                    return
                kind = next(fake._next)
                fake.received.append(kind)
                try:
                    self._send(*answers[kind]())
                except (BrokenPipeError, ConnectionResetError):
                    pass   # the client gave up on a dripped answer: as it should

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass   # a client that resets the connection (as a cut request does)

        self.server = Server(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}'
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
