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


# The package import graph, lowest first: a package imports only packages ranked below it
# (core <- inference <- worker <- dispatch <- ros layer, fleet <- nodes, graph <- bags,
# scenarios <- tools). `analysis` (run statistics and plots) needs only the core; the fleet
# simulator runs the dispatcher without ROS.
RANKS = {'core': 0, 'analysis': 1, 'inference': 1, 'worker': 2, 'dispatch': 3, 'fleet': 4,
         'ros': 4, 'nodes': 5, 'graph': 5, 'bags': 6, 'scenarios': 6, 'tools': 7}


def _imported_packages(path):
    for node in ast.walk(ast.parse(path.read_text())):
        modules = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        for module in modules:
            parts = module.split('.')
            if parts[0] == 'offload_ros' and len(parts) > 1:
                yield parts[1]


def test_package_import_graph_runs_one_way():
    package_root = ROOT / 'offload_ros'
    seen = set()
    for path in package_root.rglob('*.py'):
        relative = path.relative_to(package_root).parts
        own = relative[0] if len(relative) > 1 else path.stem
        if own == '__init__':
            continue
        assert own in RANKS, f'{own}: give the new package a rank in RANKS'
        for target in _imported_packages(path):
            seen.add(target)
            assert target == own or RANKS[target] < RANKS[own], \
                f'{path.relative_to(ROOT)} ({own}) imports {target}: the arrow runs up'
    assert {'core', 'dispatch', 'ros', 'graph'} <= seen


def test_no_class_over_350_lines():
    for path in (ROOT / 'offload_ros').rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 350, f'{path.name}: {node.name} is {length} lines'


def test_nodes_do_not_shadow_rclpy_node_internals():
    """A node's own attribute named like one of rclpy's (`_timers`, `_clients`) breaks rclpy."""
    import inspect
    import re
    from rclpy.lifecycle import LifecycleNode
    from rclpy.node import Node
    theirs = set(re.findall(r'self\.(_\w+)', inspect.getsource(Node)
                            + inspect.getsource(LifecycleNode)))
    for path in (ROOT / 'offload_ros/nodes').glob('*_node.py'):
        text = path.read_text()
        ours = set(re.findall(r'self\.(_\w+)\s*=', text)) | set(re.findall(r'def (_\w+)\(', text))
        clash = (ours & theirs) - {'__init__'}
        assert not clash, f'{path.name} shadows rclpy internals: {sorted(clash)}'


def test_decision_record_fields_are_read_through_the_record():
    """No string-key access to a decision record's fields outside core/records.py."""
    import dataclasses
    import re
    from offload_ros.core.records import DecisionRecord
    fields = [f.name for f in dataclasses.fields(DecisionRecord)]
    fields += ['t_s', 'stamp_s', 'decided_t_s']   # schema 1's names
    # Records are named r, rec, record, first or last wherever they are read.
    pattern = re.compile(r"\b(?:r|rec|record|first|last)(?:\[['\"]|\.get\(['\"])(%s)['\"]"
                         % '|'.join(fields))
    offenders = []
    for folder in ('offload_ros', 'bench', 'test'):
        for path in (ROOT / folder).rglob('*.py'):
            if path.name not in ('records.py', 'test_architecture.py'):
                offenders += [f'{path.name}: {m.group(0)}'
                              for m in pattern.finditer(path.read_text())]
    assert not offenders, offenders
