"""What mainstream RL clients expect of the env: Python's errors, Gymnasium's mask format, PettingZoo's AEC API."""

from __future__ import annotations

import gymnasium as gym
import pytest

import gaisnet_env
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.scenario import ScenarioArgumentError, ScenarioError, load_scenario


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
