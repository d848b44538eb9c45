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

"""offload_plan as users run it: JSON out, exit 2 with one line naming the field on bad input."""
import json
import subprocess

import pytest
import yaml

from conftest import ROOT, venv_exe


def plan(*args):
    return subprocess.run([venv_exe('offload_plan'), *map(str, args)], capture_output=True,
                          text=True, timeout=60)


def test_predict_example_scenario():
    out = plan('predict', ROOT / 'config/plan_example.yaml')
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result['choice'] == 'edge1'
    assert result['local']['latency_s'] == pytest.approx(0.075)
    assert set(result['workers']['edge1']['terms']) >= {'uplink_transfer_s', 'queue_wait_s'}


def test_unstable_target_is_null(tmp_path):
    scenario = yaml.safe_load((ROOT / 'config/plan_example.yaml').read_text())
    scenario['workers'][0]['tenant_rate_hz'] = 500.0
    path = tmp_path / 's.json'
    path.write_text(json.dumps(scenario))
    result = json.loads(plan('predict', path).stdout)
    assert result['workers']['edge1'] == {**result['workers']['edge1'], 'latency_s': None,
                                          'stable': False}
    assert result['choice'] == 'local'


def test_crossover_split_and_dual_mode():
    cross = json.loads(plan('crossover', ROOT / 'config/plan_example.yaml', '--vary',
                            'bandwidth_bps', '--range', 1e5, 1e8).stdout)
    assert cross['crossovers'][0]['value'] == pytest.approx(1.065e7, rel=0.01)
    dual = json.loads(plan('dual-mode', '--mu0', 1, '--K', 4, '--f1', 0.05, '--f2', 0.15,
                           '--load', 0.5).stdout)
    assert dual['rho_max'] == pytest.approx(0.941, abs=1e-3)
    assert 0 <= dual['at_load']['p_star'] <= 1
    sp = json.loads(plan('share', ROOT / 'config/plan_example.yaml').stdout)
    assert sum(sp['fractions'].values()) == pytest.approx(1.0)


@pytest.mark.parametrize('mutate,field', [
    (lambda s: s.pop('rate_hz'), 'rate_hz'),
    (lambda s: s.update(rate_hz=0), 'rate_hz'),
    (lambda s: s['network'].update(bandwidth_bps=-5), 'network.bandwidth_bps'),
    (lambda s: s['network'].pop('request_bytes'), 'network.request_bytes'),
    (lambda s: s['device'].update(service_s='fast'), 'device.service_s'),
    (lambda s: s['workers'][0].update(service_s=0), 'service_s'),
])
def test_bad_scenarios_exit_2_naming_the_field(tmp_path, mutate, field):
    scenario = yaml.safe_load((ROOT / 'config/plan_example.yaml').read_text())
    mutate(scenario)
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(scenario))
    out = plan('predict', path)
    assert out.returncode == 2
    assert field in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert 'Traceback' not in out.stderr


@pytest.mark.parametrize('args,needle', [
    (['predict', '/nonexistent.yaml'], 'cannot read'),
    (['crossover', str(ROOT / 'config/plan_example.yaml'), '--vary', 'rate_hz', '--range',
      '1', '10', '--worker', 'nope'], "unknown worker 'nope'"),
    (['dual-mode', '--mu0', '1', '--K', '4', '--f1', '0.5', '--f2', '0.2'], 'f1'),
])
def test_bad_arguments_exit_2(args, needle):
    out = plan(*args)
    assert out.returncode == 2 and needle in out.stderr and 'Traceback' not in out.stderr
