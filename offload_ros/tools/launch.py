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
offload_launch: run a ROS 2 XML launch file of this package as separate processes.

`ros2 launch` is not installable from PyPI; graph.launcher interprets the subset our launch
files use. On robots, `ros2 launch offload_ros robot.launch.xml` reads the same files.
"""
import argparse
import pathlib
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET

from offload_ros.graph.launcher import LaunchError, package_share, plan, start, stop


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='offload_launch',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('launch_file', help='path, or a file name in the package launch/')
    parser.add_argument('arguments', nargs='*', help='name:=value')
    args = parser.parse_args(argv)
    path = pathlib.Path(args.launch_file)
    if not path.exists():
        path = package_share() / 'launch' / args.launch_file
    arguments = {}
    for item in args.arguments:
        name, sep, value = item.partition(':=')
        if not sep:
            parser.error(f'argument {item!r} is not name:=value')
        arguments[name] = value
    try:
        nodes = plan(path, arguments)
    except (LaunchError, ET.ParseError, OSError) as e:
        print(f'offload_launch: {e}', file=sys.stderr)
        return 2
    # SIGTERM stops the set as SIGINT does; once stopping, further signals are ignored (a
    # shell's Ctrl-C reaches every process of the group; a second one must not cut the stop).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    processes = start(nodes)
    try:
        while any(p.poll() is None for p in processes):
            try:
                processes[0].wait(0.5)
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        pass
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    codes = stop(processes)
    return max(codes, key=abs) if codes else 0


if __name__ == '__main__':
    sys.exit(main())
