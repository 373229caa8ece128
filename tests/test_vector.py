"""Vector envs (Gymnasium sync/async and the native one, SB3 Dummy/Subproc): autoreset, per-env seeding, info
aggregation; and the on-disk weight cache when several processes start at once (all on ``tiny``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

import gaisnet_env
from gaisnet_env.masks import flat_mask
from gaisnet_env.wrappers import RecordMetrics

TINY = "gaisnet_env/GaisNet-tiny-v0"
N = 2


@pytest.fixture(scope="module")
def horizon() -> int:
    return int(gaisnet_env.load_scenario("tiny").horizon)


def _fixed_actions(envs: gym.vector.VectorEnv, steps: int, seed: int = 0) -> list[np.ndarray]:
    """The same seeded single-env action stream for every sub-env, batched."""
    space = envs.single_action_space
    space.seed(seed)
    return [np.stack([a] * envs.num_envs) for a in (space.sample() for _ in range(steps))]


def _rollout(envs: gym.vector.VectorEnv, seed: int | list[int], steps: int) -> dict[str, np.ndarray]:
    obs, _ = envs.reset(seed=seed)
    out: dict[str, list] = {"obs": [obs], "rew": [], "term": [], "trunc": [], "requests": []}
    for a in _fixed_actions(envs, steps):
        obs, r, te, tr, info = envs.step(a)
        out["obs"].append(obs)
        out["rew"].append(r)
        out["term"].append(te)
        out["trunc"].append(tr)
        out["requests"].append(info.get("requests", np.zeros(envs.num_envs)))
    return {k: np.asarray(v) for k, v in out.items()}


def _check_vector(envs: gym.vector.VectorEnv, horizon: int) -> None:
    """Seeding, autoreset (next-step mode) and info aggregation of a 2-env vector env."""
    E = envs.get_attr("n_edges")[0] if hasattr(envs, "get_attr") else 1
    # different seeds -> different episodes
    a = _rollout(envs, seed=[11, 12], steps=horizon + 1)
    assert not np.array_equal(a["requests"][:horizon, 0], a["requests"][:horizon, 1])
    # same seeds -> identical episodes (per env and across runs)
    b = _rollout(envs, seed=[11, 11], steps=horizon + 1)
    np.testing.assert_array_equal(b["obs"][:, 0], b["obs"][:, 1])
    np.testing.assert_array_equal(b["rew"][:, 0], b["rew"][:, 1])
    # a repeated run replays; an int seed seeds env i with seed + i
    c = _rollout(envs, seed=11, steps=5)
    for k in ("obs", "rew", "requests"):
        np.testing.assert_array_equal(a[k][: len(c[k])], c[k])
    # truncation at the horizon, then autoreset on the next step (reward 0, progress feature 0)
    assert a["trunc"][horizon - 1].all() and not a["trunc"][: horizon - 1].any()
    assert not a["term"].any()
    assert np.all(a["obs"][horizon][:, -1] == 1.0)  # episode_progress of the last observation
    assert np.all(a["obs"][horizon + 1][:, -1] == 0.0) and np.all(a["rew"][horizon] == 0.0)
    # the reset observation matches a fresh single env stepped with the same actions
    single = gym.make(TINY)
    single.reset(seed=11)
    for act in _fixed_actions(envs, horizon):
        single.step(act[0])
    obs_reset, _ = single.reset()
    np.testing.assert_array_equal(a["obs"][horizon + 1][0], obs_reset)
    single.close()
    # info aggregation: scalars -> (N,), arrays -> (N, ...), masks "_key"
    envs.reset(seed=0)
    _, _, _, _, info = envs.step(envs.action_space.sample())
    assert info["accuracy"].shape == (N,) and info["_accuracy"].all()
    assert info["edge_reward"].shape == (N, E)
    # the action mask: each env's Gymnasium tuple in an object array; flat_mask stacks it (N, 8E)
    assert info["action_mask"].shape == (N,) and len(info["action_mask"][0]) == 2 * E
    batch = flat_mask(info["action_mask"])
    assert batch.shape == (N, 8 * E) and batch.dtype == bool
    np.testing.assert_array_equal(batch, np.stack(envs.call("action_masks")))
    assert info["route_counts"].shape == (N, 3)


@pytest.mark.parametrize("mode", ["sync", "async", "vector_entry_point"])
def test_make_vec(mode: str, horizon: int) -> None:
    envs = gym.make_vec(TINY, num_envs=N, vectorization_mode=mode)
    try:
        assert envs.single_action_space == gym.make(TINY).action_space
        _check_vector(envs, horizon)
    finally:
        envs.close()


@pytest.mark.parametrize("cls", [SyncVectorEnv, AsyncVectorEnv])
def test_vector_classes_with_wrappers_aggregate_episode_infos(cls: type, horizon: int) -> None:
    fns = [lambda: gym.wrappers.RecordEpisodeStatistics(RecordMetrics(gym.make(TINY))) for _ in range(N)]
    envs = cls(fns)
    try:
        _check_vector(envs, horizon)
        envs.reset(seed=[1, 2])
        for _ in range(horizon):
            _, _, _, trunc, info = envs.step(envs.action_space.sample())
        assert trunc.all()
        m = info["episode_metrics"]
        assert info["_episode_metrics"].all() and m["length"].tolist() == [horizon, horizon]
        assert m["energy_j_total"].shape == (N,) and np.all(m["energy_j_total"] > 0)
        np.testing.assert_allclose(info["episode"]["r"], m["return"], rtol=1e-5)
    finally:
        envs.close()


@pytest.mark.parametrize("kind", ["dummy", "subproc"])
def test_sb3_vec_envs(kind: str, horizon: int) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    fns = [lambda: RecordMetrics(gym.make(TINY)) for _ in range(N)]
    # fork: the children inherit the imports (the separate-process cache is tested below)
    venv = DummyVecEnv(fns) if kind == "dummy" else SubprocVecEnv(fns, start_method="fork")

    def run(seed: int) -> tuple[np.ndarray, list, np.ndarray]:
        venv.seed(seed)
        obs = [venv.reset()]
        rews, dones_infos = [], []
        venv.action_space.seed(1)
        for a in [venv.action_space.sample() for _ in range(horizon)]:
            o, r, d, infos = venv.step(np.stack([a] * N))
            obs.append(o)
            rews.append(r)
            dones_infos.append((d, infos))
        return np.asarray(obs), dones_infos, np.asarray(rews)

    try:
        obs, dones_infos, rews = run(5)
        # venv.seed(s) seeds env i with s + i: different episodes
        assert not np.array_equal(rews[:, 0], rews[:, 1])
        obs2, _, rews2 = run(5)
        np.testing.assert_array_equal(obs, obs2)
        np.testing.assert_array_equal(rews, rews2)
        # autoreset: at the horizon SB3 returns the reset observation and keeps the last one in info
        done, infos = dones_infos[horizon - 1]
        assert done.all() and not any(d.any() for d, _ in dones_infos[: horizon - 1])
        for i in range(N):
            assert infos[i]["TimeLimit.truncated"] is True
            assert infos[i]["terminal_observation"][-1] == 1.0 and obs[horizon][i][-1] == 0.0
            assert infos[i]["episode_metrics"]["length"] == horizon
        assert np.asarray(venv.env_method("action_masks")).shape == (N, 8)
    finally:
        venv.close()


_CACHE_PROBE = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import gymnasium as gym
        import gaisnet_env
        env = gym.make("gaisnet_env/GaisNet-tiny-v0")
        obs, info = env.reset(seed=0)
    print(json.dumps({"obs": obs.tolist(), "warnings": [str(w.message) for w in caught]}))
    """
)


@pytest.mark.slow
def test_weight_cache_is_safe_when_processes_start_together(tmp_path) -> None:
    """Three processes build the env at once on an empty cache directory."""
    env = {**os.environ, "GAISNET_CACHE_DIR": str(tmp_path / "cache")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CACHE_PROBE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    for r in results:
        assert not [w for w in r["warnings"] if "cache" in w.lower()], r["warnings"]
        assert r["obs"] == results[0]["obs"]
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len([f for f in files if f.endswith(".pt")]) == 1
    assert not [f for f in files if f.endswith(".tmp")]
