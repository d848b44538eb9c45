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
Parameter declaration from one spec table per node.

Descriptors with description, range and read-only flag; values read back as a plain dict for a
frozen config dataclass.
"""
import socket
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType)
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


@dataclass(frozen=True)
class Spec:
    name: str
    default: Any
    description: str
    range: Optional[Tuple[float, float]] = None
    choices: Optional[Sequence[str]] = None
    read_only: bool = False
    string_array: bool = False

    def descriptor(self) -> ParameterDescriptor:
        text = self.description
        if self.choices:
            text += f' One of: {", ".join(self.choices)}.'
        d = ParameterDescriptor(name=self.name, description=text, read_only=self.read_only)
        if self.string_array:
            d.type = ParameterType.PARAMETER_STRING_ARRAY
        else:
            d.type = _TYPES[type(self.default)]
        if self.range is not None and isinstance(self.default, bool) is False:
            lo, hi = self.range
            if isinstance(self.default, int):
                d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
            elif isinstance(self.default, float):
                d.floating_point_range = [FloatingPointRange(from_value=float(lo),
                                                             to_value=float(hi), step=0.0)]
        return d

    def check(self, value: Any) -> None:
        if self.choices and value not in self.choices:
            raise ValueError(f'{self.name}: {value!r} is not one of {list(self.choices)}')


def declare(node: Node, specs: Sequence[Spec]) -> Dict[str, Any]:
    values = {}
    for spec in specs:
        if spec.string_array and not spec.default:
            # An empty list has no type of its own: declare the type, read [] if unset.
            node.declare_parameter(spec.name, Parameter.Type.STRING_ARRAY, spec.descriptor())
            try:
                value = node.get_parameter(spec.name).value
            except ParameterUninitializedException:
                value = []
        else:
            node.declare_parameter(spec.name, spec.default, spec.descriptor())
            value = node.get_parameter(spec.name).value
        spec.check(value)
        values[spec.name] = list(value or []) if spec.string_array else value
    return values


def updated(specs: Sequence[Spec], current: Dict[str, Any],
            changes: Sequence[Parameter]) -> Dict[str, Any]:
    """
    Return current values with a set_parameters request applied.

    Raises ValueError naming the parameter when a choice is invalid (ranges are enforced by rclpy
    from the descriptors).
    """
    by_name = {s.name: s for s in specs}
    values = dict(current)
    for p in changes:
        spec = by_name.get(p.name)
        if spec is None:
            continue
        value = list(p.value) if spec.string_array and p.value is not None else p.value
        spec.check(value)
        values[p.name] = value if value is not None else ([] if spec.string_array else value)
    return values


def hardware_id(node) -> str:
    """Return the robot and node a report comes from: host name and fully qualified node name."""
    return f'{socket.gethostname()}{node.get_fully_qualified_name()}'


def steady_timer(node: Node, period_s: float, callback):
    """
    Return a timer on the steady clock.

    It runs with use_sim_time before /clock starts (and when a replay pauses), for work paced in
    real time (polls, epochs, reports, discovery).
    """
    from rclpy.clock import Clock, ClockType
    return node.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))
