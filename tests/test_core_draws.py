"""core.draws: scalar-call draws equal numpy's array calls, values and generator state."""

from __future__ import annotations

import numpy as np
import pytest

from gaisnet_env.core import draws


@pytest.mark.parametrize("size", [0, 1, 4, draws.SCALAR_MAX, draws.SCALAR_MAX + 1, 64])
def test_draws_equal_numpy_array_calls(size: int) -> None:
    for seed in range(40):
        fast, ref = np.random.default_rng(seed), np.random.default_rng(seed)
        lam = np.random.default_rng(1000 + seed).uniform(0.0, 900.0, size)
        lam[: size // 3] = [0.0, 3.5, 9.99, 10.0][seed % 4]  # zero, small-mean and large-mean paths
        for p, q in ((0.3, 0.1), (0.0, 1.0), (0.5, 0.02), (1.0, 0.9)):
            counts, want = draws.poisson(fast, lam), ref.poisson(lam)
            assert counts.dtype == np.int64 and np.array_equal(counts, want)
            gen, want_gen = draws.binomial(fast, counts, p), ref.binomial(want, p)
            assert gen.dtype == np.int64 and np.array_equal(gen, want_gen)
            assert np.array_equal(draws.binomial(fast, counts - gen, q), ref.binomial(want - want_gen, q))
        assert fast.bit_generator.state == ref.bit_generator.state
        assert fast.random() == ref.random()


@pytest.mark.parametrize("size", [0, 1, 4, draws.SCALAR_MAX, draws.SCALAR_MAX + 1, 64])
def test_arrivals_and_labels_equal_the_array_draws(size: int) -> None:
    for seed in range(40):
        fast, ref = np.random.default_rng(seed), np.random.default_rng(seed)
        lam = np.random.default_rng(1000 + seed).uniform(0.0, 900.0, size)
        lam[: size // 3] = [0.0, 3.5, 9.99, 10.0][seed % 4]
        for p, q in ((0.3, 0.1), (0.0, 1.0), (0.5, 0.02), (1.0, 0.9)):
            counts, n_gen, n_lab = draws.arrivals_and_labels(fast, lam.tolist(), p, q)
            want = ref.poisson(lam)
            want_gen = ref.binomial(want, p)
            assert counts == want.tolist() and n_gen == want_gen.tolist()
            assert n_lab == ref.binomial(want - want_gen, q).tolist()
            assert all(type(x) is int for x in counts + n_gen + n_lab)
        assert fast.bit_generator.state == ref.bit_generator.state


def test_draws_reject_bad_arguments_like_numpy() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        draws.poisson(rng, np.array([1.0, -1.0]))
    with pytest.raises(ValueError):
        draws.binomial(rng, np.array([3, 4]), 1.5)
