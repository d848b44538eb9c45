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
The typed data products of a run: the per-frame decision record and the estimates behind it.

This module owns their field names. Every reader (deadline monitor, report, scenario harness,
benches, tests) goes through `from_dict`, every writer through `to_dict`; the JSON form is
what offload/decisions carries and what records.jsonl holds, one record per line
(docs/protocol.md). Instants are integer nanoseconds on the robot's ROS clock (`*_ns`, so a
capture stamp compares exactly with a header's); durations are float seconds (`*_s`).
"""
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from offload_ros.core.latency import Prediction

# 2: typed records, instants as integer nanoseconds (1: float seconds, no version field).
SCHEMA_VERSION = 2

OUTCOMES = ('detections', 'miss', 'drop', 'error')


class RecordError(ValueError):
    """A decision record that does not parse (its field named)."""


def ns_of_s(seconds: float) -> int:
    """Return integer nanoseconds of a float seconds instant."""
    return int(round(seconds * 1e9))


def _finite(value: Optional[float]) -> Optional[float]:
    return value if value is None or math.isfinite(value) else None


def _prediction_from(data: Mapping[str, Any]) -> Prediction:
    latency = data.get('latency_s')
    terms = {k: (math.inf if v is None else float(v))
             for k, v in (data.get('terms') or {}).items()}
    return Prediction(math.inf if latency is None else float(latency), terms)


@dataclass(frozen=True)
class WorkerEstimate:
    """One worker as the robot sees it (offload_plan's scenario format)."""

    name: str
    service_s: float
    service_var_s2: float
    parallelism: int
    tenant_rate_hz: float
    queue_length: int = 0
    tail_service_s: Mapping[str, float] = field(default_factory=dict)  # layer -> tail s


@dataclass(frozen=True)
class NetworkEstimate:
    """The link to one worker."""

    bandwidth_bps: float
    request_bytes: float
    response_bytes: float
    overhead_s: float
    request_scv: float
    size_scv: float = 1.0   # measured spread of payload sizes, whichever link model is used


@dataclass(frozen=True)
class Estimates:
    """
    The online estimates behind a decision (Planner.snapshot).

    `to_dict` is offload_plan's scenario format with one network per worker, so
    `core.scenario.scenario_from_estimates` re-plans any record.
    """

    rate_hz: float
    arrival_scv: float
    ingress_s: Optional[float]
    handling_s: Mapping[str, float]            # 'local' and 'remote'
    device: Mapping[str, float]                # service_s, parallelism, hold_s
    splits: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    networks: Mapping[str, NetworkEstimate] = field(default_factory=dict)
    workers: List[WorkerEstimate] = field(default_factory=list)

    def worker(self, name: str) -> Optional[WorkerEstimate]:
        return next((w for w in self.workers if w.name == name), None)

    def to_dict(self) -> dict:
        return {'rate_hz': self.rate_hz, 'arrival_scv': self.arrival_scv,
                'ingress_s': self.ingress_s, 'handling_s': dict(self.handling_s),
                'device': dict(self.device),
                'splits': {k: dict(v) for k, v in self.splits.items()},
                'networks': {k: dataclasses.asdict(v) for k, v in self.networks.items()},
                'workers': [{**dataclasses.asdict(w), 'tail_service_s': dict(w.tail_service_s)}
                            for w in self.workers]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'Estimates':
        try:
            return cls(float(data['rate_hz']), float(data['arrival_scv']),
                       data.get('ingress_s'), dict(data.get('handling_s') or {}),
                       dict(data['device']),
                       {str(k): dict(v) for k, v in (data.get('splits') or {}).items()},
                       {k: NetworkEstimate(**v) for k, v in (data.get('networks') or {}).items()},
                       [WorkerEstimate(**{**w, 'tail_service_s': {
                           str(k): v for k, v in (w.get('tail_service_s') or {}).items()}})
                        for w in data.get('workers') or []])
        except (KeyError, TypeError, ValueError) as e:
            raise RecordError(f'estimates: {e.__class__.__name__}: {e}') from e


@dataclass(frozen=True)
class HedgeRecord:
    """A frame raced on the robot and a worker (core.hedging)."""

    miss_probability: float
    local_started: bool
    winner: str


@dataclass(frozen=True)
class DecisionRecord:
    """
    One frame's one outcome, with what was predicted and what was observed.

    `outcome` is one of OUTCOMES; `target` produced it (or was to), `planned_target` is the
    one the policy chose (they differ after a fallback or a hedge the robot won).
    """

    seq: int
    stamp_ns: int                      # capture stamp of the frame (its header)
    frame_id: str
    finished_at_ns: int                # when the outcome was recorded
    decided_at_ns: int                 # when the decision in force was taken
    target: str
    planned_target: str
    outcome: str
    reason: str
    fallback: bool
    observed_latency_s: float
    predicted_latency_s: Optional[float]
    predictions: Mapping[str, Prediction] = field(default_factory=dict)
    estimates: Optional[Estimates] = None
    energy: Optional[Mapping[str, Mapping[str, Optional[float]]]] = None
    detections: int = 0
    service_s: Optional[float] = None      # detector (robot) or worker service time
    round_trip_s: Optional[float] = None
    head_s: Optional[float] = None         # the robot's part of a partitioned model
    server_s: Optional[float] = None       # the worker's own time and its queue wait
    server_queue_s: Optional[float] = None
    pool_wait_s: Optional[float] = None    # wait here for the detector or a request slot
    ingress_s: Optional[float] = None      # capture stamp -> receipt
    handling_s: Optional[float] = None     # the node's own work on the frame
    handling_parts_s: Optional[Mapping[str, float]] = None
    hedge: Optional[HedgeRecord] = None
    # Per target, the model self-check at decision (core.selfcheck.TargetCheck.to_dict):
    # status, error, half_width, ratio, and whether the decision used the calibrated value.
    selfcheck: Optional[Mapping[str, Mapping[str, Any]]] = None
    schema: int = SCHEMA_VERSION

    @property
    def stamp_s(self) -> float:
        return self.stamp_ns * 1e-9

    @property
    def finished_at_s(self) -> float:
        return self.finished_at_ns * 1e-9

    @property
    def decided_at_s(self) -> float:
        return self.decided_at_ns * 1e-9

    @property
    def detected(self) -> bool:
        """Whether the frame ended in detections (every other outcome is a lost frame)."""
        return self.outcome == 'detections'

    def predicted_s(self, target: Optional[str] = None) -> Optional[float]:
        """Return the predicted latency of `target` (default: the one that ran it)."""
        p = self.predictions.get(self.target if target is None else target)
        return p.latency_s if p is not None and p.stable else None

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data['predictions'] = {n: p.to_json() for n, p in self.predictions.items()}
        data['estimates'] = None if self.estimates is None else self.estimates.to_dict()
        data['hedge'] = None if self.hedge is None else dataclasses.asdict(self.hedge)
        data['observed_latency_s'] = _finite(self.observed_latency_s)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(',', ':'))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'DecisionRecord':
        if not isinstance(data, Mapping):
            raise RecordError('decision record: not an object')
        version = data.get('schema')
        if version != SCHEMA_VERSION:
            raise RecordError(f'decision record: schema {version!r}, this reader knows '
                              f'{SCHEMA_VERSION}')
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise RecordError(f'decision record: unknown field {sorted(unknown)[0]!r}')
        values = dict(data)
        try:
            values['predictions'] = {n: _prediction_from(p)
                                     for n, p in (data.get('predictions') or {}).items()}
            if data.get('estimates') is not None:
                values['estimates'] = Estimates.from_dict(data['estimates'])
            if data.get('hedge') is not None:
                values['hedge'] = HedgeRecord(**data['hedge'])
            if values.get('observed_latency_s') is None:
                values['observed_latency_s'] = math.inf
            record = cls(**values)
        except (TypeError, ValueError, AttributeError) as e:
            raise RecordError(f'decision record: {e}') from e
        if record.outcome not in OUTCOMES:
            raise RecordError(f'decision record: outcome {record.outcome!r} not in {OUTCOMES}')
        for name in ('seq', 'stamp_ns', 'finished_at_ns', 'decided_at_ns'):
            if not isinstance(getattr(record, name), int):
                raise RecordError(f'decision record: {name} must be an integer')
        return record

    @classmethod
    def from_json(cls, text: str) -> 'DecisionRecord':
        try:
            data = json.loads(text)
        except ValueError as e:
            raise RecordError(f'decision record: not JSON ({e})') from e
        return cls.from_dict(data)


def read_records(lines) -> List[DecisionRecord]:
    """Parse records.jsonl lines (blank lines skipped)."""
    return [DecisionRecord.from_json(line) for line in lines if line.strip()]


def by_stamp(records) -> Dict[tuple, DecisionRecord]:
    """Index records by (stamp_ns, frame_id): the key a detections header carries."""
    return {(r.stamp_ns, r.frame_id): r for r in records}


def synthetic(**fields) -> DecisionRecord:
    """Return a record with the given fields and neutral values elsewhere (for tests, tools)."""
    values = dict(seq=1, stamp_ns=0, frame_id='', finished_at_ns=0, decided_at_ns=0,
                  target='local', planned_target='local', outcome='detections', reason='',
                  fallback=False, observed_latency_s=0.0, predicted_latency_s=None)
    values.update(fields)
    return DecisionRecord(**values)
