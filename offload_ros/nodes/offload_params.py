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

"""offload_node's parameters: their specs, the checked configuration, and what it configures."""
import dataclasses
from typing import Dict, List

from offload_ros.core.energy import EnergyModel, EnergyWeights
from offload_ros.core.planner import PlannerConfig
from offload_ros.core.selfcheck import CheckConfig
from offload_ros.core.policy import (DEPRECATED_MODES, LOCAL, MODES, SPLIT_MARK, PolicyConfig,
                                     parse_target)
from offload_ros.dispatch.frames import DispatchSettings
from offload_ros.inference.picture import ImageLimits
from offload_ros.ros import params, qos, transport
from offload_ros.worker import discovery, protocol
from offload_ros.worker.client import ClientOptions, check_url

SPECS = [
    params.Spec('workers', [], 'Workers as NAME=URL (KServe v2 base URL).', string_array=True),
    params.Spec('discover', '', "Also use the workers announced with DNS-SD of this type, e.g. "
                "'_kserve._tcp' (empty: only `workers`).", read_only=True),
    params.Spec('model_name', 'yolov3_tiny', 'Model name on the workers.'),
    params.Spec('model_path', '', 'Local ONNX detector; empty: the provisioned yolov3-tiny.',
                read_only=True),
    params.Spec('names_path', '', 'Class names file; empty: COCO names.', read_only=True),
    params.Spec('detector_threads', 0, 'onnxruntime intra-op threads (0: default).',
                (0, 64), read_only=True),
    params.Spec('score_threshold', 0.3, 'Minimum detection score.', (0.0, 1.0)),
    params.Spec('iou_threshold', 0.45, 'NMS IoU threshold.', (0.0, 1.0)),
    params.Spec('deadline_s', 0.25, 'End-to-end deadline from capture stamp.', (0.001, 60.0)),
    params.Spec('hysteresis', 0.1, 'Relative gain a challenger needs to replace the target.',
                (0.0, 0.9)),
    params.Spec('epoch_s', 0.5, 'Period of estimate refresh and policy evaluation.',
                (0.05, 10.0)),
    params.Spec('damped_moves', True, 'Where other robots watch the same workers, take a move '
                'with probability min(1, gain / (1 + robots there)) (docs/fleet.md).'),
    params.Spec('policy_mode', 'argmin', "Decision rule ('split': former name of 'share').",
                choices=MODES + tuple(DEPRECATED_MODES)),
    params.Spec('bandwidth_override_bps', 0.0, 'Use this bandwidth instead of measuring (0).',
                (0.0, 1e11)),
    params.Spec('bandwidth_prior_bps', 20e6, 'Bandwidth assumed before any measurement.',
                (1e3, 1e11)),
    params.Spec('arrival_model', 'measured', 'Arrival process in the models: poisson (the '
                "paper's M/*/1) or measured (Allen-Cunneen GI/G/1 from the frame gaps).",
                choices=('measured', 'poisson')),
    params.Spec('energy_compute_w', 6.0, 'Robot power while inferring (W), energy model.',
                (0.0, 1e4)),
    params.Spec('energy_idle_w', 2.5, 'Robot power while waiting for a worker (W).',
                (0.0, 1e4)),
    params.Spec('energy_tx_j_per_byte', 8e-8, 'Radio energy per transmitted byte (J).',
                (0.0, 1.0)),
    params.Spec('energy_rx_j_per_byte', 4e-8, 'Radio energy per received byte (J).',
                (0.0, 1.0)),
    params.Spec('energy_worker_w', 70.0, "Worker accelerator power while inferring (W).",
                (0.0, 1e5)),
    params.Spec('energy_weight_robot', 0.6, 'policy_mode energy: weight of robot energy '
                '(the three weights sum to 1).', (0.0, 1.0)),
    params.Spec('energy_weight_total', 0.2, 'policy_mode energy: weight of total energy.',
                (0.0, 1.0)),
    params.Spec('energy_weight_latency', 0.2, 'policy_mode energy: weight of latency.',
                (0.0, 1.0)),
    params.Spec('hedge_miss_probability', 0.0, 'Deadline hedging: when a remote frame\'s '
                'predicted probability of missing the deadline exceeds this, start it on the '
                'robot too at the latest safe moment and keep the first answer (0: off).',
                (0.0, 1.0)),
    params.Spec('link_model', 'measured', "Uplink queue: measured (FIFO M/G/1 at the spread "
                'of payload sizes: the link with serial_uploads) or exponential (the '
                "paper's M/M/1, the mean of an ideal processor-sharing link).",
                choices=('measured', 'exponential')),
    params.Spec('jpeg_quality', 80, 'JPEG quality of offloaded frames (re-encoded ones: see '
                'jpeg_passthrough).', (1, 100)),
    params.Spec('jpeg_passthrough', True, "With payload jpeg, offload a compressed camera "
                "frame's JPEG as it came: no decode or re-encode on the robot (pixels are "
                "decoded only for the robot's detector or a fallback). false: decode and "
                're-encode at jpeg_quality.'),
    params.Spec('payload', 'jpeg', 'Offload payload.', choices=('jpeg', 'raw')),
    params.Spec('serial_uploads', True, 'Upload to each worker one frame at a time, in '
                'arrival order (the link is FIFO: concurrent TCP uploads share it and each '
                'takes as long as all). false: every request uploads at once.'),
    params.Spec('probe_period_s', 0.25, 'While no frame goes to a worker, upload a probe '
                'to it this often to keep its bandwidth estimate fresh (0: never).',
                (0.0, 60.0)),
    params.Spec('local_profile_period_s', 5.0, "While frames go to a worker, re-time the "
                "robot's detector on the latest frame this long after its last inference, so "
                'a slow start-up profile is not kept forever (0: never). See '
                'local_profile_margin.', (0.0, 3600.0)),
    params.Spec('local_profile_margin', 0.5, "Re-time the robot's detector only while its "
                "service time is within this fraction of the chosen target's predicted "
                'latency (where it could change the decision).', (0.0, 100.0)),
    params.Spec('probe_bytes', 20000, 'Probe upload size (0: the request of the latest frame).',
                (0, 10_000_000)),
    params.Spec('request_timeout_s', 0.5, 'Upper bound of one worker request, where the '
                'robot could still run the frame in time after it; where it could not, the '
                'request waits up to the frame\'s deadline.', (0.01, 30.0)),
    params.Spec('max_inflight', 4, 'Concurrent worker requests.', (1, 64), read_only=True),
    params.Spec('max_local_queue', 8, 'Frames waiting for local inference before drops.',
                (1, 1000)),
    params.Spec('drop_late', True, 'Drop a frame whose deadline passed before it started.'),
    params.Spec('image_transport', 'auto', 'Image topic type; auto: what the camera '
                'publishes (raw where both are), re-checked until it publishes.',
                choices=transport.CHOICES, read_only=True),
    params.Spec('image_qos', 'sensor_data', 'QoS of the image subscription.',
                choices=tuple(qos.NAMED), read_only=True),
    params.Spec('force_target', '', "Always use this target ('local' or a worker name); "
                'empty: decide.'),
    params.Spec('client_id', '', 'Identity sent to workers; empty: host/node name.',
                read_only=True),
    params.Spec('split_layers', '', "Split inference: comma-separated Darknet layers (e.g. "
                "'3,5,7') to consider cutting after; the head runs here, the tail on each "
                "worker that serves it (gpu_worker --split-layers). Empty: off.",
                read_only=True),
    params.Spec('split_wire_dtype', 'FP16', 'Type of the feature maps sent to the tail.',
                choices=('FP16', 'FP32'), read_only=True),
    params.Spec('max_image_pixels', ImageLimits.max_pixels, 'Largest camera image accepted, '
                'in pixels (a compressed one is checked from its header, before decoding).',
                (1, 1 << 30)),
    params.Spec('max_image_side', ImageLimits.max_side, 'Largest image width or height '
                'accepted.', (1, 1 << 16)),
    params.Spec('max_detections', 1000, 'A worker answer with more detections than this is '
                'refused as malformed.', (0, 1_000_000), read_only=True),
    params.Spec('selfcheck_warn_error', 0.2, 'Model self-check: a target whose predicted mean '
                'latency is off the observed by more than this fraction (its whole 95% '
                'interval) is WARN on /diagnostics.', (0.01, 10.0)),
    params.Spec('selfcheck_error_error', 0.5, 'Model self-check: ... and ERROR beyond this.',
                (0.01, 10.0)),
    params.Spec('selfcheck_window', 60, 'Model self-check: answered frames per target it '
                'judges (in batches of 5).', (20, 10000)),
    params.Spec('selfcheck_calibrate', True, 'While a target is WARN or ERROR, decide with its '
                'prediction scaled by the observed ratio (the record says so); false: only '
                'report.'),
    params.Spec('worker_ca_file', '', 'PEM CA bundle to verify https workers against (empty: '
                "the system's store).", read_only=True),
]


def parse_workers(entries: List[str]) -> Dict[str, str]:
    workers = {}
    for entry in (e.strip() for e in entries):
        if not entry:
            continue  # an empty launch argument gives ['']
        name, sep, url = entry.partition('=')
        if not sep or not name:
            raise ValueError(f'workers: {entry[:80]!r} is not NAME=http://HOST:PORT')
        try:
            url = check_url(url)
        except ValueError as e:
            raise ValueError(f'workers: {name}: {e}') from e
        if name in workers or name == LOCAL or SPLIT_MARK in name:
            raise ValueError(f'workers: duplicate or reserved name {name!r}')
        workers[name] = url
    return workers


@dataclasses.dataclass(frozen=True)
class OffloadConfig:
    values: dict

    def __post_init__(self):
        workers = parse_workers(self.values['workers'])
        if self.values['discover']:
            try:
                discovery.service_type(self.values['discover'])
            except ValueError as e:
                raise ValueError(f'discover: {e}') from e
        self.planner()  # validates policy and bandwidth values
        layers = self.split_layers()
        forced = self.values['force_target']
        worker, layer = parse_target(forced)
        if forced and not (forced == LOCAL or worker in workers and
                           (layer is None or layer in layers)):
            raise ValueError(f'force_target: {forced!r} is not local, a worker or '
                             f'WORKER{SPLIT_MARK}LAYER with LAYER in split_layers')

    def image_limits(self) -> ImageLimits:
        return ImageLimits(self.values['max_image_pixels'], self.values['max_image_side'])

    def split_layers(self) -> tuple:
        try:
            return protocol.parse_layers(self.values['split_layers'])
        except ValueError as e:
            raise ValueError(f'split_layers: {e}') from e

    def planner(self) -> PlannerConfig:
        v = self.values
        return PlannerConfig(
            policy=PolicyConfig(v['policy_mode'], v['hysteresis'], v['deadline_s'],
                                v['damped_moves']),
            bandwidth_override_bps=v['bandwidth_override_bps'] or None,
            bandwidth_prior_bps=v['bandwidth_prior_bps'],
            forced_target=v['force_target'] or None,
            arrival_model=v['arrival_model'], link_model=v['link_model'],
            local_profile_period_s=v['local_profile_period_s'],
            local_profile_margin=v['local_profile_margin'],
            probe_period_s=v['probe_period_s'], epoch_s=v['epoch_s'],
            selfcheck=CheckConfig(v['selfcheck_warn_error'], v['selfcheck_error_error'],
                                  v['selfcheck_window'], calibrate=v['selfcheck_calibrate']),
            energy=EnergyModel(v['energy_compute_w'], v['energy_idle_w'],
                               v['energy_tx_j_per_byte'], v['energy_rx_j_per_byte'],
                               v['energy_worker_w']),
            energy_weights=EnergyWeights(v['energy_weight_robot'], v['energy_weight_total'],
                                         v['energy_weight_latency']))

    def dispatch(self) -> DispatchSettings:
        v = self.values
        return DispatchSettings(v['deadline_s'], v['hedge_miss_probability'],
                                v['request_timeout_s'], v['max_local_queue'], v['drop_late'])

    def client_options(self) -> ClientOptions:
        v = self.values
        return ClientOptions(v['payload'], v['jpeg_quality'], v['jpeg_passthrough'],
                             v['serial_uploads'], v['score_threshold'], v['iou_threshold'])

    def deprecations(self) -> list:
        """Return a warning for each setting given by a former name."""
        mode = self.values['policy_mode']
        return [f"policy_mode '{mode}' is deprecated: it is now '{DEPRECATED_MODES[mode]}'"
                ] if mode in DEPRECATED_MODES else []

    def __getitem__(self, key):
        return self.values[key]
