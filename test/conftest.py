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

"""Test isolation: DDS on loopback, one ROS domain per pytest-xdist worker, private contexts."""
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
VENV_BIN = pathlib.Path(sys.executable).parent


def _worker_index() -> int:
    worker = os.environ.get('PYTEST_XDIST_WORKER', 'gw0')
    return int(worker[2:]) if worker[2:].isdigit() else 0


os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ['RMW_IMPLEMENTATION'] = 'rmw_fastrtps_cpp'
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(ROOT / 'config/fastdds_profile.xml'))
# Distinct domain per worker (and per concurrent run via the parent pid) so tests never cross-talk.
os.environ['ROS_DOMAIN_ID'] = str(20 + (os.getppid() % 8) * 8 + _worker_index())


@pytest.fixture
def ros_context():
    """Return a private rclpy context, shut down after the test."""
    import rclpy
    from rclpy.context import Context
    context = Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()


@pytest.fixture(scope='session')
def media_dir() -> pathlib.Path:
    cache = pathlib.Path(os.environ.get('OFFLOAD_ROS_CACHE',
                                        pathlib.Path.home() / '.cache/offload_ros'))
    path = cache / 'media'
    if not (path / 'vtest.avi').exists():
        pytest.fail(f'footage missing in {path}: run scripts/provision_media.sh (make test does)')
    return path


@pytest.fixture(scope='session')
def street(media_dir):
    """Return the first frame of the real footage (768x576 BGR), read once."""
    import cv2
    capture = cv2.VideoCapture(str(media_dir / 'vtest.avi'))
    ok, frame = capture.read()
    assert ok
    return frame


@pytest.fixture(scope='module')
def frames(media_dir):
    """Return the first 12 frames of the real footage at 640x480."""
    import cv2
    capture = cv2.VideoCapture(str(media_dir / 'vtest.avi'))
    out = []
    for _ in range(12):
        ok, frame = capture.read()
        out.append(cv2.resize(frame, (640, 480)))
    return out


def jpeg_header_only(data: bytes) -> bytes:
    """SOI, a JPEG's frame header and EOI: the header parses, the image does not decode."""
    sof = data.index(b'\xff\xc0')
    return data[:2] + data[sof:sof + 2 + int.from_bytes(data[sof + 2:sof + 4], 'big')] \
        + b'\xff\xd9'


def venv_exe(name: str) -> str:
    return str(VENV_BIN / name)


from offload_ros.graph.procs import WorkerProcess  # noqa: E402


@pytest.fixture
def start_worker():
    started = []

    def start(*args, env=None):
        w = WorkerProcess(*args, env=env)
        started.append(w)
        return w
    yield start
    for w in started:
        w.stop()
