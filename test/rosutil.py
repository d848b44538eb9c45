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

"""Helpers for node tests: spin nodes of a private context in a thread, wait on conditions."""
import contextlib
import threading
import time

from rclpy.executors import SingleThreadedExecutor


@contextlib.contextmanager
def spinning(context, *nodes):
    """
    Spin nodes in a background SingleThreadedExecutor.

    Shut down and join on exit (an executor still spinning at interpreter exit aborts it with code
    134).
    """
    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield executor
    finally:
        executor.shutdown(timeout_sec=5)
        thread.join(10)
        for node in nodes:
            close = getattr(node, 'close', None)
            if close:
                close()
            node.destroy_node()


def wait_until(predicate, timeout_s=20.0, step_s=0.02):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step_s)
    return bool(predicate())
