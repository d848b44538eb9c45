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
bag_from_video VIDEO OUT_BAG: a rosbag2 of camera frames with capture timestamps.

Every frame of the video at its own frame rate by default; --fps resamples the timeline;
--poisson RATE draws exponential gaps (seeded) for queueing experiments. Frames are JPEG
(CompressedImage, as most robot cameras on Wi-Fi publish) unless --raw; the size the bag
will take is printed first (raw 640x480 is 0.9 MB a frame: 1 GB for an 80 s clip).
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
from offload_ros.ros import conversions, topics

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


def estimate_bytes(video: str, compressed: bool, max_frames: int = 0, width: int = 0,
                   height: int = 0) -> float:
    """Return what the bag's frames will take: the first frame's size times the frame count."""
    capture = cv2.VideoCapture(video)
    if not capture.isOpened():
        raise BagError(f'{video}: cannot open as a video')
    ok, frame = capture.read()
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    capture.release()
    if not ok:
        raise BagError(f'{video}: cannot read a frame')
    if width and height:
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    each = len(cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, 80])[1]) if compressed \
        else frame.nbytes
    return each * (min(count, max_frames) if max_frames and count else max_frames or count)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='bag_from_video',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('video')
    parser.add_argument('out_bag')
    parser.add_argument('--fps', type=float, help='timeline rate (default: the video rate)')
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument('--raw', action='store_true', help='sensor_msgs/Image frames')
    kind.add_argument('--compressed', action='store_true',
                      help='JPEG CompressedImage (the default; kept for older scripts)')
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
        size = estimate_bytes(args.video, not args.raw, args.max_frames, args.width,
                              args.height)
        print(f'bag_from_video: about {size / 1e6:.0f} MB of '
              f'{"raw" if args.raw else "JPEG"} frames', flush=True)
        count = write_bag(args.video, args.out_bag, args.fps, not args.raw, args.poisson,
                          args.seed, args.storage, args.topic, args.max_frames,
                          width=args.width, height=args.height)
    except (BagError, OSError, WriterError) as e:
        print(f'bag_from_video: {e}', file=sys.stderr)
        return 2
    print(f'bag_from_video: wrote {count} frames to {args.out_bag}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
