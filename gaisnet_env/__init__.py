"""gaisnet-env: a Gymnasium environment for cloud-edge-end generative-AI scheduling.

Quick start::

    import gymnasium as gym
    import gaisnet_env  # registers the ids

    env = gym.make("gaisnet_env/GaisNet-v0")            # the default scenario, metro
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

BUILTIN_SCENARIOS: tuple[str, ...] = ("tiny", "metro", "city", "drift-storm", "green")


def env_id(scenario: str) -> str:
    """Registered id of a built-in scenario, e.g. ``gaisnet_env/GaisNet-tiny-v0``."""
    if scenario not in BUILTIN_SCENARIOS:
        raise ValueError(f"scenario: got {scenario!r}; built-ins are {', '.join(BUILTIN_SCENARIOS)}")
    return f"gaisnet_env/GaisNet-{scenario}-v0"


def _register() -> None:
    entry = "gaisnet_env.env:GaisNetEnv"
    vector_entry = "gaisnet_env.vector_env:GaisNetVectorEnv"  # gym.make_vec's default for these ids
    ids = {"gaisnet_env/GaisNet-v0": "metro"}
    ids.update({env_id(name): name for name in BUILTIN_SCENARIOS})
    for id_, scenario in ids.items():
        if id_ not in registry:
            # the env truncates at the scenario's horizon itself, so no TimeLimit wrapper
            register(id=id_, entry_point=entry, vector_entry_point=vector_entry, kwargs={"scenario": scenario})


_register()


def __getattr__(name: str):
    # lazy imports keep `import gaisnet_env` light (torch loads only when an env is built)
    if name in ("GaisNetEnv", "make_env"):
        from gaisnet_env import env

        return getattr(env, name)
    if name == "GaisNetVectorEnv":  # the native vector env (gaisnet_env.vector_env)
        from gaisnet_env import vector_env

        return vector_env.GaisNetVectorEnv
    if name == "EnvMetricsCallback":  # SB3 / rl-zoo3 callback (gaisnet_env.callbacks)
        from gaisnet_env import callbacks

        return callbacks.EnvMetricsCallback
    if name in ("Scenario", "ScenarioArgumentError", "ScenarioError", "load_scenario"):
        from gaisnet_env import scenario

        return getattr(scenario, name)
    raise AttributeError(f"module 'gaisnet_env' has no attribute {name!r}")


__all__ = [
    "BUILTIN_SCENARIOS",
    "EnvMetricsCallback",
    "GaisNetEnv",
    "GaisNetVectorEnv",
    "Scenario",
    "ScenarioArgumentError",
    "ScenarioError",
    "env_id",
    "load_scenario",
    "make_env",
]
