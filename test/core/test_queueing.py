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

"""Queueing formulas: textbook values, invariants and seeded simulation against theory."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from offload_ros.core import queueing


@pytest.mark.parametrize('lam,mu,expected', [
    (1.0, 2.0, 0.5),     # rho 0.5: 1/(2-1) - 1/2
    (0.9, 1.0, 9.0),     # rho 0.9: 10 - 1
    (0.0, 5.0, 0.0),
])
def test_mm1_textbook(lam, mu, expected):
    assert queueing.mm1_wait_s(lam, mu) == pytest.approx(expected)


@pytest.mark.parametrize('lam,mu,k,expected', [
    (1.0, 2.0, 1, 0.25),                  # half the M/M/1 wait
    (0.9, 1.0, 1, 4.5),
    (3.0, 2.0, 2, 0.5 * (1 / 1.0 - 1 / 4.0)),  # k=2 aggregated to 4/s
])
def test_md1_textbook(lam, mu, k, expected):
    assert queueing.md1_wait_s(lam, mu, k) == pytest.approx(expected)


def test_pk_reduces_to_md1_and_mm1():
    lam, mu = 3.0, 5.0
    assert queueing.mg1_wait_s(lam, mu, 0.0) == pytest.approx(queueing.md1_wait_s(lam, mu))
    assert queueing.mg1_wait_s(lam, mu, 1 / mu ** 2) == pytest.approx(queueing.mm1_wait_s(lam, mu))
    # Kleinrock: W = lam E[S^2] / (2 (1 - rho)); E[S^2] = 1 + 1 at mu=1, var=1, lam=0.5 -> 1.0
    assert queueing.mg1_wait_s(0.5, 1.0, 1.0) == pytest.approx(1.0)


def test_mm1k_textbook():
    one = queueing.mm1k(1.0, 1.0, 1)         # K=1 at rho=1: loss 1/2, sojourn one service
    assert one.loss_probability == pytest.approx(0.5)
    assert one.sojourn_s == pytest.approx(1.0)
    big = queueing.mm1k(0.5, 1.0, 200)       # large K tends to M/M/1: sojourn 2, no loss
    assert big.sojourn_s == pytest.approx(2.0, rel=1e-9)
    assert big.loss_probability < 1e-50
    over = queueing.mm1k(2.0, 1.0, 4)        # stable even when overloaded, most jobs lost
    assert math.isfinite(over.sojourn_s) and over.loss_probability > 0.5


def test_gg1_bound_above_mm1():
    lam, mu = 0.7, 1.0
    bound = queueing.gg1_wait_upper_bound_s(lam, mu, 1 / lam ** 2, 1 / mu ** 2)
    assert bound >= queueing.mm1_wait_s(lam, mu)
    assert queueing.gg1_wait_upper_bound_s(1.0, 1.0, 1.0, 1.0) == math.inf


@pytest.mark.parametrize('bad', [(-1.0, 1.0), (1.0, 0.0), (1.0, -2.0)])
def test_bad_rates_raise(bad):
    with pytest.raises(ValueError, match='rate_hz'):
        queueing.mm1_wait_s(*bad)


rates = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


@given(lam1=rates, lam2=rates, mu=st.floats(min_value=0.1, max_value=100.0),
       var=st.floats(min_value=0.0, max_value=1.0))
def test_waits_non_decreasing_in_rate(lam1, lam2, mu, var):
    low, high = sorted((lam1, lam2))
    assert queueing.mm1_wait_s(low, mu) <= queueing.mm1_wait_s(high, mu)
    assert queueing.md1_wait_s(low, mu) <= queueing.md1_wait_s(high, mu)
    assert queueing.mg1_wait_s(low, mu, var) <= queueing.mg1_wait_s(high, mu, var)


@given(mu=st.floats(min_value=0.1, max_value=100.0),
       excess=st.floats(min_value=1.0, max_value=10.0))
def test_infinite_at_or_above_capacity(mu, excess):
    lam = mu * excess
    assert queueing.mm1_wait_s(lam, mu) == math.inf
    assert queueing.md1_wait_s(lam, mu) == math.inf
    assert queueing.mg1_wait_s(lam, mu, 0.5) == math.inf


def simulate_fifo_wait(rng, arrival_rate_hz, service_sampler, customers=200_000,
                       warmup=20_000):
    """
    Lindley recursion W_{n+1} = max(0, W_n + S_n - A_{n+1}).

    Returns the mean wait and a 95% half-width from 20 batch means.
    """
    inter = rng.exponential(1.0 / arrival_rate_hz, customers)
    service = service_sampler(customers)
    waits = np.empty(customers)
    w = 0.0
    for i in range(customers):
        waits[i] = w
        w = max(0.0, w + service[i] - inter[i])
    kept = waits[warmup:]
    batches = np.array_split(kept, 20)
    means = np.array([b.mean() for b in batches])
    return kept.mean(), 1.96 * means.std(ddof=1) / math.sqrt(len(means))


@pytest.mark.parametrize('rho', [0.3, 0.6, 0.8])
@pytest.mark.parametrize('kind', ['md1', 'mm1', 'mg1'])
def test_simulation_agrees_with_formula(kind, rho):
    rng = np.random.default_rng(20261122)
    mu = 10.0
    lam = rho * mu
    if kind == 'md1':
        sampler, theory = (lambda n: np.full(n, 1 / mu)), queueing.md1_wait_s(lam, mu)
    elif kind == 'mm1':
        sampler, theory = (lambda n: rng.exponential(1 / mu, n)), queueing.mm1_wait_s(lam, mu)
    else:  # gamma service, shape 4: Var = mean^2 / 4
        sampler = (lambda n: rng.gamma(4.0, 1 / (4.0 * mu), n))
        theory = queueing.mg1_wait_s(lam, mu, (1 / mu) ** 2 / 4.0)
    mean, half_width = simulate_fifo_wait(rng, lam, sampler)
    # Agreement within sampling error (3 half-widths, at least 2%).
    assert abs(mean - theory) <= max(3 * half_width, 0.02 * theory), (mean, theory, half_width)
