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
Replay timing at 30 Hz.

P50/p95 of |publish time - due time| for a bag made from real footage (goal: p95 < 5 ms). Writes
bench/results/replay.json.
"""
import argparse
import json
import os
import pathlib
import sys
import tempfile

import rclpy

from offload_ros import analysis
from offload_ros.bags.from_video import write_bag
from offload_ros.bags.replay import replay
from offload_ros.inference import models


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', default='bench/results/replay.json')
    parser.add_argument('--frames', type=int, default=300)
    args = parser.parse_args(argv)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ('raw', 'compressed'):
            bag = pathlib.Path(tmp) / kind
            write_bag(str(models.cache_dir() / 'media/vtest.avi'), str(bag), fps=30.0,
                      compressed=kind == 'compressed', max_frames=args.frames, width=640,
                      height=480)
            rclpy.init()
            try:
                results[kind] = replay(str(bag), restamp_now=True)
            finally:
                rclpy.try_shutdown()
    results['goal_p95_ms'] = 5.0
    results['met'] = all(results[k]['timing_error_p95_ms'] < 5.0 for k in ('raw', 'compressed'))
    analysis.write_json(pathlib.Path(args.out), results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
