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

    result = rllib_ppo.main(
        ["--iterations", "1", "--env-runners", "0", "--train-batch", "64", "--multiagent", "--reward-mode", "per_edge"]
    )
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 64
    assert "edge_policy" in result["learners"]
    assert not ray.is_initialized()
    sys.modules.pop("rllib_ppo", None)
