#!/usr/bin/env bash
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

# Opt-in venv for the Triton compatibility check: nvidia-pytriton runs only from a venv made
# with Debian's /usr/bin/python3.11 (the pyenv build fails on a library mismatch).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-triton
[ -x /usr/bin/python3.11 ] || { echo "bootstrap_triton: /usr/bin/python3.11 missing (apt-get install python3.11-venv)" >&2; exit 1; }
stamp="$venv/.ready-$(sha256sum scripts/bootstrap_triton.sh | cut -c1-12)"
[ -f "$stamp" ] && exit 0
[ -x "$venv/bin/python" ] || /usr/bin/python3.11 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q nvidia-pytriton==0.7.0 onnxruntime==1.32.0 'numpy<2' \
  opencv-python-headless==4.11.0.86 requests==2.34.2 PyYAML==6.0.3 pytest==9.2.0 aiohttp==3.14.5
touch "$stamp"
