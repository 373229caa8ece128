"""Edges as agents with one shared policy (parameter sharing), trained with sb3-contrib's MaskablePPO.

The multi-agent view (:mod:`gaisnet_env.multiagent`) made trainable by a single-agent library, as
SuperSuit's ``pettingzoo_env_to_vec_env`` does: :class:`EdgeAgentsVecEnv` is an SB3 ``VecEnv`` in which
every edge of every env copy is one slot. A slot observes its edge's row (:func:`~gaisnet_env.agents.
augment.edge_rows`: the edge's 19 features, 3 memory features, the 6 global ones; 28 values in [0, 1]),
acts with ``MultiDiscrete([3, 5])`` (route, operation) under its edge's mask, and is rewarded with its
edge's share of the reward (``info["edge_reward"]``, ``reward_mode="per_edge"``) or the whole reward
(``"shared"``). One env step of a copy is E samples for the shared policy, so a 64-edge city gives 64
samples per epoch where the single-agent policy gets one (and a 128-part action to learn).

:func:`train_edge_agents` clones a teacher heuristic per edge, runs PPO, evaluates the system reward
on validation seeds 20000 + i and keeps the best model. The saved model plays the joint env through
:class:`~gaisnet_env.agents.saved_models.LearnedPolicy` (``train.py benchmark --policies <run>/best_model.zip``).
Command line: ``python -m gaisnet_env.agents.edge_agents --scenario city --timesteps 2400 --warm-start always-end``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gaisnet_env.agents.algos import HYPERPARAMS_DIR, algo_class, algo_kwargs, load_hyperparams
from gaisnet_env.agents.augment import ObsAugmenter, edge_row_dim, edge_rows
from gaisnet_env.agents.base import VALIDATION_SEED_BASE, run_episode
from gaisnet_env.agents.warm_start import bias_towards_no_op, fit_to_teacher
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from gaisnet_env.callbacks import EnvMetricsCallback
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.masks import flat_mask
from gaisnet_env.quiet_steps import QuietSteps, step_copies_quietly, with_quiet_rows
from gaisnet_env.worker_config import OPERATIONS, TIERS

REWARD_MODES: tuple[str, ...] = ("per_edge", "shared")
#: rl-zoo3-format hyperparameters of the shared edge policy (key: the scenario's env id).
EDGE_HYPERPARAMS = HYPERPARAMS_DIR / "ppo_mask_edges.yml"
_MASK_WIDTH = len(TIERS) + len(OPERATIONS)


class EdgeAgentsVecEnv(VecEnv):
    """SB3 ``VecEnv``: ``n_copies`` GaisNetEnv copies, every edge a slot (see the module docstring).

    Slot ``c * E + e`` is edge ``e`` of copy ``c``. ``seed(s)`` seeds copy ``c`` with ``s + c`` at the
    next ``reset()``; a copy that ends is reset inside ``step`` (SB3's autoreset), its last rows kept in
    each slot's ``infos[i]["terminal_observation"]``; the first slot of a copy carries the copy's ``info``
    (what :class:`~gaisnet_env.callbacks.EnvMetricsCallback` logs) and, at the end, the episode's system
    reward as ``infos[i]["episode"]`` (what SB3 logs as ``rollout/ep_rew_mean``)."""

    def __init__(self, scenario: Any = "city", n_copies: int = 1, reward_mode: str = "per_edge",
                 **env_kwargs: Any) -> None:
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode: got {reward_mode!r}; allowed: {', '.join(map(repr, REWARD_MODES))}")
        if isinstance(n_copies, bool) or not isinstance(n_copies, (int, np.integer)) or n_copies < 1:
            raise ValueError(f"n_copies: got {n_copies!r}; allowed: an integer >= 1")
        self.envs = [GaisNetEnv(scenario, **env_kwargs) for _ in range(int(n_copies))]
        self._quiet = QuietSteps(self.envs)  # quiet epochs of the copies stepped together
        self.n_edges = self.envs[0].n_edges
        self.reward_mode = reward_mode
        obs_space = spaces.Box(0.0, 1.0, shape=(edge_row_dim(),), dtype=np.float32)
        super().__init__(len(self.envs) * self.n_edges, obs_space, spaces.MultiDiscrete([len(TIERS), len(OPERATIONS)]))
        self._augmenters = [ObsAugmenter() for _ in self.envs]
        self._rows = np.zeros((self.num_envs, edge_row_dim()), dtype=np.float32)
        self._masks = np.ones((self.num_envs, _MASK_WIDTH), dtype=bool)
        self._copy_seeds: list[int | None] = [None] * len(self.envs)
        self._returns = np.zeros(len(self.envs))
        self._lengths = np.zeros(len(self.envs), dtype=np.int64)
        self._actions: np.ndarray | None = None

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed copy ``c`` with ``seed + c`` at the next :meth:`reset` (returns those seeds)."""
        self._copy_seeds = [None if seed is None else seed + c for c in range(len(self.envs))]
        return list(self._copy_seeds)

    def _slots(self, c: int) -> slice:
        return slice(c * self.n_edges, (c + 1) * self.n_edges)

    def _observe(self, c: int, obs: np.ndarray, info: dict[str, Any]) -> None:
        self._rows[self._slots(c)] = edge_rows(obs, self._augmenters[c])
        self._masks[self._slots(c)] = flat_mask(info["action_mask"]).reshape(self.n_edges, _MASK_WIDTH)

    def _reset_copy(self, c: int, seed: int | None) -> None:
        self._augmenters[c].reset()
        obs, info = self.envs[c].reset(seed=seed)
        self._returns[c], self._lengths[c] = 0.0, 0
        self._observe(c, obs, info)

    def reset(self) -> np.ndarray:
        """Reset every copy (with the seeds of :meth:`seed`, used once); the ``(num_envs, 28)`` rows."""
        for c in range(len(self.envs)):
            self._reset_copy(c, self._copy_seeds[c])
        self._copy_seeds = [None] * len(self.envs)
        return self._rows.copy()

    def step_async(self, actions: np.ndarray) -> None:
        """Keep the slots' actions, ``(num_envs, 2)``, for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """Step every copy with its edges' actions; slots are rewarded per :attr:`reward_mode`."""
        acts = self._actions
        if acts is None:
            raise RuntimeError("step_wait() called before step_async()")
        if acts.shape != (self.num_envs, 2):
            raise ValueError(f"actions: expected shape ({self.num_envs}, 2) (one (route, op) per edge slot), "
                             f"got {acts.shape}")
        rews = np.zeros(self.num_envs, dtype=np.float32)
        dones = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        per_copy = acts.reshape(len(self.envs), 2 * self.n_edges)  # copy c's edges are slots c*E .. c*E+E-1
        # quiet copies together, the others one by one (their ops as one batch with batched_ops)
        stepped = with_quiet_rows(*step_copies_quietly(self._quiet, self.envs, per_copy, list(range(len(self.envs)))))
        for c in range(len(self.envs)):
            s = self._slots(c)
            obs, reward, terminated, truncated, info = stepped[c]
            info = info if info is not None else self.envs[c]._last_info  # a quiet copy's: its row
            rews[s] = info["edge_reward"] if self.reward_mode == "per_edge" else reward
            self._returns[c] += float(reward)
            self._lengths[c] += 1
            infos[s.start] = dict(info)  # the copy's info on its first slot (EnvMetricsCallback reads it)
            if terminated or truncated:
                dones[s] = True
                last = edge_rows(obs, self._augmenters[c])
                for e in range(self.n_edges):
                    infos[s.start + e].update(terminal_observation=last[e],
                                              **{"TimeLimit.truncated": bool(truncated and not terminated)})
                infos[s.start]["episode"] = {"r": float(self._returns[c]), "l": int(self._lengths[c])}
                self._reset_copy(c, None)
            else:
                self._observe(c, obs, info)
        self._actions = None
        return self._rows.copy(), rews, dones, infos

    def action_masks(self) -> np.ndarray:
        """``(num_envs, 8)`` bool masks, each slot its edge's (route 3, op 5)."""
        return self._masks.copy()

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def _copies(self, indices: VecEnvIndices) -> list[GaisNetEnv]:
        return [self.envs[i // self.n_edges] for i in self._get_indices(indices)]

    def has_attr(self, attr_name: str) -> bool:
        return attr_name == "action_masks" or hasattr(self.envs[0], attr_name)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Attribute ``attr_name`` of the copy behind each slot of ``indices``."""
        return [getattr(env, attr_name) for env in self._copies(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for env in self._copies(indices):
            setattr(env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        """``"action_masks"``: each slot's own mask (sb3-contrib reads them so); else the copy's method."""
        if method_name == "action_masks":
            return list(self._masks[list(self._get_indices(indices))])
        return [getattr(env, method_name)(*method_args, **method_kwargs) for env in self._copies(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def edge_teacher_samples(scenario: Any, teacher: str, seeds: Sequence[int], gamma: float,
                         reward_mode: str = "per_edge",
                         env_kwargs: dict[str, Any] | None = None) -> tuple[np.ndarray, ...]:
    """Episodes of the policy spec ``teacher`` on ``seeds``, split edge by edge: rows ``(n, 28)``, actions
    ``(n, 2)``, masks ``(n, 8)``, each slot's discounted return at ``gamma`` ``(n,)`` and the episodes'
    system rewards."""
    from gaisnet_env.evaluation import build_policy

    rows, acts, masks, rets, totals = [], [], [], [], []
    for seed in seeds:
        env = GaisNetEnv(scenario, **(env_kwargs or {}))
        pol = build_policy(teacher, env)
        pol.reset(seed)
        aug = ObsAugmenter()
        obs, info = env.reset(seed=seed)
        ep_rews, total = [], 0.0
        while True:
            a = np.asarray(pol.act(obs, info))
            rows.append(edge_rows(obs, aug))
            acts.append(a.reshape(-1, 2))
            masks.append(flat_mask(info["action_mask"]).reshape(-1, _MASK_WIDTH))
            obs, reward, terminated, truncated, info = env.step(a)
            total += float(reward)
            ep_rews.append(info["edge_reward"] if reward_mode == "per_edge" else np.full(env.n_edges, reward))
            if terminated or truncated:
                break
        env.close()
        g, back = np.zeros(len(ep_rews[0])), []
        for r in reversed(ep_rews):
            g = np.asarray(r, dtype=np.float64) + gamma * g
            back.append(g)
        rets += back[::-1]
        totals.append(total)
    return (np.concatenate(rows), np.concatenate(acts), np.concatenate(masks), np.concatenate(rets),
            np.asarray(totals))


class _ValidateSystemReward(BaseCallback):
    """Every ``every`` calls: the system reward of the deterministic policy on seeds 20000 + i; keeps the
    best model (``best_model.zip``) and the history."""

    def __init__(self, scenario: Any, run_dir: Path, every: int, episodes: int,
                 env_kwargs: dict[str, Any] | None) -> None:
        super().__init__()
        self.scenario, self.run_dir, self.every, self.episodes = scenario, run_dir, every, episodes
        self.env_kwargs = env_kwargs or {}
        self.history: list[tuple[int, float]] = []
        self.best = -np.inf

    def validate(self) -> float:
        from gaisnet_env.agents.saved_models import LearnedPolicy

        pol = LearnedPolicy(self.model, name="edge policy")
        env = GaisNetEnv(self.scenario, **self.env_kwargs)
        score = float(np.mean([run_episode(pol, env, seed=VALIDATION_SEED_BASE + i).reward
                               for i in range(self.episodes)]))
        env.close()
        self.history.append((int(self.model.num_timesteps), score))
        self.logger.record("eval/system_reward", score)
        if score > self.best:
            self.best = score
            self.model.save(str(self.run_dir / "best_model"))
        return score

    def _on_training_start(self) -> None:
        self.validate()  # the cloned policy too

    def _on_step(self) -> bool:
        if self.n_calls % self.every == 0:
            self.validate()
        return True


def train_edge_agents(
    scenario: str = "city", timesteps: int | None = None, seed: int = 0, logdir: str | Path = "runs",
    run_name: str | None = None, warm_start: str | None = None, warm_start_episodes: int = 4,
    eval_episodes: int = 4, eval_freq: int | None = None, hyperparams: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None, verbose: int = 0, op_none_logit: float = 3.0,
) -> tuple[Any, Path]:
    """Train the shared edge policy (MaskablePPO) on ``scenario``; returns ``(model, run_dir)``.

    ``timesteps`` and ``eval_freq`` count env steps (epochs of all copies together; the policy sees E
    samples per env step); default the YAML's ``n_timesteps`` (:data:`EDGE_HYPERPARAMS`: rl-zoo3 keys
    plus ``n_copies``, ``reward_mode``, ``warm_start_epochs``, ``warm_start_batch``). With
    ``warm_start`` (a heuristic spec) the policy first imitates it on ``warm_start_episodes`` training
    seeds (``seed + 50_000 + i``), edge by edge; ``op_none_logit`` is added to op "none"'s initial logit
    first (as in :func:`~gaisnet_env.agents.learned.train`). The run directory gets ``best_model.zip`` (best system
    reward on validation seeds 20000 + i), ``final_model.zip`` and ``meta.json``."""
    params = load_hyperparams("ppo_mask", scenario, path=EDGE_HYPERPARAMS)
    params.update(hyperparams or {})
    n_copies = int(params.pop("n_copies", 1))
    reward_mode = str(params.pop("reward_mode", "per_edge"))
    bc_epochs, bc_batch = int(params.pop("warm_start_epochs", 20)), int(params.pop("warm_start_batch", 1024))
    env_steps = int(timesteps if timesteps is not None else float(params["n_timesteps"]))
    venv = EdgeAgentsVecEnv(scenario, n_copies, reward_mode, **(env_kwargs or {}))
    venv.seed(seed)
    E = venv.n_edges
    run_dir = Path(logdir) / (run_name or f"{scenario}_ppo_mask_edges_s{seed}")
    run_dir.mkdir(parents=True, exist_ok=True)
    model = algo_class("ppo_mask")(params["policy"], venv, seed=seed, verbose=verbose, device="cpu",
                                   tensorboard_log=str(run_dir / "tb"), **algo_kwargs(params))
    bias_towards_no_op(model, op_none_logit)
    t0 = time.perf_counter()
    ws: dict[str, float] = {}
    if warm_start:
        seeds = [seed + 50_000 + i for i in range(warm_start_episodes)]
        rows, acts, masks, rets, totals = edge_teacher_samples(scenario, warm_start, seeds, model.gamma, reward_mode,
                                                               env_kwargs)
        ws = {"teacher_reward": float(totals.mean()),
              **fit_to_teacher(model, rows, acts, masks, rets, epochs=bc_epochs, batch_size=bc_batch)}
    ws_s = time.perf_counter() - t0
    every = max(1, (eval_freq or max(1, env_steps // 5)) // n_copies)
    val = _ValidateSystemReward(scenario, run_dir, every, eval_episodes, env_kwargs)
    t1 = time.perf_counter()
    model.learn(total_timesteps=env_steps * E, callback=CallbackList([val, EnvMetricsCallback()]),
                tb_log_name="ppo_mask_edges")
    wall = time.perf_counter() - t1
    model.save(str(run_dir / "final_model"))
    meta = {"algo": "ppo_mask", "view": "edges (shared policy)", "scenario": scenario, "seed": seed,
            "env_steps": env_steps, "num_timesteps": int(model.num_timesteps), "n_copies": n_copies,
            "reward_mode": reward_mode, "op_none_logit": op_none_logit, "hyperparams": params,
            "env_kwargs": env_kwargs or {},
            "warm_start": {"teacher": warm_start, "episodes": warm_start_episodes, "wall_s": ws_s, **ws}
            if warm_start else None,
            "validation": [{"num_timesteps": t, "system_reward": r} for t, r in val.history],
            "best_eval_reward": float(val.best), "train_wall_s": wall}
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    venv.close()
    return model, run_dir


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gaisnet_env.agents.edge_agents``: train the shared edge policy."""
    p = argparse.ArgumentParser(description="Train one MaskablePPO policy shared by all edges (parameter sharing).")
    p.add_argument("--scenario", default="city")
    p.add_argument("--timesteps", type=int, default=None, help="env steps, all copies together (default: YAML)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--logdir", default="runs")
    p.add_argument("--run-name", default=None)
    p.add_argument("--warm-start", default=None, metavar="POLICY", help="heuristic spec to clone first")
    p.add_argument("--warm-start-episodes", type=int, default=4)
    p.add_argument("--eval-freq", type=int, default=None, help="env steps between validations")
    p.add_argument("--eval-episodes", type=int, default=4, help="validation episodes (seeds 20000 + i)")
    p.add_argument("--hyperparams", default=None, help="JSON overrides of the YAML entry")
    p.add_argument("--horizon", type=int, default=None, help="override the episode length (epochs)")
    p.add_argument("--op-none-logit", type=float, default=3.0, help='initial logit bonus of op "none"')
    a = p.parse_args(argv)
    _model, run_dir = train_edge_agents(
        a.scenario, a.timesteps, a.seed, a.logdir, a.run_name, a.warm_start, a.warm_start_episodes, a.eval_episodes,
        a.eval_freq, json.loads(a.hyperparams) if a.hyperparams else None,
        {"horizon": a.horizon} if a.horizon else None, op_none_logit=a.op_none_logit)
    meta = json.loads((run_dir / "meta.json").read_text())
    print(f"wrote {run_dir}: best validation system reward {meta['best_eval_reward']:.2f}, "
          f"training {meta['train_wall_s']:.0f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
