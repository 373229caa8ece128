"""Data pools, styles and access control of gaisnet_env.data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gaisnet_env.data import DigitsData, apply_style
from gaisnet_env.worker_config import N_CLASSES, STYLES


@pytest.mark.parametrize("n_edges", [1, 4, 64])
def test_pools_disjoint_and_complete(n_edges: int) -> None:
    d = DigitsData(n_edges, seed=3)
    pools = [d.public_idx, d.test_idx, *d.private_idx]
    allidx = np.concatenate(pools)
    assert allidx.size == np.unique(allidx).size, "a sample index is in two pools"
    assert allidx.size == d.y.size
    assert len(d.private_idx) == n_edges
    assert all(p.size > 0 for p in d.private_idx)
    n = d.y.size
    assert abs(d.public_idx.size / n - 0.35) < 0.02
    assert abs(d.test_idx.size / n - 0.25) < 0.02
    # stratified: every class in public and test
    assert set(np.unique(d.y[d.public_idx])) == set(range(N_CLASSES))
    assert set(np.unique(d.y[d.test_idx])) == set(range(N_CLASSES))


def test_split_deterministic_per_seed_and_public_independent_of_edges() -> None:
    a, b, c = DigitsData(4, 1), DigitsData(4, 1), DigitsData(4, 2)
    assert np.array_equal(a.public_idx, b.public_idx)
    assert all(np.array_equal(x, y) for x, y in zip(a.private_idx, b.private_idx, strict=True))
    assert not np.array_equal(a.public_idx, c.public_idx)
    assert np.array_equal(DigitsData(64, 1).test_idx, a.test_idx)


def test_styles() -> None:
    d = DigitsData(1, 0)
    x = d.x_styled
    assert x.shape == (len(STYLES), d.y.size, 64) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    clean = x[STYLES.index("clean")]
    np.testing.assert_array_equal(x[STYLES.index("invert")], 1.0 - clean)
    rot = np.rot90(clean.reshape(-1, 8, 8), 1, axes=(1, 2)).reshape(-1, 64)
    np.testing.assert_array_equal(x[STYLES.index("rotate")], rot)
    for s in range(1, len(STYLES)):
        assert not np.array_equal(x[s], clean)
    # noise is fixed: a second load gives the same arrays
    g = torch.Generator().manual_seed(5)
    n1 = apply_style(torch.from_numpy(clean[:5].copy()), STYLES.index("noise"), g)
    g = torch.Generator().manual_seed(5)
    n2 = apply_style(torch.from_numpy(clean[:5].copy()), STYLES.index("noise"), g)
    assert torch.equal(n1, n2)


def test_sample_private_respects_pool_and_mix() -> None:
    d = DigitsData(4, 0)
    rng = np.random.default_rng(0)
    mix = np.zeros(N_CLASSES)
    mix[[2, 7]] = [0.25, 0.75]
    smix = np.zeros(len(STYLES))
    smix[STYLES.index("invert")] = 1.0
    idx, style = d.sample_private(1, mix, smix, 4000, rng)
    assert idx.dtype == np.int64 and style.dtype == np.int64
    assert np.isin(idx, d.private_idx[1]).all()
    labels = d.y[idx]
    assert set(np.unique(labels)) == {2, 7}
    assert abs((labels == 7).mean() - 0.75) < 0.03
    assert (style == STYLES.index("invert")).all()


def test_sample_private_with_tiny_pool_falls_back_to_held_classes() -> None:
    d = DigitsData(64, 0)
    rng = np.random.default_rng(1)
    held = set(np.unique(d.y[d.private_idx[5]]))
    missing = [c for c in range(N_CLASSES) if c not in held]
    mix = np.zeros(N_CLASSES)
    if missing:
        mix[missing[0]] = 1.0  # nothing of that class in this pool
    else:
        mix[:] = 0.1
    idx, _ = d.sample_private(5, mix, np.ones(len(STYLES)), 50, rng)
    assert np.isin(idx, d.private_idx[5]).all()


def test_pool_views_refuse_foreign_indices() -> None:
    d = DigitsData(4, 0)
    pub, test, p0, p1 = d.public_view(), d.test_view(), d.private_view(0), d.private_view(1)
    zeros = np.zeros(3, dtype=np.int64)
    x, y = p0.get(d.private_idx[0][:3], zeros)
    assert x.shape == (3, 64) and torch.equal(y, torch.from_numpy(d.y[d.private_idx[0][:3]]))
    for view, foreign in [
        (pub, d.private_idx[0]),
        (pub, d.test_idx),
        (p0, d.private_idx[1]),
        (p0, d.public_idx),
        (p1, d.test_idx),
        (test, d.public_idx),
    ]:
        with pytest.raises(PermissionError):
            view.get(foreign[:3], zeros)
        with pytest.raises(PermissionError):
            view.labels_of(foreign[:1])
    with pytest.raises(PermissionError):
        p0.get(np.array([-1, 10**6]), np.zeros(2, dtype=np.int64))
    assert not hasattr(p0, "x_styled") and not hasattr(p0, "y")
