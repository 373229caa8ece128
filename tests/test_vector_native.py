"""The native vector env (``gym.make_vec(id, num_envs=N)``, :mod:`gaisnet_env.vector_env`) and the SB3 VecEnv
over it (:mod:`gaisnet_env.sb3_vec`): copy i equals, bit for bit, the single env seeded the same way, across
autoresets; Gymnasium's vector info format, seeds, autoreset modes, masks, attributes and errors (all on
``tiny`` with a short horizon)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

import gaisnet_env
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.masks import flat_mask
from gaisnet_env.vector_env import GaisNetVectorEnv

TINY = "gaisnet_env/GaisNet-tiny-v0"
H = 5  # horizon of these tests' episodes


def _native(n: int, **kw: Any) -> GaisNetVectorEnv:
    return gym.make_vec(TINY, num_envs=n, vectorization_mode="vector_entry_point", horizon=H, **kw)


def _actions(space: gym.Space, steps: int, n: int, seed: int) -> list[np.ndarray]:
    """Random actions with ops: a different action per copy and step."""
    rng = np.random.default_rng(seed)
    return [np.stack([rng.integers(0, space.nvec) for _ in range(n)]) for _ in range(steps)]


def _same_info(vec: dict[str, Any], i: int, single: dict[str, Any]) -> None:
    """Copy ``i`` of a vector info holds exactly the single env's ``info`` (and nothing more)."""
    for key, value in single.items():
        assert vec[f"_{key}"][i], key
        got = vec[key][i]
        if key == "action_mask":
            np.testing.assert_array_equal(flat_mask(got), flat_mask(value))
        else:
            np.testing.assert_array_equal(got, value, err_msg=key)
            assert np.asarray(got).dtype == np.asarray(value).dtype or np.isscalar(value), key
    extra = [k for k in vec if not k.startswith("_") and vec[f"_{k}"][i] and k not in single]
    assert not extra, extra


def test_copies_equal_single_envs_bit_for_bit_across_autoresets() -> None:
    n, steps = 3, 2 * H + 3
    envs = _native(n)
    singles = [GaisNetEnv("tiny", horizon=H) for _ in range(n)]
    try:
        assert isinstance(envs, GaisNetVectorEnv)
        obs, info = envs.reset(seed=7)
        for i, s in enumerate(singles):
            o, inf = s.reset(seed=7 + i)
            np.testing.assert_array_equal(obs[i], o)
            _same_info(info, i, inf)
        done = np.zeros(n, dtype=bool)
        ops_started = 0
        for a in _actions(envs.single_action_space, steps, n, seed=3):
            obs, rew, term, trunc, info = envs.step(a)
            for i, s in enumerate(singles):
                if done[i]:  # next-step autoreset: the reset observation, reward 0
                    o, inf = s.reset()
                    r, te, tr = 0.0, False, False
                else:
                    o, r, te, tr, inf = s.step(a[i])
                    ops_started += inf["ops_started"]
                np.testing.assert_array_equal(obs[i], o)
                assert rew[i] == r and term[i] == te and trunc[i] == tr
                _same_info(info, i, inf)
            done = term | trunc
        assert ops_started > 0  # the random actions ran real operations
        assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    finally:
        envs.close()


def test_info_layout_equals_sync_vector_env() -> None:
    """The same keys, dtypes, values and ``_key`` masks as Gymnasium's SyncVectorEnv, an autoreset step
    (keys differ between copies) included."""
    native, sync = _native(2), gym.make_vec(TINY, num_envs=2, vectorization_mode="sync", horizon=H)
    try:
        outs = [v.reset(seed=[4, 9]) for v in (native, sync)]
        acts = _actions(native.single_action_space, H + 2, 2, seed=1)
        for k, a in enumerate(acts):
            if k == H - 2:  # copy 1 ends a step early: at the autoreset step the copies' keys differ
                native.reset(seed=[None, 9], options={"reset_mask": np.array([False, True])})
                sync.reset(seed=[None, 9], options={"reset_mask": np.array([False, True])})
            outs = [v.step(a) for v in (native, sync)]
            (o1, *rest1, i1), (o2, *rest2, i2) = outs
            np.testing.assert_array_equal(o1, o2)
            for x, y in zip(rest1, rest2, strict=True):
                np.testing.assert_array_equal(x, y)
                assert x.dtype == y.dtype
            assert list(i1) == list(i2)
            for key in i1:
                v1, v2 = i1[key], i2[key]
                assert v1.dtype == v2.dtype and v1.shape == v2.shape, key
                if key == "action_mask":
                    for j in range(2):
                        assert (v1[j] is None) == (v2[j] is None)
                        if v1[j] is not None:
                            np.testing.assert_array_equal(flat_mask(v1[j]), flat_mask(v2[j]))
                else:
                    np.testing.assert_array_equal(v1, v2, err_msg=key)
    finally:
        native.close()
        sync.close()


@pytest.mark.parametrize("infos", [
    [{"a": 1, "b": 2.5, "c": np.float64(1.0), "m": (np.ones(2),), "v": np.arange(3), "d": {"x": 1.0}}] * 3,
    [{"a": 1, "b": 2.5}, {"a": 2.7, "b": 3}, {"a": True, "b": np.float32(0.5)}],  # mixed types: cast
    [{"a": 1, "v": np.arange(3)}, {"a": 2, "v": np.arange(3.0)}],  # differing dtypes
    [{"a": 1, "d": {"x": 1}}, {"d": {"y": 2.0}, "a": 3}, {"z": None}],  # differing keys and order
])
def test_stack_infos_equals_gymnasium_add_info(infos: list[dict[str, Any]]) -> None:
    from gaisnet_env.vector_info import stack_infos

    ref = gym.vector.VectorEnv.__new__(gym.vector.VectorEnv)
    ref.num_envs = len(infos)
    want: dict[str, Any] = {}
    for i, d in enumerate(infos):
        want = ref._add_info(want, d, i)
    got = stack_infos(infos)

    def same(x: dict[str, Any], y: dict[str, Any]) -> None:
        assert list(x) == list(y)
        for k in x:
            if isinstance(x[k], dict):
                same(x[k], y[k])
                continue
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, k
            if x[k].dtype != object:
                np.testing.assert_array_equal(x[k], y[k])
            else:
                assert [type(v) for v in x[k]] == [type(v) for v in y[k]]

    same(got, want)


def test_registration_spaces_and_seeds() -> None:
    spec = gym.spec(TINY)
    assert spec.vector_entry_point == "gaisnet_env.vector_env:GaisNetVectorEnv"
    envs = gym.make_vec(TINY, num_envs=2, horizon=H)  # the default mode is the vector entry point
    try:
        assert isinstance(envs, GaisNetVectorEnv) and envs.num_envs == 2
        assert envs.observation_space == batch_space(envs.single_observation_space, 2)
        assert envs.action_space == batch_space(envs.single_action_space, 2)
        assert envs.single_action_space == gym.make(TINY).action_space
        a, _ = envs.reset(seed=[5, 5])
        np.testing.assert_array_equal(a[0], a[1])
        b, _ = envs.reset(seed=5)  # copy i gets 5 + i
        np.testing.assert_array_equal(a[0], b[0])
        assert envs.np_random_seed == (5, 6)
        r1 = [envs.step(np.zeros((2, 2), dtype=np.int64))[1] for _ in range(3)]
        envs.reset(seed=5)
        r2 = [envs.step(np.zeros((2, 2), dtype=np.int64))[1] for _ in range(3)]
        np.testing.assert_array_equal(r1, r2)
        assert envs.observation_space.contains(envs.reset(seed=None)[0])
        assert gaisnet_env.GaisNetVectorEnv is GaisNetVectorEnv
    finally:
        envs.close()


def test_masks_call_get_and_set_attr() -> None:
    envs = _native(2)
    try:
        with pytest.raises(RuntimeError, match="before reset"):
            envs.step(np.zeros((2, 2), dtype=np.int64))
        _, info = envs.reset(seed=0)
        m = envs.action_masks()
        assert m.shape == (2, 8) and m.dtype == bool
        np.testing.assert_array_equal(m, flat_mask(info["action_mask"]))
        np.testing.assert_array_equal(m, np.stack(envs.call("action_masks")))
        assert envs.get_attr("n_edges") == (1, 1)
        envs.set_attr("masked_action", ["raise", "fallback"])
        assert envs.get_attr("masked_action") == ("raise", "fallback")
        envs.set_attr("masked_action", "fallback")
        assert envs.call("masked_action") == ("fallback", "fallback")
        with pytest.raises(AttributeError, match="no_such"):
            envs.call("no_such")
        with pytest.raises(ValueError, match="values"):
            envs.set_attr("masked_action", ["raise"])
    finally:
        envs.close()
    assert envs.closed


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_other_autoreset_modes_match_sync(mode: AutoresetMode) -> None:
    native = _native(2, autoreset_mode=mode)
    sync = gym.make_vec(TINY, num_envs=2, vectorization_mode="sync", horizon=H,
                        vector_kwargs={"autoreset_mode": mode})
    try:
        assert native.metadata["autoreset_mode"] == mode
        for v in (native, sync):
            v.reset(seed=2)
        for k, a in enumerate(_actions(native.single_action_space, H, 2, seed=5)):
            (o1, r1, _, t1, i1), (o2, r2, _, t2, i2) = native.step(a), sync.step(a)
            np.testing.assert_array_equal(o1, o2)
            np.testing.assert_array_equal(r1, r2)
            if k == H - 1:
                assert t1.all() and t2.all()
        if mode == AutoresetMode.SAME_STEP:
            assert i1["_final_obs"].all() and i1["final_obs"][0][-1] == 1.0 and o1[0][-1] == 0.0
            np.testing.assert_array_equal(np.stack(i1["final_obs"]), np.stack(i2["final_obs"]))
            np.testing.assert_array_equal(i1["final_info"]["reward_energy"], i2["final_info"]["reward_energy"])
        else:
            with pytest.raises(RuntimeError, match="copy 0 ended"):
                native.step(np.zeros((2, 2), dtype=np.int64))
            native.reset(options={"reset_mask": np.array([True, True])})
            native.step(np.zeros((2, 2), dtype=np.int64))
    finally:
        native.close()
        sync.close()


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="num_envs: got 0"):
        GaisNetVectorEnv(0, "tiny")
    with pytest.raises(ValueError, match="num_envs"):
        GaisNetVectorEnv(True, "tiny")
    with pytest.raises(TypeError, match="GaisNetVectorEnv.*no_such_arg"):
        GaisNetVectorEnv(2, "tiny", no_such_arg=1)
    with pytest.raises(TypeError, match="frameskip: unknown key"):
        gym.make_vec(TINY, num_envs=2, frameskip=4)
    with pytest.raises(ValueError, match="worker_system: got a SimpleNamespace object for 2 copies"):
        GaisNetVectorEnv(2, "tiny", worker_system=SimpleNamespace(start_op=None))
    with pytest.raises(ValueError, match="autoreset_mode: got 'sometimes'"):
        GaisNetVectorEnv(1, "tiny", autoreset_mode="sometimes")
    envs = _native(2)
    try:
        with pytest.raises(ValueError, match="seed: got 3 seeds"):
            envs.reset(seed=[1, 2, 3])
        with pytest.raises(ValueError, match="seed"):
            envs.reset(seed=1.5)
        with pytest.raises(ValueError, match="reset_mask"):
            envs.reset(options={"reset_mask": [True, False]})
        envs.reset(seed=0)
        with pytest.raises(ValueError, match=r"actions: expected shape \(2, 2\)"):
            envs.step(np.zeros((3, 2), dtype=np.int64))
        with pytest.raises(ValueError, match=r"actions\[1\] \(copy 1\).*out of range"):
            envs.step(np.array([[0, 0], [0, 9]]))
        assert [s.epoch for s in envs.get_attr("state")] == [0, 0]  # checked before any copy stepped
    finally:
        envs.close()


def test_sb3_vec_env_semantics_equal_dummy_vec_env() -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv

    from gaisnet_env.sb3_vec import make_sb3_vec_env

    ours = make_sb3_vec_env("tiny", n_envs=2, seed=3, horizon=H)
    dummy = DummyVecEnv([lambda: GaisNetEnv("tiny", horizon=H) for _ in range(2)])
    dummy.seed(3)
    try:
        np.testing.assert_array_equal(ours.reset(), dummy.reset())
        for k, a in enumerate(_actions(ours.action_space, H + 2, 2, seed=8)):
            (o1, r1, d1, i1), (o2, r2, d2, i2) = ours.step(a), dummy.step(a)
            np.testing.assert_array_equal(o1, o2)
            np.testing.assert_array_equal(r1, r2)
            np.testing.assert_array_equal(d1, d2)
            assert r1.dtype == r2.dtype == np.float32
            for x, y in zip(i1, i2, strict=True):
                assert x.keys() == y.keys() and x["reward_energy"] == y["reward_energy"]
            if k == H - 1:
                assert d1.all() and all(x["TimeLimit.truncated"] for x in i1)
                np.testing.assert_array_equal(i1[0]["terminal_observation"], i2[0]["terminal_observation"])
                assert i1[0]["terminal_observation"][-1] == 1.0 and o1[0][-1] == 0.0
        assert ours.action_masks().shape == (2, 8)
        np.testing.assert_array_equal(np.stack(ours.env_method("action_masks")), ours.action_masks())
        assert ours.get_attr("n_edges", indices=[1]) == [1] and ours.env_is_wrapped(gym.Wrapper) == [False, False]
    finally:
        ours.close()
        dummy.close()


def test_sb3_ppo_and_maskable_ppo_learn_on_it() -> None:
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import PPO

    from gaisnet_env.sb3_vec import make_sb3_vec_env

    venv = make_sb3_vec_env("tiny", n_envs=2, seed=0, horizon=H)
    try:
        PPO("MlpPolicy", venv, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu").learn(64)
        MaskablePPO("MlpPolicy", venv, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu").learn(32)
    finally:
        venv.close()


def test_bench_vector_runs_on_tiny(monkeypatch, tmp_path) -> None:
    import importlib
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    sys.modules.pop("bench_vector", None)
    res = importlib.import_module("bench_vector").main(
        ["--scenario", "tiny", "--sizes", "1", "2", "--block", "4", "--rounds", "2", "--one-by-one", "--episodes", "1",
         "--out", str(tmp_path)])
    assert set(res["rows"]) == {"single gym.make", "single GaisNetEnv", "native N=1", "native N=2",
                                "native N=1 one by one", "native N=2 one by one"}
    assert all(r["us_per_env_step"] > 0 for r in res["rows"].values())
    assert set(res["episode_means_us"]) == {"single GaisNetEnv", "native N=2", "native N=2 one by one"}
    assert res["copy_draws_us"] > 0
    md = (tmp_path / "bench_vector.md").read_text()
    assert "| native N=2 |" in md and "Whole no-op episodes" in md and "its own random draws" in md
