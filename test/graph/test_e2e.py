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
The whole robot graph as separate processes, started exactly as robot.launch.xml declares.

With a real gpu_worker and real pedestrian footage.
"""
import contextlib
import signal
import subprocess
import time

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from conftest import ROOT
from offload_ros import analysis
from offload_ros.graph import launcher as launch
from offload_ros.graph.observer import Observer


def spin_until(executor, predicate, timeout_s):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return bool(predicate())


def spin_for(executor, seconds):
    spin_until(executor, lambda: False, seconds)


@contextlib.contextmanager
def launched_graph(tmp_path, arguments):
    """
    Start robot.launch.xml's processes and an observer the caller spins.

    Logs go to tmp_path/nodes.log. Yields (executor, observer, run) with run['nodes'],
    run['processes'] and, after the block, run['codes']: every process stopped on every path.
    """
    context = Context()
    rclpy.init(context=context)
    observer = Observer(context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(observer)
    nodes = launch.plan(ROOT / 'launch/robot.launch.xml', arguments)
    log = open(tmp_path / 'nodes.log', 'w')
    run = {'nodes': nodes, 'processes': launch.start(nodes, stdout=log), 'codes': None}
    try:
        yield executor, observer, run
    finally:
        executor.shutdown()
        observer.destroy_node()
        context.try_shutdown()
        run['codes'] = launch.stop(run['processes'])
        log.close()


@pytest.mark.slow
def test_full_graph_on_real_footage(start_worker, media_dir, tmp_path):
    worker = start_worker('--threads', '1')
    with launched_graph(tmp_path, {'source': str(media_dir / 'vtest.avi'),
                                   'workers': f'edge1={worker.url}'}) as (executor, observer, run):
        assert [n.name for n in run['nodes']] == ['camera', 'offload', 'tracker', 'controller',
                                                  'deadline_monitor']
        camera = run['processes'][0]
        assert spin_until(executor, lambda: len(observer.records) > 10, 90), \
            (tmp_path / 'nodes.log').read_text()[-3000:]
        # Force a switch local -> edge1 -> local through the parameter service.
        switch_times = []
        for target in ('local', 'edge1', 'local'):
            assert observer.set_parameters(executor, 'offload',
                                           {'force_target': target})[0].successful
            switch_times.append(time.monotonic())
            spin_for(executor, 4.0)
        # A loose deadline: the monitor joins each frame's detections with its record and
        # counts few misses (a detections subscription with incompatible QoS receives nothing,
        # and every frame then counts as a miss once its record waits in vain).
        assert observer.set_parameters(executor, 'deadline_monitor',
                                       {'deadline_s': 5.0})[0].successful
        spin_for(executor, 3.0)
        assert float(observer.diag_value('deadline', 'frames')) > 10
        assert float(observer.diag_value('deadline', 'miss_rate')) < 0.2   # drops at switches
        # An impossible deadline: the monitor reports misses.
        assert observer.set_parameters(executor, 'deadline_monitor',
                                       {'deadline_s': 0.001})[0].successful
        assert spin_until(executor, lambda: observer.diag_value('deadline', 'frames') and
                          float(observer.diag_value('deadline', 'miss_rate')) > 0.5, 10)
        # Stop the camera: detections stop, and cmd_vel must go to zero.
        camera.send_signal(signal.SIGINT)
        try:
            camera.wait(launch.STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            launch.dump_stacks(camera)    # its threads' stacks into nodes.log
            raise AssertionError('the camera did not stop after SIGINT:\n'
                                 + (tmp_path / 'nodes.log').read_text()[-6000:])
        stopped_at = time.monotonic()

        def silent():
            with observer.lock:
                status = [v for k, v in observer.diagnostics.items() if 'deadline' in k]
            return status and 'silent' in status[0]['message'] and \
                'detections' in status[0]['message']
        assert spin_until(executor, silent, 10)     # liveness: the detections stopped

        def drained():
            received = observer.diag_value('offload decision', 'received')
            return received is not None and int(received) == len(observer.records)
        assert spin_until(executor, drained, 15)
        spin_for(executor, 2.0)
        received = int(observer.diag_value('offload decision', 'received'))
    codes = run['codes']
    assert all(code == 0 for code in codes), (codes, (tmp_path / 'nodes.log').read_text()[-3000:])

    summary = analysis.summarise(observer.records, received, 0.25)
    assert summary['frames'] > 80
    assert summary['frames_without_outcome'] == 0 and summary['duplicate_outcomes'] == 0
    targets = {r.target for r in observer.records if r.outcome == 'detections'}
    assert targets == {'local', 'edge1'}
    # Detections carry the camera's stamp: every detections message matches a frame record.
    record_stamps = {r.stamp_ns for r in observer.records}
    assert all(stamp in record_stamps for _, stamp, _ in observer.detections)
    # Track ids survive the forced local -> edge1 -> local switches.
    before = {i for t, _, tracks in observer.tracks if t < switch_times[1]
              for i, _ in tracks}
    after = {i for t, _, tracks in observer.tracks if switch_times[1] + 0.5 < t < switch_times[2]
             for i, _ in tracks}
    assert before & after, (before, after)
    # Robot moved while people were visible, and stopped once detections stopped.
    assert any(abs(w) > 0 or abs(v) > 0 for _, v, w in observer.cmd_vel)
    late = [(v, w) for t, v, w in observer.cmd_vel if t > stopped_at + 1.0]
    assert late and all(v == 0.0 and w == 0.0 for v, w in late)
    # Deadline monitor report has per-target breakdown.
    assert {'local', 'edge1'} <= set(observer.deadline[-1]['per_target'])


@pytest.mark.slow
@pytest.mark.parametrize('camera', ['compressed', 'raw'])
def test_graph_finds_what_the_camera_publishes(start_worker, media_dir, tmp_path, camera):
    """
    A camera publishing only one kind of image.

    And no node configured for it (image_transport auto everywhere): detections come, and the
    deadline monitor watches the topic the camera uses.
    """
    import yaml
    worker = start_worker('--threads', '1')
    params = yaml.safe_load((ROOT / 'config/robot.yaml').read_text())
    params['/**/camera']['ros__parameters'].update(
        {'publish_raw': camera == 'raw', 'publish_compressed': camera == 'compressed'})
    assert params['/**/offload']['ros__parameters'].get('image_transport', 'auto') == 'auto'
    assert params['/**/deadline_monitor']['ros__parameters']['image_transport'] == 'auto'
    params_file = tmp_path / 'params.yaml'
    params_file.write_text(yaml.safe_dump(params))
    with launched_graph(tmp_path, {'source': str(media_dir / 'vtest.avi'),
                                   'params_file': str(params_file),
                                   'workers': f'edge1={worker.url}'}) as (executor, observer, run):
        assert spin_until(executor, lambda: len(observer.detections) > 20, 90), \
            (tmp_path / 'nodes.log').read_text()[-3000:]
        spin_for(executor, 2.5)      # two liveness periods with the camera publishing

        def camera_silent():
            with observer.lock:
                status = [v for k, v in observer.diagnostics.items() if 'deadline' in k]
            return bool(status) and 'image_raw' in status[0]['message']
        silent = camera_silent()
    codes = run['codes']
    assert all(code == 0 for code in codes), (codes, (tmp_path / 'nodes.log').read_text()[-3000:])
    text = (tmp_path / 'nodes.log').read_text()
    assert f'subscribed to {camera} images' in text
    assert not silent
    people = sum(count for _, _, count in observer.detections)
    print(f'{camera}: {len(observer.detections)} detections messages, {people} detections, '
          f'{len(observer.records)} records')
    assert people > 20 and len(observer.records) > 20
