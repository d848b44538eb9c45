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
Every source file carries the copyright and Apache-2.0 notice ament_copyright expects.

ament_copyright's own checker has no wheel in the registries this project installs from;
this test checks the same header (its 'apache2' template) on every Python and shell file
the repository tracks, and that the licence text is shipped.
"""
import subprocess

import pytest

from conftest import ROOT

NOTICE = (ROOT / 'test/test_copyright.py').read_text().split('\n\n', 1)[0]


def sources():
    tracked = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return sorted(p for p in tracked.split() if p.endswith(('.py', '.sh'))
                  and (ROOT / p).is_file())


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright():
    assert len(sources()) > 100
    missing = []
    for path in sources():
        text = (ROOT / path).read_text()
        if text.startswith('#!'):
            text = text.split('\n', 1)[1]
        if not text.startswith(NOTICE):
            missing.append(path)
    assert not missing, f'no copyright and licence notice: {missing}'
    assert 'Apache License' in (ROOT / 'LICENSE').read_text()[:200]
