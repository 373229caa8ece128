"""Observation memory for the learned agents: :class:`AugmentObservation` (a Gymnasium wrapper, the rl-zoo3
``env_wrapper`` ``gaisnet_env.agents.learned.AugmentObservation``) and the transform behind it."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class AugmentObservation(gym.ObservationWrapper):
    """Append per-edge memory features an agent cannot see in one observation, in [0, 1]:

    * ``edge_acc_gap``: best observed edge accuracy this episode minus the current one;
    * ``edge_acc_best``: that best observed edge accuracy;
    * ``end_lag``: edge accuracy minus end accuracy, clipped at 0 (what relay_to_end could gain).

    The heuristics keep such memory themselves; giving it to the learned agents lets them
    (and their behaviour-cloning warm start) condition ops on it. Layout: the env's
    observation, then ``3 x E`` features edge by edge.
    """

    N_FEATURES = 3

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.aug = ObsAugmenter()
        n = int(np.prod(env.observation_space.shape))
        self.n_edges = ObsAugmenter.n_edges_of(n)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(n + self.N_FEATURES * self.n_edges,),
                                                dtype=np.float32)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        self.aug.reset()
        return super().reset(**kwargs)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return self.aug(observation)


class ObsAugmenter:
    """The stateful transform behind :class:`AugmentObservation` (reset it every episode)."""

    def __init__(self) -> None:
        self.best: np.ndarray | None = None

    @staticmethod
    def n_edges_of(n_obs: int) -> int:
        from gaisnet_env.env import EDGE_FEATURES, GLOBAL_FEATURES

        return (n_obs - len(GLOBAL_FEATURES)) // len(EDGE_FEATURES)

    def reset(self) -> None:
        self.best = None

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        from gaisnet_env.agents.base import ObsView

        v = ObsView(observation)
        acc_edge = v.edge("accuracy_edge")
        self.best = acc_edge.copy() if self.best is None else np.maximum(self.best, acc_edge)
        extra = np.stack(
            [np.clip(self.best - acc_edge, 0, 1), self.best, np.clip(acc_edge - v.edge("accuracy_end"), 0, 1)], axis=1
        )
        return np.concatenate([np.asarray(observation, np.float32).ravel(), extra.ravel().astype(np.float32)])


def edge_rows(observation: np.ndarray, augmenter: ObsAugmenter) -> np.ndarray:
    """The edge-agent view of one flat observation: ``(E, 19 + 3 + 6)`` float32 rows, each an edge's own
    features, its memory features (``augmenter``'s, see :class:`AugmentObservation`) and the global ones.
    The same observation an agent of the multi-agent view sees, plus the memory (one shared policy acts
    on every row; :mod:`gaisnet_env.agents.edge_agents`). ``augmenter`` is advanced by this call."""
    from gaisnet_env.env import EDGE_FEATURES, GLOBAL_FEATURES

    obs = np.asarray(observation, np.float32).ravel()
    f, g = len(EDGE_FEATURES), len(GLOBAL_FEATURES)
    E = ObsAugmenter.n_edges_of(obs.size)
    memory = augmenter(obs)[obs.size :].reshape(E, AugmentObservation.N_FEATURES)
    glob = np.broadcast_to(obs[E * f : E * f + g], (E, g))
    return np.concatenate([obs[: E * f].reshape(E, f), memory, glob], axis=1)


def edge_row_dim() -> int:
    """Width of an :func:`edge_rows` row (28)."""
    from gaisnet_env.env import EDGE_FEATURES, GLOBAL_FEATURES

    return len(EDGE_FEATURES) + AugmentObservation.N_FEATURES + len(GLOBAL_FEATURES)
