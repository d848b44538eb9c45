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
Serial uploads: one upload at a time on a worker's link, in arrival order.

Real sockets and the real client (requests/urllib3) against a server that reads each
connection at a limited rate, as a slow link would drain it.
"""
import socket
import threading
import time

import numpy as np
import pytest

from offload_ros.worker.client import FifoLock, WorkerClient, WorkerRequestError


class SlowReader:
    """
    Accepts connections, notes when each one's first bytes (the request line) arrive.

    Drains the body at `rate_Bps` and answers 400 (the test needs the timing only).
    """

    def __init__(self, rate_Bps: float):
        self.rate_Bps = rate_Bps
        self.first_bytes_s = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        self._sock.bind(('127.0.0.1', 0))
        self._sock.listen(8)
        self.url = f'http://127.0.0.1:{self._sock.getsockname()[1]}'
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            data = conn.recv(65536)
            if not data:
                return
            self.first_bytes_s.append(time.perf_counter())
            while b'\r\n\r\n' not in data:
                data += conn.recv(65536)
            head, body = data.split(b'\r\n\r\n', 1)
            length = int([line.split(b':')[1] for line in head.split(b'\r\n')
                          if line.lower().startswith(b'content-length')][0])
            got = len(body)
            while got < length:
                chunk = conn.recv(min(8192, length - got))
                if not chunk:
                    return
                got += len(chunk)
                time.sleep(len(chunk) / self.rate_Bps)
            conn.sendall(b'HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n'
                         b'Content-Length: 2\r\nConnection: close\r\n\r\n{}')

    def close(self):
        self._sock.close()


def second_upload_starts_after_s(serial: bool) -> float:
    """
    Two raw 921 kB frames sent at once over a 2 MB/s reader.

    When the second's request reaches the server, after the first's.
    """
    server = SlowReader(rate_Bps=2e6)
    client = WorkerClient(server.url, payload='raw', serial_uploads=serial, pool_size=4)
    frame = np.zeros((480, 640, 3), np.uint8)

    def send():
        with pytest.raises(WorkerRequestError):
            client.infer(frame, budget_s=5.0)
    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    server.close()
    assert len(server.first_bytes_s) == 2
    return server.first_bytes_s[1] - server.first_bytes_s[0]


def test_serial_uploads_send_one_body_at_a_time():
    """
    A body takes 0.46 s at 2 MB/s.

    The second waits for the first to be handed to the kernel (all but the socket's 16 kB low-water
    mark and the receiver's window unsent) instead of sharing the link from the start.
    """
    assert second_upload_starts_after_s(serial=True) > 0.3
    assert second_upload_starts_after_s(serial=False) < 0.1


def test_fifo_lock_grants_in_arrival_order_and_times_out():
    lock = FifoLock()
    assert lock.acquire(0.1)
    order = []

    def wait(i):
        assert lock.acquire(5.0)
        order.append(i)
        time.sleep(0.01)
        lock.release()
    threads = []
    for i in range(5):
        threads.append(threading.Thread(target=wait, args=(i,)))
        threads[-1].start()
        while lock.waiting() < i + 2:
            time.sleep(0.001)
    assert not lock.acquire(0.05)           # the holder keeps it; the waiter gives up ...
    assert lock.waiting() == 6              # ... and leaves the queue
    lock.release()
    for t in threads:
        t.join()
    assert order == [0, 1, 2, 3, 4]
    assert lock.waiting() == 0
