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

"""Starting and stopping real gpu_worker processes (demo, scenarios, tests)."""
import os
import pathlib
import signal
import subprocess
import sys
import threading
from typing import List, Optional


class WorkerProcess:
    """A gpu_worker subprocess; the URL is read from its 'listening on' line (port 0 ok)."""

    def __init__(self, *args: str, env: Optional[dict] = None, bin_dir: pathlib.Path = None,
                 prefix: List[str] = (), start_timeout_s: float = 90.0):
        bin_dir = bin_dir or pathlib.Path(sys.executable).parent
        self.lines: List[str] = []
        argv = [*prefix, str(bin_dir / 'gpu_worker'), *args]
        if '--port' not in args:
            argv += ['--port', '0']
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env={**os.environ, **(env or {})})
        self.url: Optional[str] = None
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.lines.append(line)
                if 'listening on' in line and self.url is None:
                    self.url = line.split('listening on ')[1].split()[0]
                    ready.set()
            ready.set()
        self._thread = threading.Thread(target=pump, daemon=True)
        self._thread.start()
        if not ready.wait(start_timeout_s) or self.url is None:
            self.stop()
            raise RuntimeError('gpu_worker did not start:\n' + self.output)

    @property
    def output(self) -> str:
        return ''.join(self.lines)

    def stop(self, timeout_s: float = 30.0) -> Optional[int]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._thread.join(5)
        if self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL (a crash); stop() later still closes the pipe."""
        self.proc.kill()
        self.proc.wait()
