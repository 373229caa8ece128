"""Ray RLlib callback that logs the env's physical metrics (needs ``ray[rllib]``, the ``rllib`` extra).

:func:`gaisnet_env.rllib.ppo_config` adds :class:`EnvMetricsRLlibCallback` by default; on another
config: ``config.callbacks(EnvMetricsRLlibCallback)``. Each finished episode logs the per-step mean
of every metric under ``env/<key>`` (the keys of :class:`gaisnet_env.callbacks.EnvMetricsCallback`,
per-tier energy included), so ``algo.train()`` results carry e.g.
``result["env_runners"]["env/energy_edge_j"]`` (a mean over the iteration's episodes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.env.multi_agent_episode import MultiAgentEpisode

from gaisnet_env.callbacks import info_metrics

__all__ = ["EnvMetricsRLlibCallback", "step_metrics"]

_SUMS, _N = "gaisnet_metric_sums", "gaisnet_metric_steps"


def step_metrics(episode: Any) -> dict[str, float]:
    """Metrics of the episode's last step: the single-agent ``info`` metrics, or, on the multi-agent
    view (whose per-agent infos carry only the rewards), the agents' mean ``edge_reward`` and the
    ``system_reward``."""
    infos = episode.get_infos(-1)
    if not isinstance(episode, MultiAgentEpisode):
        return info_metrics(infos)
    rewards = [(i["edge_reward"], i["system_reward"]) for i in infos.values() if "edge_reward" in i]
    if not rewards:
        return {}
    edge, system = np.asarray(rewards, dtype=np.float64).T
    return {"edge_reward": float(edge.mean()), "system_reward": float(system[0])}


class EnvMetricsRLlibCallback(RLlibCallback):
    """Per-episode means of the env's ``info`` metrics, logged to RLlib's metrics as ``env/<key>``."""

    def on_episode_step(self, *, episode: Any, **kwargs: Any) -> None:
        metrics = step_metrics(episode)
        if not metrics:
            return
        data = episode.custom_data
        sums = data.setdefault(_SUMS, {})
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + v
        data[_N] = data.get(_N, 0) + 1

    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        data = episode.custom_data
        n = data.get(_N, 0)
        if not n or metrics_logger is None:
            return
        for k, v in data[_SUMS].items():
            metrics_logger.log_value(f"env/{k}", v / n, reduce="mean", window=100)
