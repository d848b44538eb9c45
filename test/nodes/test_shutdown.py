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
Ctrl-C as a shell sends it.

SIGINT (or SIGTERM) to the whole process group of the launcher and every node, once or twice. Every
process ends with exit 0 and no traceback.
"""
import os
import signal
import subprocess
import time

import pytest

from conftest import venv_exe


@pytest.mark.slow
@pytest.mark.parametrize('sig,times', [(signal.SIGINT, 1), (signal.SIGINT, 2),
                                       (signal.SIGTERM, 1)])
def test_signals_to_the_process_group_end_every_node_cleanly(start_worker, media_dir,
                                                             tmp_path, sig, times):
    worker = start_worker('--threads', '1')
    log_path = tmp_path / 'launch.log'
    with open(log_path, 'w') as log:
        launcher = subprocess.Popen(
            [venv_exe('offload_launch'), 'robot.launch.xml',
             f'source:={media_dir / "vtest.avi"}', f'workers:=edge1={worker.url}'],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            end = time.monotonic() + 90
            while 'subscribed to raw images' not in log_path.read_text():
                assert launcher.poll() is None and time.monotonic() < end, \
                    log_path.read_text()[-3000:]
                time.sleep(0.2)
            time.sleep(2.0)     # frames flowing: inference and requests in flight
            pids = [p.pid for p in __import__('psutil').Process(launcher.pid).children()]
            assert len(pids) == 5
            for _ in range(times):
                os.killpg(launcher.pid, sig)
                time.sleep(0.15)
            code = launcher.wait(60)
        finally:
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    assert 'Traceback' not in output and 'terminate called' not in output, output[-3000:]
