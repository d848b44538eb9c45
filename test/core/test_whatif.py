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
What-if replay on a run of the real dispatcher and Planner (FAKE clock, pools and worker).

The run: a worker whose load report slows it 20-fold and back every 2.5 s, so the decision
switches; the robot's detector takes 50 ms of the fake clock.
"""
import json
import math

import pytest

from fakes import Rig
from offload_ros.core import whatif
from offload_ros.core.policy import PolicyConfig
from offload_ros.core.records import read_records


@pytest.fixture(scope='module')
def run():
    rig = Rig(target=None, deadline_s=0.25)
    rig.detector.clock, rig.detector.service_s = rig.clock, 0.05
    for epoch in range(40):
        slow = (epoch // 5) % 2 == 1
        rig.planner.load_report('edge1', 0.001, 2.0, 0.2 if slow else 0.01, 0.0, 1, 0.0)
        rig.d.replan()
        for _ in range(5):
            rig.frame(age_s=0.002)
            rig.run()
            rig.clock.advance(0.1)
    return rig.records


def test_the_recorded_run_switches(run):
    planned = [r.planned_target for r in run]
    assert len(run) == 200 and {'local', 'edge1'} <= set(planned)
    assert sum(a != b for a, b in zip(planned, planned[1:])) >= 4


def test_unchanged_settings_reproduce_every_recorded_decision(run):
    replayed = whatif.replay(run, whatif.parse([]), PolicyConfig('argmin', 0.1, 0.25))
    assert [f.target for f in replayed] == [r.planned_target for r in run]
    assert not any(f.modelled for f in replayed)        # no fallback in this run
    assert [f.latency_s for f in replayed] == [r.observed_latency_s for r in run]


def test_a_policy_what_if_decides_otherwise_and_models_the_latency(run):
    # Deadline mode at 100 ms: wherever the robot is predicted within it, it takes the frame.
    replayed = whatif.replay(run, whatif.parse(['policy_mode=deadline', 'deadline_s=0.1']),
                             PolicyConfig('argmin', 0.1, 0.25))
    assert {f.target for f, r in zip(replayed, run)
            if r.predictions['local'].latency_s <= 0.1} == {'local'}
    moved = [(f, r) for f, r in zip(replayed, run) if r.target != 'local']
    assert moved and all(f.modelled and math.isfinite(f.latency_s) for f, _ in moved)
    assert all(f.latency_s == pytest.approx(r.predictions['local'].latency_s)
               for f, r in moved)


def test_added_worker_and_load_are_re_predicted_with_their_assumptions(run):
    setting = whatif.parse(['workers=+edge3', 'load=edge1:40'])
    replayed = whatif.replay(run, setting, PolicyConfig('argmin', 0.1, 0.25))
    assert 'edge3' in {f.target for f in replayed} and 'edge1' not in {f.target for f in replayed}
    said = ' '.join(setting.assumptions(whatif.like_worker(run)))
    assert 'edge3: a worker like edge1' in said and '40 Hz more of other robots' in said
    removed = whatif.replay(run, whatif.parse(['workers=-edge1']),
                            PolicyConfig('argmin', 0.1, 0.25))
    assert {f.target for f in removed} == {'local'}


@pytest.mark.parametrize('bad, field', [
    (['deadline_s=-1'], 'deadline_s=-1'), (['policy_mode=share'], 'policy_mode=share'),
    (['workers=edge3'], 'workers=edge3'), (['speed=11'], 'speed=11'),
    (['load=edge1'], 'load=edge1')])
def test_bad_settings_name_the_setting(bad, field):
    with pytest.raises(whatif.WhatIfError, match=field):
        whatif.parse(bad)


def test_offload_report_what_if_on_records_jsonl(run, tmp_path, capsys):
    from offload_ros.tools import report
    path = tmp_path / 'records.jsonl'
    path.write_text(''.join(r.to_json() + '\n' for r in run))
    assert read_records(path.read_text().splitlines()) == run
    code = report.main([str(path), '--out', str(tmp_path / 'rep'), '--what-if',
                        'policy_mode=deadline', 'deadline_s=0.1'])
    out = capsys.readouterr().out
    assert code == 0 and 'paired error' in out and 'what-if policy_mode=deadline' in out
    result = json.loads((tmp_path / 'rep/whatif.json').read_text())
    assert result['whatif']['targets']['local'] > result['happened']['targets']['local']
    assert result['frames'] == 200 and (tmp_path / 'rep/whatif.png').stat().st_size > 10_000
    summary = json.loads((tmp_path / 'rep/summary.json').read_text())
    assert set(summary['fidelity']) <= {'local', 'edge1'} and summary['fidelity']
    assert report.main([str(path), '--what-if', 'hysteresis=x']) == 2
    assert 'hysteresis=x' in capsys.readouterr().err
