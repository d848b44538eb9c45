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
camera_node: frames from a V4L2 device, a video file or an image folder, stamped at capture.

Published at a fixed rate or with Poisson inter-arrival times (for queueing experiments).
"""
import pathlib
import threading
import time

import cv2
import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy._rclpy_pybind11 import RCLError
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from offload_ros.ros import conversions, params, qos, runner, topics

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')
MAX_LAG_S = 0.5   # behind schedule by more than this: restart the schedule, no burst

SPECS = [
    params.Spec('source', '/dev/video0', 'V4L2 device (/dev/videoN or index), video file or '
                'image folder.', read_only=True),
    params.Spec('rate_hz', 0.0, 'Publish rate; 0: the source frame rate. Settable at run '
                'time (takes effect from the next frame).', (0.0, 1000.0)),
    params.Spec('arrival', 'fixed', 'Inter-arrival process.', choices=('fixed', 'poisson'),
                read_only=True),
    params.Spec('seed', 0, 'Seed of the Poisson arrivals.', (0, 2 ** 31 - 1), read_only=True),
    params.Spec('loop', True, 'Restart files at their end (else stop).', read_only=True),
    params.Spec('publish_raw', True, 'Publish sensor_msgs/Image on image_raw.', read_only=True),
    params.Spec('publish_compressed', False, 'Publish JPEG on image_raw/compressed.',
                read_only=True),
    params.Spec('jpeg_quality', 80, 'JPEG quality of compressed frames.', (1, 100),
                read_only=True),
    params.Spec('width', 0, 'Resize to this width (0: native).', (0, 10000), read_only=True),
    params.Spec('height', 0, 'Resize to this height (0: native).', (0, 10000), read_only=True),
    params.Spec('frame_id', 'camera_optical_frame', 'header.frame_id.', read_only=True),
    params.Spec('max_frames', 0, 'Stop after this many frames (0: no limit).', (0, 10 ** 9),
                read_only=True),
    params.Spec('start_delay_s', 0.0, 'Wait before the first frame (discovery).', (0.0, 60.0),
                read_only=True),
    params.Spec('stamp_at', 'read', 'header.stamp taken when the frame is read (as a driver '
                'stamps at exposure), or just before publishing, after encoding (to time the '
                'graph from the publish on).', choices=('read', 'publish'), read_only=True),
    params.Spec('liveness_s', 1.0, 'Offered QoS deadline of the image topics.', (0.01, 60.0),
                read_only=True),
]


class FrameSource:
    """Frames from a device, a video file or a sorted folder of images."""

    def __init__(self, source: str, loop: bool):
        self.loop = loop
        self.files = None
        path = pathlib.Path(source)
        if path.is_dir():
            self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise ValueError(f'source: no images in folder {source}')
            self.index = 0
            self.fps = 0.0
            return
        device = int(source) if source.isdigit() else source
        if isinstance(device, str) and not path.exists():
            raise ValueError(f'source: {source} does not exist')
        self.capture = cv2.VideoCapture(device)
        if not self.capture.isOpened():
            raise ValueError(f'source: cannot open {source}')
        self.is_file = path.is_file()
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)

    def read(self):
        if self.files is not None:
            if self.index >= len(self.files):
                if not self.loop:
                    return None
                self.index = 0
            image = cv2.imread(str(self.files[self.index]), cv2.IMREAD_COLOR)
            self.index += 1
            return image
        ok, image = self.capture.read()
        if not ok and self.is_file and self.loop:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self.capture.read()
        return image if ok else None

    def close(self):
        if self.files is None:
            self.capture.release()


class CameraNode(Node):
    NODE_NAME = 'camera'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, **kwargs)
        v = self.values = params.declare(self, SPECS)
        if not (v['publish_raw'] or v['publish_compressed']):
            raise ValueError('publish_raw and publish_compressed are both false')
        self.source = FrameSource(v['source'], v['loop'])
        self.rate_hz = self._rate(v['rate_hz'])
        self.add_on_set_parameters_callback(self._on_set_parameters)
        profile = qos.with_deadline(qos.SENSOR_DATA, v['liveness_s'])
        self.raw_pub = self.create_publisher(Image, topics.IMAGE, profile) \
            if v['publish_raw'] else None
        self.comp_pub = self.create_publisher(CompressedImage, topics.IMAGE_COMPRESSED,
                                              profile) if v['publish_compressed'] else None
        self.rng = np.random.default_rng(v['seed'])
        self.published = 0
        self.finished = threading.Event()
        self._stop = threading.Event()
        self.schedule_resets = 0
        # A daemon: a frame stuck in the middleware at shutdown must not keep the process
        # alive (close() waits for it a while, then says so).
        self._thread = threading.Thread(target=self._loop, name='camera', daemon=True)
        self._thread.start()

    def _rate(self, rate_hz: float) -> float:
        rate = rate_hz or self.source.fps
        if not rate > 0:
            raise ValueError('rate_hz: 0 and the source has no frame rate; set rate_hz')
        return rate

    def _on_set_parameters(self, changes) -> SetParametersResult:
        for p in changes:
            if p.name == 'rate_hz':
                try:
                    rate = self._rate(p.value)
                except ValueError as e:
                    return SetParametersResult(successful=False, reason=str(e))
                self.rate_hz = rate
                self.get_logger().info(f'rate_hz set to {rate:g}')
        return SetParametersResult(successful=True)

    def _gap_s(self) -> float:
        if self.values['arrival'] == 'poisson':
            return float(self.rng.exponential(1.0 / self.rate_hz))
        return 1.0 / self.rate_hz

    def _loop(self) -> None:
        v = self.values
        if self._stop.wait(v['start_delay_s']):
            return
        due = time.monotonic()
        while not self._stop.is_set():
            image = self.source.read()
            if image is None:
                self.get_logger().info(f'end of source after {self.published} frames')
                break
            if v['width'] and v['height']:
                image = cv2.resize(image, (v['width'], v['height']),
                                   interpolation=cv2.INTER_AREA)
            header = Header(stamp=self.get_clock().now().to_msg(), frame_id=v['frame_id'])
            try:
                self._publish(image, header)
            except RCLError:
                if not self.context.ok():  # shut down by a signal while publishing
                    break
                raise
            self.published += 1
            if v['max_frames'] and self.published >= v['max_frames']:
                break
            due += self._gap_s()
            delay = due - time.monotonic()
            if delay < -MAX_LAG_S:
                # Starved of CPU (a robot core busy with inference): a sensor does not
                # deliver the frames it missed in a burst afterwards, so neither do we (a
                # 1 Hz phase after a saturated 8 Hz one ran at 1.8 Hz for 30 s).
                due, delay = time.monotonic(), 0.0
                self.schedule_resets += 1
            if delay > 0 and self._stop.wait(delay):
                break
        self.finished.set()

    def _publish(self, image: np.ndarray, header: Header) -> None:
        """
        Raw first, so JPEG encoding never delays it.

        With stamp_at 'publish' both are encoded first and stamped together just before they go
        out.
        """
        later = self.values['stamp_at'] == 'publish'
        messages = []
        for publisher, encode in ((self.raw_pub, conversions.bgr_to_image),
                                  (self.comp_pub, self._compress)):
            if publisher is None:
                continue
            if later:
                messages.append((publisher, encode(image, header)))
            else:
                publisher.publish(encode(image, header))
        if messages:
            header.stamp = self.get_clock().now().to_msg()
            for publisher, message in messages:
                message.header = header
                publisher.publish(message)

    def _compress(self, image: np.ndarray, header: Header) -> CompressedImage:
        return conversions.bgr_to_compressed(image, header, self.values['jpeg_quality'])

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self.get_logger().warning(f'camera thread still busy {timeout_s:g} s after stop '
                                      '(a frame in the middleware); leaving it')
            return   # the source stays open under the thread; the process exit closes it
        self.source.close()


def main(args=None) -> int:
    return runner.run(CameraNode, args)
