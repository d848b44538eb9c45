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
What /load polls cost a worker: 50 robots, each polling every worker at 2 Hz (one per epoch).

Starts a real gpu_worker, measures its CPU (user + system seconds per wall second, psutil)
while idle, then while `robots` clients (each its own keep-alive connection and
X-Offload-Client) poll /load at `rate_hz` with random phases. Goal: the polls cost under 5%
of one core. Writes bench/results/polls.json.
"""
import argparse
import asyncio
import json
import pathlib
import random
import statistics
import sys
import time

import aiohttp
import psutil

from offload_ros.graph.procs import WorkerProcess
from offload_ros.worker import protocol

ROOT = pathlib.Path(__file__).resolve().parents[1]


async def poll(url: str, robots: int, rate_hz: float, seconds: float) -> dict:
    latencies, failures = [], 0
    end = time.monotonic() + seconds

    async def robot(index: int):
        nonlocal failures
        headers = {protocol.CLIENT_HEADER: f'robot{index}'}
        async with aiohttp.ClientSession(headers=headers) as session:
            await asyncio.sleep(random.uniform(0, 1.0 / rate_hz))
            next_at = time.monotonic()
            while next_at < end:
                start = time.monotonic()
                try:
                    async with session.get(url) as response:
                        await response.read()
                        if response.status != 200:
                            failures += 1
                except aiohttp.ClientError:
                    failures += 1
                latencies.append(time.monotonic() - start)
                next_at += 1.0 / rate_hz
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*(robot(i) for i in range(robots)))
    latencies.sort()
    return {'polls': len(latencies), 'failures': failures,
            'median_s': statistics.median(latencies) if latencies else None,
            'p99_s': latencies[int(0.99 * (len(latencies) - 1))] if latencies else None}


def cpu_share(process: psutil.Process, action) -> tuple:
    """(CPU seconds per wall second of `process` during action(), what action returned)."""
    before, started = process.cpu_times(), time.monotonic()
    result = action()
    after, wall = process.cpu_times(), time.monotonic() - started
    return (after.user + after.system - before.user - before.system) / wall, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=str(ROOT / 'bench/results/polls.json'))
    parser.add_argument('--robots', type=int, default=50)
    parser.add_argument('--rate-hz', type=float, default=2.0)
    parser.add_argument('--seconds', type=float, default=20.0)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args(argv)
    worker = WorkerProcess('--threads', '1')
    try:
        process = psutil.Process(worker.proc.pid)
        url = worker.url + protocol.LOAD_ROUTE.format(model='yolov3_tiny')
        time.sleep(3.0)     # past start-up
        rounds = []
        for k in range(args.rounds):
            idle = cpu_share(process, lambda: time.sleep(args.seconds / 2))[0]
            busy, polled = cpu_share(process, lambda: asyncio.run(
                poll(url, args.robots, args.rate_hz, args.seconds)))
            rounds.append({'idle_cpu': idle, 'polling_cpu': busy, 'cost_cpu': busy - idle,
                           **polled})
            print(f'round {k + 1}: idle {idle:.2%} of a core, polled {busy:.2%} '
                  f'({polled["polls"]} polls, {polled["failures"]} failed, median '
                  f'{polled["median_s"] * 1e3:.1f} ms)', flush=True)
    finally:
        worker.stop()
    result = {'bench': 'polls', 'robots': args.robots, 'rate_hz': args.rate_hz,
              'polls_per_s': args.robots * args.rate_hz, 'rounds': rounds,
              'median_cost_cpu': statistics.median(r['cost_cpu'] for r in rounds),
              'goal_cpu': 0.05}
    out = pathlib.Path(args.out)
    out.write_text(json.dumps(result, indent=1) + '\n')
    print(f'/load at {result["polls_per_s"]:.0f}/s costs the worker '
          f'{result["median_cost_cpu"]:.2%} of a core (median of {args.rounds}); wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
