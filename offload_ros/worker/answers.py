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
What a worker answers, checked: errors, results, detections, server times, Triton load.

A worker is not trusted further than the protocol: an answer is used only if its tensors have
the shape, type and values of detections (finite, class ids of known classes, at most
`max_detections`); anything else is a `MalformedAnswer` and counts against the worker like a
5xx.
"""
import dataclasses
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

from offload_ros.inference.detector import Detection, postprocess
from offload_ros.worker import protocol


class WorkerUnavailable(RuntimeError):
    """The worker cannot take the request now (breaker open, refused, 5xx, timeout)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        # 'breaker_open' | 'timeout' | 'connection' | 'http_5xx' | 'deadline', or 'slow': the
        # request timed out while the worker answered other requests (alive, only slow).
        self.kind = kind


class WorkerRequestError(ValueError):
    """The worker rejected our request as malformed (4xx): a bug or config error, not load."""


class MalformedAnswer(WorkerUnavailable):
    """
    The worker answered 200 with a body that is not a valid answer.

    (wrong outputs, shape, type or values): the worker's fault, counted against it like a 5xx.
    """

    def __init__(self, message: str):
        super().__init__(message, 'malformed')


@dataclasses.dataclass(frozen=True)
class InferResult:
    detections: List[Detection]
    round_trip_s: float
    request_bytes: int
    response_bytes: int
    server_s: Optional[float]
    server_queue_s: Optional[float]
    server_service_s: Optional[float]
    upload_wait_s: float = 0.0     # waiting for the uplink (serial uploads), in round_trip_s


@dataclasses.dataclass(frozen=True)
class WorkerLoad:
    arrival_rate_hz: float
    service_mean_s: Optional[float]
    service_var_s2: Optional[float]
    parallelism: int
    queue_length: int
    own_rate_hz: float
    source: str  # 'load' (our worker) or 'triton_stats'
    # Mean service time per model the worker serves (the whole detector and split tails).
    model_service_s: Mapping[str, float] = dataclasses.field(default_factory=dict)
    tenants: int = 0                   # clients sending frames, the caller among them
    watchers: Optional[int] = None     # clients polling /load (None: not reported)


def load_from_report(url: str, data: object) -> WorkerLoad:
    """Our worker's /load report (protocol.LoadReport), each figure checked (MalformedAnswer)."""
    try:
        report = protocol.LoadReport.from_dict(data)
    except protocol.ProtocolError as e:
        raise MalformedAnswer(f'{url}: {e}') from e
    overall = report.overall
    return WorkerLoad(overall.arrival_rate_hz, overall.service_mean_s, overall.service_var_s2,
                      report.parallelism, report.queue_length,
                      report.client.arrival_rate_hz if report.client else 0.0, 'load',
                      {name: s for name, s in report.models.items() if s},
                      report.tenants, report.watchers)


def read_answer(url: str, status: int, headers: Mapping[str, str], content: bytes,
                round_trip_s: float, image_size: Tuple[int, int], rules: 'AnswerRules'
                ) -> Tuple[List[Detection], tuple]:
    """
    Return an inference answer's detections and server times, or raise what it is.

    WorkerUnavailable for a 5xx ('deadline' for 504), WorkerRequestError for a 4xx,
    MalformedAnswer for anything that is not a valid answer.
    """
    text = content[:200].decode('utf-8', 'replace')
    if status >= 500:
        raise WorkerUnavailable(f'{url}: HTTP {status} {text}',
                                'deadline' if status == 504 else 'http_5xx')
    if status >= 400:
        raise WorkerRequestError(f'{url}: HTTP {status} {text}')
    if status != 200:
        raise MalformedAnswer(f'{url}: HTTP {status} is not an answer')
    try:
        header, tensors = protocol.decode(content, protocol.header_length_of(headers),
                                          'outputs')
        return read_detections(tensors, image_size, rules), server_times(header, round_trip_s)
    except (protocol.ProtocolError, MalformedAnswer) as e:
        raise MalformedAnswer(f'{url}: malformed answer ({e})') from e


def server_times(header: dict, round_trip_s: float) -> tuple:
    """
    (server_s, queue_s, service_s) from the answer's parameters.

    A figure that is missing or impossible (negative, not finite, longer than the round trip)
    is left out (None), as from a server that gives none (Triton): it would corrupt the link
    estimate, which is the round trip less the server's time.
    """
    params = header.get('parameters')
    if params is None:
        return None, None, None
    if not isinstance(params, dict):
        raise MalformedAnswer('parameters must be an object')

    def figure(key: str) -> Optional[float]:
        value = params.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not 0 <= value <= round_trip_s:
            return None
        return float(value)
    return figure(protocol.SERVER_S), figure(protocol.QUEUE_S), figure(protocol.SERVICE_S)


@dataclasses.dataclass(frozen=True)
class AnswerRules:
    """What an answer may hold: the robot's class names and limits, its NMS settings."""

    names: Sequence[str] = ()
    max_detections: int = 1000
    score_threshold: float = 0.3
    iou_threshold: float = 0.45

    def name(self, class_id: int) -> str:
        return self.names[class_id] if class_id < len(self.names) else f'class_{class_id}'

    def class_count(self) -> int:
        """Class ids an answer may hold: the known names, else any id below 2**16."""
        return len(self.names) or 1 << 16


def read_detections(tensors, image_size: Tuple[int, int], rules: AnswerRules
                    ) -> List[Detection]:
    """Return detections from an answer's tensors, each checked (MalformedAnswer)."""
    by_name = {t.name: np.asarray(t.data) for t in tensors}
    if 'detections' in by_name:
        rows = by_name['detections']
        if rows.dtype.kind != 'f' or rows.ndim != 2 or rows.shape[1] != 6:
            raise MalformedAnswer(f'detections must be float [N, 6], got {rows.dtype} '
                                  f'{list(rows.shape)}')
        if len(rows) > rules.max_detections:
            raise MalformedAnswer(f'{len(rows)} detections over max_detections '
                                  f'{rules.max_detections}')
        if not np.isfinite(rows).all():
            raise MalformedAnswer('detections hold NaN or infinite values')
        classes = rows[:, 5]
        if ((classes != np.floor(classes)) | (classes < 0)
                | (classes >= rules.class_count())).any():
            raise MalformedAnswer(f'detections hold class ids outside 0..'
                                  f'{rules.class_count() - 1}')
        if ((rows[:, 2] < 0) | (rows[:, 3] < 0) | (rows[:, 4] < 0) | (rows[:, 4] > 1)).any():
            raise MalformedAnswer('detections hold negative sizes or scores outside [0, 1]')
        return [Detection(float(r[0]), float(r[1]), float(r[2]), float(r[3]),
                          int(r[5]), rules.name(int(r[5])), float(r[4])) for r in rows]
    boxes, scores = by_name.get('boxes'), by_name.get('scores')
    if boxes is None or scores is None:
        raise MalformedAnswer(f'no detections or boxes and scores output (got '
                              f'{sorted(by_name)[:4]})')
    if boxes.dtype.kind != 'f' or scores.dtype.kind != 'f' or boxes.ndim != 3 or \
            scores.ndim != 3 or boxes.shape[0] != 1 or scores.shape[0] != 1 or \
            boxes.shape[2] != 4 or boxes.shape[1] != scores.shape[1] or \
            not 0 < scores.shape[2] <= rules.class_count():
        raise MalformedAnswer(f'boxes and scores must be float [1, N, 4] and [1, N, C], '
                              f'got {list(boxes.shape)} and {list(scores.shape)}')
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        raise MalformedAnswer('boxes or scores hold NaN or infinite values')
    names = [rules.name(i) for i in range(scores.shape[-1])]
    detections = postprocess(boxes[0], scores[0], names, rules.score_threshold,
                             rules.iou_threshold, image_size)
    if len(detections) > rules.max_detections:
        raise MalformedAnswer(f'{len(detections)} detections over max_detections '
                              f'{rules.max_detections}')
    return detections


def triton_load(data: dict, now_s: float, previous: Optional[tuple], variance: str
                ) -> Tuple[WorkerLoad, tuple]:
    """
    Return the load from Triton's cumulative /stats and the figures to difference next time.

    The rate and mean service time come from the change since `previous`; the variance is an
    assumption (`variance`: 'deterministic' 0, or 'exponential' the mean squared).
    """
    stats = data['model_stats'][0]['inference_stats']
    count = int(stats['success']['count'])
    infer_ns = int(stats['compute_infer']['ns']) + int(stats['compute_input']['ns']) + \
        int(stats['compute_output']['ns'])
    if previous is None or count <= previous[1] or now_s <= previous[0]:
        mean = infer_ns / count / 1e9 if count else None
        rate = 0.0
    else:
        delta = count - previous[1]
        rate = delta / (now_s - previous[0])
        mean = (infer_ns - previous[2]) / delta / 1e9
    var = None if mean is None else (0.0 if variance == 'deterministic' else mean * mean)
    return WorkerLoad(rate, mean, var, 1, 0, 0.0, 'triton_stats'), (now_s, count, infer_ns)
