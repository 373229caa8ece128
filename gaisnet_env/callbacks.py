"""TensorBoard logging of the env's physical metrics during stable-baselines3 training.

:class:`EnvMetricsCallback` works with SB3's ``learn(callback=...)``, with the project's own training
(it adds it) and with rl-zoo3 (the shipped ``agents/hyperparams/*.yml`` name it under ``callback:``).
For Ray RLlib see :class:`gaisnet_env.rllib_callbacks.EnvMetricsRLlibCallback`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from gaisnet_env.worker_config import OPERATIONS, TIERS

__all__ = ["LOGGED_KEYS", "EnvMetricsCallback", "StopAfterSeconds", "info_metrics"]

#: info keys averaged over each rollout and logged under ``env/<key>`` (units as in ``info``).
LOGGED_KEYS: tuple[str, ...] = (
    "accuracy",  # served accuracy / generation quality, [0, 1]
    "accuracy_end",
    "accuracy_edge",
    "accuracy_cloud",
    "accuracy_classify",
    "quality_generate",
    "latency_mean_s",  # s
    "latency_p95_s",  # s
    "energy_j",  # J per epoch, all tiers
    "energy_end_j",  # J per epoch at the end devices (compute; radio in energy_radio_j)
    "energy_edge_j",  # J per epoch at the edge servers
    "energy_cloud_j",  # J per epoch in the cloud (PUE included)
    "energy_radio_j",  # J per epoch on the radio links
    "carbon_g",  # g CO2e per epoch
    "sla_violation_share",  # share of requests
    "ops_started",  # knowledge operations started per epoch
    "ops_finished",
    "ops_failed",
    "actions_masked",
    "reward_accuracy",
    "reward_latency",
    "reward_energy",
    "reward_sla",
    "reward_carbon",
)


def info_metrics(info: dict[str, Any]) -> dict[str, float]:
    """The logged metrics of one step's ``info`` (empty for a reset info): :data:`LOGGED_KEYS`, route shares, ops."""
    if "accuracy" not in info:
        return {}
    out = {k: float(info[k]) for k in LOGGED_KEYS if k in info}
    rc = info.get("route_counts")
    if rc is not None:
        rc = np.asarray(rc, dtype=np.float64)
        for i, tier in enumerate(TIERS):
            out[f"route_share_{tier}"] = float(rc[i] / max(rc.sum(), 1.0))
    oc = info.get("op_counts")
    if oc is not None:
        for i, kind in enumerate(OPERATIONS[1:], start=1):  # OPERATIONS[0] is "none"
            out[f"ops_{kind}"] = float(np.asarray(oc)[i])
    return out


class EnvMetricsCallback(BaseCallback):
    """Average the env's ``info`` metrics over each rollout and log them to TensorBoard.

    Logs ``env/<key>`` for :data:`LOGGED_KEYS` (per-tier energy included: ``env/energy_end_j``,
    ``env/energy_edge_j``, ``env/energy_cloud_j``, ``env/energy_radio_j``), the share of requests routed
    to each tier (``env/route_share_<tier>``) and knowledge operations started per epoch by kind
    (``env/ops_<kind>``). Values are written with SB3's next logger dump. rl-zoo3: add
    ``callback: gaisnet_env.callbacks.EnvMetricsCallback`` to the hyperparameter entry.
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self._sums: dict[str, float] = defaultdict(float)
        self._n = 0

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            metrics = info_metrics(info)
            if metrics:
                self._n += 1
                for k, v in metrics.items():
                    self._sums[k] += v
        return True

    def _on_rollout_end(self) -> None:
        if self._n:
            for k, v in self._sums.items():
                self.logger.record(f"env/{k}", v / self._n)
        self._sums.clear()
        self._n = 0

    def summary(self) -> dict[str, Any]:  # pragma: no cover - convenience for notebooks
        return {k: v / max(self._n, 1) for k, v in self._sums.items()}


class StopAfterSeconds(BaseCallback):
    """Stop training once ``seconds`` of wall time have passed since learning started.

    ``stopped_at`` is the step count at which it stopped (``None`` while it has not); with ``verbose``
    it says so on screen when it stops. A time budget makes the trained agent depend on the machine's
    speed; a step budget (``learn(total_timesteps=...)``) does not.
    """

    def __init__(self, seconds: float, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.seconds = float(seconds)
        self.t0 = 0.0
        self.stopped_at: int | None = None

    def _on_training_start(self) -> None:
        self.t0 = time.perf_counter()

    def _on_step(self) -> bool:
        if time.perf_counter() - self.t0 < self.seconds:
            return True
        self.stopped_at = int(self.num_timesteps)
        if self.verbose:
            print(f"\ntraining stopped: the time budget of {self.seconds:.0f} s ran out at {self.num_timesteps} steps")
        return False
