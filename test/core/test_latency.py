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
End-to-end predictions and their terms (Ng et al.

Sec. 3).
"""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from offload_ros.core import latency, queueing
from offload_ros.core.latency import (DeviceModel, NetworkModel, WorkerModel, departure_scv,
                                      predict_offload)

NET = NetworkModel(bandwidth_bps=20e6, request_bytes=50_000, response_bytes=2_000,
                   overhead_s=0.004)
WORKER = WorkerModel('edge', service_s=0.010, service_var_s2=4e-6, tenant_rate_hz=30.0)


def test_local_is_md1_plus_service():
    pred = latency.predict_local(10.0, DeviceModel(service_s=0.05))
    assert pred.terms['queue_wait_s'] == pytest.approx(0.5 * (1 / 10.0 - 1 / 20.0))
    assert pred.latency_s == pytest.approx(0.025 + 0.05)


def test_local_hold_keeps_the_server_busy_but_is_not_the_frames_service():
    """
    The detector's thread publishing a frame's results (hold_s) delays the frames behind it.

    The M/D/1 of a 60 ms server; the frame's own service term stays the inference.
    """
    pred = latency.predict_local(10.0, DeviceModel(service_s=0.05, hold_s=0.01))
    assert pred.terms['queue_wait_s'] == pytest.approx(queueing.md1_wait_s(10.0, 1 / 0.06))
    assert pred.terms['service_s'] == 0.05
    assert latency.predict_local(1 / 0.06, DeviceModel(0.05, hold_s=0.01)).latency_s == math.inf
    with pytest.raises(ValueError, match='device.hold_s'):
        DeviceModel(0.05, hold_s=-0.001)


def test_local_with_variance_is_pk():
    pred = latency.predict_local(10.0, DeviceModel(service_s=0.05, service_var_s2=0.05 ** 2))
    assert pred.terms['queue_wait_s'] == pytest.approx(queueing.mm1_wait_s(10.0, 20.0))


def test_offload_terms_follow_the_paper():
    rate = 10.0
    pred = latency.predict_offload(rate, NET, WORKER)
    transfer = 50_000 * 8 / 20e6
    assert pred.terms['uplink_transfer_s'] == pytest.approx(transfer)
    assert pred.terms['uplink_wait_s'] == pytest.approx(queueing.mm1_wait_s(rate, 1 / transfer))
    lam_e = rate + 30.0
    assert pred.terms['queue_wait_s'] == pytest.approx(queueing.mg1_wait_s(lam_e, 100.0, 4e-6))
    assert pred.terms['downlink_wait_s'] == pytest.approx(
        queueing.mm1_wait_s(lam_e, 20e6 / (2_000 * 8)))
    assert pred.latency_s == pytest.approx(sum(pred.terms.values()))
    assert pred.to_json()['stable'] is True


def test_multi_tenant_mixture_lemma():
    mix = latency.service_mixture([1.0, 3.0], [0.1, 0.02], [0.0, 0.0])
    assert mix.rate_hz == 4.0
    assert mix.service_s == pytest.approx((0.1 + 0.06) / 4)
    second = (0.01 + 3 * 0.0004) / 4
    assert mix.service_var_s2 == pytest.approx(second - mix.service_s ** 2)
    # A vanishing rate still weighs its own service (the rate split evaluates a target at
    # rate 0 beside tenants at any rate; found by hypothesis: 5e-324 Hz gave a 0 s service).
    tiny = latency.service_mixture([0.0, 5e-324], [0.1, 0.0625], [0.0, 1e-4])
    assert (tiny.service_s, tiny.service_var_s2) == (0.0625, pytest.approx(1e-4))


def test_unstable_worker_is_infinite_and_serialises_as_null():
    busy = WorkerModel('busy', service_s=0.010, tenant_rate_hz=95.0)
    pred = latency.predict_offload(10.0, NET, busy)
    assert pred.latency_s == math.inf and not pred.stable
    assert pred.to_json()['latency_s'] is None


def test_split_is_tandem_of_device_and_edge():
    head = DeviceModel(service_s=0.02)
    pred = latency.predict_split(5.0, head, NET, WORKER, intermediate_bytes=20_000)
    assert pred.terms['device_service_s'] == 0.02
    assert pred.terms['uplink_transfer_s'] == pytest.approx(20_000 * 8 / 20e6)
    assert pred.latency_s == pytest.approx(sum(pred.terms.values()))


@pytest.mark.parametrize('field,kwargs', [
    ('network.bandwidth_bps', dict(bandwidth_bps=0, request_bytes=1, response_bytes=1)),
    ('network.request_bytes', dict(bandwidth_bps=1, request_bytes=-1, response_bytes=1)),
])
def test_invalid_models_name_the_field(field, kwargs):
    with pytest.raises(ValueError, match=field.replace('.', r'\.')):
        NetworkModel(**kwargs)


@given(r1=st.floats(0, 50), r2=st.floats(0, 50))
def test_offload_non_decreasing_in_rate(r1, r2):
    low, high = sorted((r1, r2))
    assert latency.predict_offload(low, NET, WORKER).latency_s <= \
        latency.predict_offload(high, NET, WORKER).latency_s


@pytest.mark.parametrize('scv', [0.0, 0.3, 1.0])
def test_uplink_is_pollaczek_khinchine_in_the_payload_spread(scv):
    """request_scv 1 is the paper's M/M/1 uplink, 0 the M/D/1 of fixed-size payloads."""
    network = NetworkModel(10e6, 50_000, 1_000, request_scv=scv)
    worker = WorkerModel('edge1', 0.01)
    s = network.transfer_s(50_000)
    rate = 0.6 / s
    terms = latency.predict_offload(rate, network, worker).terms
    pk = queueing.mg1_wait_s(rate, 1.0 / s, scv * s * s)
    assert terms['uplink_wait_s'] == pytest.approx(pk)
    if scv == 0.0:
        assert terms['uplink_wait_s'] == pytest.approx(queueing.md1_wait_s(rate, 1.0 / s))


def _tandem_worker_wait(rate_hz, link_s, link_scv, service_s, service_scv, n=100_000):
    """Return simulated mean wait at a FIFO worker fed by a FIFO link (Lindley, both stages)."""
    rng = np.random.default_rng(3)
    arrivals = np.cumsum(rng.exponential(1 / rate_hz, n))
    link = rng.gamma(1 / link_scv, link_s * link_scv, n)
    work = rng.gamma(1 / service_scv, service_s * service_scv, n)
    sent, free, waits = -1e9, 0.0, np.empty(n)
    for i in range(n):
        sent = max(arrivals[i], sent) + link[i]
        start = max(sent, free)
        waits[i], free = start - sent, start + work[i]
    return waits[1000:].mean()


@pytest.mark.parametrize('rate_hz,link_s,service_s', [(8, 0.094, 0.085), (8, 0.062, 0.070)])
def test_worker_wait_sees_the_link_space_out_even_sized_uploads(rate_hz, link_s, service_s):
    """
    Tandem queues: a busy link passing even-sized uploads spaces them.

    And the worker behind it waits less than for Poisson arrivals. The departure-process correction
    (QNA) moves the prediction towards a simulation of both stages; the exponential link (Burke)
    passes Poisson arrivals on, as the paper's model has it.
    """
    simulated = _tandem_worker_wait(rate_hz, link_s, 0.2, service_s, 0.05)
    worker = WorkerModel('w', service_s, 1, 0.05 * service_s ** 2)
    even = NetworkModel(230_000 * 8 / link_s, 230_000, 1, request_scv=0.2)
    spaced = predict_offload(rate_hz, even, worker).terms['queue_wait_s']
    poisson = predict_offload(rate_hz, dataclasses.replace(even, request_scv=1.0),
                              worker).terms['queue_wait_s']
    assert simulated < spaced < poisson
    assert abs(spaced - simulated) < 0.6 * abs(poisson - simulated)
    assert departure_scv(0.0, 1.0, 0.0) == 1.0 and departure_scv(0.75, 1.0, 1.0) == 1.0
    assert departure_scv(1.0, 1.0, 0.2) == pytest.approx(0.2)
