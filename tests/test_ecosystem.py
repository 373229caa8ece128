"""What mainstream RL clients expect of the env: Python's errors, Gymnasium's mask format, PettingZoo's AEC API."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import gaisnet_env
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.masks import flat_mask, gym_mask
from gaisnet_env.scenario import ScenarioArgumentError, ScenarioError, load_scenario
from gaisnet_env.wrappers import FlattenMultiDiscreteAction


@pytest.mark.parametrize("build", [
    lambda: GaisNetEnv("tiny", frameskip=4),
    lambda: gym.make(gaisnet_env.env_id("tiny"), frameskip=4),
    lambda: load_scenario("tiny", frameskip=4),
    lambda: GaisNetEnv("tiny", **{"frameskip.n": 4}),
])
def test_unknown_keyword_argument_is_a_type_error(build) -> None:
    with pytest.raises(TypeError, match=r"frameskip: unknown key; .*unexpected keyword argument 'frameskip.*horizon"):
        build()
    with pytest.raises(ScenarioError):  # and still a ScenarioError, for code that catches that
        build()


def test_unknown_env_keyword_names_the_env_arguments() -> None:
    with pytest.raises(ScenarioArgumentError, match=r"GaisNetEnv\(\) got .*'rendermode'.*render_mode, cache_dir"):
        GaisNetEnv("tiny", rendermode="ansi")


def test_unknown_key_inside_a_scenario_stays_a_scenario_error() -> None:
    for bad in ({"reward": {"w_latt": 1.0}}, {"reward.w_latt": 1.0}):
        with pytest.raises(ScenarioError, match=r"reward\.w_latt: unknown key") as exc:
            GaisNetEnv("tiny", **bad)
        assert not isinstance(exc.value, TypeError)
    with pytest.raises(ScenarioError, match=r"frameskip: unknown key") as exc:  # inside a scenario mapping
        load_scenario({"frameskip": 4})
    assert not isinstance(exc.value, TypeError)


# ----------------------------------------------------------------------------------------
# the action mask in Gymnasium's format

EDGE0_DOWN = {"topology": {"n_edges": 2}, "horizon": 12,
              "faults": {"edges_down": [{"edge": 0, "start_epoch": 0, "duration_epochs": 6}]}}


def _check_sampled(action: np.ndarray, flat: np.ndarray) -> None:
    m = flat.reshape(-1, 8)
    for e, (r, o) in enumerate(np.asarray(action).reshape(-1, 2)):
        assert m[e, r] and m[e, 3 + o], (action, m.astype(int))


def test_action_space_sample_takes_info_action_mask() -> None:
    env = gym.make(gaisnet_env.env_id("tiny"), **EDGE0_DOWN)
    env.action_space.seed(0)
    obs, info = env.reset(seed=0)
    mask = info["action_mask"]
    assert isinstance(mask, tuple) and len(mask) == 4 and all(m.dtype == np.int8 for m in mask)
    assert [m.shape for m in mask] == [(3,), (5,), (3,), (5,)]
    assert mask[0].tolist() == [1, 0, 1] and mask[1].tolist() == [1, 0, 0, 0, 0]  # edge 0 down
    seen = set()
    for _ in range(12):
        flat = env.unwrapped.action_masks()  # sb3-contrib's flat bool layout, the same feasibility
        assert flat.dtype == bool and flat.shape == (16,)
        np.testing.assert_array_equal(flat_mask(info["action_mask"]), flat)
        action = env.action_space.sample(mask=info["action_mask"])
        _check_sampled(action, flat)
        if env.unwrapped.state.epoch < 6:  # edge 0 is down for epochs 0-5
            seen.add(int(action[0]))
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["actions_masked"] == 0
    assert seen == {0, 2}  # edge 0's feasible routes, never its edge server while down
    env.close()


def test_flattened_action_space_sample_takes_info_action_mask() -> None:
    env = FlattenMultiDiscreteAction(GaisNetEnv("tiny", **EDGE0_DOWN))
    env.action_space.seed(1)
    _, info = env.reset(seed=0)
    for _ in range(6):
        mask = info["action_mask"]
        assert mask.dtype == np.int8 and mask.shape == (env.action_space.n,)
        np.testing.assert_array_equal(mask.astype(bool), env.action_masks())
        a = env.action_space.sample(mask=mask)
        _check_sampled(env.action(a), env.unwrapped.action_masks())
        _, _, _, _, info = env.step(a)
        assert info["actions_masked"] == 0


def test_mask_conversions_round_trip() -> None:
    flat = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    g = gym_mask(flat, [3, 5, 3, 5])
    assert [m.tolist() for m in g] == [[1, 0, 1], [1, 0, 0, 1, 0], [0, 1, 1], [0, 0, 0, 0, 1]]
    assert not g[0].flags.writeable
    np.testing.assert_array_equal(flat_mask(g), flat)
    batch = np.empty(2, dtype=object)
    batch[0], batch[1] = g, g
    assert flat_mask(batch).shape == (2, 16)
    with pytest.raises(ValueError, match=r"gym_mask: flat mask has 16 entries; nvec \[3, 5\] needs 8"):
        gym_mask(flat, [3, 5])


def test_pettingzoo_aec_view_passes_api_test_with_masks() -> None:
    pytest.importorskip("pettingzoo")
    from pettingzoo.test import api_test
    from pettingzoo.utils import parallel_to_aec

    from gaisnet_env.multiagent import parallel_env

    aec = parallel_to_aec(parallel_env("tiny", **EDGE0_DOWN))
    api_test(aec, num_cycles=30)  # samples with action_space(agent).sample(info["action_mask"])
    aec.reset(seed=0)
    for agent in aec.agent_iter():
        _, _, term, trunc, info = aec.last()
        action = None if term or trunc else aec.action_space(agent).sample(mask=info["action_mask"])
        if action is not None and agent == "edge_0" and aec.unwrapped.env.state.epoch < 6:
            assert action[0] != 1 and action[1] == 0  # edge 0 is down: no edge route, no op
        aec.step(action)
    aec.close()


# ----------------------------------------------------------------------------------------
# env metrics in SB3 / rl-zoo3 logs

TIER_ENERGY = ("energy_end_j", "energy_edge_j", "energy_cloud_j", "energy_radio_j")


def test_env_metrics_callback_logs_per_tier_energy(tmp_path) -> None:
    import csv

    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure

    from gaisnet_env.callbacks import EnvMetricsCallback

    model = PPO("MlpPolicy", GaisNetEnv("tiny"), n_steps=20, batch_size=20, n_epochs=1, seed=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(20, callback=EnvMetricsCallback())
    rows = list(csv.DictReader((tmp_path / "progress.csv").open()))
    row = rows[-1]
    parts = [float(row[f"env/{k}"]) for k in TIER_ENERGY]
    assert all(p >= 0 for p in parts) and parts[1] > 0  # the edge servers always draw power
    assert sum(parts) == pytest.approx(float(row["env/energy_j"]), rel=1e-4)
    assert float(row["env/route_share_end"]) + float(row["env/route_share_edge"]) + float(
        row["env/route_share_cloud"]) == pytest.approx(1.0, abs=1e-4)


def test_shipped_hyperparameters_name_the_env_metrics_callback() -> None:
    import importlib

    import yaml
    from gaisnet_env.agents.learned import HYPERPARAMS_DIR

    from gaisnet_env.callbacks import EnvMetricsCallback

    assert gaisnet_env.EnvMetricsCallback is EnvMetricsCallback  # exported at the top level too
    files = sorted(HYPERPARAMS_DIR.glob("*.yml"))
    assert {f.stem for f in files} >= {"ppo", "a2c", "dqn", "ppo_mask"}
    for f in files:
        for env_id, entry in yaml.safe_load(f.read_text()).items():
            module, _, name = entry["callback"].rpartition(".")  # how rl-zoo3 resolves it
            assert getattr(importlib.import_module(module), name) is EnvMetricsCallback, (f.name, env_id)
    text = (HYPERPARAMS_DIR / "ppo_mask.yml").read_text()  # stock rl-zoo3 has no ppo_mask: say what works
    assert "python -m gaisnet_env.zoo --algo ppo_mask" in text
    assert "train.py train --scenario metro --algo ppo_mask" in text


def test_rl_zoo3_trains_ppo_mask_through_the_launcher(tmp_path, monkeypatch) -> None:
    pytest.importorskip("rl_zoo3")
    from gaisnet_env.agents.learned import HYPERPARAMS_DIR

    from gaisnet_env import zoo

    monkeypatch.setattr("sys.argv", ["zoo"])
    zoo.main(["--algo", "ppo_mask", "--env", gaisnet_env.env_id("tiny"), "--gym-packages", "gaisnet_env",
              "-f", str(tmp_path), "--conf-file", str(HYPERPARAMS_DIR / "ppo_mask.yml"), "-n", "40",
              "--eval-freq", "-1", "--seed", "0", "-tb", str(tmp_path / "tb")])
    assert list(tmp_path.glob("ppo_mask/gaisnet_env-GaisNet-tiny-v0_1/*.zip"))
    events = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert events and any(b"env/energy_edge_j" in e.read_bytes() for e in events)
