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
Package metadata and launch files, proved without ros2 launch.

Colcon builds it, every launch entry names a real executable, every params file loads for its node
with rclpy's own parser, and every remap names a topic the nodes use.
"""
import importlib
import os
import pathlib
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT, VENV_BIN, venv_exe
from offload_ros.ros import topics
from offload_ros.graph import launcher as launch

NODE_SPECS = {
    'camera_node': 'offload_ros.nodes.camera_node',
    'offload_node': 'offload_ros.nodes.offload_node',
    'tracker_node': 'offload_ros.nodes.tracker_node',
    'controller_node': 'offload_ros.nodes.controller_node',
    'deadline_monitor_node': 'offload_ros.nodes.deadline_monitor_node',
}


def entry_points():
    text = (ROOT / 'setup.py').read_text()
    return dict(re.findall(r"'(\w+) = ([\w.]+):main'", text))


def test_colcon_build_installs_the_package(tmp_path):
    out = subprocess.run(
        [venv_exe('colcon'), '--log-base', str(tmp_path / 'log'), 'build', '--base-paths',
         str(ROOT), '--build-base', str(tmp_path / 'build'), '--install-base',
         str(tmp_path / 'install')], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'vision_msgs' not in out.stdout  # the development copy stays out of colcon's way
    share = tmp_path / 'install/offload_ros/share/offload_ros'
    assert (share / 'package.xml').is_file()
    assert {p.name for p in (share / 'launch').iterdir()} == {'robot.launch.xml',
                                                              'worker.launch.xml'}
    assert {'robot.yaml', 'worker.yaml', 'fastdds_profile.xml'} <= {
        p.name for p in (share / 'config').iterdir()}   # the profile raw frames need
    assert (tmp_path / 'install/offload_ros/share/ament_index/resource_index/packages/'
            'offload_ros').is_file()
    lib = tmp_path / 'install/offload_ros/lib/offload_ros'
    assert set(entry_points()) <= {p.name for p in lib.iterdir()}


def test_package_xml_declares_real_dependencies():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.get('format') == '3'
    deps = {e.text for e in root.findall('exec_depend')}
    assert {'rclpy', 'sensor_msgs', 'std_msgs', 'geometry_msgs', 'diagnostic_msgs',
            'vision_msgs', 'python3-numpy', 'python3-opencv', 'python3-requests'} <= deps
    assert root.find('export/build_type').text == 'ament_python'


@pytest.mark.parametrize('launch_file', ['robot.launch.xml', 'worker.launch.xml'])
def test_launch_nodes_are_real_entry_points(launch_file):
    points = entry_points()
    for node in launch.plan(ROOT / 'launch' / launch_file):
        assert node.package == 'offload_ros'
        assert node.executable in points, node.executable
        module = importlib.import_module(points[node.executable])
        assert callable(module.main)


def declared_parameters(executable):
    """Return the node's own parameters, and those every rclpy node declares."""
    module = importlib.import_module(NODE_SPECS[executable])
    return {spec.name for spec in module.SPECS} | {'use_sim_time'}


@pytest.mark.parametrize('namespace', ['', 'robot1'])
def test_params_files_load_for_each_node(namespace):
    """
    Loaded through rcl's parser.

    As the nodes load them (rclpy's pure-Python parameter_dict_from_yaml_file knows only the bare
    '/**' wildcard, not '/**/camera').
    """
    for node in launch.plan(ROOT / 'launch/robot.launch.xml', {'namespace': namespace}):
        assert node.params_files, node.name
        for path in node.params_files:
            assert pathlib.Path(path).is_file()
            loaded = load_like_the_node(node, path)
            assert loaded, f'{path} has nothing for {node.namespace}/{node.name}'
            # The '/**' block holds what every node that has it reads (deadline_s).
            unknown = set(loaded) - declared_parameters(node.executable) - shared_keys(path)
            assert not unknown, f'{node.name}: {unknown} are not parameters of the node'
        unknown = set(node.params) - declared_parameters(node.executable)
        assert not unknown


def shared_keys(path) -> set:
    import yaml
    data = yaml.safe_load(pathlib.Path(path).read_text()) or {}
    return set((data.get('/**') or {}).get('ros__parameters', {}))


def test_one_deadline_for_the_offload_node_and_the_deadline_monitor():
    nodes = {n.name: n for n in launch.plan(ROOT / 'launch/robot.launch.xml', {})}
    values = {}
    for name in ('offload', 'deadline_monitor'):
        node = nodes[name]
        assert 'deadline_s' in declared_parameters(node.executable)
        [path] = node.params_files
        values[name] = load_like_the_node(node, path, values=True)['deadline_s']
    assert values['offload'] == values['deadline_monitor'] == 0.25
    text = (ROOT / 'config/robot.yaml').read_text()
    assert text.count('deadline_s:') == 1


def load_like_the_node(node, path, values=False):
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node
    context = Context()
    rclpy.init(args=[], context=context)
    try:
        cli = ['--ros-args', '--params-file', path, '-r', f'__node:={node.name}']
        if node.namespace:
            cli += ['-r', f'__ns:={node.namespace}']
        probe = Node('probe', context=context, cli_args=cli,
                     automatically_declare_parameters_from_overrides=True)
        loaded = {name: p.value for name, p in probe.get_parameters_by_prefix('').items()
                  if name not in ('use_sim_time', 'start_type_description_service')}
        probe.destroy_node()
        return loaded if values else set(loaded)
    finally:
        context.try_shutdown()


def test_remaps_name_topics_the_nodes_use():
    used = {v for k, v in vars(topics).items() if k.isupper()}
    for node in launch.plan(ROOT / 'launch/robot.launch.xml', {'image_topic': 'camera/image'}):
        for src, dst in node.remaps:
            assert src in used, f'{node.name} remaps unknown topic {src}'
            assert dst.startswith('camera/image')


def test_worker_launch_passes_config_the_worker_accepts():
    (node,) = launch.plan(ROOT / 'launch/worker.launch.xml')
    from offload_ros.worker.server import parse_args
    args = parse_args([*node.args, '--ros-args', '-r', '__node:=gpu_worker'])
    assert args.port == 8000 and args.parallelism == 1 and args.host == '0.0.0.0'


def test_launch_rejects_unknown_arguments():
    with pytest.raises(launch.LaunchError, match='unknown launch arguments'):
        launch.plan(ROOT / 'launch/robot.launch.xml', {'nope': '1'})


def test_the_readme_robot_commands_in_a_clean_workspace(tmp_path):
    """
    The README's colcon line, as written, in a new workspace.

    The package builds, the workspace's setup.bash makes it the installed one, and its executables
    and launch files are found there (ros2 launch itself has no wheels: the launch files' contents
    are checked by the other tests here).
    """
    readme = (ROOT / 'README.md').read_text()
    section = readme.split('## On a robot', 1)[1].split('```bash', 1)[1].split('```', 1)[0]
    build = next(line for line in section.splitlines() if line.startswith('colcon build'))
    build = build.split('#')[0].strip()
    assert build == 'colcon build --packages-select offload_ros && source install/setup.bash'
    (tmp_path / 'src').mkdir()
    (tmp_path / 'src/offload_ros').symlink_to(ROOT)
    script = f'''set -e
{build}
test "$(python -c 'from offload_ros.graph import launcher; print(launcher.package_share())')" \\
    = "$PWD/install/offload_ros/share/offload_ros"
ls install/offload_ros/lib/offload_ros/offload_node
install/offload_ros/lib/offload_ros/offload_model path
'''
    env = {**os.environ, 'PATH': f'{VENV_BIN}:{os.environ["PATH"]}'}
    env.pop('AMENT_PREFIX_PATH', None)
    out = subprocess.run(['bash', '-c', script], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stdout.strip().endswith('.onnx')
