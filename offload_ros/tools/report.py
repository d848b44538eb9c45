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

"""offload_report BAG: the demo's summary table and timeline plot from a recorded run."""
import argparse
import pathlib
import sys
from typing import List, Optional

from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader, ReaderError
from std_msgs.msg import String

from offload_ros import analysis
from offload_ros.core.records import DecisionRecord
from offload_ros.ros import topics


def records_from_bag(bag: str, topic: str = '/' + topics.DECISIONS) -> List[DecisionRecord]:
    with Reader(bag) as reader:
        connections = [c for c in reader.connections if c.topic.endswith(topic)]
        return [DecisionRecord.from_json(deserialize_message(data, String).data)
                for _, _, data in reader.messages(connections=connections)]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='offload_report',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('bag')
    parser.add_argument('--out', help='output folder (default: BAG_report)')
    parser.add_argument('--deadline', type=float, default=0.25, help='deadline_s for misses')
    parser.add_argument('--frames', type=int,
                        help='frames received by offload_node (default: highest sequence)')
    args = parser.parse_args(argv)
    try:
        records = records_from_bag(args.bag)
    except (ReaderError, OSError) as e:
        print(f'offload_report: {args.bag}: {e}', file=sys.stderr)
        return 2
    if not records:
        print(f'offload_report: {args.bag} has no offload/decisions records', file=sys.stderr)
        return 2
    frames = args.frames or max(r.seq for r in records)
    t0 = min(r.finished_at_s for r in records)
    summary = analysis.summarise(records, frames, args.deadline, t0)
    out = pathlib.Path(args.out or f'{args.bag.rstrip("/")}_report')
    analysis.write_json(out / 'summary.json', summary)
    analysis.plot_timeline(records, out / 'timeline.png', t0, args.deadline,
                           title=f'offload_report {pathlib.Path(args.bag).name}')
    print(analysis.table(summary))
    print(f'wrote {out}/summary.json and {out}/timeline.png')
    return 0 if summary['frames_without_outcome'] == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
