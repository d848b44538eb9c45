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

"""Layering rules: the core and the worker import no ROS."""
import ast

import pytest

from conftest import ROOT

ROS_MODULES = ('rclpy', 'std_msgs', 'sensor_msgs', 'geometry_msgs', 'diagnostic_msgs',
               'vision_msgs', 'builtin_interfaces')


@pytest.mark.parametrize('package', ['core', 'inference', 'worker'])
def test_package_imports_no_ros(package):
    for path in (ROOT / 'offload_ros' / package).glob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split('.')[0] not in ROS_MODULES, f'{path.name} imports {name}'


def test_core_has_no_clock_calls():
    for path in (ROOT / 'offload_ros/core').glob('*.py'):
        text = path.read_text()
        assert 'time.time(' not in text and 'time.monotonic(' not in text, path.name


def test_flake8_clean():
    """Check ament's lint style: flake8 with 99 columns (setup.cfg)."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, '-m', 'flake8', 'offload_ros', 'test', 'bench',
                          'setup.py'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout
