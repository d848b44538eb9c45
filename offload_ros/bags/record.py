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
bag_record TOPICS...

OUT_BAG: record topics with rclpy into a rosbag2 (rosbags writer).

Types are discovered from the graph; each subscription matches its publishers' QoS (reliable
and transient-local only if all publishers offer it), as `ros2 bag record` does.
"""
import argparse
import queue
import signal
import sys
import threading
import time
from typing import Dict, List, Optional

import rclpy
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

from offload_ros.bags.common import (BagError, qos_of, reliable_qos, ros_type, sensor_qos,
                                     typestore)


def _subscription_qos(node, topic: str):
    infos = node.get_publishers_info_by_topic(topic)
    reliable = bool(infos) and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                                   for i in infos)
    durable = bool(infos) and all(
        i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
    ros_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                         reliability=ReliabilityPolicy.RELIABLE if reliable
                         else ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL if durable
                         else DurabilityPolicy.VOLATILE)
    # The bag keeps what the publishers offered (a replay offers it again), not the
    # recorder's own subscription QoS.
    bag_qos = [qos_of(i.qos_profile) for i in infos] or \
        [reliable_qos(durable) if reliable else sensor_qos()]
    return ros_qos, bag_qos


def record(topic_names: List[str], out: str, duration_s: Optional[float] = None,
           discovery_timeout_s: float = 10.0, storage: str = 'mcap', context=None,
           stop: Optional[threading.Event] = None, ready: Optional[threading.Event] = None,
           namespace: str = '', counts: Optional[Dict[str, int]] = None) -> Dict[str, int]:
    """
    Record until duration_s passes or `stop` is set; returns messages per topic.

    counts, if given, is filled live (messages written per topic) for callers that wait.
    """
    stop = stop or threading.Event()
    node = rclpy.create_node('bag_record', namespace=namespace or None, context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    wanted = [node.resolve_topic_name(t) for t in topic_names]
    types: Dict[str, str] = {}
    end = time.monotonic() + discovery_timeout_s
    while time.monotonic() < end and len(types) < len(wanted):
        for name, kinds in node.get_topic_names_and_types():
            # A topic known only through subscriptions has no publisher QoS to match yet.
            if name in wanted and kinds and node.get_publishers_info_by_topic(name):
                types[name] = kinds[0]
        executor.spin_once(timeout_sec=0.1)
    missing = [t for t in wanted if t not in types]
    if missing:
        print(f'bag_record: not (yet) published, not recorded: {", ".join(missing)}',
              file=sys.stderr)
    if not types:
        executor.shutdown()
        node.destroy_node()
        raise BagError('none of the topics is published')
    pending: queue.Queue = queue.Queue()
    counts = counts if counts is not None else {}
    counts.update({t: 0 for t in types})
    store = typestore()
    plugin = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}[storage]
    try:
        with Writer(out, version=9, storage_plugin=plugin) as writer:
            connections = {}
            for topic, msgtype in types.items():
                ros_qos, bag_qos = _subscription_qos(node, topic)
                print(f'bag_record: {topic} [{msgtype}] {ros_qos.reliability.name.lower()}, '
                      f'{ros_qos.durability.name.lower()}', file=sys.stderr)
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store,
                                                           offered_qos_profiles=bag_qos)
                node.create_subscription(
                    ros_type(msgtype), topic,
                    (lambda t: lambda data: pending.put((t, time.time_ns(), data)))(topic),
                    ros_qos, raw=True)
            if ready is not None:
                ready.set()
            deadline = time.monotonic() + duration_s if duration_s else None
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                executor.spin_once(timeout_sec=0.05)
                _drain(pending, writer, connections, counts)
            end = time.monotonic() + 0.3  # last messages in flight
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
            _drain(pending, writer, connections, counts)
    finally:
        executor.shutdown()
        node.destroy_node()
    return counts


def _drain(pending, writer, connections, counts) -> None:
    while True:
        try:
            topic, t_ns, data = pending.get_nowait()
        except queue.Empty:
            return
        writer.write(connections[topic], t_ns, data)
        counts[topic] += 1


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='bag_record',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('items', nargs='+', metavar='TOPIC... OUT_BAG')
    parser.add_argument('--duration', type=float, help='stop after D seconds')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument('--discovery-timeout', type=float, default=10.0)
    args = parser.parse_args(argv)
    if len(args.items) < 2:
        parser.error('give at least one topic and the output bag')
    *topic_names, out = args.items
    rclpy.init(args=['--ros-args'])
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        counts = record(topic_names, out, args.duration, args.discovery_timeout, args.storage,
                        stop=stop)
    except (BagError, WriterError, OSError) as e:
        print(f'bag_record: {e}', file=sys.stderr)
        return 2
    finally:
        rclpy.try_shutdown()
    print('bag_record: ' + ', '.join(f'{t}: {n}' for t, n in counts.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
