"""The examples run (tiny budgets): Gymnasium loop, SB3, CleanRL-style PPO, PettingZoo loop, and
the bring-your-own-worker example (a different torch model behind the documented interface)."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from gaisnet_env.env import GaisNetEnv

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def load(name: str):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load


def test_gym_loop(example) -> None:
    summaries = example("gym_loop").main(["--episodes", "1"])
    assert summaries[0]["length"] == 20 and math.isfinite(summaries[0]["return"])


def test_pettingzoo_loop(example) -> None:
    returns = example("pettingzoo_loop").main(["--reward-mode", "shared"])
    assert list(returns) == ["edge_0"]


def test_cleanrl_ppo(example) -> None:
    ret = example("cleanrl_ppo").main(["--total-timesteps", "64", "--num-steps", "32", "--update-epochs", "1"])
    assert math.isfinite(ret)  # 64 steps > one 20-epoch episode per env


def test_sb3_ppo(example) -> None:
    out = example("sb3_ppo").main(["--steps", "64", "--envs", "1", "--masked"])
    assert math.isfinite(out["ppo"]) and math.isfinite(out["maskable_ppo"])


def test_custom_worker_plugs_into_the_env(example) -> None:
    from gymnasium.utils.env_checker import check_env

    mod = example("custom_worker")
    env = GaisNetEnv("tiny", worker_system=mod.CNNWorkers)
    assert isinstance(env.workers, mod.CNNWorkers)
    # the cost model uses the CNNs' counted FLOPs
    assert env.classify_flops["edge"] == env.workers.inference_flops("edge")
    check_env(env, skip_render_check=True)
    # snapshot/restore replays bit for bit through the custom workers' state_dict
    env.reset(seed=1)
    for _ in range(3):
        env.step(np.array([1, 2]))
    snap = env.snapshot()
    a = [env.step(np.array([1, 3]))[1] for _ in range(4)]
    env.restore(snap)
    b = [env.step(np.array([1, 3]))[1] for _ in range(4)]
    assert a == b
    assert math.isfinite(mod.main([]))


def test_docs_scenario_yaml_loads_and_runs() -> None:
    import re

    import yaml

    from gaisnet_env.env import GaisNetEnv

    text = (EXAMPLES.parent / "docs" / "scenarios.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    env = GaisNetEnv(yaml.safe_load(block), horizon=3)
    env.reset(seed=0)
    for _ in range(3):
        *_, truncated, info = env.step(env.action_space.sample())
    assert truncated and env.scenario.name == "campus"
    env.close()
