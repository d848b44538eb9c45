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
Multi-object tracker: IoU association with constant-velocity Kalman filters (SORT-style).

State per track: centre x, centre y, width, height and their velocities (px, px/s). Detections
are associated to predicted tracks greedily by IoU (highest first) above `iou_threshold`.
Tracks are confirmed after `min_hits` updates and deleted after `max_age_s` without one. The
tracker sees only boxes and times, so ids stay stable when the detection source switches.
"""
import itertools
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from offload_ros.core.types import Box, Observation


@dataclass(frozen=True)
class TrackerConfig:
    iou_threshold: float = 0.3
    min_hits: int = 2
    max_age_s: float = 1.0
    process_noise: float = 50.0      # px/s^2 acceleration spectral density
    measurement_noise_px: float = 5.0
    same_class_only: bool = True

    def __post_init__(self):
        if not 0.0 < self.iou_threshold < 1.0:
            raise ValueError(f'iou_threshold must be in (0, 1), got {self.iou_threshold!r}')
        if self.min_hits < 1:
            raise ValueError(f'min_hits must be >= 1, got {self.min_hits!r}')
        if not self.max_age_s > 0:
            raise ValueError(f'max_age_s must be > 0, got {self.max_age_s!r}')


class KalmanBox:
    """Constant-velocity Kalman filter over (cx, cy, w, h)."""

    def __init__(self, box: Box, t_s: float, config: TrackerConfig):
        cx, cy = box.center
        self.x = np.array([cx, cy, box.w, box.h, 0, 0, 0, 0], dtype=float)
        self.P = np.diag([10.0, 10.0, 10.0, 10.0, 1e3, 1e3, 1e3, 1e3])
        self.t_s = t_s
        self.q = config.process_noise
        self.R = np.eye(4) * config.measurement_noise_px ** 2
        self.H = np.hstack([np.eye(4), np.zeros((4, 4))])

    def predict(self, t_s: float) -> None:
        dt = max(0.0, t_s - self.t_s)
        if dt == 0.0:
            return
        F = np.eye(8)
        F[:4, 4:] = np.eye(4) * dt
        # Discrete white-noise acceleration model per axis.
        q = self.q * np.array([[dt ** 3 / 3, dt ** 2 / 2], [dt ** 2 / 2, dt]])
        Q = np.zeros((8, 8))
        for i in range(4):
            Q[np.ix_([i, i + 4], [i, i + 4])] = q
        self.x = F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], 1.0)
        self.P = F @ self.P @ F.T + Q
        self.t_s = t_s

    def update(self, box: Box) -> None:
        cx, cy = box.center
        z = np.array([cx, cy, box.w, box.h])
        y = z - self.H @ self.x
        S = self.H @ self.P @ self.H.T + self.R
        K = self.P @ self.H.T @ np.linalg.inv(S)
        self.x = self.x + K @ y
        self.P = (np.eye(8) - K @ self.H) @ self.P

    def box(self) -> Box:
        cx, cy, w, h = self.x[:4]
        return Box(cx - w / 2, cy - h / 2, w, h)


@dataclass
class Track:
    track_id: str
    class_name: str
    score: float
    filter: KalmanBox
    hits: int
    last_update_s: float

    def observation(self) -> Observation:
        return Observation(self.filter.box(), self.class_name, self.score, self.track_id)


class Tracker:
    def __init__(self, config: TrackerConfig = TrackerConfig()):
        self.config = config
        self.tracks: List[Track] = []
        self._ids = itertools.count(1)

    def update(self, detections: Sequence[Observation], t_s: float) -> List[Observation]:
        """Advance to time t_s with the frame's detections; returns confirmed tracks."""
        for track in self.tracks:
            track.filter.predict(t_s)
        pairs = []
        for ti, track in enumerate(self.tracks):
            predicted = track.filter.box()
            for di, det in enumerate(detections):
                if self.config.same_class_only and det.class_name != track.class_name:
                    continue
                iou = predicted.iou(det.box)
                if iou >= self.config.iou_threshold:
                    pairs.append((iou, ti, di))
        used_t, used_d = set(), set()
        for _, ti, di in sorted(pairs, reverse=True):
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            track, det = self.tracks[ti], detections[di]
            track.filter.update(det.box)
            track.hits += 1
            track.score = det.score
            track.last_update_s = t_s
        for di, det in enumerate(detections):
            if di not in used_d:
                self.tracks.append(Track(str(next(self._ids)), det.class_name, det.score,
                                         KalmanBox(det.box, t_s, self.config), 1, t_s))
        self.tracks = [t for t in self.tracks if t_s - t.last_update_s <= self.config.max_age_s]
        return [t.observation() for t in self.tracks
                if t.hits >= self.config.min_hits and t.last_update_s == t_s]

    def track(self, track_id: str) -> Optional[Track]:
        return next((t for t in self.tracks if t.track_id == track_id), None)
