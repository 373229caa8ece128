"""Ray RLlib: the registered env trains with PPO (new API stack) on a local Ray instance (``tiny``)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray.rllib")

import ray  # noqa: E402

from gaisnet_env.rllib import make_env, ppo_config, register_rllib_env  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_env_creator_reads_env_config() -> None:
    env = make_env({"scenario": "tiny", "horizon": 5, "reward_weights": {"w_lat": 2.0}})
    assert env.unwrapped.scenario.horizon == 5 and env.weights["w_lat"] == 2.0
    env.close()
    ma = make_env({"scenario": "tiny", "multiagent": True, "reward_mode": "per_edge"})
    assert sorted(ma.get_agent_ids()) == ["edge_0"]
    ma.close()


@pytest.mark.slow
def test_ppo_trains_a_few_iterations_on_local_ray() -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert register_rllib_env("gaisnet-test") == "gaisnet-test"
        # one remote env runner: the env is built inside a Ray worker process
        config = ppo_config(
            "tiny", env_name="gaisnet-test", num_env_runners=1, train_batch_size=128, minibatch_size=64, num_epochs=2
        )
        # the remote runner builds its env first (torch import, pre-trained weights): on a loaded machine
        # that takes longer than RLlib's default 60 s, and the iteration would then return no samples
        config = config.env_runners(sample_timeout_s=900.0)
        algo = config.build_algo()
        steps = []
        for _ in range(3):
            result = algo.train()
            steps.append(result["env_runners"]["num_env_steps_sampled_lifetime"])
        assert steps[0] >= 128 and steps[-1] > steps[0]
        assert math.isfinite(result["env_runners"]["episode_return_mean"])
        learner = result["learners"]["default_policy"]
        assert math.isfinite(learner["total_loss"])
        # the trained module acts on a fresh env
        import numpy as np
        import torch

        module = algo.get_module()
        env = make_env({"scenario": "tiny"})
        obs, _ = env.reset(seed=0)
        out = module.forward_inference({"obs": torch.as_tensor(obs[None])})
        assert np.all(np.isfinite(out["action_dist_inputs"].detach().numpy()))
        env.close()
        algo.stop()
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_rllib_example_runs_multiagent(monkeypatch) -> None:
    """The README's RLlib example (it starts and stops its own Ray instance), on the multi-agent view."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import rllib_ppo

    # one remote env runner: the PettingZoo view is built inside a Ray actor (where a missing package bit)
    result = rllib_ppo.main(
        ["--iterations", "1", "--env-runners", "1", "--train-batch", "64", "--multiagent", "--reward-mode", "per_edge"]
    )
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 64
    assert "edge_policy" in result["learners"]
    assert not ray.is_initialized()
    sys.modules.pop("rllib_ppo", None)


@pytest.mark.slow
def test_ppo_config_logs_env_metrics_single_and_multi_agent() -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for multiagent, keys in ((False, ("env/energy_j", "env/energy_edge_j", "env/energy_cloud_j", "env/accuracy")),
                                 (True, ("env/edge_reward", "env/system_reward"))):
            config = ppo_config("tiny", num_env_runners=0, train_batch_size=40, minibatch_size=20, num_epochs=1,
                                multiagent=multiagent)
            algo = config.build_algo()
            runners = algo.train()["env_runners"]  # tiny's episodes are 20 steps: two end in 40
            algo.stop()
            for k in keys:
                assert math.isfinite(runners[k]), (multiagent, k)
            if not multiagent:
                parts = sum(runners[f"env/energy_{t}_j"] for t in ("end", "edge", "cloud", "radio"))
                assert parts == pytest.approx(runners["env/energy_j"], rel=1e-6)
        algo = ppo_config("tiny", train_batch_size=40, minibatch_size=20, num_epochs=1, env_metrics=False).build_algo()
        assert "env/energy_j" not in algo.train()["env_runners"]
        algo.stop()
    finally:
        ray.shutdown()


def test_missing_pettingzoo_is_named_by_the_env_creator(monkeypatch) -> None:
    for mod in ("pettingzoo", "gaisnet_env.multiagent", "ray.rllib.env.wrappers.pettingzoo_env"):
        monkeypatch.setitem(sys.modules, mod, None)  # as if pettingzoo were not installed
    with pytest.raises(ModuleNotFoundError, match=r"multiagent=True needs pettingzoo .*gaisnet-env\[rllib\]"):
        make_env({"scenario": "tiny", "multiagent": True})


def test_rllib_extra_installs_pettingzoo() -> None:
    import tomllib

    extras = tomllib.loads((EXAMPLES.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("pettingzoo") for req in extras["rllib"]), extras["rllib"]


@pytest.mark.slow
def test_error_inside_a_remote_env_runner_reaches_the_user_as_itself() -> None:
    from ray.tune.registry import register_env

    def broken_creator(env_config):
        import gaisnet_missing_dependency  # noqa: F401  # fails inside the Ray actor

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        register_env("gaisnet-broken", broken_creator)
        config = ppo_config("tiny", num_env_runners=1, train_batch_size=64).environment("gaisnet-broken")
        with pytest.raises(ModuleNotFoundError, match="gaisnet_missing_dependency"):
            config.build_algo()
    finally:
        ray.shutdown()
