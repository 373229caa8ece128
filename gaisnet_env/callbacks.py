"""TensorBoard logging of the env's physical metrics during stable-baselines3 training."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

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
    "energy_j",  # J per epoch
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


class EnvMetricsCallback(BaseCallback):
    """Average the env's ``info`` metrics over each rollout and log them to TensorBoard.

    Logs ``env/<key>`` for :data:`LOGGED_KEYS`, the share of requests routed to each tier
    (``env/route_share_<tier>``) and knowledge operations started per epoch by kind
    (``env/ops_<kind>``). Values are written with SB3's next logger dump.
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self._sums: dict[str, float] = defaultdict(float)
        self._n = 0

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            if "accuracy" not in info:
                continue  # a reset info
            self._n += 1
            for k in LOGGED_KEYS:
                if k in info:
                    self._sums[k] += float(info[k])
            rc = info.get("route_counts")
            if rc is not None:
                rc = np.asarray(rc, dtype=np.float64)
                for i, tier in enumerate(("end", "edge", "cloud")):
                    self._sums[f"route_share_{tier}"] += float(rc[i] / max(rc.sum(), 1.0))
            oc = info.get("op_counts")
            if oc is not None:
                for i, kind in enumerate(("none", "relay_down", "finetune", "relay_up", "relay_to_end")):
                    if i:
                        self._sums[f"ops_{kind}"] += float(np.asarray(oc)[i])
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
    """Stop training once ``seconds`` of wall time have passed since learning started."""

    def __init__(self, seconds: float, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.seconds = float(seconds)
        self.t0 = 0.0

    def _on_training_start(self) -> None:
        self.t0 = time.perf_counter()

    def _on_step(self) -> bool:
        if time.perf_counter() - self.t0 < self.seconds:
            return True
        if self.verbose:
            print(f"StopAfterSeconds: time budget of {self.seconds:.0f} s reached at {self.num_timesteps} steps")
        return False
