"""PettingZoo multi-agent view: API and seed tests, shared and per-edge rewards (on ``tiny``
and a 2-edge variant of it)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402
from pettingzoo.utils import parallel_to_aec  # noqa: E402

from gaisnet_env.env import EDGE_FEATURES, GLOBAL_FEATURES  # noqa: E402
from gaisnet_env.multiagent import GaisNetParallelEnv, parallel_env  # noqa: E402

TWO_EDGES = {"topology": {"n_edges": 2}}


@pytest.mark.parametrize("reward_mode", ["shared", "per_edge"])
def test_parallel_api_test(reward_mode: str) -> None:
    env = parallel_env("tiny", reward_mode=reward_mode, **TWO_EDGES)
    parallel_api_test(env, num_cycles=60)
    env.close()


def test_parallel_seed_test_and_full_episode_determinism() -> None:
    parallel_seed_test(lambda: parallel_env("tiny"), num_cycles=25)
    # pettingzoo's seed test stops after one step (it tests `any(dict)`); replay whole episodes too

    def episode(seed: int) -> list:
        env = parallel_env("tiny", reward_mode="per_edge", **TWO_EDGES)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        while env.agents:
            out.append(env.step({a: env.action_space(a).sample() for a in env.agents})[:2])
        env.close()
        return out

    first, again, other = episode(7), episode(7), episode(8)
    assert len(first) == len(again) and repr(first) == repr(again)
    assert repr(first) != repr(other)


def test_observations_actions_and_rewards_match_the_single_agent_env() -> None:
    env = GaisNetParallelEnv("tiny", reward_mode="per_edge", **TWO_EDGES)
    obs, infos = env.reset(seed=4)
    assert env.agents == env.possible_agents == ["edge_0", "edge_1"]
    full = env.state()
    nf = len(EDGE_FEATURES)
    assert env.state_space.contains(full)
    for i, a in enumerate(env.agents):
        assert obs[a].shape == (nf + len(GLOBAL_FEATURES),) and obs[a].dtype == np.float32
        np.testing.assert_array_equal(obs[a][:nf], full[i * nf : (i + 1) * nf])
        np.testing.assert_array_equal(obs[a][nf:], full[2 * nf :])
        routes, ops = infos[a]["action_mask"]  # Gymnasium's MultiDiscrete([3, 5]) mask
        assert routes.shape == (3,) and ops.shape == (5,) and routes.dtype == ops.dtype == np.int8
        assert env.action_space(a).contains(env.action_space(a).sample(mask=infos[a]["action_mask"]))
    # the joint action is the agents' actions in order; per-edge rewards are the env's edge_reward
    actions = {"edge_0": np.array([1, 0]), "edge_1": np.array([2, 2])}
    obs, rew, term, trunc, infos = env.step(actions)
    single = env.env.__class__("tiny", **TWO_EDGES)
    single.reset(seed=4)
    sobs, sr, _, _, sinfo = single.step(np.array([1, 0, 2, 2]))
    np.testing.assert_array_equal(np.concatenate([obs["edge_0"][:nf], obs["edge_1"][:nf], obs["edge_0"][nf:]]), sobs)
    assert [rew[a] for a in env.agents] == pytest.approx(sinfo["edge_reward"].tolist())
    assert infos["edge_0"]["system_reward"] == pytest.approx(sr)
    assert not any(term.values()) and not any(trunc.values())
    single.close()
    env.close()


def test_shared_reward_and_episode_end() -> None:
    env = parallel_env("tiny", reward_mode="shared", **TWO_EDGES)
    env.reset(seed=0)
    horizon = env.env.scenario.horizon
    for t in range(horizon):
        obs, rew, term, trunc, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
        assert rew["edge_0"] == rew["edge_1"] == pytest.approx(infos["edge_0"]["system_reward"])
        assert all(trunc.values()) == (t == horizon - 1)
    assert env.agents == []
    with pytest.raises(RuntimeError, match="no live agents"):
        env.step({})
    env.close()


def test_bad_actions_and_modes_raise() -> None:
    with pytest.raises(ValueError, match="reward_mode"):
        GaisNetParallelEnv("tiny", reward_mode="selfish")
    env = parallel_env("tiny", **TWO_EDGES)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="edge_1"):
        env.step({"edge_0": np.array([1, 0])})
    with pytest.raises(ValueError, match="edge_7"):
        env.step({"edge_0": [1, 0], "edge_1": [1, 0], "edge_7": [1, 0]})
    with pytest.raises(ValueError, match="out of range"):
        env.step({"edge_0": [3, 0], "edge_1": [1, 0]})
    env.close()


def test_aec_conversion_runs() -> None:
    aec = parallel_to_aec(parallel_env("tiny"))
    aec.reset(seed=0)
    for agent in aec.agent_iter(max_iter=10):
        _, _, term, trunc, _ = aec.last()
        aec.step(None if term or trunc else aec.action_space(agent).sample())
    aec.close()
