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

# Provision real test footage and photographs from Debian packages into a cache.
# Nothing here is committed: files are extracted from the distribution's own .deb files.
set -euo pipefail
dest="${OFFLOAD_ROS_CACHE:-$HOME/.cache/offload_ros}/media"
mkdir -p "$dest"
# package|path inside the package|file name in the cache
wanted=(
  "opencv-doc|./usr/share/doc/opencv-doc/examples/data/vtest.avi|vtest.avi"
  "opencv-doc|./usr/share/doc/opencv-doc/examples/data/basketball1.png|basketball1.png"
  "opencv-doc|./usr/share/doc/opencv-doc/examples/data/messi5.jpg|messi5.jpg"
  "darknet|./usr/share/darknet/data/person.jpg|person.jpg"
  "darknet|./usr/share/darknet/data/dog.jpg|dog.jpg"
  "darknet|./usr/share/darknet/data/horses.jpg|horses.jpg"
)
missing=()
for row in "${wanted[@]}"; do
  IFS='|' read -r pkg _ name <<<"$row"
  [ -s "$dest/$name" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u)
fetch() { (cd "$work" && apt-get download $pkgs >/dev/null 2>&1); }
if ! fetch; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >/dev/null
    fetch || { echo "provision_media: apt-get download $pkgs failed" >&2; exit 1; }
  else
    echo "provision_media: cannot download $pkgs (no apt package lists; run 'sudo apt-get update' once)" >&2
    exit 1
  fi
fi
for row in "${wanted[@]}"; do
  IFS='|' read -r pkg path name <<<"$row"
  [ -s "$dest/$name" ] && continue
  deb=$(ls "$work"/${pkg}_*.deb)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" "$path"
  mv "$work/$path" "$dest/$name"
done
echo "provision_media: footage in $dest"
