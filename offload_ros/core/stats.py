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

"""Small statistics shared by the live self-check and the run analysis."""
import math
from typing import Optional, Sequence

_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t95(dof: int) -> float:
    """
    Two-sided 95% quantile of Student's t.

    (beyond 30 degrees of freedom, 1.96 + 2.5 / dof: within 0.1% of the exact value).
    """
    if dof < 1:
        raise ValueError(f'dof must be >= 1, got {dof!r}')
    return _T95[dof - 1] if dof <= len(_T95) else 1.96 + 2.5 / dof


def mean_half_width(values: Sequence[float]) -> Optional[float]:
    """95% half-width of the mean of independent values (Student's t); None below two."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return t95(n - 1) * spread / math.sqrt(n)
