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
offload_detect IMAGE...

[--model PATH] [--json]: run the detector on image files.
"""
import argparse
import json
import sys
import time
from typing import List, Optional

import cv2

from offload_ros.inference import models
from offload_ros.inference.detector import LAYOUTS, Detector, DetectorError


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='offload_detect', description=__doc__)
    parser.add_argument('images', nargs='+')
    parser.add_argument('--model', help='ONNX detector (default: cached yolov3-tiny COCO)')
    parser.add_argument('--names', help='class names file, one per line')
    parser.add_argument('--layout', default='auto', choices=LAYOUTS)
    parser.add_argument('--score-threshold', type=float, default=0.3)
    parser.add_argument('--iou-threshold', type=float, default=0.45)
    parser.add_argument('--threads', type=int, default=0)
    parser.add_argument('--json', action='store_true', help='print JSON (default: a table)')
    args = parser.parse_args(argv)
    try:
        model = args.model or models.ensure_default_model()
        names = args.names or (None if args.model else models.default_names_path())
        detector = Detector(model, names, args.layout, args.score_threshold,
                            args.iou_threshold, args.threads)
    except (DetectorError, models.ModelError) as e:
        print(f'offload_detect: {e}', file=sys.stderr)
        return 2
    results, status = [], 0
    for path in args.images:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            print(f'offload_detect: {path}: cannot read as an image', file=sys.stderr)
            status = 1
            continue
        start = time.perf_counter()
        detections = detector.detect(image)
        results.append({'file': path, 'detections': [d.to_json() for d in detections],
                        'latency_s': round(time.perf_counter() - start, 4)})
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write('\n')
    else:
        for result in results:
            print(f"{result['file']}: {len(result['detections'])} detections "
                  f"in {result['latency_s'] * 1e3:.1f} ms")
            for d in result['detections']:
                print(f"  {d['class_name']:<14} {d['score']:.2f}  {d['box_xywh']}")
    return status


if __name__ == '__main__':
    sys.exit(main())
