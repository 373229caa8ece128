"""Each cost formula against a hand-computed example, plus edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from gaisnet_env import cost


def test_transfer_time() -> None:
    # 30 kB over 50 Mbit/s with 25 ms RTT: 8*30000/50e6 = 0.0048 s, + 0.025/2 = 0.0173 s
    assert cost.transfer_time_s(30_000, 50e6, 0.025) == pytest.approx(0.0173)
    # vectorised, and an outage (bandwidth 0) takes forever
    t = cost.transfer_time_s(np.array([1000, 1000]), np.array([8e6, 0.0]), 0.002)
    assert t[0] == pytest.approx(8 * 1000 / 8e6 + 0.001)  # 0.001 + 0.001 = 0.002 s
    assert np.isinf(t[1])


def test_compute_time() -> None:
    # ViT-B/16: 3.52e10 FLOP at 12.75e12 FLOP/s = 2.76 ms
    assert cost.compute_time_s(3.52e10, 12.75e12) == pytest.approx(3.52e10 / 12.75e12)
    assert cost.compute_time_s(1e9, 1e11) == pytest.approx(0.01)
    t = cost.compute_time_s(np.array([0.0, 1.0]), np.array([0.0, 0.0]))
    assert t[0] == 0.0 and np.isinf(t[1])


def test_fluid_queue_overloaded() -> None:
    # backlog 2, work 10, capacity 6: never drains; new = 2+10-6 = 6; mean = 2 + (10-6)/2 = 4
    new, wait = cost.fluid_queue(2.0, 10.0, 6.0)
    assert new == pytest.approx(6.0) and wait == pytest.approx(4.0)


def test_fluid_queue_drains_but_not_empty() -> None:
    # backlog 5, work 2, capacity 4: slack 2 <= 5; new = 3; mean = 5 - 2/2 = 4
    new, wait = cost.fluid_queue(5.0, 2.0, 4.0)
    assert new == pytest.approx(3.0) and wait == pytest.approx(4.0)


def test_fluid_queue_empties_mid_epoch() -> None:
    # backlog 2, work 2, capacity 6: slack 4 > 2, empties at tau* = 2/4 = 0.5;
    # mean = area of the triangle = 2 * 0.5 / 2 = 0.5 = 2**2 / (2*4)
    new, wait = cost.fluid_queue(2.0, 2.0, 6.0)
    assert new == 0.0 and wait == pytest.approx(0.5)
    # numerically: time-average of max(0, 2 - 4 tau)
    tau = np.linspace(0.0, 1.0, 200_001)
    assert np.maximum(0.0, 2.0 - 4.0 * tau).mean() == pytest.approx(0.5, rel=1e-4)


def test_fluid_queue_empty_and_boundary() -> None:
    new, wait = cost.fluid_queue(0.0, 3.0, 6.0)  # empty queue, under capacity: no wait
    assert new == 0.0 and wait == 0.0
    new, wait = cost.fluid_queue(4.0, 2.0, 6.0)  # empties exactly at the end: 4*1/2 = 2
    assert new == 0.0 and wait == pytest.approx(2.0)
    new, wait = cost.fluid_queue(1.0, 0.0, 0.0)  # no capacity (edge down): stays 1
    assert new == 1.0 and wait == 1.0


def test_fluid_queue_vectorised_and_rate() -> None:
    b = np.array([2.0, 5.0, 2.0, 0.0])
    w = np.array([10.0, 2.0, 2.0, 3.0])
    c = np.array([6.0, 4.0, 6.0, 6.0])
    new, mean = cost.fluid_queue(b, w, c)
    np.testing.assert_allclose(new, [6.0, 3.0, 0.0, 0.0])
    np.testing.assert_allclose(mean, [4.0, 4.0, 0.5, 0.0])
    # 4 servers over a 10 s epoch (capacity 40 server-s, drain rate 4): backlog 20, work 60
    # -> mean backlog 20 + 20/2 = 30 server-s -> wait 30/4 = 7.5 s
    new, wait = cost.fluid_queue(20.0, 60.0, 40.0, period_s=10.0)
    assert new == pytest.approx(40.0) and wait == pytest.approx(7.5)
    # no capacity with a queue: infinite wait; without a queue: none
    _, wait = cost.fluid_queue(np.array([1.0, 0.0]), np.array([0.0, 0.0]), 0.0, period_s=10.0)
    assert np.isinf(wait[0]) and wait[1] == 0.0


def test_compute_energy() -> None:
    # 50 W idle, 400 W active, busy 3 s of 10, PUE 1.1: (50*10 + 350*3) * 1.1 = 1705 J
    assert cost.compute_energy_j(50.0, 400.0, 3.0, 10.0, 1.1) == pytest.approx(1705.0)
    # busy time beyond the period is capped: (50*10 + 350*10) = 4000 J
    assert cost.compute_energy_j(50.0, 400.0, 25.0, 10.0) == pytest.approx(4000.0)


def test_radio_energy_and_carbon() -> None:
    # 30 kB at 1e-7 J/bit: 240000 bit * 1e-7 = 0.024 J
    assert cost.radio_energy_j(30_000, 1e-7) == pytest.approx(0.024)
    # 3.6e6 J = 1 kWh at 370 g/kWh = 370 g; 1800 J = 0.0005 kWh -> 0.185 g
    assert cost.carbon_g(3.6e6, 370.0) == pytest.approx(370.0)
    assert cost.carbon_g(1800.0, 370.0) == pytest.approx(0.185)


def test_violation_share() -> None:
    # latency 0.05 -> 0.15 s, deadline 0.1: crosses at tau = 0.5 -> half late
    assert cost.violation_share(0.05, 0.15, 0.1) == pytest.approx(0.5)
    # 0.2 -> 0.0, deadline 0.05: late while L > 0.05, i.e. tau < 0.75
    assert cost.violation_share(0.2, 0.0, 0.05) == pytest.approx(0.75)
    v = cost.violation_share(
        np.array([0.2, 0.01, 0.05, 0.01, np.inf, 0.01]),
        np.array([0.2, 0.01, 0.5, 0.02, np.inf, np.inf]),
        0.1,
    )
    # constant late, constant on time, (0.5-0.1)/(0.45) late, never late, outage, outage
    np.testing.assert_allclose(v, [1.0, 0.0, 0.4 / 0.45, 0.0, 1.0, 1.0])


def test_weighted_quantile() -> None:
    values, weights = [3.0, 1.0, 2.0, 10.0], [1.0, 1.0, 1.0, 1.0]
    # sorted 1,2,3,10 with cumulative weight 1,2,3,4: median = first with cw >= 2 -> 2
    assert cost.weighted_quantile(values, weights, 0.5) == 2.0
    assert cost.weighted_quantile(values, weights, 0.95) == 10.0  # 3.8 -> cw 4
    assert cost.weighted_quantile(values, weights, 0.0) == 1.0
    # weight 3 on 10: cw 1,2,3,6; median at 3 -> 3, p75 at 4.5 -> 10
    assert cost.weighted_quantile(values, [1, 1, 1, 3], 0.5) == 3.0
    assert cost.weighted_quantile(values, [1, 1, 1, 3], 0.75) == 10.0
    # zero weights are ignored; all zero -> nan
    assert cost.weighted_quantile(values, [0, 1, 0, 0], 0.9) == 1.0
    assert np.isnan(cost.weighted_quantile(values, [0, 0, 0, 0], 0.5))
    assert np.isnan(cost.weighted_quantile([], [], 0.5))
    with pytest.raises(ValueError, match="q"):
        cost.weighted_quantile(values, weights, 1.5)


def test_fluid_queue_and_violations_match_numeric_integration() -> None:
    rng = np.random.default_rng(0)
    b, w, c = rng.uniform(0, 10, 200), rng.uniform(0, 10, 200), rng.uniform(0, 10, 200)
    new, mean = cost.fluid_queue(b, w, c)
    tau = np.linspace(0.0, 1.0, 20_001)[:, None]
    path = np.maximum(0.0, b + (w - c) * tau)  # exact because the backlog never rebounds
    np.testing.assert_allclose(new, path[-1], atol=1e-9)
    np.testing.assert_allclose(mean, 0.5 * (path[1:] + path[:-1]).mean(axis=0), atol=1e-6)  # trapezoid rule
    l0, l1 = rng.uniform(0, 1, 200), rng.uniform(0, 1, 200)
    share = cost.violation_share(l0, l1, 0.5)
    np.testing.assert_allclose(share, (l0 + (l1 - l0) * tau > 0.5).mean(axis=0), atol=1e-3)
