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
The coordinated reference: what a central planner that knows the true parameters would assign.

Each robot r sends x[r][t] frames/s to target t (its own detector, or worker j). Each station's
wait is Allen-Cunneen's GI/G/1 approximation, which is Pollaczek-Khinchine's M/G/1 for Poisson
arrivals: a robot's own detector and uplink see its periodic camera (arrival SCV 0), a worker
the merge of many robots' streams (SCV 1); the cost is the fleet's mean latency. It is convex
in x, so the best fractional assignment is found by the flow-deviation method (Fratta, Gerla
and Kleinrock, 1973: each step moves part of a robot's rate to its target of least marginal
cost); the best whole-stream one (each robot on one target) by a greedy start and single-robot
moves.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Sequence

from offload_ros.core.policy import LOCAL


@dataclass(frozen=True)
class Station:
    """
    A server: mean service and mean^2 x (arrival SCV + service SCV).

    With Poisson arrivals (SCV 1) the second term is E[S^2], and the wait is M/G/1's.
    """

    mean_s: float
    second_s2: float

    @classmethod
    def of(cls, mean_s: float, cv: float, arrival_scv: float = 1.0) -> 'Station':
        return cls(mean_s, mean_s ** 2 * (arrival_scv + cv ** 2))

    def cost(self, rate_hz: float) -> float:
        """Return rate x mean sojourn (frame-seconds per second); inf at or past saturation."""
        rho = rate_hz * self.mean_s
        if rho >= 1.0:
            return math.inf
        return rate_hz * (rate_hz * self.second_s2 / (2.0 * (1.0 - rho)) + self.mean_s)

    def marginal(self, rate_hz: float) -> float:
        """Return the marginal cost, d cost / d rate."""
        rho = rate_hz * self.mean_s
        if rho >= 1.0:
            return math.inf
        return self.mean_s + rate_hz * self.second_s2 * (2.0 - rho) / (2.0 * (1.0 - rho) ** 2)


@dataclass(frozen=True)
class Problem:
    rates_hz: Sequence[float]           # per robot
    local: Station                      # each robot's detector
    workers: Dict[str, Station]
    uplink: Station                     # one upload (deterministic: second = mean^2)
    fixed_s: float                      # propagation and the answer's download

    def cost(self, x: List[Dict[str, float]]) -> float:
        """Mean latency (s) of assignment x (robot -> target -> rate)."""
        total = 0.0
        load = {name: 0.0 for name in self.workers}
        for shares in x:
            offloaded = 0.0
            for target, rate in shares.items():
                if target == LOCAL:
                    total += self.local.cost(rate)
                else:
                    load[target] += rate
                    offloaded += rate
            total += self.uplink.cost(offloaded) + offloaded * self.fixed_s
        total += sum(self.workers[name].cost(rate) for name, rate in load.items())
        return total / sum(self.rates_hz)

    def _marginals(self, shares: Dict[str, float], load: Dict[str, float]) -> Dict[str, float]:
        offloaded = sum(rate for target, rate in shares.items() if target != LOCAL)
        link = self.uplink.marginal(offloaded) + self.fixed_s
        result = {LOCAL: self.local.marginal(shares.get(LOCAL, 0.0))}
        for name, station in self.workers.items():
            result[name] = station.marginal(load[name]) + link
        return result


def fractional(problem: Problem, iterations: int = 400) -> List[Dict[str, float]]:
    """Find the best fractional assignment (flow deviation, Gauss-Seidel over robots)."""
    x = [{LOCAL: rate} for rate in problem.rates_hz]
    load = {name: 0.0 for name in problem.workers}
    for k in range(iterations):
        step = 2.0 / (k + 3.0)
        for r, rate in enumerate(problem.rates_hz):
            marginal = problem._marginals(x[r], load)
            best = min(marginal, key=marginal.get)
            while step > 1e-6:
                moved = {t: v * step for t, v in x[r].items() if t != best}
                if best == LOCAL or problem.workers[best].mean_s * (
                        load[best] + sum(moved.values())) < 0.999:
                    break
                step /= 2.0
            else:
                continue
            for t, v in moved.items():
                x[r][t] -= v
                if t != LOCAL:
                    load[t] -= v
            x[r][best] = x[r].get(best, 0.0) + sum(moved.values())
            if best != LOCAL:
                load[best] += sum(moved.values())
    return [{t: v for t, v in shares.items() if v > 1e-9} for shares in x]


def whole_stream(problem: Problem, passes: int = 20) -> List[str]:
    """Find the best assignment of each robot's whole stream to one target (local search)."""
    targets = [LOCAL] + list(problem.workers)
    order = sorted(range(len(problem.rates_hz)), key=lambda r: -problem.rates_hz[r])
    choice = [LOCAL] * len(problem.rates_hz)

    def cost() -> float:
        return problem.cost([{t: rate} for t, rate in zip(choice, problem.rates_hz)])
    for r in order:   # greedy: each robot, fastest first, where it adds least
        options = []
        for t in targets:
            choice[r] = t
            options.append((cost(), t))
        choice[r] = min(options)[1]
    best = cost()
    for _ in range(passes):
        improved = False
        for r in order:
            keep = choice[r]
            for t in targets:
                if t == keep:
                    continue
                choice[r] = t
                c = cost()
                if c < best - 1e-12:
                    best, keep, improved = c, t, True
                choice[r] = keep
        if not improved:
            break
    return choice
