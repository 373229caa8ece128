"""snapshot() / restore(): 1,000 steps replayed bit for bit into the same instance, a fresh one, one with
its own history and another process; snapshots of another scenario or damaged ones refused; snapshot
size and reset work independent of the horizon."""

from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pytest

from benchmarks.soak import random_masked_action, step_digest
from gaisnet_env.env import OP_FINETUNE, OP_NONE, OP_RELAY_DOWN, ROUTE_EDGE, GaisNetEnv
from gaisnet_env.wrappers import FaultInjection

STEPS = 1000


def _fault_env(seed: int = 1) -> FaultInjection:
    env = GaisNetEnv("tiny", horizon=STEPS + 100, energy={"end_battery_j": 200.0, "end_recharge_w": 2.0})
    return FaultInjection(env, rate=0.05, seed=seed)


def _play(w: FaultInjection, draws: np.ndarray) -> tuple[list[str], dict]:
    """Masked-random routes, an op every few steps (weights change), the wrapper's random faults."""
    env, out, info = w.unwrapped, [], {}
    for i, (u, v, x) in enumerate(draws):
        m = env.action_masks().reshape(1, 8)[0]
        routes, ops = np.flatnonzero(m[:3]), np.flatnonzero(m[3:])
        op = int(ops[int(v * len(ops))]) if i % 4 == 0 and x < 0.8 else OP_NONE
        obs, r, _, _, info = w.step([int(routes[int(u * len(routes))]), op])
        out.append(step_digest(obs, r, info))
    return out, info


def _with_history(seed: int) -> FaultInjection:
    """An instance that has trained its own models for 40 steps (its caches hold other weights)."""
    w = _fault_env(seed)
    w.reset(seed=seed)
    _play(w, np.random.default_rng(seed).random((40, 3)))
    return w


def _replay_elsewhere(blob: bytes, draws: np.ndarray) -> list[str]:
    """In a fresh process: restore the pickled snapshot into an instance with history and replay."""
    w = _with_history(4)
    w.restore(pickle.loads(blob))
    return _play(w, draws)[0]


def test_replay_1000_steps_after_restore_into_any_instance() -> None:
    w = _fault_env()
    w.reset(seed=11)
    for _ in range(15):
        w.step([ROUTE_EDGE, OP_NONE])
    snap = w.snapshot()
    blob = pickle.dumps(snap)
    draws = np.random.default_rng(5).random((STEPS, 3))
    first, last = _play(w, draws)
    assert last["model_version_edge"][0] + last["model_version_end"][0] + last["model_version_cloud"] > 20
    assert w.injected > 10
    w.restore(snap)
    assert _play(w, draws)[0] == first, "same instance"
    fresh = _fault_env(seed=9)
    fresh.reset(seed=3)
    fresh.restore(snap)
    assert _play(fresh, draws)[0] == first, "fresh instance"
    other = _with_history(2)
    other.restore(snap)
    assert _play(other, draws)[0] == first, "instance with its own history"
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_replay_elsewhere, (blob, draws)) == first, "another process"


def _random_steps(env: GaisNetEnv, seed: int, n: int) -> list[str]:
    rng, out = np.random.default_rng(seed), []
    for _ in range(n):
        obs, r, _, _, info = env.step(random_masked_action(env.action_masks(), env.n_edges, 0.5, rng))
        out.append(step_digest(obs, r, info))
    return out


def test_restore_into_an_instance_whose_cache_has_the_same_tokens() -> None:
    """Two instances number their weights alike: after C restores A's snapshot, C's accuracy tables
    are A's weights', not those C's cache held under the same token."""
    kw = {"topology": {"n_edges": 4}, "horizon": 300, "epoch_s": 3000.0}  # ops finish within an epoch
    a, c = GaisNetEnv("tiny", **kw), GaisNetEnv("tiny", **kw)
    a.reset(seed=1)
    c.reset(seed=2)
    _random_steps(a, 1, 40)
    _random_steps(c, 2, 40)
    tokens = {("cloud", a.workers._uid_cloud)} | {("edge", t) for t in a.workers._uid_edge}
    assert tokens & set(c.workers._acc_cache), "the case needs a token that both instances used"
    snap = a.snapshot()
    want = _random_steps(a, 9, 25)
    c.restore(snap)
    for tier in ("end", "edge", "cloud"):
        for e in range(4):
            np.testing.assert_array_equal(c.workers.accuracy_table(tier, e),
                                          c.workers.accuracy_table(tier, e, use_cache=False))
    assert _random_steps(c, 9, 25) == want


def test_restore_after_a_copy_of_the_workers_diverged() -> None:
    """A deep copy of the env is another system: swapping snapshots between the two stays exact."""
    import copy

    a = GaisNetEnv("tiny", horizon=60, epoch_s=3000.0)
    a.reset(seed=0)
    b = copy.deepcopy(a)
    for env, op in ((a, OP_FINETUNE), (b, OP_RELAY_DOWN)):  # both give the edge model a new token
        for _ in range(3):
            env.step([ROUTE_EDGE, OP_NONE])
        env.step([ROUTE_EDGE, op])
        for _ in range(3):
            env.step([ROUTE_EDGE, OP_NONE])
    assert a.workers._uid_edge == b.workers._uid_edge and a.workers._ver_edge == [1]
    snap = b.snapshot()
    want = [b.step([ROUTE_EDGE, OP_NONE])[1] for _ in range(3)]
    a.restore(snap)
    assert [a.step([ROUTE_EDGE, OP_NONE])[1] for _ in range(3)] == want


def test_restore_refuses_another_scenario_and_damaged_snapshots() -> None:
    metro = GaisNetEnv("metro")
    metro.reset(seed=0)
    tiny = GaisNetEnv("tiny")
    tiny.reset(seed=0)
    before = tiny.snapshot()
    with pytest.raises(ValueError, match=r"scenario 'metro'.*'tiny' in: .*topology\.n_edges"):
        tiny.restore(metro.snapshot())
    longer = GaisNetEnv("tiny", horizon=77)
    longer.reset(seed=0)
    with pytest.raises(ValueError, match="in: horizon;"):
        tiny.restore(longer.snapshot())
    with pytest.raises(ValueError, match=r"missing keys \['state'"):
        tiny.restore({"rng": 1})
    with pytest.raises(TypeError, match="must be a dict from snapshot\\(\\), got list"):
        tiny.restore([1, 2])
    bad = dict(before, state="nope")
    with pytest.raises(ValueError, match=r"snap\['state'\] must be a SimState, got str"):
        tiny.restore(bad)
    # nothing was changed by the refused restores
    same = GaisNetEnv("tiny")
    same.reset(seed=5)
    same.restore(before)
    got, want = tiny.step([ROUTE_EDGE, OP_NONE]), same.step([ROUTE_EDGE, OP_NONE])
    assert step_digest(got[0], got[1], got[4]) == step_digest(want[0], want[1], want[4])


def test_snapshot_size_and_reset_do_not_grow_with_the_horizon() -> None:
    sizes = {}
    for horizon in (200, 10_000_000):
        env = GaisNetEnv("metro", horizon=horizon, drift={"every_epochs": 1})
        env.reset(seed=0)
        for _ in range(3):
            env.step(np.zeros(env.action_space.shape, dtype=np.int64))
        sizes[horizon] = len(pickle.dumps(env.snapshot()))
    assert abs(sizes[10_000_000] - sizes[200]) < 64  # only the horizon's digits differ
