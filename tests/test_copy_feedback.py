"""The native vector env's copies' feedback rings as arrays (:mod:`gaisnet_env.copy_feedback`): the ring
counts it keeps as it writes equal each copy's own domain reports, through writes of its own, the copies'
own writes, resets and restores; :func:`~gaisnet_env.worker_feedback.evicted` names what a write
overwrites."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from gaisnet_env.copy_feedback import CopyFeedback
from gaisnet_env.vector_env import GaisNetVectorEnv
from gaisnet_env.worker_config import STYLES
from gaisnet_env.worker_feedback import evicted, newest_in_rings, write_rings


@pytest.mark.parametrize("cap", [1, 3, 8])
def test_evicted_are_the_samples_a_write_overwrites(cap: int) -> None:
    rng = np.random.default_rng(cap)
    R = 5  # noqa: N806
    rings = (np.zeros((R, cap), np.int64), np.zeros((R, cap), np.int64), np.zeros(R, np.int64),
             np.zeros(R, np.int64), np.zeros(R, np.int64))
    held = [deque(maxlen=cap) for _ in range(R)]
    next_id = 0
    for _ in range(40):
        rows = np.sort(rng.choice(R, rng.integers(1, R + 1), replace=False)).astype(np.int64)
        n = rng.integers(0, 2 * cap + 2, rows.size).astype(np.int64)
        idx = np.arange(next_id, next_id + n.sum(), dtype=np.int64)
        next_id += int(n.sum())
        r, old_idx, old_style = evicted(rings, rows, n)
        expected = []
        for row, draws in zip(rows.tolist(), np.split(idx, np.cumsum(n)[:-1]), strict=True):
            before = list(held[row])
            held[row].extend(draws.tolist())
            expected += [(row, i) for i in before if i not in held[row]]
        assert sorted(zip(r.tolist(), old_idx.tolist(), strict=True)) == sorted(expected)
        assert np.array_equal(old_style, old_idx % 7 if old_idx.size else old_idx)
        write_rings(rings, rows, n, idx, idx % 7)
        for row in range(R):  # the rings hold what the deques hold
            count, ptr = rings[3][row], rings[2][row]
            assert sorted(rings[0][row, (ptr - count + np.arange(count)) % cap].tolist()) == sorted(held[row])


def test_kept_counts_equal_each_copys_own_domain_reports() -> None:
    venv = GaisNetVectorEnv(3, "tiny", workers={"feedback_buffer": 8})
    venv.reset(seed=5)
    workers = [env.workers for env in venv.envs]
    fb = CopyFeedback(workers)
    E = fb.n_edges  # noqa: N806
    rng = np.random.default_rng(0)

    def check() -> None:
        ch, sh, has = fb.domain_reports()
        for i, w in enumerate(workers):
            c, s, cnt = w.domain_reports()
            assert np.array_equal(ch[i], c.astype(np.float64)) and np.array_equal(sh[i], s.astype(np.float64))
            assert np.array_equal(has[i], cnt > 0)

    def add_rows() -> None:  # the vector env's own writes: uniforms of the copies' generators
        rows = np.sort(rng.choice(3 * E, rng.integers(1, 3 * E + 1), replace=False)).astype(np.int64)
        n = rng.integers(1, 20, rows.size).astype(np.int64)
        mix = rng.dirichlet(np.ones(10), rows.size)
        style = np.eye(len(STYLES))[rng.integers(0, len(STYLES), rows.size)]
        newest = fb.add(rows, mix, style, n, rng.random(3 * int(n.sum())))
        kept = np.minimum(n, fb.capacity)  # what add returns is what the rings read back as their newest
        assert np.array_equal(fb.label_hits(rows, kept, newest), fb.label_hits(rows, kept))
        for got, read in zip(newest, newest_in_rings(*fb.flat[:2], fb.flat[2], fb.flat[3], rows, kept), strict=True):
            assert np.array_equal(got, read)

    fb.sync(workers)
    check()
    snap = workers[1].state_dict()
    for step in range(12):
        add_rows()
        check()
        if step == 3:  # a copy writes its own rings (a step one by one)
            workers[0].add_feedback_batch(np.arange(E), rng.dirichlet(np.ones(10), E),
                                          np.eye(len(STYLES))[np.zeros(E, int)], np.full(E, 5),
                                          np.random.default_rng(1))
        if step == 6:
            workers[2].reset(3)
        if step == 9:  # a restore, in place
            workers[1].load_state_dict(snap)
        fb.sync(workers)
        check()


def test_a_ring_with_samples_outside_its_pool_is_refused() -> None:
    venv = GaisNetVectorEnv(2, "tiny")
    venv.reset(seed=0)
    workers = [env.workers for env in venv.envs]
    fb = CopyFeedback(workers)
    fb.sync(workers)
    w = workers[1]
    other = np.flatnonzero(fb.owner != 0)[0]  # a sample of another edge's pool
    w.add_feedback_batch(np.array([0]), np.full((1, 10), 0.1), np.eye(len(STYLES))[[0]], np.array([4]),
                         np.random.default_rng(2))
    w._fb_idx[0, 0] = other
    w._fb_writes += 1
    with pytest.raises(PermissionError, match="outside its edge's pool"):
        fb.domain_reports()


def test_every_ring_write_of_the_workers_is_counted() -> None:
    """What the kept counts rely on: each way a ``WorkerSystem`` writes its rings adds one to ``_fb_writes``."""
    venv = GaisNetVectorEnv(2, "tiny")
    venv.reset(seed=1)
    w = venv.envs[0].workers
    rng = np.random.default_rng(0)
    snap = w.state_dict()
    writes = [
        lambda: w.add_feedback(0, np.full(10, 0.1), np.eye(len(STYLES))[0], 3, rng),
        lambda: w.add_feedback_batch(np.array([0]), np.full((1, 10), 0.1), np.eye(len(STYLES))[[1]], np.array([4]),
                                     rng),
        lambda: w.reset(2),
        lambda: w.load_state_dict(snap),
    ]
    for write in writes:
        before = w._fb_writes
        write()
        assert w._fb_writes == before + 1
