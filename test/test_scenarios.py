"""Network-emulated scenarios on a real network stack (netns + veth + tbf), run as tests.

They need root (ip netns, tc) and are skipped with the reason otherwise. They run serially in
their own pytest pass (make test), because each pins the robot and the worker to separate
cores and must not share the machine with other tests.
"""
import pytest

from conftest import ROOT
from offload_ros.scenarios import harness
from offload_ros.scenarios.netns import ScenarioUnavailable, check_capabilities

SCENARIOS = ['case1_fluctuating', 'case2_multitenant', 'fault_kill', 'fault_linkdown',
             'fault_hang']


@pytest.fixture(scope='module')
def capable():
    try:
        check_capabilities()
    except ScenarioUnavailable as e:
        pytest.skip(f'network scenarios cannot run here: {e}')


@pytest.mark.scenario
@pytest.mark.parametrize('name', SCENARIOS)
def test_scenario(capable, name, tmp_path):
    spec = harness.load_spec(ROOT / 'config/scenarios' / f'{name}.yaml')
    summary = harness.Run(spec, 'model', tmp_path, verbose=False).execute()
    failed = {k: v for k, v in summary['checks'].items() if not v['ok']}
    assert not failed, f'{name}: {failed} (see {tmp_path})'
    assert summary['frames_without_outcome'] == 0 and summary['frames'] > 60
    assert (tmp_path / 'run.bag' / 'metadata.yaml').exists()
    assert (tmp_path / 'timeline.png').exists()


def test_scenario_files_are_valid():
    for path in sorted((ROOT / 'config/scenarios').glob('*.yaml')):
        spec = harness.load_spec(path)
        assert spec['expect'], path.name


def test_invalid_scenario_names_the_field(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('name: x\nduration_s: 5\nworkers: [{name: edge1}]\n'
                   'schedule: [{at_s: 1, kill: edge9}]\n')
    with pytest.raises(harness.ScenarioError, match=r'schedule\[0\]: unknown worker'):
        harness.load_spec(bad)
