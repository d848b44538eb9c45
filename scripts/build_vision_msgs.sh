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

# Build the development copy of vision_msgs (tools/vision_msgs_dev) into the venv with the
# rosidl generators from the ROS 2 wheels. Robots use their distribution's vision_msgs instead.
set -euo pipefail
venv=$(cd "${1:?usage: build_vision_msgs.sh VENV}" && pwd)
src=$(cd "$(dirname "$0")/../tools/vision_msgs_dev" && pwd)
py="$venv/bin/python"
"$py" -c 'import vision_msgs.msg' 2>/dev/null && exit 0
pyinc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
npinc=$("$py" -c 'import numpy; print(numpy.get_include())')
# The wheels' exported CMake files name the wheel builder's include directories: point them here.
grep -rl '/opt/python/cp311-cp311' --include='*.cmake' "$venv/share" 2>/dev/null | while read -r f; do
  sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$npinc#g" \
         -e "s#/opt/python/cp311-cp311/include/python3.11#$pyinc#g" "$f"
done
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH"
cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX="$venv" -DPython3_EXECUTABLE="$py" \
  -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build/configure.log" 2>&1 \
  || { tail -30 "$build/configure.log" >&2; exit 1; }
make -C "$build" -j"$(nproc)" install >"$build/build.log" 2>&1 || { tail -30 "$build/build.log" >&2; exit 1; }
"$py" -c 'import vision_msgs.msg' || { echo "vision_msgs built but does not import" >&2; exit 1; }
echo "build_vision_msgs: vision_msgs installed into $venv"
