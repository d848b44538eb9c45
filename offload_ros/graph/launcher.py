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
A ROS 2 XML launch file of this package, planned and run as separate processes.

`ros2 launch` (launch/launch_ros) is not installable from PyPI, so development machines use
this interpreter of the subset our launch files use: <arg>, <set_env name value>, <node pkg
exec name namespace args if unless output> with <param from>, <param name value [value-sep]>,
<remap>, and the substitutions $(var), $(find-pkg-share), $(env). On robots, `ros2 launch
offload_ros robot.launch.xml` reads the same files. The demo and the end-to-end tests start
exactly what this plans.
"""
import dataclasses
import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional

PACKAGE = 'offload_ros'
SUBSTITUTION = re.compile(r'\$\((\S+?)(?:\s+([^)]*))?\)')


class LaunchError(ValueError):
    """The launch file uses something this interpreter does not support, or is invalid."""


def package_share() -> pathlib.Path:
    """Return the package's share directory: installed (ament index) or this source tree."""
    prefix = os.environ.get('AMENT_PREFIX_PATH', '')
    for root in filter(None, prefix.split(os.pathsep)):
        candidate = pathlib.Path(root) / 'share' / PACKAGE
        if (candidate / 'launch').is_dir():
            return candidate
    return pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class NodeSpec:
    package: str
    executable: str
    name: str
    namespace: str
    params_files: List[str]
    params: Dict[str, str]
    remaps: List[tuple]
    args: List[str]
    env: Dict[str, str] = dataclasses.field(default_factory=dict)   # from <set_env>

    def command(self, bin_dir: pathlib.Path) -> List[str]:
        cmd = [str(bin_dir / self.executable), *self.args, '--ros-args',
               '-r', f'__node:={self.name}']
        if self.namespace:
            cmd += ['-r', f'__ns:={self.namespace}']
        for path in self.params_files:
            cmd += ['--params-file', path]
        for key, value in self.params.items():
            cmd += ['-p', f'{key}:={value}']
        for src, dst in self.remaps:
            cmd += ['-r', f'{src}:={dst}']
        return cmd


def _substitute(text: str, variables: Dict[str, str]) -> str:
    def one(match):
        kind, arg = match.group(1), (match.group(2) or '').strip()
        if kind == 'var':
            if arg not in variables:
                raise LaunchError(f'$(var {arg}): undeclared argument')
            return variables[arg]
        if kind == 'find-pkg-share':
            if arg != PACKAGE:
                raise LaunchError(f'$(find-pkg-share {arg}): only {PACKAGE} is known here')
            return str(package_share())
        if kind == 'env':
            name, _, default = arg.partition(' ')
            return os.environ.get(name, default)
        raise LaunchError(f'unsupported substitution $({kind})')
    return SUBSTITUTION.sub(one, text)


def _boolean(text: str, attribute: str, variables: Dict[str, str]) -> bool:
    value = _substitute(text, variables).strip().lower()
    if value not in ('true', 'false', '1', '0'):
        raise LaunchError(f'{attribute}="{value}" is not a boolean')
    return value in ('true', '1')


def _namespace(value: str) -> str:
    value = value.strip('/')
    return f'/{value}' if value else ''


def plan(path: pathlib.Path, arguments: Optional[Dict[str, str]] = None) -> List[NodeSpec]:
    """Parse a launch file into the processes it starts."""
    arguments = dict(arguments or {})
    root = ET.parse(path).getroot()
    if root.tag != 'launch':
        raise LaunchError(f'{path}: root element must be <launch>')
    variables: Dict[str, str] = {}
    env: Dict[str, str] = {}
    nodes = []
    for element in root:
        if element.tag == 'arg':
            name = element.get('name')
            if name in arguments:
                variables[name] = arguments.pop(name)
            elif element.get('default') is not None:
                variables[name] = _substitute(element.get('default'), variables)
            else:
                raise LaunchError(f'argument {name!r} is required')
        elif element.tag == 'set_env':
            env[element.get('name')] = _substitute(element.get('value', ''), variables)
        elif element.tag == 'node':
            wanted = _boolean(element.get('if', 'true'), 'if', variables)
            if element.get('unless') is not None:
                wanted = wanted and not _boolean(element.get('unless'), 'unless', variables)
            if not wanted:
                continue
            params_files, params, remaps = [], {}, []
            for child in element:
                if child.tag == 'param' and child.get('from'):
                    params_files.append(_substitute(child.get('from'), variables))
                elif child.tag == 'param':
                    value = _substitute(child.get('value', ''), variables)
                    sep = child.get('value-sep')
                    if sep is not None:
                        items = [v for v in value.split(sep) if v]
                        value = '[' + ','.join(f"'{v}'" for v in items) + ']' if items \
                            else "['']"
                    params[child.get('name')] = value
                elif child.tag == 'remap':
                    remaps.append((_substitute(child.get('from'), variables),
                                   _substitute(child.get('to'), variables)))
                else:
                    raise LaunchError(f'unsupported <{child.tag}> inside <node>')
            nodes.append(NodeSpec(
                element.get('pkg'), element.get('exec'),
                element.get('name') or element.get('exec'),
                _namespace(_substitute(element.get('namespace', ''), variables)),
                params_files, params, remaps,
                shlex.split(_substitute(element.get('args', ''), variables)), dict(env)))
        else:
            raise LaunchError(f'unsupported <{element.tag}> in {path}')
    if arguments:
        raise LaunchError(f'unknown launch arguments: {", ".join(sorted(arguments))}')
    return nodes


def start(nodes: List[NodeSpec], bin_dir: pathlib.Path = None, env=None,
          stdout=None) -> List[subprocess.Popen]:
    bin_dir = bin_dir or pathlib.Path(sys.executable).parent
    base = os.environ if env is None else env
    return [subprocess.Popen(n.command(bin_dir), env={**base, **n.env}, stdout=stdout,
                             stderr=subprocess.STDOUT if stdout else None) for n in nodes]


# A node's stop includes its middleware's teardown; on a shared 2-core machine under a parallel
# test run, a camera took over 15 s twice (CHANGELOG, session 15).
STOP_TIMEOUT_S = 30.0


def dump_stacks(process: subprocess.Popen, wait_s: float = 1.0) -> None:
    """Ask a node that does not stop for its threads' stacks (ros.runner: SIGUSR1)."""
    if process.poll() is None:
        process.send_signal(signal.SIGUSR1)
        try:
            process.wait(wait_s)
        except subprocess.TimeoutExpired:
            pass


def stop(processes: List[subprocess.Popen], timeout_s: float = STOP_TIMEOUT_S) -> List[int]:
    """SIGINT each node; one still running after timeout_s dumps its stacks and is killed."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    codes = []
    for p in processes:
        try:
            codes.append(p.wait(timeout_s))
        except subprocess.TimeoutExpired:
            dump_stacks(p)
            p.kill()
            codes.append(p.wait())
    return codes
