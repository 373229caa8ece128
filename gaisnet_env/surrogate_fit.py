"""Calibration of the fast path (:mod:`gaisnet_env.surrogate`): record real knowledge operations in env
episodes and fit the response model on them.

Apart from :mod:`gaisnet_env.surrogate` because it runs the env (which itself builds the fast path's
workers for ``worker_system="fast"``): the surrogate does not import the env.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from gaisnet_env.agents.base import run_episode
from gaisnet_env.agents.heuristics import make_heuristic
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.scenario import load_scenario
from gaisnet_env.surrogate import ResponseModel, evaluate_fit
from gaisnet_env.workers import CLASSIFIER_TIERS, OpResult, WorkerSystem


class _RecordingWorkers(WorkerSystem):
    """Real workers that also record every operation's tables before and after (for :func:`calibrate`)."""

    records: list[dict[str, Any]]

    def start_op(self, op: str, edge: int) -> OpResult:
        before = np.stack([self.accuracy_table(t, edge) for t in CLASSIFIER_TIERS])
        ch, sh, n = self.domain_report(edge)
        res = super().start_op(op, edge)
        if res.ok:
            _tier, after = self.pending_table(edge)  # type: ignore[misc]
            if not hasattr(self, "records"):
                self.records = []
            self.records.append({"op": op, "before": before, "class_hist": ch.astype(np.float64),
                                 "style_hist": sh.astype(np.float64), "fill": n / self.config.feedback_buffer,
                                 "after": after})
        return res


def record_transitions(scenario: str = "metro", seeds: list[int] | tuple[int, ...] = (0, 1),
                       policies: tuple[str, ...] = ("random", "cost-aware", "periodic"),
                       cache_dir: str | None = None, **overrides: Any) -> list[dict[str, Any]]:
    """Run real episodes of each heuristic in ``policies`` on each seed and return every knowledge
    operation as ``{"op", "before" (3, S, 10), "class_hist", "style_hist", "fill", "after" (S, 10)}``."""
    env = GaisNetEnv(scenario, cache_dir=cache_dir, worker_system=_RecordingWorkers, **overrides)
    workers: _RecordingWorkers = env.workers  # type: ignore[assignment]
    workers.records = []
    for name in policies:
        policy = make_heuristic(name, env=env)
        for seed in seeds:
            run_episode(policy, env, int(seed), name)
    return workers.records


def calibrate(scenario: str = "metro", fit_seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5),
              test_seeds: tuple[int, ...] = (6, 7, 8, 9),
              policies: tuple[str, ...] = ("random", "cost-aware", "periodic"),
              out: str | Path | None = None, cache_dir: str | None = None, **overrides: Any) -> ResponseModel:
    """Record real operations on ``scenario`` (training seeds only), fit the response model, measure
    it on operations of held-out seeds, and (with ``out``) write the calibration file."""
    t0 = time.perf_counter()
    fit_rows = record_transitions(scenario, fit_seeds, policies, cache_dir, **overrides)
    test_rows = record_transitions(scenario, test_seeds, policies, cache_dir, **overrides)
    model = ResponseModel.fit(fit_rows)
    model.meta = {**model.meta, "scenario": scenario, "overrides": overrides, "fit_seeds": list(fit_seeds),
                  "test_seeds": list(test_seeds), "policies": list(policies),
                  "n_fit": len(fit_rows), "n_test": len(test_rows), "held_out": evaluate_fit(model, test_rows),
                  "wall_s": round(time.perf_counter() - t0, 1)}
    if out is not None:
        model.save(out, load_scenario(scenario, **overrides).workers)
    return model


__all__ = ["calibrate", "record_transitions"]
