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
make demo: one local gpu_worker, the robot node set from robot.launch.xml.

Real pedestrian footage, and a scripted bandwidth step so the decision visibly switches.

Phases (seconds from the first decision record):
  0-20  measured loopback link: the worker is faster than the robot, frames are offloaded
  20-40 bandwidth override 1.5 Mbit/s (a congested Wi-Fi): offloading would take ~300 ms,
        the decision moves to the robot
  40-60 override cleared, bandwidth measured again: back to the worker
Writes demo_out/summary.json, timeline.png and records.jsonl; exits 1 if a frame has no
outcome.
"""
import argparse
import os
import pathlib
import signal
import sys
import time

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from offload_ros import analysis
from offload_ros.inference import models
from offload_ros.graph import launcher as launch
from offload_ros.graph.observer import Observer
from offload_ros.graph.procs import WorkerProcess

PHASES = [
    {'name': 'measured link', 'start_s': 0.0, 'end_s': 20.0, 'bandwidth_override_bps': 0.0},
    {'name': 'override 1.5 Mbit/s', 'start_s': 20.0, 'end_s': 40.0,
     'bandwidth_override_bps': 1.5e6, 'shade': True},
    {'name': 'measured link', 'start_s': 40.0, 'end_s': 60.0, 'bandwidth_override_bps': 0.0},
]


def ros_environment() -> None:
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE',
                          str(launch.package_share() / 'config/fastdds_profile.xml'))


def wait_for(predicate, timeout_s: float, executor, step_s: float = 0.1) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        executor.spin_once(timeout_sec=step_s)
    return predicate()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='offload_demo',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', default='demo_out')
    parser.add_argument('--phase-s', type=float, default=20.0, help='length of each phase')
    parser.add_argument('--source', help='video (default: provisioned vtest.avi)')
    args = parser.parse_args(argv)
    ros_environment()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = args.source or str(models.cache_dir() / 'media' / 'vtest.avi')
    if not pathlib.Path(source).exists():
        print(f'demo: footage {source} missing (scripts/provision_media.sh)', file=sys.stderr)
        return 2
    phases = [{**p, 'start_s': i * args.phase_s, 'end_s': (i + 1) * args.phase_s}
              for i, p in enumerate(PHASES)]
    print('demo: starting gpu_worker and the robot node set (robot.launch.xml)', flush=True)
    context = Context()
    rclpy.init(context=context)
    observer = Observer(context=context)  # first, so discovery is done when frames flow
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(observer)
    worker = WorkerProcess()
    nodes = launch.plan(launch.package_share() / 'launch/robot.launch.xml',
                        {'source': source, 'workers': f'edge1={worker.url}'})
    log = open(out / 'nodes.log', 'w')
    processes = launch.start(nodes, stdout=log)
    camera = processes[[n.name for n in nodes].index('camera')]
    status = 1
    try:
        if not wait_for(lambda: observer.records, 90.0, executor):
            print(f'demo: no decision records within 90 s; see {out}/nodes.log',
                  file=sys.stderr)
            return 1
        t0 = observer.records[0].finished_at_s
        wall0 = time.monotonic()
        current_phase = -1
        end_s = phases[-1]['end_s']
        last_print = 0.0
        while (elapsed := time.monotonic() - wall0) < end_s:
            index = next(i for i, p in enumerate(phases) if p['start_s'] <= elapsed < p['end_s'])
            if index != current_phase:
                current_phase = index
                observer.set_parameters(executor, 'offload', {
                    'bandwidth_override_bps': phases[index]['bandwidth_override_bps']})
            executor.spin_once(timeout_sec=0.05)
            if elapsed - last_print >= 1.0:
                last_print = elapsed
                with observer.lock:
                    recent = observer.records[-1] if observer.records else None
                    n = len(observer.records)
                preds = ' '.join(
                    f'{k}={v.latency_s * 1e3:.0f}ms' if v.stable else f'{k}=inf'
                    for k, v in (recent.predictions if recent else {}).items())
                target = recent.planned_target if recent else '-'
                print(f"\r[{elapsed:5.1f}/{end_s:.0f} s] {phases[index]['name']:<20} frames "
                      f"{n:4d}  target {target:<6} predicted {preds}"
                      + ' ' * 8, end='', flush=True)
        print()
        camera.send_signal(signal.SIGINT)
        camera.wait(15)

        def drained():
            received = observer.diag_value('offload decision', 'received')
            return received is not None and int(received) <= len(observer.records) and \
                time.monotonic() - observer.diagnostics.get(
                    next((k for k in observer.diagnostics if 'offload decision' in k), ''),
                    {}).get('received_s', 0) < 1.5
        wait_for(drained, 10.0, executor)
        wait_for(lambda: False, 1.5, executor)  # a last diagnostics round
        received = int(observer.diag_value('offload decision', 'received', '0'))
        with observer.lock:
            records = list(observer.records)
        # The deadline the monitor applied (robot.yaml), as it reported it.
        deadline_s = observer.deadline[-1]['deadline_s'] if observer.deadline else 0.25
        summary = analysis.summarise(records, received, deadline_s, t0, phases)
        summary['source'] = source
        summary['worker_url'] = worker.url
        analysis.write_json(out / 'summary.json', summary)
        (out / 'records.jsonl').write_text('\n'.join(r.to_json() for r in records) + '\n')
        analysis.plot_timeline(records, out / 'timeline.png', t0, deadline_s, phases,
                               'make demo: local vs edge1 (gpu_worker on this CPU), '
                               'real pedestrian footage')
        print(analysis.table(summary))
        print(f'wrote {out}/summary.json, {out}/timeline.png, {out}/records.jsonl')
        status = 0 if summary['frames'] > 0 and summary['frames_without_outcome'] == 0 else 1
        if status:
            print('demo: FAILED: frames without outcome', file=sys.stderr)
    finally:
        executor.shutdown()
        observer.destroy_node()
        context.try_shutdown()
        launch.stop(processes)
        log.close()
        worker.stop()
    return status


if __name__ == '__main__':
    sys.exit(main())
