"""Multi-agent view: a PettingZoo ``ParallelEnv`` in which every edge server is an agent.

Agent ``edge_i`` observes its own 19 features plus the 6 global ones (see
``gaisnet_env.env``) and picks its own ``(route, operation)``. The reward is either the
system's shared reward (``reward_mode="shared"``) or the edge's own share
(``reward_mode="per_edge"``: the reward's terms restricted to the edge's cell, with the energy
and carbon references divided by the number of edges). Requires ``pip install pettingzoo``
(the ``multiagent`` extra).

Per-agent ``infos[agent]["action_mask"]`` is the edge's feasibility mask in Gymnasium's format for
its ``MultiDiscrete([3, 5])`` space: a tuple (route int8 (3,), operation int8 (5,)), so
``env.action_space(agent).sample(mask=infos[agent]["action_mask"])`` draws a feasible action
(``gaisnet_env.masks.flat_mask`` gives the flat 8-entry bool layout). ``state()`` is the flat
single-agent observation (``state_space``). For PettingZoo's AEC API use
``pettingzoo.utils.parallel_to_aec(parallel_env(...))``.

Example::

    from gaisnet_env.multiagent import parallel_env

    env = parallel_env("tiny", reward_mode="per_edge")
    obs, infos = env.reset(seed=0)
    while env.agents:
        actions = {a: env.action_space(a).sample(mask=infos[a]["action_mask"]) for a in env.agents}
        obs, rewards, terms, truncs, infos = env.step(actions)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from gaisnet_env.env import EDGE_FEATURES, GLOBAL_FEATURES, GaisNetEnv
from gaisnet_env.scenario import Scenario
from gaisnet_env.worker_config import OPERATIONS, TIERS

_F, _G = len(EDGE_FEATURES), len(GLOBAL_FEATURES)


class GaisNetParallelEnv(ParallelEnv):
    """Each edge an agent; all agents act at every epoch."""

    metadata = {"name": "gaisnet_parallel_v0", "render_modes": ["ansi", "rgb_array"], "is_parallelizable": True}

    def __init__(
        self,
        scenario: str | Path | dict[str, Any] | Scenario = "metro",
        reward_mode: str = "shared",
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        if reward_mode not in ("shared", "per_edge"):
            raise ValueError(f"reward_mode: got {reward_mode!r}; allowed: 'shared', 'per_edge'")
        self.env = GaisNetEnv(scenario, render_mode=render_mode, **env_kwargs)
        self.reward_mode = reward_mode
        self.render_mode = render_mode
        self.possible_agents = [f"edge_{i}" for i in range(self.env.n_edges)]
        self.agents: list[str] = []
        # one space object per agent (PettingZoo's tests want the same object on every call,
        # and separate objects keep the agents' sampling streams independent)
        self.observation_spaces = {
            a: spaces.Box(0.0, 1.0, shape=(_F + _G,), dtype=np.float32) for a in self.possible_agents
        }
        self.action_spaces = {a: spaces.MultiDiscrete([len(TIERS), len(OPERATIONS)]) for a in self.possible_agents}
        self.state_space = self.env.observation_space

    def observation_space(self, agent: str) -> spaces.Box:
        """The agent's own 19 edge features then the 6 global ones, all in [0, 1]."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.MultiDiscrete:
        """``MultiDiscrete([3, 5])``: (route, knowledge operation) of the agent's edge."""
        return self.action_spaces[agent]

    def _split(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        E = self.env.n_edges
        per_edge = obs[: E * _F].reshape(E, _F)
        glob = obs[E * _F :]
        return {a: np.concatenate([per_edge[i], glob]) for i, a in enumerate(self.possible_agents)}

    def _infos(self, info: dict[str, Any]) -> dict[str, dict[str, Any]]:
        mask = info["action_mask"]  # Gymnasium's tuple: per edge a route then an op array (read-only)
        return {a: {"action_mask": (mask[2 * i], mask[2 * i + 1])} for i, a in enumerate(self.agents)}

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        if seed is not None:
            for i, a in enumerate(self.possible_agents):
                self.action_spaces[a].seed(seed + 1 + i)
                self.observation_spaces[a].seed(seed + 1 + i)
        return self._split(obs), self._infos(info)

    def step(self, actions: dict[str, Any]) -> tuple[
        dict[str, np.ndarray], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]
    ]:
        """All live agents act at once; raises ValueError for a missing or unknown agent."""
        if not self.agents:
            raise RuntimeError("step() called with no live agents; call reset()")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"actions: no action for agent(s) {', '.join(missing)}")
        unknown = [a for a in actions if a not in self.agents]
        if unknown:
            raise ValueError(f"actions: unknown or finished agent(s) {', '.join(map(str, unknown))}")
        joint = np.concatenate([np.asarray(actions[a]).reshape(-1) for a in self.possible_agents])
        obs, reward, terminated, truncated, info = self.env.step(joint)
        if self.reward_mode == "shared":
            rewards = {a: float(reward) for a in self.agents}
        else:
            rewards = {a: float(info["edge_reward"][i]) for i, a in enumerate(self.agents)}
        terms = {a: bool(terminated) for a in self.agents}
        truncs = {a: bool(truncated) for a in self.agents}
        observations = self._split(obs)
        infos = self._infos(info)
        for i, a in enumerate(self.agents):
            infos[a].update(edge_reward=float(info["edge_reward"][i]), system_reward=float(reward))
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terms, truncs, infos

    def render(self) -> str | np.ndarray | None:
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    def state(self) -> np.ndarray:
        """The full (single-agent) observation: every edge's features plus the global ones."""
        if self.env.state is None:
            raise RuntimeError("state() called before reset()")
        return self.env._observation()


def parallel_env(
    scenario: str | Path | dict[str, Any] | Scenario = "metro", reward_mode: str = "shared", **kwargs: Any
) -> GaisNetParallelEnv:
    """Build a :class:`GaisNetParallelEnv` (PettingZoo's conventional factory name)."""
    return GaisNetParallelEnv(scenario, reward_mode=reward_mode, **kwargs)
