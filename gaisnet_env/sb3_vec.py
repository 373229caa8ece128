"""A Stable-Baselines3 ``VecEnv`` over the native vector env's copies (needs ``stable-baselines3``).

:class:`GaisNetSB3VecEnv` steps the :class:`~gaisnet_env.vector_env.GaisNetVectorEnv` copies in one
process with SB3's semantics (those of ``DummyVecEnv``): a copy that ends is reset inside ``step``, its
last observation kept in ``infos[i]["terminal_observation"]`` and ``infos[i]["TimeLimit.truncated"]`` set;
``seed(s)`` seeds copy ``i`` with ``s + i`` at the next ``reset()``. ``env_method("action_masks")`` and
:meth:`GaisNetSB3VecEnv.action_masks` give the masks sb3-contrib's MaskablePPO reads. Observations
are float32 ``(N, obs)``, rewards float32 ``(N,)`` (the env's units, see :mod:`gaisnet_env.env`)::

    from stable_baselines3 import PPO
    from gaisnet_env.sb3_vec import make_sb3_vec_env

    PPO("MlpPolicy", make_sb3_vec_env("tiny", n_envs=8, seed=0)).learn(10_000)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from gaisnet_env.vector_env import GaisNetVectorEnv


class GaisNetSB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` over the copies of a :class:`GaisNetVectorEnv` (see module docstring)."""

    def __init__(self, venv: GaisNetVectorEnv) -> None:
        """Wrap ``venv`` (its copies are stepped here; do not step ``venv`` itself as well)."""
        if not isinstance(venv, GaisNetVectorEnv):
            raise TypeError(f"venv: got {type(venv).__name__}; allowed: a GaisNetVectorEnv")
        self.venv = venv
        self.envs = venv.envs
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self.metadata = venv.metadata
        self._buf_obs = np.zeros((self.num_envs, *self.observation_space.shape), dtype=np.float32)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        """Reset every copy (with the seeds of :meth:`seed` and options of ``set_options``, used once)."""
        for i, env in enumerate(self.envs):
            maybe_options = {"options": self._options[i]} if self._options[i] else {}
            self._buf_obs[i], self.reset_infos[i] = env.reset(seed=self._seeds[i], **maybe_options)
        self._reset_seeds()
        self._reset_options()
        return self._buf_obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        """Keep the actions, ``(N, 2E)``, for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """Step every copy; a copy that ends is reset at once (SB3's autoreset)."""
        acts = self._actions
        if acts is None:
            raise RuntimeError("step_wait() called before step_async()")
        if acts.ndim < 1 or acts.shape[0] != self.num_envs:
            raise ValueError(f"actions: expected {self.num_envs} rows (one per copy), got shape {acts.shape}")
        rews = np.zeros(self.num_envs, dtype=np.float32)
        dones = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict[str, Any]] = []
        # quiet copies together, the others' ops as one batch (GaisNetVectorEnv._step_copies)
        stepped, _ = self.venv._step_copies(self.venv._check_actions(acts), list(range(self.num_envs)))
        for i, env in enumerate(self.envs):
            obs, rews[i], terminated, truncated, info = self.venv._stepped_row(stepped, i)
            info = dict(info if info is not None else env._last_info)  # the env keeps its own
            dones[i] = terminated or truncated
            info["TimeLimit.truncated"] = truncated and not terminated
            if dones[i]:
                info["terminal_observation"] = obs
                obs, self.reset_infos[i] = env.reset()
            self._buf_obs[i] = obs
            infos.append(info)
        self._actions = None
        return self._buf_obs.copy(), rews, dones, infos

    def action_masks(self) -> np.ndarray:
        """``(N, 8E)`` bool feasibility masks (sb3-contrib's layout)."""
        return np.stack([env.action_masks() for env in self.envs])

    def close(self) -> None:
        """Close the vector env and its copies."""
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        """Each copy's ``rgb_array`` frame (None for another render mode)."""
        if self.render_mode != "rgb_array":
            return [None for _ in self.envs]
        return [env.render() for env in self.envs]  # type: ignore[misc]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Attribute ``attr_name`` of the copies of ``indices`` (all by default)."""
        return [getattr(self.envs[i], attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set attribute ``attr_name`` to ``value`` on the copies of ``indices``."""
        for i in self._get_indices(indices):
            setattr(self.envs[i], attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        """Call method ``method_name`` of the copies of ``indices``."""
        return [getattr(self.envs[i], method_name)(*method_args, **method_kwargs) for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        """The copies are bare envs: False for every index."""
        return [False for _ in self._get_indices(indices)]


def make_sb3_vec_env(scenario: Any = "metro", n_envs: int = 1, seed: int | None = None,
                     **env_kwargs: Any) -> GaisNetSB3VecEnv:
    """A :class:`GaisNetSB3VecEnv` of ``n_envs`` copies of ``scenario`` (``env_kwargs`` as for
    :class:`~gaisnet_env.env.GaisNetEnv`); ``seed`` seeds copy ``i`` with ``seed + i`` at the first reset."""
    venv = GaisNetSB3VecEnv(GaisNetVectorEnv(n_envs, scenario, **env_kwargs))
    if seed is not None:
        venv.seed(seed)
    return venv
