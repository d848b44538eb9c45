"""Process entry point shared by the nodes: init, spin in the main thread, clean shutdown."""
import sys
from typing import Callable, List, Optional, Type

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def run(factory: Callable[[], Node], args: Optional[List[str]] = None,
        executor_type: Type[Executor] = SingleThreadedExecutor) -> int:
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    try:
        node = factory()
        executor = executor_type()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # SIGINT shuts the context down from rclpy's signal thread; when that lands between
        # the executor's ok() check and its wait set's creation, rcl raises RCLError (a
        # RuntimeError) for the invalid context (rclpy#402). That is the requested stop, not a
        # failure; with the context still valid, it is.
        if rclpy.ok():
            raise
    except ValueError as e:  # invalid configuration: one line, no traceback
        print(f'{getattr(node, "get_name", lambda: "node")()}: {e}', file=sys.stderr)
        return 2
    finally:
        if node is not None:
            close = getattr(node, 'close', None)
            if close:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
