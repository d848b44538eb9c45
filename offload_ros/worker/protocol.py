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
KServe v2 / Open Inference Protocol binary tensor extension: encoding and decoding.

A binary request or response is a JSON header followed by raw tensor bytes; the header length
is in the `Inference-Header-Content-Length` HTTP header and each binary tensor says its size in
`parameters.binary_data_size`. A BYTES tensor's elements are each a 4-byte little-endian length
followed by the bytes. Shared by the worker server and the client.
"""
import json
import math
import struct
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

HEADER_LENGTH = 'Inference-Header-Content-Length'
DEADLINE_HEADER = 'X-Offload-Deadline-S'   # remaining budget in seconds when sent
CLIENT_HEADER = 'X-Offload-Client'         # a robot's identity, for per-client load

# Our extensions of KServe v2 (docs/protocol.md); these names are the wire contract.
LOAD_ROUTE = '/v2/models/{model}/load'
PROBE_ROUTE = '/v2/offload/probe'
CANCEL_ROUTE = '/v2/offload/cancel'
CANCEL_ID, CANCELLED = 'id', 'cancelled'       # cancel body and answer
IMAGE_SIZE = 'image_size'      # request parameter of a partition tail: [width, height]
# Answer parameters: the worker's own time (receipt to answer), its queue wait and inference.
SERVER_S, QUEUE_S, SERVICE_S = 'server_s', 'queue_s', 'service_s'

DTYPES = {'UINT8': np.uint8, 'INT8': np.int8, 'UINT16': np.uint16, 'INT16': np.int16,
          'INT32': np.int32, 'INT64': np.int64, 'FP16': np.float16, 'FP32': np.float32,
          'FP64': np.float64, 'BOOL': np.bool_}
NUMPY_TO_V2 = {np.dtype(v): k for k, v in DTYPES.items()}


def tail_model_name(model_name: str, layer: int) -> str:
    """Return the worker's name for the tail of `model_name` cut after Darknet layer `layer`."""
    return f'{model_name}_tail{layer}'


def parse_layers(text: object) -> Tuple[int, ...]:
    """'3,5,7' (or a YAML list) -> (3, 5, 7); ValueError names the bad entry."""
    items = text if isinstance(text, (list, tuple)) else \
        [p for p in str(text or '').split(',') if p.strip()]
    layers = []
    for item in items:
        try:
            layers.append(int(item))
        except (TypeError, ValueError) as e:
            raise ValueError(f'split layers: {item!r} is not a layer number') from e
    if len(set(layers)) != len(layers):
        raise ValueError(f'split layers repeat: {layers}')
    return tuple(layers)


class ProtocolError(ValueError):
    """A malformed inference request or response; the message is safe to return to clients."""


@dataclass(frozen=True)
class DecodeLimits:
    """
    Bounds on what decode() accepts, checked before the work they bound.

    The JSON header's size (its parse, and nesting, which Python's parser meets as RecursionError),
    the number of tensors, a tensor's rank and element count (a product of dimensions in Python
    integers, so it cannot overflow), and the elements of a BYTES tensor (each is a Python object:
    two million of them cost half a second of the event loop).
    """

    max_header_bytes: int = 64 * 1024
    max_tensors: int = 16
    max_rank: int = 8
    max_elements: int = 1 << 28
    max_bytes_elements: int = 1 << 16

    def __post_init__(self):
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {value!r}')


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: List[int]
    data: object  # numpy array, or a list of bytes for BYTES
    parameters: Dict[str, object] = field(default_factory=dict)


def encode_bytes_elements(elements: Sequence[bytes]) -> bytes:
    return b''.join(struct.pack('<I', len(e)) + e for e in elements)


def decode_bytes_elements(raw: bytes, count: int) -> List[bytes]:
    out, offset = [], 0
    for _ in range(count):
        if offset + 4 > len(raw):
            raise ProtocolError('BYTES tensor truncated (length prefix)')
        (length,) = struct.unpack_from('<I', raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise ProtocolError('BYTES tensor truncated (element)')
        out.append(raw[offset:offset + length])
        offset += length
    if offset != len(raw):
        raise ProtocolError('BYTES tensor has trailing bytes')
    return out


def _tensor_bytes(tensor: Tensor) -> Union[bytes, memoryview]:
    """Return a tensor's binary data: the array's own buffer where it is contiguous (no copy)."""
    if tensor.datatype == 'BYTES':
        return encode_bytes_elements(tensor.data)
    # Flattened to bytes by numpy: memoryview.cast refuses shapes with a zero (an empty
    # (0, 6) detections tensor: a frame with nothing in it).
    return memoryview(np.ascontiguousarray(tensor.data).reshape(-1).view(np.uint8))


def encode(header: dict, tensors: Sequence[Tensor], key: str) -> Tuple[bytes, int]:
    """
    Encode a header plus binary tensors under header[key]; returns (body, header length).

    The body is assembled in one copy (a raw VGA frame is 921 kB: each copy ~0.1 ms of the robot's
    core on the offloading path).
    """
    entries, blobs = [], []
    for t in tensors:
        blob = _tensor_bytes(t)
        entries.append({'name': t.name, 'datatype': t.datatype, 'shape': list(t.shape),
                        'parameters': {**t.parameters, 'binary_data_size': len(blob)}})
        blobs.append(blob)
    head = json.dumps({**header, key: entries}, separators=(',', ':')).encode()
    return b''.join([head, *blobs]), len(head)


def _as_shape(value, where: str, limits: DecodeLimits) -> List[int]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool)
                                              and d >= 0 for d in value):
        raise ProtocolError(f'{where}.shape must be a list of non-negative integers')
    if len(value) > limits.max_rank:
        raise ProtocolError(f'{where}.shape has {len(value)} dimensions (at most '
                            f'{limits.max_rank})')
    return value


def parse_json(data: bytes, what: str) -> object:
    """
    JSON text -> object; ProtocolError for any text that is not JSON.

    (bad encoding, nesting deeper than the parser's recursion limit).
    """
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ProtocolError(f'{what} is not valid JSON ({e.__class__.__name__})') from e


def decode(body: bytes, header_length: Optional[int], key: str,
           limits: DecodeLimits = DecodeLimits()) -> Tuple[dict, List[Tensor]]:
    """
    Decode a binary-extension body.

    JSON-encoded tensor data is refused (too slow).
    """
    if header_length is None:
        raise ProtocolError(f'missing {HEADER_LENGTH}: JSON-encoded tensors are not supported, '
                            'use the binary tensor extension')
    if not 0 < header_length <= len(body):
        raise ProtocolError(f'{HEADER_LENGTH} {header_length} outside the body '
                            f'({len(body)} bytes)')
    if header_length > limits.max_header_bytes:
        raise ProtocolError(f'{HEADER_LENGTH} {header_length} over the limit of '
                            f'{limits.max_header_bytes} bytes')
    header = parse_json(body[:header_length], 'inference header')
    if not isinstance(header, dict) or not isinstance(header.get(key), list):
        raise ProtocolError(f'inference header needs a list "{key}"')
    if len(header[key]) > limits.max_tensors:
        raise ProtocolError(f'{len(header[key])} {key} (at most {limits.max_tensors})')
    offset = header_length
    tensors = []
    for index, entry in enumerate(header[key]):
        where = f'{key}[{index}]'
        if not isinstance(entry, dict):
            raise ProtocolError(f'{where} must be an object')
        name, datatype = entry.get('name'), entry.get('datatype')
        if not isinstance(name, str) or datatype not in (*DTYPES, 'BYTES'):
            raise ProtocolError(f'{where} needs a string name and a known datatype')
        shape = _as_shape(entry.get('shape'), where, limits)
        params = entry.get('parameters') or {}
        if not isinstance(params, dict):
            raise ProtocolError(f'{where}.parameters must be an object')
        if 'data' in entry:
            raise ProtocolError(f'{where}: JSON-encoded tensor data is not supported, '
                                'use the binary tensor extension')
        size = params.get('binary_data_size')
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProtocolError(f'{where}.parameters.binary_data_size must be an integer')
        if offset + size > len(body):
            raise ProtocolError(f'{where}: binary data runs past the end of the body')
        raw = body[offset:offset + size]
        offset += size
        count = math.prod(shape)
        cap = limits.max_bytes_elements if datatype == 'BYTES' else limits.max_elements
        if count > cap:
            raise ProtocolError(f'{where}: {count} elements (at most {cap} for {datatype})')
        if datatype == 'BYTES':
            data = decode_bytes_elements(raw, count)
        else:
            dtype = np.dtype(DTYPES[datatype])
            if size != count * dtype.itemsize:
                raise ProtocolError(f'{where}: {size} bytes do not match shape {shape} of '
                                    f'{datatype}')
            data = np.frombuffer(raw, dtype=dtype).reshape(shape)
        tensors.append(Tensor(name, datatype, shape, data, params))
    if offset != len(body):
        raise ProtocolError(f'{len(body) - offset} unexpected bytes after the tensors')
    return header, tensors


def header_length_of(headers: Mapping[str, str]) -> Optional[int]:
    value = headers.get(HEADER_LENGTH)
    if value is None:
        return None
    if not value.isascii() or not value.strip().isdigit() or len(value) > 18:
        raise ProtocolError(f'{HEADER_LENGTH} must be a decimal integer')
    return int(value)


def _figure(data: Mapping, key: str, optional: bool = False, integer: bool = False):
    """Return a finite, non-negative number from a /load report (ProtocolError naming it)."""
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value < 0 or integer and value != int(value):
        raise ProtocolError(f'/load {key} is {str(value)[:20]}')
    return int(value) if integer else float(value)


@dataclass(frozen=True)
class StreamFigures:
    """Arrivals and service times over the window: of all clients, or of the caller alone."""

    arrival_rate_hz: float
    service_mean_s: Optional[float] = None
    service_var_s2: Optional[float] = None
    samples: int = 0          # service times in the window, less hiccups
    hiccups: int = 0          # single outliers left out of the moments (load.WindowedSamples)

    @classmethod
    def from_dict(cls, data: Mapping) -> 'StreamFigures':
        return cls(_figure(data, 'arrival_rate_hz'), _figure(data, 'service_mean_s', True),
                   _figure(data, 'service_var_s2', True),
                   _figure(data, 'samples', True, True) or 0,
                   _figure(data, 'hiccups', True, True) or 0)


@dataclass(frozen=True)
class LoadReport:
    """
    GET /v2/models/{model}/load: the worker's load, for the robots' queueing models.

    The overall figures are the queue every client shares; `client` is the caller's own share
    (None until it sent something), other tenants are counted (`tenants`), never named, and so
    are the clients that polled /load in the window (`watchers`: the robots that may move here
    at once; None from a worker that does not count them).
    `profile` says where the service figures come from: 'live' (the window), 'start-up' or
    'idle' (a profile, while the window has too few samples). `models` gives each served
    model's mean service time (the whole detector and any partition tails).
    """

    overall: StreamFigures
    profile: str
    window_s: float
    parallelism: int
    queue_length: int
    in_service: int
    utilisation: float
    predicted_wait_s: Optional[float]
    tenants: int
    client: Optional[StreamFigures] = None
    models: Mapping[str, Optional[float]] = field(default_factory=dict)
    watchers: Optional[int] = None
    schema: int = 1

    def to_dict(self) -> dict:
        return {**asdict(self.overall), 'profile': self.profile, 'window_s': self.window_s,
                'parallelism': self.parallelism, 'queue_length': self.queue_length,
                'in_service': self.in_service, 'utilisation': self.utilisation,
                'predicted_wait_s': self.predicted_wait_s, 'tenants': self.tenants,
                'client': None if self.client is None else asdict(self.client),
                'models': {name: {'service_mean_s': mean} for name, mean in self.models.items()},
                'watchers': self.watchers, 'schema': self.schema}

    @classmethod
    def from_dict(cls, data: object) -> 'LoadReport':
        """Parse and check a report (ProtocolError naming the first bad field)."""
        if not isinstance(data, Mapping):
            raise ProtocolError('/load is not an object')
        own, models = data.get('client'), data.get('models') or {}
        if own is not None and not isinstance(own, Mapping) or \
                not isinstance(models, Mapping) or \
                not all(isinstance(m, Mapping) for m in models.values()):
            raise ProtocolError('/load client and models must be objects')
        parallelism = _figure(data, 'parallelism', integer=True)
        if parallelism < 1:
            raise ProtocolError(f'/load parallelism is {parallelism}')
        profile = data.get('profile', 'live')
        return cls(StreamFigures.from_dict(data), str(profile)[:16],
                   _figure(data, 'window_s', True) or 0.0, parallelism,
                   _figure(data, 'queue_length', integer=True),
                   _figure(data, 'in_service', True, True) or 0,
                   _figure(data, 'utilisation', True) or 0.0,
                   _figure(data, 'predicted_wait_s', True),
                   _figure(data, 'tenants', True, True) or 0,
                   None if own is None else StreamFigures.from_dict(own),
                   {str(name): _figure(m, 'service_mean_s', True)
                    for name, m in models.items()},
                   _figure(data, 'watchers', True, True))
