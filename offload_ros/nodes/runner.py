"""Process entry point shared by the nodes: init, spin in the main thread, clean shutdown."""
import sys
from typing import Callable, List, Optional

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def run(factory: Callable[[], Node], args: Optional[List[str]] = None) -> int:
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    try:
        node = factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
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
