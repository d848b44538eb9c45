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
Process entry point shared by the nodes: init, spin in the main thread, clean shutdown.

A shell's Ctrl-C signals the whole process group and a launcher forwards its own SIGINT too:
a node gets two. The first stops the executor; signals during the cleanup after it are
ignored, so that a second one cannot interrupt a thread pool's join or the node's
destruction (offload_node aborted with 'terminate called without an active exception').

SIGINT and SIGTERM are handled here, not by rclpy's signal thread: the executor spins in
slices of SIGNAL_POLL_S and a Python handler sets the stop. In fresh-clone CI runs a node now
and then stayed in its executor's wait 30 s after SIGINT with rclpy's handling (its stacks
dumped on SIGUSR1: the main thread in wait_for_ready_callbacks; CHANGELOG, session 15).
"""
import faulthandler
import signal
import sys
import threading
from typing import Callable, List, Optional, Type

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions


CLEANUP_REPORT_S = 10.0
SIGNAL_POLL_S = 0.2    # the longest a stop waits for the executor's current slice


def run(factory: Callable[[], Node], args: Optional[List[str]] = None,
        executor_type: Type[Executor] = SingleThreadedExecutor) -> int:
    node = None
    argv = list(args if args is not None else sys.argv)
    _dump_stacks_on(signal.SIGUSR1)
    stop = threading.Event()
    try:
        rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        node = factory()
        executor = executor_type()
        executor.add_node(node)
        while not stop.is_set() and executor.context.ok():
            executor.spin_once(timeout_sec=SIGNAL_POLL_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError as e:
        if node is None and not rclpy.ok():   # init failed: bad --ros-args
            print(f'{node_name(factory, argv)}: {str(e).splitlines()[0]}', file=sys.stderr)
            return 2
        # SIGINT shuts the context down from rclpy's signal thread; when that lands between
        # the executor's ok() check and its wait set's creation, rcl raises RCLError (a
        # RuntimeError) for the invalid context (rclpy#402). That is the requested stop, not a
        # failure; with the context still valid, it is.
        if rclpy.ok():
            raise
    except (ValueError, ParameterException) as e:   # bad configuration: one line
        print(f'{node_name(factory, argv)}: {e}', file=sys.stderr)
        return 2
    finally:
        hold_signals()
        # A clean stop takes well under this: past it, every thread's stack goes to stderr
        # (the node's log) so that a hang at shutdown says where it is.
        reporting = _report_hang_after(CLEANUP_REPORT_S)
        try:
            if node is not None:
                close = getattr(node, 'close', None)
                if close:
                    close()
                node.destroy_node()
            rclpy.try_shutdown()
        finally:
            if reporting:
                faulthandler.cancel_dump_traceback_later()
    return 0


def _dump_stacks_on(sig: int) -> None:
    """
    Dump every thread's stack to stderr on `sig` (e.g. `kill -USR1 PID`).

    faulthandler's handler runs in C, without the GIL: it answers even when a thread holds the
    GIL in a call that never returns, which is when a stuck node most needs it.
    """
    try:
        faulthandler.register(sig, all_threads=True)
    except (AttributeError, ValueError, OSError):   # io.UnsupportedOperation: captured stderr
        pass


def _report_hang_after(seconds: float) -> bool:
    """Dump every thread's stack to stderr after `seconds`; False where stderr is no file."""
    try:
        faulthandler.dump_traceback_later(seconds)
    except (AttributeError, ValueError, OSError):   # io.UnsupportedOperation: captured stderr
        return False
    return True


def node_name(factory, argv: List[str]) -> str:
    """
    Return the name a node runs under.

    A `__node:=` remap among its ROS arguments, else its class's NODE_NAME (known before the node
    exists, for errors in its constructor).
    """
    for arg in argv:
        if arg.startswith('__node:='):
            return arg.split(':=', 1)[1]
    return getattr(factory, 'NODE_NAME', 'node')


def hold_signals() -> None:
    """Ignore SIGINT and SIGTERM from now on: the process is already stopping."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
