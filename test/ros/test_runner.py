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

"""The shared node entry point: how a process ends when its context goes away under it."""
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from offload_ros.ros import runner


class ClosingNode(Node):
    closed = 0

    def __init__(self):
        super().__init__('runner_probe')

    def close(self):
        ClosingNode.closed += 1


class ShutdownBeforeWait(SingleThreadedExecutor):
    """
    Makes the signal race certain.

    The context is shut down (as rclpy's signal thread does on SIGINT) after spin's ok() check and
    before the wait set is built, so the real rcl call fails with 'context is not valid'.
    """

    def spin_once(self, timeout_sec=None):
        assert self.context.ok()
        self.context.try_shutdown()
        super().spin_once(timeout_sec=0.1)


class FailsWhileRunning(SingleThreadedExecutor):
    def spin_once(self, timeout_sec=None):
        raise RuntimeError('a real failure')


def test_shutdown_during_wait_set_creation_is_a_clean_stop():
    ClosingNode.closed = 0
    assert runner.run(ClosingNode, [], executor_type=ShutdownBeforeWait) == 0
    assert ClosingNode.closed == 1
    assert not rclpy.ok()


def test_rcl_error_while_the_context_is_valid_propagates():
    ClosingNode.closed = 0
    with pytest.raises(RuntimeError, match='a real failure'):
        runner.run(ClosingNode, [], executor_type=FailsWhileRunning)
    assert ClosingNode.closed == 1 and not rclpy.ok()


@pytest.mark.parametrize('argv,needle', [
    (['x', '--ros-args', '-p', 'deadline_s:=100.0'], 'deadline_s'),
    (['x', '--ros-args', '-p', 'policy_mode:=lottery'], 'policy_mode'),
    (['x', '--ros-args', '-p', "workers:=['edge1=http://']", '-r', '__node:=robot_offload'],
     'workers'),
    (['x', '--ros-args', '-p', 'workers:=[edge1=http://'], 'parse')])
def test_bad_start_up_parameters_are_one_line_naming_the_node(argv, needle, capsys):
    """
    An out-of-range or invalid value given at start-up.

    Exit 2 and one line with the node's name (its remapped one where given), no traceback.
    """
    from offload_ros.nodes.offload_node import OffloadNode
    assert runner.run(OffloadNode, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    name = 'robot_offload' if 'robot_offload' in ' '.join(argv) else 'offload'
    assert len(err) == 1 and err[0].startswith(f'{name}: ') and needle in err[0], err
    assert not rclpy.ok()
