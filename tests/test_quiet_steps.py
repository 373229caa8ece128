"""Quiet epochs stepped as arrays over the native vector env's copies (:mod:`gaisnet_env.quiet_steps`):
the same episodes, bit for bit, as the copies stepped one by one and as the single env (observations,
rewards, the vector info with its dtypes and key order, states, each copy's info), across autoresets,
ops, faults (quiet epochs under a fault included), both accuracy views, restores and replaced workers;
and the batched reductions of :mod:`gaisnet_env.core.batch` against their 1-D originals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gaisnet_env.core import batch, latency
from gaisnet_env.core.faults import active_at
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.sb3_vec import GaisNetSB3VecEnv
from gaisnet_env.vector_env import GaisNetVectorEnv
from gaisnet_env.workers import WorkerSystem


def _same(x: Any, y: Any, path: str = "") -> None:
    """Equal bit for bit, with the same types, dtypes, shapes and key order."""
    if isinstance(x, dict):
        assert list(x) == list(y), path
        for k in x:
            _same(x[k], y[k], f"{path}/{k}")
    elif isinstance(x, (tuple, list)) or (isinstance(x, np.ndarray) and x.dtype == object):
        assert len(x) == len(y), path
        for u, v in zip(x, y, strict=True):
            _same(u, v, path)
    else:
        assert type(x) is type(y) or isinstance(x, np.ndarray), (path, type(x), type(y))
        a, b = np.asarray(x), np.asarray(y)
        assert a.dtype == b.dtype and a.shape == b.shape, (path, a.dtype, b.dtype, a.shape, b.shape)
        assert np.array_equal(a, b, equal_nan=True), (path, a, b)


def _actions(venv: GaisNetVectorEnv, rng: np.random.Generator, p_op: float) -> np.ndarray:
    """Random routes; a feasible op with probability ``p_op`` per edge, else none."""
    n, E = venv.num_envs, venv.n_edges
    masks = np.stack([env.action_masks() for env in venv.envs]).reshape(n, E, 8)
    acts = np.zeros((n, E, 2), np.int64)
    acts[..., 0] = rng.integers(0, 3, (n, E))
    ops = np.where(rng.random((n, E)) < p_op, rng.integers(1, 5, (n, E)), 0)
    acts[..., 1] = np.where(np.take_along_axis(masks[..., 3:], ops[..., None], -1)[..., 0], ops, 0)
    return acts.reshape(n, 2 * E)


def _pair(n: int, scenario: str, **kw: Any) -> tuple[GaisNetVectorEnv, GaisNetVectorEnv]:
    quiet, serial = GaisNetVectorEnv(n, scenario, **kw), GaisNetVectorEnv(n, scenario, **kw)
    serial.quiet_steps = False
    return quiet, serial


def _run_pair(quiet: GaisNetVectorEnv, serial: GaisNetVectorEnv, steps: int, p_op: float,
              seed: int = 7) -> tuple[int, int]:
    """Step both with the same actions, checking every output and state; returns the quiet copy-steps and
    those of them with a fault in force."""
    _same(quiet.reset(seed=seed), serial.reset(seed=seed))
    rng = np.random.default_rng(seed)
    n_quiet = n_faulty = 0
    for _ in range(steps):
        acts = _actions(quiet, rng, p_op)
        live = np.flatnonzero(~quiet._autoreset).tolist()
        chosen = quiet._quiet.select(acts.reshape(quiet.num_envs, -1, 2), live)
        n_quiet += len(chosen)
        n_faulty += sum(active_at(quiet.envs[i].scenario.faults, quiet.envs[i].state.epoch) for i in chosen)
        _same(quiet.step(acts), serial.step(acts), "step")
        for a, b in zip(quiet.envs, serial.envs, strict=True):
            _same(a.state.__dict__, b.state.__dict__, "state")
            _same(a._last_info, b._last_info, "last_info")
            _same(a.workers.state_dict()["fb_idx"], b.workers.state_dict()["fb_idx"], "rings")
    return n_quiet, n_faulty


@pytest.mark.parametrize(("scenario", "steps", "p_op", "kw"), [
    ("tiny", 45, 0.15, {}),  # across autoresets (horizon 20), with ops
    ("tiny", 25, 0.0, {"accuracy_view": "exact"}),
    ("tiny", 30, 0.1, {"faults": {"edges_down": [{"edge": 0, "start_epoch": 4, "duration_epochs": 3}],
                                  "links": [{"link": "backhaul", "edge": 0, "start_epoch": 9,
                                             "duration_epochs": 2, "bandwidth_factor": 0.0}]}}),
    ("metro", 12, 0.05, {}),
    ("metro", 30, 0.02, {"drift": {"kind": "recurring", "every_epochs": 4},  # domains move, a flash crowd
                         "workload": {"flash_crowds": [{"start_epoch": 6, "duration_epochs": 5, "multiplier": 2.5,
                                                        "edges": [1]}]}}),
    ("metro", 14, 0.0, {"drift": {"kind": "gradual", "every_epochs": 5}}),
    ("tiny", 14, 0.0, {"drift": {"kind": "none"}}),
    ("tiny", 30, 0.15, {"workers": {"feedback_buffer": 8}}),  # rings that wrap every epoch, ops writing them
])
def test_quiet_copies_equal_copies_one_by_one(scenario: str, steps: int, p_op: float, kw: dict) -> None:
    quiet, serial = _pair(3, scenario, **kw)
    n_quiet, n_faulty = _run_pair(quiet, serial, steps, p_op)
    assert 0 < n_quiet < 3 * steps or p_op == 0.0  # both paths ran
    assert n_quiet > steps
    assert n_faulty > 0 or "faults" not in kw  # quiet epochs with a fault in force ran too


def test_copies_at_different_epochs_under_faults() -> None:
    """Copies whose fault windows fall on different steps (one copy reset later): each quiet copy's masks and
    numbers are its own faults', as one by one."""
    faults = {"edges_down": [{"edge": 0, "start_epoch": 4, "duration_epochs": 3}],
              "links": [{"link": "access", "edge": 0, "start_epoch": 9, "duration_epochs": 2, "bandwidth_factor": 0.0}]}
    quiet, serial = _pair(3, "tiny", faults=faults)
    _same(quiet.reset(seed=5), serial.reset(seed=5))
    acts = np.zeros((3, 2 * quiet.n_edges), np.int64)  # every request on the end device (feasible under both)
    mask = {"reset_mask": np.array([False, True, False])}
    differ = 0
    for step in range(14):
        if step in (2, 3):  # copy 1 starts over twice: its epochs lag the others' by 2 and then 3
            np.testing.assert_array_equal(quiet.reset(options=mask)[0], serial.reset(options=mask)[0])
        chosen = quiet._quiet.select(acts.reshape(3, -1, 2), [0, 1, 2])
        ahead = {active_at(quiet.envs[i].scenario.faults, quiet.envs[i].state.epoch + 1) for i in chosen}
        differ += len(ahead) > 1  # the chosen copies' next epochs differ in faults
        _same(quiet.step(acts), serial.step(acts), f"step {step}")
    assert differ > 0


def test_held_epoch_figures_equal_the_env_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The figures the quiet steps carry from epoch to epoch equal those each copy reads itself, the
    domains the same arrays while they hold; most copy-epochs take the carried path."""
    from gaisnet_env import quiet_figures, quiet_steps

    counts = {"carried": 0, "read": 0}
    epoch_figures = quiet_figures.epoch_figures

    def checked(envs: list, known: list) -> list:
        out = epoch_figures(envs, known)
        for env, fig, prev in zip(envs, out, known, strict=True):
            ref = quiet_figures.read_figures(env)
            assert fig.epoch == ref.epoch and fig.hour == ref.hour and fig.carbon == ref.carbon
            assert np.array_equal(fig.rates, ref.rates) and not fig.rates.flags.writeable
            assert np.array_equal(fig.class_mix, ref.class_mix) and np.array_equal(fig.style_mix, ref.style_mix)
            carried = prev is not None and fig.class_mix is prev.class_mix
            counts["carried" if carried else "read"] += 1
        return out

    monkeypatch.setattr(quiet_steps, "epoch_figures", checked)
    for kw in ({"drift": {"kind": "sudden", "every_epochs": 3},  # some cell's domain moves most epochs
                "workload": {"flash_crowds": [{"start_epoch": 4, "duration_epochs": 3, "multiplier": 2.0}]}}, {}):
        venv = GaisNetVectorEnv(4, "metro", **kw)
        venv.reset(seed=2)
        acts = np.zeros((4, 2 * venv.n_edges), np.int64)
        acts[:, 0::2] = 1
        for _ in range(12):
            venv.step(acts)
        assert counts["carried"] > 0 and counts["read"] > 0
    assert counts["carried"] > counts["read"]  # metro's own settings: mostly carried


def test_grid_region_changed_mid_episode_is_read_as_the_single_env_reads_it() -> None:
    """A copy's carried figures do not outlive an in-place change of its grid region (the single env reads
    the region every step)."""
    from gaisnet_env import profiles

    quiet, serial = _pair(3, "metro")
    _same(quiet.reset(seed=4), serial.reset(seed=4))
    acts = np.zeros((3, 2 * quiet.n_edges), np.int64)
    acts[:, 0::2] = 1
    other = next(r for r in profiles.GRID if r != quiet.envs[0].scenario.energy.edge_region)
    for step in range(6):
        if step == 3:
            for venv in (quiet, serial):
                for env in venv.envs:
                    env.scenario.energy.edge_region = other
        assert len(quiet._quiet.select(acts.reshape(3, -1, 2), [0, 1, 2])) == 3
        _same(quiet.step(acts), serial.step(acts), f"step {step}")
    assert all(fig.carbon_key[0] == other for fig in quiet._quiet._ahead)


def test_copy_equals_the_single_env() -> None:
    venv = GaisNetVectorEnv(3, "tiny")
    singles = [GaisNetEnv("tiny") for _ in range(3)]
    obs, _ = venv.reset(seed=11)
    for i, s in enumerate(singles):
        np.testing.assert_array_equal(obs[i], s.reset(seed=11 + i)[0])
    acts = np.zeros((3, 2 * venv.n_edges), np.int64)
    acts[:, 0::2] = 1  # edge routes, no ops: every copy quiet
    for _ in range(8):
        assert len(venv._quiet.select(acts.reshape(3, -1, 2), [0, 1, 2])) == 3
        obs, rew, _, trunc, info = venv.step(acts)
        for i, s in enumerate(singles):
            o, r, _, tr, inf = s.step(acts[i])
            np.testing.assert_array_equal(obs[i], o)
            assert rew[i] == r and trunc[i] == tr
            for key, value in inf.items():
                if key != "action_mask":
                    _same(info[key][i], np.asarray(value)[()] if np.ndim(value) == 0 else value, key)
            _same(venv.envs[i]._last_info, inf)


def test_restore_and_replaced_workers() -> None:
    quiet, serial = _pair(2, "tiny")
    _run_pair(quiet, serial, 6, 0.1)
    snap = quiet.envs[1].snapshot()
    fresh = GaisNetVectorEnv(2, "tiny")
    fresh.reset(seed=3)
    fresh.envs[1].restore(snap)  # the rings are loaded in place: still the shared rows
    quiet.envs[0].workers = WorkerSystem(quiet.n_edges, quiet.scenario.workers, seed=quiet.scenario.seed)
    quiet.envs[0].reset(seed=5)
    serial.envs[0].workers = WorkerSystem(serial.n_edges, serial.scenario.workers, seed=serial.scenario.seed)
    serial.envs[0].reset(seed=5)
    fresh.envs[0].reset(seed=5)
    acts = np.zeros((2, 2 * quiet.n_edges), np.int64)
    for _ in range(5):
        outs = [v.step(acts) for v in (quiet, serial, fresh)]
        _same(outs[0], outs[1])
        np.testing.assert_array_equal(outs[0][0], outs[2][0])  # the restored copy replays
        _same(quiet.envs[0].workers.state_dict()["fb_idx"], serial.envs[0].workers.state_dict()["fb_idx"])
    assert quiet.envs[0].workers._fb_idx.base is quiet._quiet.feedback.rings[0]


def test_sb3_vec_env_quiet_equals_one_by_one() -> None:
    quiet, serial = _pair(2, "tiny")
    a, b = GaisNetSB3VecEnv(quiet), GaisNetSB3VecEnv(serial)
    a.seed(4)
    b.seed(4)
    _same(a.reset(), b.reset())
    rng = np.random.default_rng(0)
    for _ in range(25):
        acts = _actions(quiet, rng, 0.1)
        a.step_async(acts)
        b.step_async(acts)
        _same(a.step_wait(), b.step_wait())
    with pytest.raises(ValueError, match=r"actions\[1\] \(copy 1\)"):
        bad = np.zeros((2, 2 * quiet.n_edges), np.int64)
        bad[1, 0] = 7
        a.step_async(bad)
        a.step_wait()


def test_weighted_quantiles_batch_equal_one_by_one() -> None:
    rng = np.random.default_rng(0)
    values = rng.choice([0.1, 0.2, 0.5, np.pi], (50, 12))
    weights = rng.choice([0.0, 0.0, 1.0, 3.0, 0.25], (50, 12))
    weights[0] = 0.0
    got = batch.weighted_quantiles(values, weights, (0.5, 0.95))
    for i in range(1, 50):
        if weights[i].sum() > 0:
            want = latency.weighted_quantiles(values[i], weights[i], (0.5, 0.95))
            assert (got[0][i], got[1][i]) == want


def test_quiet_info_names_the_first_non_finite_key_and_copy() -> None:
    from types import SimpleNamespace

    from gaisnet_env.quiet_info import _check_finite

    envs = [SimpleNamespace(state=SimpleNamespace(epoch=5 + k)) for k in range(3)]
    ok = {"epoch": np.arange(3), "accuracy": np.ones(3), "edge_reward": np.zeros((3, 2)), "action_mask": None}
    _check_finite(ok, np.zeros(3), envs)  # all finite: no error
    bad = {**ok, "edge_reward": np.array([[0.0, 0.0], [0.0, 0.0], [np.inf, 0.0]]), "energy_j": np.array([1, np.nan, 2])}
    with pytest.raises(FloatingPointError, match=r"info\['edge_reward'\] of copy 2 .* at epoch 6"):
        _check_finite(bad, np.zeros(3), envs)
    with pytest.raises(FloatingPointError, match="reward of copy 1 is nan at epoch 5"):
        _check_finite(ok, np.array([0.0, np.nan, 0.0]), envs)
