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
Energy per frame on each target, and the weighted energy/latency score of the 'energy' mode.

Robot energy model (parameterised per platform; SI units):
- local:  compute_w x service time (the accelerator busy on this frame);
- remote: tx_j_per_byte x request bytes + rx_j_per_byte x response bytes (radio) +
          idle_w x the time the robot waits for the answer (latency - its own transfers).
Total energy adds the worker's share: worker_w x its service time / parallelism.

The score, as in adaptive partitioning work (weights sum to 1), is
  w_robot x E_robot / max E_robot + w_total x E_total / max E_total + w_latency x T / deadline
over the targets predicted to meet the deadline (all targets when none does); the mode picks
the least score, so with w_robot = 1 it is "least robot energy subject to the deadline".
"""
import math
from dataclasses import dataclass
from typing import Dict, Mapping, Optional

from offload_ros.core.latency import Prediction

LOCAL = 'local'


@dataclass(frozen=True)
class EnergyModel:
    compute_w: float = 6.0        # robot SoC power while inferring (Raspberry-Pi-4 class)
    idle_w: float = 2.5           # robot compute power while waiting for a remote answer
    tx_j_per_byte: float = 8e-8   # Wi-Fi transmit, ~10 nJ/bit
    rx_j_per_byte: float = 4e-8
    worker_w: float = 70.0        # worker accelerator power while inferring

    def __post_init__(self):
        for name in ('compute_w', 'idle_w', 'tx_j_per_byte', 'rx_j_per_byte', 'worker_w'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f'energy.{name} must be a non-negative number, got {value!r}')


@dataclass(frozen=True)
class EnergyWeights:
    robot: float = 0.6
    total: float = 0.2
    latency: float = 0.2

    def __post_init__(self):
        values = (self.robot, self.total, self.latency)
        if any(not (math.isfinite(v) and v >= 0) for v in values) or \
                abs(sum(values) - 1.0) > 1e-6:
            raise ValueError(f'energy weights must be >= 0 and sum to 1, got robot '
                             f'{self.robot}, total {self.total}, latency {self.latency}')


@dataclass(frozen=True)
class FrameEnergy:
    robot_j: float
    total_j: float

    def to_json(self) -> dict:
        return {'robot_j': self.robot_j if math.isfinite(self.robot_j) else None,
                'total_j': self.total_j if math.isfinite(self.total_j) else None}


def frame_energy(target: str, prediction: Prediction, model: EnergyModel,
                 request_bytes: float = 0.0, response_bytes: float = 0.0,
                 worker_parallelism: float = 1.0) -> FrameEnergy:
    """Energy of one frame on `target` from its latency prediction's terms."""
    if not prediction.stable:
        return FrameEnergy(math.inf, math.inf)
    terms = prediction.terms
    if target == LOCAL:
        robot = model.compute_w * terms.get('service_s', prediction.latency_s)
        return FrameEnergy(robot, robot)
    own_transfer = terms.get('uplink_transfer_s', 0.0) + terms.get('downlink_transfer_s', 0.0)
    head = terms.get('device_service_s', 0.0)   # a split target's head runs on the robot
    waiting = max(0.0, prediction.latency_s - terms.get('ingress_s', 0.0) - own_transfer
                  - head)
    robot = (model.tx_j_per_byte * request_bytes + model.rx_j_per_byte * response_bytes
             + model.idle_w * waiting + model.compute_w * head)
    worker = model.worker_w * terms.get('service_s', 0.0) / max(worker_parallelism, 1.0)
    return FrameEnergy(robot, robot + worker)


def scores(predictions: Mapping[str, Prediction], energies: Mapping[str, FrameEnergy],
           weights: EnergyWeights, deadline_s: float) -> Dict[str, float]:
    """Weighted score of each candidate (feasible targets, else every stable one)."""
    stable = {n for n, p in predictions.items() if p.stable and n in energies}
    feasible = {n for n in stable if predictions[n].latency_s <= deadline_s}
    pool = feasible or stable
    if not pool:
        return {}
    top_robot = max(energies[n].robot_j for n in pool) or 1.0
    top_total = max(energies[n].total_j for n in pool) or 1.0
    scale = deadline_s if math.isfinite(deadline_s) else \
        max(predictions[n].latency_s for n in pool)
    return {n: weights.robot * energies[n].robot_j / top_robot
            + weights.total * energies[n].total_j / top_total
            + weights.latency * predictions[n].latency_s / scale for n in pool}


def choose(predictions: Mapping[str, Prediction], energies: Mapping[str, FrameEnergy],
           weights: EnergyWeights, deadline_s: float, hysteresis: float,
           current: Optional[str]) -> Optional[tuple]:
    """
    (target, reason) of the least score.

    The current target is kept unless a challenger scores lower by more than the hysteresis
    fraction. None where nothing is stable.
    """
    score = scores(predictions, energies, weights, deadline_s)
    if not score:
        return None
    best = min(score, key=lambda n: (score[n], n != LOCAL, n))
    feasible = predictions[best].latency_s <= deadline_s
    why = (f'least energy score {score[best]:.3f} (robot '
           f'{energies[best].robot_j * 1e3:.0f} mJ, {predictions[best].latency_s * 1e3:.0f} ms'
           + (')' if feasible else ', no target meets deadline)'))
    if current in score and current != best and \
            score[best] > score[current] * (1.0 - hysteresis):
        return current, f'hold {current}: {best} scores better by less than ' \
                        f'{hysteresis:.0%} hysteresis'
    return best, why
