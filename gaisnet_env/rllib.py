"""Ray RLlib integration: register the env and build a PPO configuration (RLlib's new API stack).

Requires ``pip install "gaisnet-env[rllib]"`` (``ray[rllib]==2.60.0``). Example::

    import ray
    from gaisnet_env.rllib import ppo_config

    ray.init(num_cpus=2, include_dashboard=False)      # or ray.init(address="ray://host:10001")
    algo = ppo_config("tiny", num_env_runners=1).build_algo()
    for _ in range(3):
        result = algo.train()
        print(result["env_runners"]["episode_return_mean"])
    algo.stop()

The env is registered under a name (``register_rllib_env``) whose creator imports
``gaisnet_env`` inside each Ray worker, so the same code runs on a laptop and on a cluster
(every node needs ``gaisnet-env`` installed, or a ``runtime_env`` that ships it).
``env_config`` keys: ``scenario`` (built-in name, YAML path or mapping; default ``tiny``),
``multiagent`` (bool; the PettingZoo view, see :mod:`gaisnet_env.multiagent`), ``reward_mode``
(multi-agent only), ``reward_weights`` (dict, applied with
:class:`~gaisnet_env.wrappers.RewardWeights`); every other key is passed to
:class:`~gaisnet_env.env.GaisNetEnv` (e.g. ``horizon``, ``reward``, ``masked_action``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym

#: Name :func:`register_rllib_env` registers by default.
DEFAULT_ENV_NAME = "gaisnet"
#: Policy id every edge agent maps to in the multi-agent config (parameter sharing).
SHARED_POLICY = "edge_policy"
_META_KEYS = ("scenario", "multiagent", "reward_mode", "reward_weights")


def make_env(env_config: Mapping[str, Any] | None = None) -> Any:
    """Env creator for RLlib: a ``GaisNetEnv`` (optionally wrapped) or a multi-agent env.

    ``env_config`` is RLlib's ``EnvContext`` (a dict; see the module docstring for its keys).
    """
    cfg = dict(env_config or {})
    scenario = cfg.get("scenario", "tiny")
    kwargs = {k: v for k, v in cfg.items() if k not in _META_KEYS}
    if cfg.get("multiagent", False):
        try:
            from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

            from gaisnet_env.multiagent import GaisNetParallelEnv
        except ImportError as e:
            raise ModuleNotFoundError(
                f"env_config multiagent=True needs pettingzoo in every Ray worker "
                f'(pip install "gaisnet-env[rllib]", which includes it): {e}',
                name=e.name,
            ) from e

        return ParallelPettingZooEnv(
            GaisNetParallelEnv(scenario, reward_mode=cfg.get("reward_mode", "shared"), **kwargs)
        )
    from gaisnet_env.env import GaisNetEnv

    env: gym.Env = GaisNetEnv(scenario, **kwargs)
    if cfg.get("reward_weights"):
        from gaisnet_env.wrappers import RewardWeights

        env = RewardWeights(env, dict(cfg["reward_weights"]))
    return env


def register_rllib_env(name: str = DEFAULT_ENV_NAME) -> str:
    """Register :func:`make_env` with Ray Tune's registry under ``name``; returns ``name``.

    Call it in the driver before building an algorithm; RLlib ships the registration to its
    workers. Registering the same name again replaces the creator (harmless).
    """
    from ray.tune.registry import register_env

    register_env(name, make_env)
    return name


def shared_policy_mapping(agent_id: str, episode: Any = None, **kwargs: Any) -> str:
    """Every edge agent uses :data:`SHARED_POLICY` (one network shared by all edges)."""
    return SHARED_POLICY


def ppo_config(
    scenario: str | Mapping[str, Any] = "tiny",
    *,
    env_config: Mapping[str, Any] | None = None,
    env_name: str = DEFAULT_ENV_NAME,
    num_env_runners: int = 0,
    num_envs_per_env_runner: int = 1,
    train_batch_size: int = 256,
    minibatch_size: int = 64,
    num_epochs: int = 4,
    lr: float = 3e-4,
    gamma: float = 0.99,
    hidden: tuple[int, ...] = (64, 64),
    seed: int | None = 0,
    multiagent: bool = False,
    reward_mode: str = "shared",
    env_metrics: bool = True,
    restart_failed_env_runners: bool = False,
) -> Any:
    """A ``PPOConfig`` (new API stack, torch) for ``scenario``; call ``.build_algo()`` on it.

    Args:
        scenario: built-in scenario name, YAML path or mapping (``env_config["scenario"]``).
        env_config: further creator settings (see module docstring), e.g. ``{"horizon": 50}``.
        env_name: the registered env name (registered here if needed).
        num_env_runners: remote sampling actors (0 samples in the driver process).
        num_envs_per_env_runner: envs stepped together in each runner (gymnasium vector env).
        train_batch_size: env steps per training iteration (per learner).
        minibatch_size: SGD minibatch size, steps.
        num_epochs: SGD passes over each train batch.
        lr: Adam learning rate.
        gamma: discount per epoch (one env step).
        hidden: hidden layer widths of the policy and value MLPs.
        seed: seed of the algorithm (env runners derive per-env seeds from it); ``None`` leaves it.
        multiagent: train on the PettingZoo view (each edge an agent, one shared policy).
        reward_mode: multi-agent reward, ``"shared"`` or ``"per_edge"``.
        env_metrics: log the env's metrics (``env/<key>`` in ``result["env_runners"]``) with
            :class:`~gaisnet_env.rllib_callbacks.EnvMetricsRLlibCallback`.
        restart_failed_env_runners: RLlib's fault tolerance. ``False`` (the default here) makes an
            error inside a remote env runner, such as a missing package when it builds the env, reach
            ``build_algo()`` / ``train()`` as itself (RLlib's own default, ``True``, logs it and restarts
            the runner, and ``build_algo()`` then fails with an unrelated ``IndexError``). ``True`` suits
            long cluster runs with preemptible nodes.
    """
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    register_rllib_env(env_name)
    cfg = {"scenario": scenario, **dict(env_config or {})}
    if multiagent:
        cfg.update(multiagent=True, reward_mode=reward_mode)
    config = (
        PPOConfig()
        .api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        .framework("torch")
        .environment(env_name, env_config=cfg)
        .env_runners(
            num_env_runners=num_env_runners,
            num_envs_per_env_runner=num_envs_per_env_runner,
            rollout_fragment_length="auto",
        )
        .training(
            train_batch_size_per_learner=train_batch_size,
            minibatch_size=minibatch_size,
            num_epochs=num_epochs,
            lr=lr,
            gamma=gamma,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(hidden), vf_share_layers=False))
        .fault_tolerance(restart_failed_env_runners=restart_failed_env_runners)
    )
    if multiagent:
        config = config.multi_agent(policies={SHARED_POLICY}, policy_mapping_fn=shared_policy_mapping)
    if env_metrics:
        from gaisnet_env.rllib_callbacks import EnvMetricsRLlibCallback

        config = config.callbacks(EnvMetricsRLlibCallback)
    if seed is not None:
        config = config.debugging(seed=seed)
    return config
