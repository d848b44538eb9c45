"""bag_from_video VIDEO OUT_BAG: a rosbag2 of camera frames with capture timestamps.

Every frame of the video at its own frame rate by default; --fps resamples the timeline;
--poisson RATE draws exponential gaps (seeded) for queueing experiments.
"""
import argparse
import sys
from typing import List, Optional

import cv2
import numpy as np
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from std_msgs.msg import Header

from offload_ros.bags.common import BagError, sensor_qos, typestore
from offload_ros.nodes import conversions, topics

START_NS = 1_700_000_000 * 10 ** 9  # a fixed epoch: bags made twice are identical


def write_bag(video: str, out: str, fps: Optional[float] = None, compressed: bool = False,
              poisson_hz: Optional[float] = None, seed: int = 0, storage: str = 'mcap',
              topic: Optional[str] = None, max_frames: int = 0, frame_id: str = 'camera',
              width: int = 0, height: int = 0) -> int:
    capture = cv2.VideoCapture(video)
    if not capture.isOpened():
        raise BagError(f'{video}: cannot open as a video')
    native_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    rate = fps or native_fps
    if not poisson_hz and not rate > 0:
        raise BagError(f'{video}: no frame rate in the file; pass --fps')
    rng = np.random.default_rng(seed)
    store = typestore()
    msgtype = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
    topic = topic or ('/' + (topics.IMAGE_COMPRESSED if compressed else topics.IMAGE))
    plugin = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}[storage]
    count, t_ns = 0, START_NS
    with Writer(out, version=9, storage_plugin=plugin) as writer:
        connection = writer.add_connection(topic, msgtype, typestore=store,
                                           offered_qos_profiles=[sensor_qos()])
        while True:
            ok, frame = capture.read()
            if not ok or (max_frames and count >= max_frames):
                break
            if width and height:
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            header = Header(stamp=conversions.ns_to_stamp(t_ns), frame_id=frame_id)
            msg = conversions.bgr_to_compressed(frame, header) if compressed \
                else conversions.bgr_to_image(frame, header)
            writer.write(connection, t_ns, serialize_message(msg))
            count += 1
            gap_s = rng.exponential(1.0 / poisson_hz) if poisson_hz else 1.0 / rate
            t_ns += int(round(gap_s * 1e9))
    capture.release()
    if count == 0:
        raise BagError(f'{video}: no frames read')
    return count


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='bag_from_video', description=__doc__.splitlines()[0])
    parser.add_argument('video')
    parser.add_argument('out_bag')
    parser.add_argument('--fps', type=float, help='timeline rate (default: the video rate)')
    parser.add_argument('--compressed', action='store_true', help='JPEG CompressedImage')
    parser.add_argument('--poisson', type=float, metavar='RATE', help='Poisson arrivals (Hz)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument('--topic', help='default /image_raw or /image_raw/compressed')
    parser.add_argument('--max-frames', type=int, default=0)
    parser.add_argument('--width', type=int, default=0)
    parser.add_argument('--height', type=int, default=0)
    args = parser.parse_args(argv)
    for name in ('fps', 'poisson'):
        value = getattr(args, name)
        if value is not None and not value > 0:
            print(f'bag_from_video: --{name} must be > 0', file=sys.stderr)
            return 2
    try:
        count = write_bag(args.video, args.out_bag, args.fps, args.compressed, args.poisson,
                          args.seed, args.storage, args.topic, args.max_frames,
                          width=args.width, height=args.height)
    except (BagError, OSError, WriterError) as e:
        print(f'bag_from_video: {e}', file=sys.stderr)
        return 2
    print(f'bag_from_video: wrote {count} frames to {args.out_bag}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
