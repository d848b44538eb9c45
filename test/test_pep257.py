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

"""ament_pep257 over the package, its tests and benches, as a ROS package's tests run it."""
import pytest
from ament_pep257.main import main

from conftest import ROOT


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    paths = [str(ROOT / p) for p in ('offload_ros', 'test', 'bench', 'setup.py')]
    assert main(argv=paths) == 0, 'Found code style errors / warnings'
