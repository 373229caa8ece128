"""Workload: rates (diurnal, flash crowds), domains (all drift kinds), determinism."""

from __future__ import annotations

import numpy as np
import pytest

from gaisnet_env.scenario import load_scenario
from gaisnet_env.worker_config import STYLES
from gaisnet_env.workload import BLOCKS_KEPT, DOMAIN_BLOCK, Workload, domain_shift, total_variation


def _wl(seed: int = 0, **overrides: object) -> Workload:
    base = {"topology.n_edges": 6, "horizon": 100, "epoch_s": 60.0}
    base.update(overrides)
    return Workload(load_scenario({}, **base), np.random.default_rng(seed))


def test_base_rates_and_diurnal() -> None:
    w = _wl(**{"workload.rate_per_s": 10.0, "workload.rate_spread": 0.5})
    assert w.base_rates.shape == (6,)
    assert np.all((w.base_rates >= 5.0) & (w.base_rates <= 15.0))
    # start 8:00, peak 14:00, amplitude 0.5; epoch 360 of 60 s = 6 h later -> the peak
    assert w.hour(0) == pytest.approx(8.0)
    assert w.hour(360) == pytest.approx(14.0)
    assert w.hour(24 * 60 + 360) == pytest.approx(14.0)  # wraps at 24 h
    np.testing.assert_allclose(w.rates(360), w.base_rates * 1.5)
    # 8:00 is 6 h before the peak: cos(-pi/2) = 0 -> factor 1
    np.testing.assert_allclose(w.rates(0), w.base_rates)


def test_flash_crowds() -> None:
    crowds = [
        {"start_epoch": 10, "duration_epochs": 5, "multiplier": 3.0, "edges": [1, 2]},
        {"start_epoch": 12, "duration_epochs": 1, "multiplier": 2.0},
    ]
    w = _wl(**{"workload.flash_crowds": crowds, "workload.diurnal_amplitude": 0.0})
    np.testing.assert_allclose(w.rates(9), w.base_rates)
    np.testing.assert_allclose(w.rates(10) / w.base_rates, [1, 3, 3, 1, 1, 1])
    np.testing.assert_allclose(w.rates(12) / w.base_rates, [2, 6, 6, 2, 2, 2])
    np.testing.assert_allclose(w.rates(15), w.base_rates)


@pytest.mark.parametrize("kind", ["none", "sudden", "recurring", "gradual"])
def test_steady_at_says_when_rates_and_domains_follow_from_the_epoch_before(kind: str) -> None:
    crowds = [{"start_epoch": 7, "duration_epochs": 3, "multiplier": 2.0, "edges": [0]}]
    w = _wl(3, **{"drift.kind": kind, "drift.every_epochs": 5, "workload.flash_crowds": crowds})
    seen = set()
    for t in range(1, 40):
        cm0, sm0 = w.domains(t - 1)
        cm1, sm1 = w.domains(t)
        same_domains = np.array_equal(cm0, cm1) and np.array_equal(sm0, sm1)
        plain_rates = np.array_equal(w.rates(t), w.base_rates * w.diurnal(t) * np.ones(6))
        moved = kind != "none" and not np.array_equal(w.domain_index(t), w.domain_index(t - 1))
        expected = kind != "gradual" and not moved and not 7 <= t < 10
        assert w.steady_at(t) == expected, t
        if expected:  # what steady means: the same domains, the rates without a flash crowd
            assert same_domains and plain_rates, t
        seen.add(expected)
    assert seen == ({False} if kind == "gradual" else {True, False})


def test_determinism() -> None:
    a, b, c = _wl(1), _wl(1), _wl(2)
    for t in (0, 17, 55):
        for x, y in zip(a.domains(t), b.domains(t), strict=True):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(a.rates(t), b.rates(t))
    assert not np.array_equal(a.base_rates, c.base_rates)


@pytest.mark.parametrize("kind", ["none", "sudden", "gradual", "recurring"])
def test_domains_are_distributions(kind: str) -> None:
    w = _wl(**{"drift.kind": kind, "drift.every_epochs": 10})
    for t in range(0, 130, 3):  # also past the horizon
        cls, sty = w.domains(t)
        assert cls.shape == (6, 10) and sty.shape == (6, len(STYLES))
        np.testing.assert_allclose(cls.sum(axis=1), 1.0)
        np.testing.assert_allclose(sty.sum(axis=1), 1.0)
        assert cls.min() >= 0.0 and sty.min() >= 0.0


def test_none_is_constant() -> None:
    w = _wl(**{"drift.kind": "none"})
    assert np.all(w.drift(0, 99) == 0.0)


def test_sudden_changes_at_staggered_epochs() -> None:
    w = _wl(**{"drift.kind": "sudden", "drift.every_epochs": 10, "drift.stagger": True})
    for i in range(6):
        change = 10 - w.offsets[i]  # first change of cell i
        for t in range(0, 30):
            shift = w.drift(t, t + 1)[i]
            if (t + 1 + w.offsets[i]) % 10 == 0:
                assert shift > 0.0  # a new domain (its style always differs)
            else:
                assert shift == 0.0
        assert w.domain_index(change)[i] == 1
    w = _wl(3, **{"drift.kind": "sudden", "drift.every_epochs": 10, "drift.stagger": False})
    assert np.all(w.offsets == 0)
    assert np.all(w.drift(9, 10) > 0.0) and np.all(w.drift(0, 9) == 0.0)


def test_gradual_blends_linearly() -> None:
    w = _wl(**{"drift.kind": "gradual", "drift.every_epochs": 10, "drift.stagger": False})
    c0, s0 = w.domains(0)
    c5, s5 = w.domains(5)
    c10, s10 = w.domains(10)
    np.testing.assert_allclose(c5, 0.5 * (c0 + c10))
    np.testing.assert_allclose(s5, 0.5 * (s0 + s10))
    # step sizes are equal along the ramp
    np.testing.assert_allclose(w.domains(3)[0] - w.domains(2)[0], w.domains(7)[0] - w.domains(6)[0])


def test_recurring_alternates() -> None:
    w = _wl(**{"drift.kind": "recurring", "drift.every_epochs": 10, "drift.stagger": False})
    a, b, c = w.domains(0), w.domains(10), w.domains(20)
    np.testing.assert_array_equal(a[0], c[0])
    np.testing.assert_array_equal(a[1], c[1])
    assert np.all(domain_shift(*a, *b) > 0.0)


def test_styles_follow_scenario() -> None:
    w = _wl(**{"drift.styles": ["noise", "blur"], "drift.kind": "sudden", "drift.every_epochs": 5})
    assert w.styles == STYLES and w.allowed_styles == ("noise", "blur")
    allowed = [STYLES.index("noise"), STYLES.index("blur")]
    seq = w.style_indices(200)  # past one block of domains
    assert set(np.unique(seq)) <= set(allowed)
    for t in range(0, 40, 3):
        sty = w.domains(t)[1]
        np.testing.assert_allclose(sty[:, allowed].sum(axis=1), 1.0)
    # consecutive domains alternate when only two styles are allowed
    assert np.all(seq[:, 1:] != seq[:, :-1])
    one = _wl(**{"drift.styles": ["rotate"]})
    assert np.all(one.style_indices(200) == STYLES.index("rotate"))


@pytest.mark.parametrize("styles", [None, ["noise", "blur", "rotate"]])
def test_styles_change_across_blocks(styles: list[str] | None) -> None:
    over = {"topology.n_edges": 64, "drift.kind": "sudden", "drift.every_epochs": 1}
    if styles:
        over["drift.styles"] = styles
    w = _wl(**over)
    seq = w.style_indices(3 * DOMAIN_BLOCK + 5)
    assert np.all(seq[:, 1:] != seq[:, :-1])  # also at the block boundaries
    assert len(np.unique(seq)) == len(w.allowed_styles)


def test_domains_lazy_and_order_free() -> None:
    """A domain depends on the seed only: not on the horizon, nor on which epochs were asked first;
    memory stays bounded however far the episode goes."""
    over = {"drift.kind": "gradual", "drift.every_epochs": 3}
    a = _wl(7, horizon=100, **over)
    b = _wl(7, horizon=10_000_000, **over)
    far = 3 * DOMAIN_BLOCK * 50
    for t in (far, 5, far + 1, 0, 123):
        for got, want in zip(b.domains(t), a.domains(t), strict=True):
            np.testing.assert_array_equal(got, want)
    assert len(b.sequence._blocks) <= BLOCKS_KEPT


def test_clean_first_often() -> None:
    w = Workload(load_scenario({}, **{"topology.n_edges": 256}), np.random.default_rng(0))
    share = np.mean(w.style_indices(1)[:, 0] == w.styles.index("clean"))
    assert 0.45 < share < 0.75  # 1/2 + 1/2 * 1/6


def test_total_variation() -> None:
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    q = np.array([[0.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(total_variation(p, q), [1.0, 0.0])
    # class TV 0.5, style TV 0.2 -> 1 - 0.5 * 0.8 = 0.6
    cls_a, cls_b = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
    sty_a, sty_b = np.array([1.0, 0.0]), np.array([0.8, 0.2])
    assert domain_shift(cls_a, sty_a, cls_b, sty_b) == pytest.approx(0.6)


@pytest.mark.parametrize("name", ["tiny", "metro", "city", "drift-storm", "green"])
def test_builtins(name: str) -> None:
    sc = load_scenario(name)
    w = Workload(sc, np.random.default_rng(sc.seed))
    for t in range(0, sc.horizon, max(1, sc.horizon // 10)):
        r = w.rates(t)
        assert r.shape == (sc.topology.n_edges,) and np.all(r >= 0.0) and np.all(np.isfinite(r))
        cls, _ = w.domains(t)
        assert cls.shape == (sc.topology.n_edges, 10)
