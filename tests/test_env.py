"""The Gymnasium interface: checkers, determinism, physical bounds, errors, registration."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import gymnasium as gym
import numpy as np
import pytest

import gaisnet_env
from gaisnet_env import profiles
from gaisnet_env.env import EDGE_FEATURES, GLOBAL_FEATURES, GaisNetEnv
from gaisnet_env.masks import info_arrays
from gaisnet_env.scenario import ScenarioError

ALL = list(gaisnet_env.BUILTIN_SCENARIOS)


@pytest.fixture(scope="module")
def tiny() -> GaisNetEnv:
    return GaisNetEnv("tiny")


@pytest.mark.parametrize("name", ALL)
def test_gymnasium_and_sb3_checkers_pass_without_warnings(name: str) -> None:
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    overrides = {"horizon": 5} if name == "city" else {}
    env = GaisNetEnv(name, **overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=True)
    env.close()


def test_registered_ids_make_every_builtin() -> None:
    env = gym.make("gaisnet_env/GaisNet-v0")
    assert env.unwrapped.scenario.name == "metro"
    env.close()
    for name in ALL:
        spec = gym.spec(gaisnet_env.env_id(name))
        assert spec.kwargs["scenario"] == name


def test_make_with_scenario_file_and_overrides(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nhorizon: 7\ntopology: {n_edges: 2}\nworkers: {pretrain_epochs: 30}\n")
    env = gym.make("gaisnet_env/GaisNet-v0", scenario=str(path), reward={"w_lat": 2.0})
    sc = env.unwrapped.scenario
    assert (sc.name, sc.horizon, sc.topology.n_edges, sc.reward.w_lat) == ("mine", 7, 2, 2.0)
    assert env.action_space.shape == (4,)
    env.close()


def _rollout(env: GaisNetEnv, seed: int, n: int) -> list:
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    out = [obs.tobytes()]
    for _ in range(n):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out.append((obs.tobytes(), r, {k: v.tolist() for k, v in info_arrays(info).items()}))
        if term or trunc:
            break
    return out


def test_same_seed_same_episode_in_one_process(tiny: GaisNetEnv) -> None:
    a = _rollout(tiny, 3, 15)
    b = _rollout(tiny, 3, 15)
    assert a == b
    c = _rollout(tiny, 4, 15)
    assert a != c


def test_same_seed_same_episode_across_processes(tiny: GaisNetEnv) -> None:
    code = textwrap.dedent(
        """
        import hashlib, json, numpy as np
        from gaisnet_env.env import GaisNetEnv
        from gaisnet_env.masks import info_arrays
        env = GaisNetEnv("tiny")
        env.action_space.seed(11)
        obs, info = env.reset(seed=11)
        h = hashlib.sha256(obs.tobytes())
        for _ in range(15):
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            h.update(obs.tobytes()); h.update(np.float64(r).tobytes())
            h.update(json.dumps({k: v.tolist() for k, v in info_arrays(info).items()},
                                sort_keys=True).encode())
        print(h.hexdigest())
        """
    )
    outs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    ]
    assert outs[0] == outs[1] and len(outs[0].strip()) == 64


@pytest.mark.parametrize("name", ALL)
def test_random_episode_metrics_finite_and_physical(name: str) -> None:
    overrides = {"horizon": 6} if name == "city" else {"horizon": 40}
    env = GaisNetEnv(name, **overrides)
    env.action_space.seed(0)
    obs, info = env.reset(seed=0)
    sc = env.scenario
    edge = profiles.NODES[sc.hardware.edge]
    min_rtt = float(np.min(env.access_rtt_s))
    steps = 0
    while True:
        obs, reward, term, trunc, info = env.step(env.action_space.sample())
        steps += 1
        assert env.observation_space.contains(obs)
        assert np.isfinite(reward)
        for k, v in info_arrays(info).items():
            assert np.all(np.isfinite(v.astype(np.float64))), k
        for k in ("accuracy", "accuracy_end", "accuracy_edge", "accuracy_cloud", "sla_violation_share"):
            assert 0.0 <= info[k] <= 1.0, k
        if info["requests"] > 0 and info["route_counts"][1:].sum() == env.n_edges:
            assert info["latency_mean_s"] >= min_rtt
        assert info["latency_p95_s"] >= info["latency_p50_s"] - 1e-12
        # every edge that is up draws at least its idle power for the epoch
        assert info["energy_j"] >= info["energy_edge_j"] >= 0.0
        if not sc.faults.edges_down:
            assert info["energy_edge_j"] >= env.n_edges * edge.idle_w * edge.pue * sc.epoch_s - 1e-6
        assert info["carbon_g"] >= 0 and info["bytes_up"] >= 0 and info["bytes_down"] >= 0
        if term or trunc:
            break
    assert trunc and steps == sc.horizon
    env.close()


def test_observation_layout_matches_documentation(tiny: GaisNetEnv) -> None:
    assert tiny.observation_space.shape == (tiny.n_edges * len(EDGE_FEATURES) + len(GLOBAL_FEATURES),)


@pytest.mark.parametrize(
    "action, match",
    [
        (np.array([0, 9]), r"action\[1\] \(edge 0 operation\) = 9 is out of range; allowed 0..4"),
        (np.array([3, 0]), r"action\[0\] \(edge 0 route\) = 3 is out of range; allowed 0..2"),
        (np.array([-1, 0]), r"action\[0\].*out of range"),
        (np.array([0, 0, 0]), r"expected shape \(2,\)"),
        (np.array([0.5, 1.0]), r"expected integers"),
        (np.array([np.nan, 1.0]), r"expected integers"),
        ("go", r"expected integers"),
    ],
)
def test_bad_actions_raise_with_the_offending_index(tiny: GaisNetEnv, action, match) -> None:
    tiny.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        tiny.step(action)


def test_masked_action_policy_raise_and_fallback() -> None:
    # edge 0 is down for the first 5 epochs: the edge route and every knowledge operation are masked
    down = {"faults": {"edges_down": [{"edge": 0, "start_epoch": 0, "duration_epochs": 5}]}}
    env = GaisNetEnv("tiny", masked_action="raise", **down)
    env.reset(seed=0)
    mask = env.action_masks()
    assert not mask[1] and not mask[3 + 2]
    with pytest.raises(ValueError, match=r"action\[0\] = \(route edge, op finetune\) is masked"):
        env.step(np.array([1, 2]))
    env2 = GaisNetEnv("tiny", **down)
    env2.reset(seed=0)
    _, _, _, _, info = env2.step(np.array([1, 2]))
    assert info["actions_masked"] == 2  # route fell back, op dropped
    assert info["route_counts"][1] == 0 and info["op_counts"][2] == 0 and info["ops_started"] == 0


def test_action_mask_shape_and_at_least_one_choice(tiny: GaisNetEnv) -> None:
    tiny.reset(seed=0)
    m = tiny.action_masks()
    assert m.dtype == bool and m.shape == (tiny.n_edges * 8,)
    m = m.reshape(tiny.n_edges, 8)
    assert m[:, :3].any(axis=1).all() and m[:, 3:].any(axis=1).all()


def test_step_before_reset_and_bad_constructor_args() -> None:
    env = GaisNetEnv("tiny")
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.array([0, 0]))
    with pytest.raises(ValueError, match="render_mode"):
        GaisNetEnv("tiny", render_mode="human")
    with pytest.raises(ValueError, match="masked_action"):
        GaisNetEnv("tiny", masked_action="ignore")
    with pytest.raises(ScenarioError, match=r"reward.w_lat: got -1"):
        GaisNetEnv("tiny", reward={"w_lat": -1})


def test_renders(tiny: GaisNetEnv) -> None:
    env = GaisNetEnv("tiny", render_mode="ansi")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    text = env.render()
    assert "epoch 1/" in text and "acc end/edge/cloud" in text
    env = GaisNetEnv("tiny", render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8 and img.std() > 0
    env.close()


def test_snapshot_restore_replays_bit_for_bit() -> None:
    env = GaisNetEnv("tiny", horizon=1000)
    env.reset(seed=5)
    rng = np.random.default_rng(1)
    for _ in range(10):
        env.step(rng.integers([3, 5]))
    snap = env.snapshot()
    actions = [rng.integers([3, 5]) for _ in range(200)]

    def play() -> list:
        out = []
        for a in actions:
            obs, r, _, _, info = env.step(a)
            out.append((obs.tobytes(), r, json.dumps({k: v.tolist() for k, v in info_arrays(info).items()})))
        return out

    first = play()
    env.restore(snap)
    assert play() == first


def test_default_config_is_metro() -> None:
    cfg = GaisNetEnv.default_config()
    assert cfg["name"] == "metro" and cfg["topology"]["n_edges"] == 4


def test_import_inside_project_with_its_own_models_and_agents(tmp_path) -> None:
    for pkg in ("models", "agents", "scenarios"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text(f"WHO = 'user {pkg}'\n")
    code = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, '.')
        import models, agents
        import gymnasium as gym
        import gaisnet_env
        env = gym.make("gaisnet_env/GaisNet-tiny-v0")
        env.reset(seed=0)
        env.step(env.action_space.sample())
        import gaisnet_env.models, gaisnet_env.agents
        assert models.WHO == 'user models' and agents.WHO == 'user agents'
        assert 'gaisnet_env' in gaisnet_env.models.__name__
        print("ok")
        """
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("ok")
