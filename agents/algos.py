"""The SB3 / sb3-contrib algorithms the agents train and their hyperparameters: names and aliases, the
classes, and ``agents/hyperparams/<algo>.yml`` in the rl-zoo3 format (top-level key = registered env id,
e.g. ``gaisnet_env/GaisNet-metro-v0``) merged over :data:`DEFAULTS`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"

#: Algorithm names (rl-zoo3 spelling) and accepted aliases.
ALGOS: tuple[str, ...] = ("ppo", "a2c", "dqn", "ppo_mask")
ALIASES: dict[str, str] = {"maskable_ppo": "ppo_mask", "maskableppo": "ppo_mask", "mppo": "ppo_mask"}

#: Defaults used when a scenario has no entry in the YAML file.
DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {"policy": "MlpPolicy", "n_envs": 2, "n_timesteps": 20_000, "n_steps": 256, "batch_size": 64},
    "a2c": {"policy": "MlpPolicy", "n_envs": 2, "n_timesteps": 20_000, "n_steps": 16},
    "dqn": {
        "policy": "MlpPolicy",
        "n_envs": 1,
        "n_timesteps": 20_000,
        "learning_starts": 500,
        "env_wrapper": "gaisnet_env.wrappers.FlattenMultiDiscreteAction",
    },
    "ppo_mask": {"policy": "MlpPolicy", "n_envs": 2, "n_timesteps": 20_000, "n_steps": 256, "batch_size": 64},
}
# keys of the rl-zoo3 format that are not constructor arguments of the algorithm
_ZOO_KEYS = ("n_timesteps", "policy", "n_envs", "env_wrapper", "normalize", "frame_stack", "callback",
             "vec_env_wrapper", "env_kwargs")


def canonical_algo(algo: str) -> str:
    """``ppo`` / ``a2c`` / ``dqn`` / ``ppo_mask`` from a name or alias (case-insensitive)."""
    a = algo.lower().replace("-", "_")
    a = ALIASES.get(a, a)
    if a not in ALGOS:
        raise ValueError(f"algo: got {algo!r}; known: {', '.join(ALGOS)} (aliases: {', '.join(ALIASES)})")
    return a


def algo_class(algo: str) -> type:
    """The SB3 / sb3-contrib class of ``algo``."""
    a = canonical_algo(algo)
    if a == "ppo_mask":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    import stable_baselines3 as sb3

    return {"ppo": sb3.PPO, "a2c": sb3.A2C, "dqn": sb3.DQN}[a]


def scenario_env_id(scenario: str) -> str:
    """Registered id of a built-in scenario, else the generic id (custom scenario files)."""
    import gaisnet_env

    return gaisnet_env.env_id(scenario) if scenario in gaisnet_env.BUILTIN_SCENARIOS else "gaisnet_env/GaisNet-v0"


def load_hyperparams(algo: str, scenario: str = "metro", path: str | Path | None = None) -> dict[str, Any]:
    """Hyperparameters of ``algo`` for ``scenario``: the YAML entry merged over :data:`DEFAULTS`."""
    a = canonical_algo(algo)
    params = dict(DEFAULTS[a])
    file = Path(path) if path else HYPERPARAMS_DIR / f"{a}.yml"
    if file.exists():
        data = yaml.safe_load(file.read_text()) or {}
        entry = data.get(scenario_env_id(scenario)) or data.get(scenario)
        if entry:
            params.update(entry)
    return params


def _schedule(value: Any) -> Any:
    """rl-zoo3 ``lin_<x>`` strings -> linear schedules; numbers pass through."""
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress: progress * start
    return float(value) if isinstance(value, str) else value


def algo_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments of the algorithm from a hyperparameter dict (rl-zoo3 conventions)."""
    kw = {k: v for k, v in params.items() if k not in _ZOO_KEYS}
    for key in ("learning_rate", "clip_range"):
        if key in kw:
            kw[key] = _schedule(kw[key])
    pk = kw.get("policy_kwargs")
    if isinstance(pk, str):  # rl-zoo3 writes e.g. "dict(net_arch=[64, 64])"
        import torch.nn as nn

        kw["policy_kwargs"] = eval(pk, {"__builtins__": {}}, {"dict": dict, "nn": nn})  # noqa: S307
    return kw
