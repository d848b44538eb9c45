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
The per-epoch decision (Ng et al., Algorithm 1) with hysteresis and deadline feasibility.

Modes:
- 'argmin': the target with the least predicted mean latency.
- 'deadline': among targets predicted to meet the deadline, prefer the robot (no network or
  worker cost); else the fastest feasible worker; else the fastest target.
- 'share': the delay-optimal shares of the frame rate across targets (load sharing, see
  core.sharing); frames are then assigned by a deterministic weighted round-robin over the
  shares. ('split' is its former name, accepted for one release.)
- 'energy': the least weighted score of robot energy, total energy and latency among the
  targets predicted to meet the deadline (see core.energy; computed by the Planner).
- 'threshold': a baseline without models, in the style of FogROS2-LS: switch between the
  first worker and the robot when the observed mean latency over a 15 s window (checked
  every 3 s) exceeds the deadline (see Planner).
A challenger replaces the current target only if it is faster by more than the hysteresis
margin (a fraction of the current prediction), unless the current target became unstable or
infeasible.

Damped moves (Planner, with `damped`): robots that share workers see the same load reports,
and if each takes the best target at once they all move together and the worker they crowd
into becomes the worst (herding: Mitzenmacher, 'How useful is old information?', 2000). So
where other robots watch the same workers, a move is taken with probability
move_probability(gain, robots already there): about one robot in 1 + n moves per epoch, fewer
for a small gain; a lone robot, or one leaving a target that failed, moves at once.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Sequence, Tuple

from offload_ros.core.latency import Prediction

LOCAL = 'local'
MODES = ('argmin', 'deadline', 'share', 'energy', 'threshold')
# Former names still accepted (with a warning where a user sets them), for one release.
DEPRECATED_MODES = {'split': 'share'}
SPLIT_MARK = '/split@'


def split_target(worker: str, layer: int) -> str:
    """Return the target: the head on the robot, the tail after `layer` on `worker`."""
    return f'{worker}{SPLIT_MARK}{layer}'


def parse_target(target: str) -> Tuple[str, Optional[int]]:
    """(worker or 'local', split layer or None) of a target name."""
    worker, mark, layer = target.partition(SPLIT_MARK)
    return (worker, int(layer)) if mark else (target, None)


@dataclass(frozen=True)
class PolicyConfig:
    mode: str = 'argmin'
    hysteresis: float = 0.1
    deadline_s: float = math.inf
    damped: bool = True

    def __post_init__(self):
        if self.mode in DEPRECATED_MODES:
            object.__setattr__(self, 'mode', DEPRECATED_MODES[self.mode])
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}')
        if not 0.0 <= self.hysteresis < 1.0:
            raise ValueError(f'hysteresis must be in [0, 1), got {self.hysteresis!r}')
        if not self.deadline_s > 0:
            raise ValueError(f'deadline_s must be > 0, got {self.deadline_s!r}')


@dataclass(frozen=True)
class Decision:
    target: str
    reason: str
    predictions: Mapping[str, Prediction] = field(default_factory=dict)
    fractions: Optional[Mapping[str, float]] = None


def decide(predictions: Mapping[str, Prediction], config: PolicyConfig,
           current: Optional[str] = None,
           fractions: Optional[Mapping[str, float]] = None) -> Decision:
    """Choose a target from its predictions; `current` is the target of the previous epoch."""
    if not predictions:
        raise ValueError('decide needs at least one prediction')
    latency: Dict[str, float] = {name: p.latency_s for name, p in predictions.items()}
    fastest = min(latency, key=lambda name: (latency[name], name != LOCAL, name))
    if math.isinf(latency[fastest]):
        return Decision(LOCAL, 'no stable target: every queue is saturated, staying on robot',
                        predictions)
    feasible = {name for name, t in latency.items() if t <= config.deadline_s}

    if config.mode == 'share' and fractions:
        used = {n: f for n, f in fractions.items() if f > 1e-6}
        best = max(used, key=used.get)
        return Decision(best, 'shares ' + ', '.join(f'{n}={f:.2f}' for n, f in sorted(
            used.items())), predictions, dict(used))

    if config.mode == 'deadline' and feasible:
        if LOCAL in feasible:
            choice, why = LOCAL, f'local meets deadline {config.deadline_s * 1e3:.0f} ms'
        else:
            choice = min(feasible, key=lambda n: latency[n])
            why = f'fastest worker within deadline {config.deadline_s * 1e3:.0f} ms'
    else:
        pool = feasible or set(latency)
        choice = min(pool, key=lambda n: (latency[n], n != LOCAL, n))
        why = f'fastest ({latency[choice] * 1e3:.1f} ms)' if feasible else \
            f'fastest ({latency[choice] * 1e3:.1f} ms) but no target meets deadline'

    if current is not None and current in latency and current != choice:
        current_ok = math.isfinite(latency[current]) and (
            current in feasible or not feasible)
        # Deadline mode keeps an infeasible robot only if nothing is feasible.
        if current_ok and config.mode == 'argmin' and \
                latency[choice] > latency[current] * (1.0 - config.hysteresis):
            return Decision(current, f'hold {current}: {choice} faster by less than '
                            f'{config.hysteresis:.0%} hysteresis', predictions)
        if current_ok and config.mode == 'deadline' and choice != LOCAL and \
                current != LOCAL and \
                latency[choice] > latency[current] * (1.0 - config.hysteresis):
            return Decision(current, f'hold {current}: within hysteresis', predictions)
    return Decision(choice, why, predictions)


def move_probability(gain: float, others: int) -> float:
    """
    Return the chance of taking a move of relative gain `gain` to where `others` robots are.

    min(1, gain / (1 + others)): with n robots at the destination, one more changes its load by
    about 1 / (1 + n), so the expected number that move each epoch stays near what the gain can
    absorb (measured against other rules in docs/fleet.md).
    """
    return min(1.0, max(0.0, gain) / (1.0 + max(0, others)))


class ThresholdBaseline:
    """
    A baseline without models, in the style of FogROS2-LS.

    Every CHECK_S, leave the current target if its observed mean latency over the last
    WINDOW_S exceeds the deadline (between the robot and the first worker).
    """

    CHECK_S = 3.0
    WINDOW_S = 15.0

    def __init__(self):
        self.checked_at_s = -math.inf

    def decide(self, now_s: float, predictions: Mapping[str, Prediction], current: Decision,
               remote: Optional[str], observed: Sequence[tuple], deadline_s: float) -> Decision:
        """Return the decision; `observed` holds (t_s, target, latency_s), oldest first."""
        target = current.target
        if target == LOCAL and current.reason.startswith('start-up') and remote:
            return Decision(remote, 'threshold: start on the worker', predictions)
        if now_s - self.checked_at_s < self.CHECK_S:
            return Decision(target, current.reason, predictions)
        self.checked_at_s = now_s
        recent = [lat for t, where, lat in observed
                  if where == target and t >= now_s - self.WINDOW_S]
        if not recent:
            return Decision(target, current.reason, predictions)
        mean = sum(recent) / len(recent) if all(math.isfinite(x) for x in recent) else math.inf
        if mean > deadline_s and remote is not None:
            other = remote if target == LOCAL else LOCAL
            return Decision(other, f'threshold: mean {mean * 1e3:.0f} ms over '
                            f'{self.WINDOW_S:.0f} s > {deadline_s * 1e3:.0f} ms', predictions)
        return Decision(target, f'threshold: mean {mean * 1e3:.0f} ms within bound',
                        predictions)
