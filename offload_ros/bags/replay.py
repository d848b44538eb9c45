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
bag_replay BAG: publish a bag's messages on their topics with the recorded timing.

Timing: each message is due at start + (t - t_first) / rate; the replayer sleeps until 2 ms
before and spin-waits the rest. Header stamps are kept, or rewritten to the publish time
(--restamp) by patching the CDR header in place. With --clock the bag's own time is published
on /clock (as `ros2 bag play --clock`): nodes with use_sim_time measure latency from the
recorded stamps in bag time, no restamping needed.
"""
import argparse
import json
import signal
import struct
import sys
import threading
import time
from typing import Dict, List, Optional

import numpy as np
import rclpy
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)
from rosgraph_msgs.msg import Clock
from rosbags.rosbag2 import Reader, ReaderError

from offload_ros.bags.common import IMAGE_TYPES, BagError, ros_type
from offload_ros.ros import conversions, qos

# Types whose serialised form starts with a std_msgs/Header (stamp right after the 4-byte
# CDR encapsulation): their stamp can be rewritten without deserialising.
HEADER_FIRST = (*IMAGE_TYPES, 'sensor_msgs/msg/CameraInfo', 'vision_msgs/msg/Detection2DArray')
SPIN_WAIT_S = 0.002
IMAGE_DEADLINE_S = 1.0  # camera_node's default liveness_s
# After the last message, before the publishers go. Destroying a best-effort writer drops
# what its readers have not taken yet: with 0.5 s, a fresh-clone CI run (2 loaded cores)
# lost the last of 60 raw frames once, the node's executor busy beside its detector.
LINGER_S = 2.0


def restamp(data: bytes, t_ns: int) -> bytes:
    buf = bytearray(data)
    little = buf[1] == 1  # CDR_LE encapsulation id 0x0001
    fmt = '<iI' if little else '>iI'
    struct.pack_into(fmt, buf, 4, t_ns // 1_000_000_000, t_ns % 1_000_000_000)
    return bytes(buf)


def qos_for(connection, msgtype: str) -> QoSProfile:
    if msgtype in IMAGE_TYPES:
        # Offer the camera's liveness deadline, as camera_node does, so the deadline
        # monitor's watch on the image topic (a QoS deadline request) matches the replay.
        return qos.with_deadline(qos_profile_sensor_data, IMAGE_DEADLINE_S)
    offered = connection.ext.offered_qos_profiles if connection.ext else []
    reliable = not offered or all(q.reliability.name == 'RELIABLE' for q in offered)
    durable = offered and all(q.durability.name == 'TRANSIENT_LOCAL' for q in offered)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                      reliability=ReliabilityPolicy.RELIABLE if reliable
                      else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if durable
                      else DurabilityPolicy.VOLATILE)


def parse_remaps(items: List[str]) -> Dict[str, str]:
    remaps = {}
    for item in items:
        src, sep, dst = item.partition(':=')
        if not sep or not src or not dst:
            raise BagError(f'--topic-remap {item!r} is not FROM:=TO')
        remaps[src if src.startswith('/') else '/' + src] = dst
    return remaps


class BagClock:
    """
    /clock at `hz` from the replay's own timeline.

    Bag time = the first message's time + (now - the replay's start) x rate, the time a message is
    published at its due moment. Published before each message too, so a node never receives a
    frame stamped after its clock.
    """

    def __init__(self, node, hz: float, rate: float):
        if not hz > 0:
            raise BagError(f'--clock must be > 0 Hz, got {hz}')
        self.pub = node.create_publisher(Clock, '/clock', 10)
        self.hz, self.rate = hz, rate
        self.origin: Optional[tuple] = None   # (perf_counter, bag ns) of the replay's start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, perf_s: float, bag_ns: int) -> None:
        self.origin = (perf_s, bag_ns)
        if not self._thread.is_alive():
            self._thread.start()

    def publish(self, bag_ns: Optional[int] = None) -> None:
        if bag_ns is None:
            perf_s, first_ns = self.origin
            bag_ns = first_ns + int((time.perf_counter() - perf_s) * self.rate * 1e9)
        self.pub.publish(Clock(clock=conversions.ns_to_stamp(bag_ns)))

    def _run(self) -> None:
        while not self._stop.wait(1.0 / self.hz):
            self.publish()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)


def replay(bag: str, rate: float = 1.0, remaps: Optional[Dict[str, str]] = None,
           loop: bool = False, start_s: float = 0.0, duration_s: Optional[float] = None,
           restamp_now: bool = False, topics: Optional[List[str]] = None,
           wait_for_subscribers_s: float = 0.0, context=None, stop=None,
           min_subscribers: int = 1, clock_hz: Optional[float] = None) -> dict:
    """
    Replay; returns timing statistics.

    `stop`: a threading.Event that ends it early. `clock_hz`: publish the bag's time on /clock at
    this rate.
    """
    stop = stop or threading.Event()
    if not rate > 0:
        raise BagError(f'--rate must be > 0, got {rate}')
    remaps = remaps or {}
    node = rclpy.create_node('bag_replay', context=context)
    errors, published = [], 0
    clock = BagClock(node, clock_hz, rate) if clock_hz else None
    try:
        with Reader(bag) as reader:
            connections = [c for c in reader.connections
                           if topics is None or c.topic in topics]
            publishers = {}
            for c in connections:
                try:
                    msg_class = ros_type(c.msgtype)
                except BagError as e:
                    print(f'bag_replay: skipping {c.topic}: {e}', file=sys.stderr)
                    continue
                publishers[c.id] = (node.create_publisher(
                    msg_class, remaps.get(c.topic, c.topic), qos_for(c, c.msgtype)),
                    c.msgtype in HEADER_FIRST)
            if not publishers:
                raise BagError(f'{bag}: no replayable topics')
            if wait_for_subscribers_s > 0:
                end = time.monotonic() + wait_for_subscribers_s
                while time.monotonic() < end and not all(
                        p.get_subscription_count() >= min_subscribers
                        for p, _ in publishers.values()):
                    time.sleep(0.05)
            first_ns = reader.start_time + int(start_s * 1e9)
            last_ns = first_ns + int(duration_s * 1e9) if duration_s else None
            wanted = [c for c in connections if c.id in publishers]
            while True:
                t0 = time.perf_counter()
                if clock is not None:
                    clock.start(t0, first_ns)
                    clock.publish(first_ns)
                for connection, t_ns, data in reader.messages(connections=wanted,
                                                              start=first_ns, stop=last_ns):
                    due = t0 + (t_ns - first_ns) / 1e9 / rate
                    delay = due - time.perf_counter() - SPIN_WAIT_S
                    if delay > 0 and stop.wait(delay):
                        return _stats(errors, published)
                    while time.perf_counter() < due:
                        pass
                    publisher, has_header = publishers[connection.id]
                    if clock is not None:
                        clock.publish(t_ns)
                    if restamp_now and has_header:
                        data = restamp(data, time.time_ns())
                    publisher.publish(data)
                    errors.append(time.perf_counter() - due)
                    published += 1
                if not loop or stop.is_set():
                    break
            # Let the last messages leave before the publishers go: destroying them at once
            # can drop a best-effort message still in flight.
            stop.wait(LINGER_S)
    finally:
        if clock is not None:
            clock.stop()
        node.destroy_node()
    return _stats(errors, published)


def _stats(errors: List[float], published: int) -> dict:
    e = np.abs(np.array(errors)) * 1e3 if errors else np.zeros(1)
    return {'published': published, 'timing_error_p50_ms': float(np.percentile(e, 50)),
            'timing_error_p95_ms': float(np.percentile(e, 95)),
            'timing_error_max_ms': float(e.max())}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='bag_replay',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('bag')
    parser.add_argument('--rate', type=float, default=1.0, help='time scale (2: twice as fast)')
    parser.add_argument('--topic-remap', action='append', default=[], metavar='FROM:=TO')
    parser.add_argument('--loop', action='store_true')
    parser.add_argument('--start', type=float, default=0.0, help='skip the first S seconds')
    parser.add_argument('--duration', type=float, help='replay only D seconds')
    parser.add_argument('--restamp', action='store_true',
                        help='rewrite header stamps to the publish time')
    parser.add_argument('--topics', nargs='+', help='only these topics')
    parser.add_argument('--wait-for-subscribers', type=float, default=0.0, metavar='S',
                        help='wait up to S seconds for a subscriber on every topic')
    parser.add_argument('--min-subscribers', type=int, default=1,
                        help='subscribers per topic to wait for (e.g. 2: the decision node '
                        'and the deadline monitor both watch the image topic)')
    parser.add_argument('--clock', type=float, nargs='?', const=200.0, metavar='HZ',
                        help='publish the bag\'s time on /clock (default 200 Hz) for nodes '
                        'run with use_sim_time')
    parser.add_argument('--stats-json', help='write timing statistics here')
    args = parser.parse_args(argv)
    rclpy.init(args=['--ros-args'])
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stats = replay(args.bag, args.rate, parse_remaps(args.topic_remap), args.loop,
                       args.start, args.duration, args.restamp, args.topics,
                       args.wait_for_subscribers, stop=stop,
                       min_subscribers=args.min_subscribers, clock_hz=args.clock)
    except (BagError, OSError, ReaderError) as e:
        print(f'bag_replay: {args.bag}: {e}', file=sys.stderr)
        return 2
    finally:
        rclpy.try_shutdown()
    print(json.dumps(stats))
    if args.stats_json:
        with open(args.stats_json, 'w') as handle:
            json.dump(stats, handle)
    return 0


if __name__ == '__main__':
    sys.exit(main())
