"""The native vector env: N copies of the GaisNet simulation stepped in one process.

``gymnasium.make_vec("gaisnet_env/GaisNet-tiny-v0", num_envs=N)`` builds a :class:`GaisNetVectorEnv` (the
ids' ``vector_entry_point``; ``vectorization_mode="sync"`` / ``"async"`` still give Gymnasium's own).
Each copy is a :class:`~gaisnet_env.env.GaisNetEnv` with its own model workers and RNG, stepped
directly (no per-copy wrapper or env checker), so copy ``i`` replays, bit for bit, the single env seeded
the same way. Autoreset follows Gymnasium 1.2 (:class:`~gymnasium.vector.AutoresetMode`, ``NEXT_STEP`` by
default, declared in ``metadata["autoreset_mode"]``); ``reset(seed=s)`` seeds copy ``i`` with ``s + i``
(as ``SyncVectorEnv``); ``info`` is in Gymnasium's vector format (values stacked over the copies, ``_key``
masks). :meth:`GaisNetVectorEnv.action_masks` gives the ``(N, 8E)`` masks sb3-contrib reads. Units are
the single env's (see :mod:`gaisnet_env.env`). An SB3 ``VecEnv`` over the same copies:
:mod:`gaisnet_env.sb3_vec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from gaisnet_env.copy_steps import step_copies
from gaisnet_env.core import actions as actions_core
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.env_arguments import ENV_ARGUMENTS, RENDER_MODES
from gaisnet_env.quiet_steps import QuietSteps, step_copies_quietly
from gaisnet_env.scenario import Scenario, check_override_keys
from gaisnet_env.vector_info import add_info, copy_seeds, reset_mask, stack_infos

_ACTION_HI = actions_core.ACTION_HI.astype(np.int64)  # (route, op) exclusive bounds
#: The vector env's own keyword arguments (besides GaisNetEnv's, passed to every copy).
VECTOR_ARGUMENTS: tuple[str, ...] = ("num_envs", "autoreset_mode")


def check_num_envs(num_envs: Any) -> int:
    """``num_envs`` as an int, or ValueError naming it (an integer >= 1)."""
    if isinstance(num_envs, (bool, np.bool_)) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ValueError(f"num_envs: got {num_envs!r}; allowed: an integer >= 1")
    return int(num_envs)


def build_copies(num_envs: int, scenario: Any, owner: str, env_kwargs: dict[str, Any]) -> list[GaisNetEnv]:
    """``num_envs`` independent :class:`GaisNetEnv` copies of ``scenario`` (each its own workers and RNG).
    TypeError (:class:`~gaisnet_env.scenario.ScenarioArgumentError`) for an unknown keyword, worded for
    ``owner``; ValueError for a workers *object* with more than one copy (pass a class or factory)."""
    overrides = {k: v for k, v in env_kwargs.items() if k not in ENV_ARGUMENTS}
    check_override_keys(overrides, owner, ENV_ARGUMENTS + VECTOR_ARGUMENTS)
    workers = env_kwargs.get("worker_system")
    shared = workers is not None and not isinstance(workers, (str, type)) and hasattr(workers, "start_op")
    if shared and num_envs > 1:
        raise ValueError(
            f"worker_system: got a {type(workers).__name__} object for {num_envs} copies; allowed: 'real', "
            "'fast', a class or a factory (each copy needs its own workers)"
        )
    # each copy loads its own Scenario (fault injection edits one copy's)
    return [GaisNetEnv(scenario, **env_kwargs) for _ in range(num_envs)]


class GaisNetVectorEnv(VectorEnv):
    """``num_envs`` copies of :class:`~gaisnet_env.env.GaisNetEnv` in one process (see module docstring)."""

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str | Path | dict[str, Any] | Scenario = "metro",
        *,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **env_kwargs: Any,
    ) -> None:
        """Build ``num_envs`` copies of the env of ``scenario``.

        Args:
            num_envs: copies (an integer >= 1).
            scenario: as for :class:`~gaisnet_env.env.GaisNetEnv`.
            autoreset_mode: Gymnasium's :class:`~gymnasium.vector.AutoresetMode` (or its value):
                ``"NextStep"`` (default), ``"SameStep"`` or ``"Disabled"``.
            env_kwargs: :class:`GaisNetEnv`'s keyword arguments and scenario overrides, for every copy
                (``worker_system`` a name, class or factory: each copy builds its own).
        """
        n = check_num_envs(num_envs)
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in AutoresetMode)
            raise ValueError(f"autoreset_mode: got {autoreset_mode!r}; allowed: {allowed}") from None
        self.envs: list[GaisNetEnv] = build_copies(n, scenario, type(self).__name__, env_kwargs)
        self.num_envs = n
        self.autoreset_mode = mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        first = self.envs[0]
        self.render_mode = first.render_mode
        self.scenario = first.scenario
        self.n_edges = first.n_edges
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)
        self._obs = np.zeros((n, *self.single_observation_space.shape), dtype=np.float32)
        self._rewards = np.zeros(n, dtype=np.float64)
        self._terminations = np.zeros(n, dtype=np.bool_)
        self._truncations = np.zeros(n, dtype=np.bool_)
        self._autoreset = np.zeros(n, dtype=np.bool_)
        self._was_reset = False
        #: step the quiet copies together (gaisnet_env.quiet_steps): the same episodes bit for bit either way
        self.quiet_steps = True
        self._quiet = QuietSteps(self.envs)

    # ------------------------------------------------------------------------------------
    # Gymnasium's VectorEnv API

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy (or those of ``options["reset_mask"]``): copy ``i`` gets ``seed + i`` for an int
        seed, ``seed[i]`` for a list. Returns the ``(N, obs)`` float32 observations and the vector info."""
        seeds = copy_seeds(seed, self.num_envs)
        mask, options = reset_mask(options, self.num_envs)
        which = range(self.num_envs) if mask is None else np.flatnonzero(mask).tolist()
        infos = []
        for i in which:
            self._obs[i], info = self.envs[i].reset(seed=seeds[i], options=options)
            infos.append(info)
            self._terminations[i] = self._truncations[i] = self._autoreset[i] = False
        self._was_reset = True
        if mask is None:
            return self._obs.copy(), stack_infos(infos)
        out: dict[str, Any] = {}
        for i, info in zip(which, infos, strict=True):
            add_info(out, info, i, self.num_envs)
        return self._obs.copy(), out

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every copy with its row of ``actions`` (``(N, 2E)`` or ``(N, E, 2)``); a copy that ended on
        the previous step is reset instead under ``NEXT_STEP`` (reward 0, its reset info)."""
        if not self._was_reset:
            raise RuntimeError("step() called before reset()")
        acts = self._check_actions(actions)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            return self._step_same_step(acts)
        if self.autoreset_mode == AutoresetMode.DISABLED and self._autoreset.any():
            i = int(np.flatnonzero(self._autoreset)[0])
            raise RuntimeError(
                f"copy {i} ended and autoreset_mode is Disabled: reset it first "
                "(reset(options={'reset_mask': mask}))"
            )
        infos = []
        obs, rew, term, trunc = self._obs, self._rewards, self._terminations, self._truncations
        stepped, quiet_info = self._step_copies(acts, np.flatnonzero(~self._autoreset).tolist())
        if quiet_info is not None and not stepped and not self._autoreset.any():
            # every copy stepped quiet: their vector info
            np.logical_or(term, trunc, out=self._autoreset)
            return obs.copy(), rew.copy(), term.copy(), trunc.copy(), quiet_info
        for i, env in enumerate(self.envs):
            if self._autoreset[i]:
                obs[i], info = env.reset()
                rew[i], term[i], trunc[i] = 0.0, False, False
            elif i in stepped:
                obs[i], rew[i], term[i], trunc[i], info = stepped[i]
            else:  # a quiet copy: its results are in the arrays already
                info = None
            infos.append(info if info is not None else env._last_info)
        np.logical_or(term, trunc, out=self._autoreset)
        return obs.copy(), rew.copy(), term.copy(), trunc.copy(), stack_infos(infos)

    def _step_copies(self, acts: np.ndarray, which: list[int]) -> tuple[dict[int, tuple], dict[str, Any] | None]:
        """Step the copies ``which``: the quiet ones together, the others one by one
        (:func:`~gaisnet_env.quiet_steps.step_copies_quietly`). Writes every stepped copy's observation,
        reward and flags into ``self._obs`` ...; returns ``{i: (obs, reward, terminated, truncated, info)}``
        of the copies that stepped one by one and the quiet copies' vector info (None where none was
        quiet)."""
        stepped, quiet = step_copies_quietly(self._quiet if self.quiet_steps else None, self.envs, acts, which)
        if quiet is None:
            return stepped, None
        chosen, obs, rew, trunc, info = quiet
        self._obs[chosen], self._rewards[chosen], self._truncations[chosen] = obs, rew, trunc
        self._terminations[chosen] = False
        return stepped, {k: v.copy() for k, v in info.items()}

    def _stepped_row(self, stepped: dict[int, tuple], i: int) -> tuple:
        """Copy ``i``'s ``(obs, reward, terminated, truncated, info)`` after :meth:`_step_copies` (``info``
        None for a quiet copy: the env's ``_last_info`` holds it)."""
        if i in stepped:
            return stepped[i]
        return (self._obs[i].copy(), float(self._rewards[i]), bool(self._terminations[i]),
                bool(self._truncations[i]), None)

    def _check_actions(self, actions: Any) -> np.ndarray:
        """``actions`` as an array of N rows, or ValueError (naming the copy) before any copy steps."""
        acts = np.asarray(actions)
        n, E = self.num_envs, self.n_edges
        if acts.ndim < 1 or acts.shape[0] != n:
            raise ValueError(f"actions: expected shape ({n}, {2 * E}) for {n} copies, got {acts.shape}")
        if acts.dtype.kind in "iu" and acts.shape[1:] in ((2 * E,), (E, 2)):
            pairs = acts.reshape(n, E, 2)
            if (pairs >= 0).all() and (pairs < _ACTION_HI).all():
                return acts
        for i in range(n):  # the first bad row raises, naming its copy
            try:
                actions_core.parse(acts[i], E)
            except ValueError as e:
                raise ValueError(f"actions[{i}] (copy {i}): {e}") from None
        return acts

    def _step_same_step(self, acts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                         dict[str, Any]]:
        """``SAME_STEP`` autoreset: a copy that ends is reset at once; its last observation and info go
        to ``info["final_obs"]`` / ``info["final_info"]`` (as ``SyncVectorEnv``)."""
        infos: dict[str, Any] = {}
        obs, rew, term, trunc = self._obs, self._rewards, self._terminations, self._truncations
        stepped = step_copies(self.envs, acts, range(self.num_envs))
        for i, env in enumerate(self.envs):
            obs[i], rew[i], term[i], trunc[i], info = stepped[i]
            if term[i] or trunc[i]:
                infos = add_info(infos, {"final_obs": obs[i].copy(), "final_info": info}, i, self.num_envs)
                obs[i], info = env.reset()
            infos = add_info(infos, info, i, self.num_envs)
        return obs.copy(), rew.copy(), term.copy(), trunc.copy(), infos

    def action_masks(self) -> np.ndarray:
        """``(N, 8E)`` bool feasibility masks (per copy sb3-contrib's flat layout: per edge 3 routes, 5 ops)."""
        if not self._was_reset:
            raise RuntimeError("action_masks() called before reset()")
        return np.stack([env.action_masks() for env in self.envs])

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Per copy: ``name`` called with the arguments when it is a method, else its value (as
        ``SyncVectorEnv.call``). AttributeError naming it when the copies have no such attribute."""
        out = []
        for env in self.envs:
            attr = _copy_attr(env, name)
            out.append(attr(*args, **kwargs) if callable(attr) else attr)
        return tuple(out)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Per copy: attribute ``name`` (a method is called, as ``SyncVectorEnv.get_attr``)."""
        return self.call(name)

    def set_attr(self, name: str, values: Any) -> None:
        """Set attribute ``name`` of every copy: ``values[i]`` for a list or tuple of N values, else the
        same value everywhere."""
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"values: got {len(values)} values; num_envs is {self.num_envs} (one per copy)")
        for env, value in zip(self.envs, values, strict=True):
            setattr(env, name, value)

    def render(self) -> tuple[Any, ...] | None:
        """Every copy's frame (``render_mode`` ``"ansi"``: str, ``"rgb_array"``: array)."""
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        """Close every copy (their figures)."""
        for env in getattr(self, "envs", ()):
            try:
                env.close()
            except ImportError:  # VectorEnv.__del__ at interpreter shutdown: nothing left to free
                pass

    @property
    def np_random_seed(self) -> tuple[int, ...]:
        """The copies' seeds (as ``SyncVectorEnv.np_random_seed``)."""
        return tuple(env.np_random_seed for env in self.envs)

    @property
    def np_random(self) -> tuple[np.random.Generator, ...]:
        """The copies' random generators."""
        return tuple(env.np_random for env in self.envs)


def _copy_attr(env: GaisNetEnv, name: str) -> Any:
    try:
        return getattr(env, name)
    except AttributeError:
        raise AttributeError(f"name: {name!r}: the copies ({type(env).__name__}) have no such attribute") from None
