"""Trained models as policies: which algorithm saved a model, where its file is, and
:class:`LearnedPolicy`, a saved SB3 model behind the :class:`~gaisnet_env.agents.base.Policy` interface
(deterministic actions; MaskablePPO gets ``info['action_mask']`` made flat, its layout)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from gaisnet_env.agents.algos import algo_class, canonical_algo
from gaisnet_env.agents.augment import AugmentObservation, ObsAugmenter, edge_row_dim, edge_rows

from gaisnet_env.masks import flat_mask


def detect_algo(path: str | Path) -> str:
    """Algorithm of a saved model: ``meta.json`` next to it, else its stored policy class."""
    p = Path(path)
    meta = p.parent / "meta.json"
    if meta.exists():
        try:
            return canonical_algo(json.loads(meta.read_text())["algo"])
        except (KeyError, ValueError, json.JSONDecodeError):
            pass
    with zipfile.ZipFile(p) as z:
        data = z.read("data").decode("utf-8", "replace")
    if "Maskable" in data:
        return "ppo_mask"
    if "DQNPolicy" in data or "QNetwork" in data or "exploration_rate" in data:
        return "dqn"
    if '"normalize_advantage"' in data and '"clip_range"' not in data:
        return "a2c"
    return "ppo"


def resolve_model_path(path: str | Path) -> Path:
    """A model file from a path: a ``.zip``, the same without suffix, or a run directory."""
    p = Path(path)
    if p.is_dir():
        for name in ("best_model.zip", "final_model.zip"):
            if (p / name).exists():
                return p / name
        raise FileNotFoundError(f"policy: {p} holds neither best_model.zip nor final_model.zip")
    if p.suffix != ".zip" and p.with_suffix(".zip").exists():
        return p.with_suffix(".zip")
    if not p.exists():
        raise FileNotFoundError(f"policy: no such model file {p}")
    return p


class LearnedPolicy:
    """A trained SB3 model as a :class:`~gaisnet_env.agents.base.Policy`.

    Args:
        model: a PPO / A2C / DQN / MaskablePPO model.
        deterministic: greedy actions (default) or samples.
        name: label for tables.
    """

    def __init__(self, model: Any, deterministic: bool = True, name: str = "") -> None:
        from gymnasium import spaces

        self.model = model
        self.deterministic = deterministic
        self.masked = type(model).__name__ == "MaskablePPO"
        space = model.action_space
        self.flat_nvec: np.ndarray | None = None
        if isinstance(space, spaces.Discrete):
            # trained through FlattenMultiDiscreteAction over the env's [3, 5] * E action
            self.flat_nvec = None  # resolved on first act from the mask size
        self.discrete = isinstance(space, spaces.Discrete)
        self.augmenter = ObsAugmenter()
        self.name = name or type(model).__name__

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.model.set_random_seed(seed)
        self.augmenter.reset()

    def act(self, observation: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        n_model = int(np.prod(self.model.observation_space.shape))
        n_obs = np.asarray(observation).size
        single = (n_obs, n_obs + AugmentObservation.N_FEATURES * ObsAugmenter.n_edges_of(n_obs))  # plain, augmented
        if n_model == edge_row_dim() and n_model not in single:  # a shared edge policy (1 edge: the same)
            return self._act_per_edge(observation, info)
        if n_model != np.asarray(observation).size:  # trained on AugmentObservation
            observation = self.augmenter(observation)
        kwargs: dict[str, Any] = {}
        if self.masked and "action_mask" in info:
            kwargs["action_masks"] = flat_mask(info["action_mask"])
        action, _ = self.model.predict(np.asarray(observation, dtype=np.float32), deterministic=self.deterministic,
                                       **kwargs)
        if self.discrete:
            E = flat_mask(info["action_mask"]).size // 8 if "action_mask" in info else None
            if self.flat_nvec is None:
                if E is None:
                    raise ValueError("LearnedPolicy: a Discrete model needs info['action_mask'] to size the action")
                self.flat_nvec = np.array([3, 5] * E, dtype=np.int64)
            return np.asarray(np.unravel_index(int(action), tuple(self.flat_nvec)), dtype=np.int64)
        return np.asarray(action, dtype=np.int64).ravel()

    def _act_per_edge(self, observation: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """A shared edge policy (:mod:`~gaisnet_env.agents.edge_agents`): one row per edge, one (route, op)
        each, with the edge's own mask; the joint action edge by edge."""
        rows = edge_rows(observation, self.augmenter)
        kwargs: dict[str, Any] = {}
        if self.masked and "action_mask" in info:
            kwargs["action_masks"] = flat_mask(info["action_mask"]).reshape(rows.shape[0], -1)
        action, _ = self.model.predict(rows, deterministic=self.deterministic, **kwargs)
        return np.asarray(action, dtype=np.int64).ravel()


def load_policy(path: str | Path, algo: str | None = None, deterministic: bool = True) -> LearnedPolicy:
    """Load a saved model (file, or run directory -> its best model) as a :class:`LearnedPolicy`."""
    p = resolve_model_path(path)
    a = canonical_algo(algo) if algo else detect_algo(p)
    model = algo_class(a).load(str(p), device="cpu")
    return LearnedPolicy(model, deterministic=deterministic, name=f"{a}:{p.parent.name}/{p.stem}")
