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
offload_report RUN: summary, model fidelity and what-if replay of a recorded run.

RUN is a bag recorded with offload/decisions (bag_record) or a records.jsonl (make demo,
the scenarios). `--what-if NAME=VALUE ...` re-decides every frame from its recorded
predictions and estimates under other settings (core.whatif) and reports it beside what
happened.
"""
import argparse
import pathlib
import sys
from typing import List, Optional

from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader, ReaderError
from std_msgs.msg import String

from offload_ros import analysis
from offload_ros.core import whatif as whatif_mod
from offload_ros.core.policy import PolicyConfig
from offload_ros.core.records import DecisionRecord, RecordError, read_records
from offload_ros.ros import topics


def read_run(path: str) -> List[DecisionRecord]:
    """Return the decision records of a bag folder or a records.jsonl."""
    if pathlib.Path(path).is_file():
        return read_records(pathlib.Path(path).read_text().splitlines())
    return records_from_bag(path)


def records_from_bag(bag: str, topic: str = '/' + topics.DECISIONS) -> List[DecisionRecord]:
    with Reader(bag) as reader:
        connections = [c for c in reader.connections if c.topic.endswith(topic)]
        return [DecisionRecord.from_json(deserialize_message(data, String).data)
                for _, _, data in reader.messages(connections=connections)]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='offload_report',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('bag', metavar='RUN', help='a bag folder or a records.jsonl')
    parser.add_argument('--out', help='output folder (default: RUN_report)')
    parser.add_argument('--deadline', type=float, default=0.25, help='deadline_s for misses')
    parser.add_argument('--frames', type=int,
                        help='frames received by offload_node (default: highest sequence)')
    parser.add_argument('--what-if', nargs='+', metavar='NAME=VALUE', dest='whatif',
                        help='policy_mode=argmin|deadline|energy, deadline_s=S, hysteresis=H, '
                        'workers=+NAME,-NAME, load=WORKER:HZ, bandwidth_bps=BPS')
    parser.add_argument('--run-policy', default='argmin', choices=whatif_mod.SUPPORTED_MODES,
                        help="the run's own policy_mode (default argmin)")
    parser.add_argument('--run-hysteresis', type=float, default=0.1,
                        help="the run's own hysteresis (default 0.1)")
    args = parser.parse_args(argv)
    try:
        whatif = whatif_mod.parse(args.whatif or [])
        records = read_run(args.bag)
    except (ReaderError, OSError, RecordError, whatif_mod.WhatIfError) as e:
        print(f'offload_report: {e}', file=sys.stderr)
        return 2
    if not records:
        print(f'offload_report: {args.bag} has no offload/decisions records', file=sys.stderr)
        return 2
    frames = args.frames or max(r.seq for r in records)
    t0 = min(r.finished_at_s for r in records)
    summary = analysis.summarise(records, frames, args.deadline, t0)
    out = pathlib.Path(args.out or f'{args.bag.rstrip("/")}_report')
    analysis.plot_timeline(records, out / 'timeline.png', t0, args.deadline,
                           title=f'offload_report {pathlib.Path(args.bag).name}')
    summary['fidelity'] = analysis.fidelity(records)
    print(analysis.table(summary))
    print(analysis.fidelity_table(summary['fidelity']))
    wrote = ['summary.json', 'timeline.png']
    if args.whatif is not None:
        base = PolicyConfig(args.run_policy, args.run_hysteresis, args.deadline)
        replayed = whatif_mod.replay(records, whatif, base)
        compared = analysis.whatif_summary(
            records, replayed, args.deadline, whatif.deadline_s or args.deadline, args.whatif,
            whatif.assumptions(whatif_mod.like_worker(records)))
        analysis.write_json(out / 'whatif.json', compared)
        analysis.plot_whatif(records, replayed, out / 'whatif.png', t0,
                             whatif.deadline_s or args.deadline,
                             f'what-if {" ".join(args.whatif)}: {pathlib.Path(args.bag).name}')
        print(analysis.whatif_table(compared))
        wrote += ['whatif.json', 'whatif.png']
    analysis.write_json(out / 'summary.json', summary)
    print(f'wrote {", ".join(f"{out}/{name}" for name in wrote)}')
    return 0 if summary['frames_without_outcome'] == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
