"""Learned agents from stable-baselines3 / sb3-contrib: PPO, A2C, DQN and MaskablePPO.

* Hyperparameters per algorithm and scenario live in ``agents/hyperparams/<algo>.yml`` in the
  rl-zoo3 format (top-level key = registered env id, e.g. ``gaisnet_env/GaisNet-metro-v0``);
  :func:`load_hyperparams` merges them over :data:`DEFAULTS`.
* :func:`train` builds the vectorised training envs (seeds ``seed, seed+1, ...``), a
  validation env (one copy per validation episode, copy ``i`` reseeded with
  :data:`~gaisnet_env.agents.base.VALIDATION_SEED_BASE` ``+ i`` before every evaluation, so its episodes
  are seeds 20000, 20001, ..., disjoint from the benchmark's evaluation seeds), checkpoints, keeps the
  best model on the validation env and can resume from a saved model.
* :class:`LearnedPolicy` adapts a trained model to the :class:`~gaisnet_env.agents.base.Policy`
  interface (deterministic actions; MaskablePPO gets ``info['action_mask']`` made flat, its layout).

The pieces live in :mod:`~gaisnet_env.agents.algos` (algorithms, hyperparameters),
:mod:`~gaisnet_env.agents.augment` (observation memory), :mod:`~gaisnet_env.agents.warm_start`
(behaviour cloning) and :mod:`~gaisnet_env.agents.saved_models` (trained models as policies); this
module trains and re-exports them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
from gaisnet_env.agents.algos import (
    ALGOS,
    ALIASES,
    DEFAULTS,
    HYPERPARAMS_DIR,
    algo_class,
    algo_kwargs,
    canonical_algo,
    load_hyperparams,
    scenario_env_id,
)
from gaisnet_env.agents.augment import AugmentObservation, ObsAugmenter
from gaisnet_env.agents.base import VALIDATION_SEED_BASE
from gaisnet_env.agents.saved_models import LearnedPolicy, detect_algo, load_policy, resolve_model_path
from gaisnet_env.agents.warm_start import behaviour_clone, bias_towards_no_op, teacher_episode

#: Dotted name of the observation-memory wrapper (rl-zoo3 ``env_wrapper`` entry).
AUGMENT = "gaisnet_env.agents.learned.AugmentObservation"


def _import(path: str) -> Any:
    mod, _, name = path.rpartition(".")
    import importlib

    return getattr(importlib.import_module(mod), name)


def _wrapper_list(wrapper: str | list[Any] | None) -> list[str]:
    """rl-zoo3 ``env_wrapper``: one dotted name or a list of them (dict entries: their key)."""
    if not wrapper:
        return []
    items = wrapper if isinstance(wrapper, list) else [wrapper]
    return [next(iter(w)) if isinstance(w, dict) else str(w) for w in items]


def make_env_fn(
    scenario: str,
    seed: int,
    wrapper: str | list[str] | None = None,
    masked: bool = False,
    env_kwargs: dict[str, Any] | None = None,
) -> Callable[[], gym.Env]:
    """A thunk building one monitored env (optionally flattened / mask-wrapped), seeded at ``seed``."""

    def thunk() -> gym.Env:
        from stable_baselines3.common.monitor import Monitor

        from gaisnet_env.env import GaisNetEnv

        env: gym.Env = GaisNetEnv(scenario, **(env_kwargs or {}))
        env.reset(seed=seed)
        env.action_space.seed(seed)
        for w in _wrapper_list(wrapper):
            env = _import(w)(env)
        env = Monitor(env)
        if masked:
            from sb3_contrib.common.wrappers import ActionMasker

            env = ActionMasker(env, lambda e: e.unwrapped.action_masks())
        return env

    return thunk


def make_vec_env(
    scenario: str,
    n_envs: int,
    seed: int,
    wrapper: str | list[str] | None = None,
    masked: bool = False,
    subproc: bool = False,
    env_kwargs: dict[str, Any] | None = None,
) -> Any:
    """``n_envs`` envs with seeds ``seed .. seed+n_envs-1`` in a Dummy (or Subproc) VecEnv."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    fns = [make_env_fn(scenario, seed + i, wrapper, masked, env_kwargs) for i in range(n_envs)]
    venv = SubprocVecEnv(fns) if subproc and n_envs > 1 else DummyVecEnv(fns)
    venv.seed(seed)
    return venv


def train(
    scenario: str = "metro", algo: str = "ppo", timesteps: int | None = None, seed: int = 0,
    logdir: str | Path = "runs", resume: str | Path | None = None, eval_freq: int | None = None,
    eval_episodes: int = 4, hyperparams: dict[str, Any] | None = None, progress: bool = True,
    subproc: bool = False, env_kwargs: dict[str, Any] | None = None, checkpoint_freq: int | None = None,
    verbose: int = 0, run_name: str | None = None, time_budget_s: float | None = None,
    op_none_logit: float = 3.0, warm_start: str | None = None, warm_start_episodes: int = 12,
    warm_start_jobs: int = 1,
) -> tuple[Any, Path]:
    """Train ``algo`` on ``scenario``; returns ``(model, run_dir)``.

    The run directory holds ``final_model.zip``, ``best_model.zip`` (best mean reward on the
    validation env, seeds from ``VALIDATION_SEED_BASE``, disjoint from the benchmark's evaluation seeds),
    ``checkpoints/``, TensorBoard
    logs (``tb/``) and ``meta.json`` (algo, scenario, hyperparameters, timings).

    Args:
        timesteps: environment steps (all envs together); default the YAML's ``n_timesteps``.
        resume: a saved model (``.zip``) to continue training from.
        eval_freq: evaluate every this many env steps (all envs together); default ~5 times a run.
        hyperparams: overrides of the YAML entry (rl-zoo3 keys).
        subproc: run the training envs in subprocesses (uses more cores).
        env_kwargs: extra ``GaisNetEnv`` arguments (scenario overrides), e.g. ``{"horizon": 10}``.
        time_budget_s: stop learning after this many seconds of wall time (None: no limit, the default:
            a step budget gives the same agent on any machine). ``meta.json``'s ``stopped_by`` says which
            budget ended the run (``"steps"`` or ``"time"``).
        op_none_logit: initial logit bonus of op "none" in a fresh actor-critic policy, so the
            untrained agent starts few knowledge operations (each is real, slow training):
            3.0 makes "none" ~0.83 likely per edge at first. 0 disables.
        warm_start: a heuristic (``name:key=value`` overrides allowed) or ``oracle:...``: before RL,
            clone its behaviour (and fit the value head to its discounted returns) on
            ``warm_start_episodes`` training-seed episodes, collected in ``warm_start_jobs`` processes;
            PPO then improves on it. Only for PPO / A2C / MaskablePPO; ignored on resume.
    """
    a = canonical_algo(algo)
    params = load_hyperparams(a, scenario)
    params.update(hyperparams or {})
    n_steps_total = int(timesteps if timesteps is not None else float(params["n_timesteps"]))
    n_envs = int(params.get("n_envs", 1))
    wrapper = params.get("env_wrapper")
    masked = a == "ppo_mask"
    run_dir = Path(logdir) / (run_name or f"{scenario}_{a}_s{seed}")
    run_dir.mkdir(parents=True, exist_ok=True)
    train_env = make_vec_env(scenario, n_envs, seed, wrapper, masked, subproc, env_kwargs)
    # one copy per validation episode: copy i plays seed VALIDATION_SEED_BASE + i (DummyVecEnv.seed)
    eval_env = make_vec_env(scenario, eval_episodes, VALIDATION_SEED_BASE, wrapper, masked, False, env_kwargs)
    horizon = int(train_env.get_attr("scenario")[0].horizon) if hasattr(train_env, "get_attr") else 200

    model, reset_steps, ws_stats = _build_model(
        a, params, train_env, run_dir, scenario, seed, resume, verbose, op_none_logit, warm_start,
        warm_start_episodes, warm_start_jobs, env_kwargs, progress, AUGMENT in _wrapper_list(wrapper))
    per_env = max(1, n_envs)
    ev = eval_freq or max(horizon, n_steps_total // 5)
    ck = checkpoint_freq or max(horizon, n_steps_total // 4)
    callbacks, eval_cb, stop_cb = _callbacks(a, eval_env, run_dir, max(1, ev // per_env), max(1, ck // per_env),
                                             eval_episodes, verbose, time_budget_s)
    t0 = time.perf_counter()
    model.learn(total_timesteps=n_steps_total, callback=callbacks, progress_bar=progress,
                reset_num_timesteps=reset_steps, tb_log_name=a)
    wall = time.perf_counter() - t0
    model.save(str(run_dir / "final_model"))
    if not (run_dir / "best_model.zip").exists():
        model.save(str(run_dir / "best_model"))
    _write_meta(run_dir, {
        "algo": a, "scenario": scenario, "seed": seed, "timesteps": n_steps_total,
        "num_timesteps": int(model.num_timesteps),
        "stopped_by": "time" if stop_cb is not None and stop_cb.stopped_at is not None else "steps",
        "time_budget_s": time_budget_s, "train_wall_s": wall, "hyperparams": params, "env_kwargs": env_kwargs or {},
        "best_eval_reward": float(getattr(eval_cb, "best_mean_reward", float("nan"))),
        "resumed_from": str(resume) if resume else None,
        "warm_start": {"teacher": warm_start, **ws_stats} if ws_stats else None, "op_none_logit": op_none_logit,
    })
    train_env.close()
    eval_env.close()
    return model, run_dir


def _write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    """``run_dir/meta.json``: the run's record (hyperparameters that JSON cannot hold as text)."""
    hp = meta["hyperparams"]
    meta = {**meta, "hyperparams": {k: (v if isinstance(v, (int, float, str, bool, type(None), list, dict)) else str(v))
                                    for k, v in hp.items()}}
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2, default=str))


def _build_model(a: str, params: dict[str, Any], train_env: Any, run_dir: Path, scenario: str, seed: int,
                 resume: str | Path | None, verbose: int, op_none_logit: float, warm_start: str | None,
                 warm_start_episodes: int, warm_start_jobs: int, env_kwargs: dict[str, Any] | None,
                 progress: bool, augment: bool) -> tuple[Any, bool, dict[str, float] | None]:
    """The model of :func:`train`: loaded from ``resume``, or new (op "none" biased, warm-started from the
    ``warm_start`` teacher). Returns (model, whether learn resets its step count, warm-start stats)."""
    cls = algo_class(a)
    kw = algo_kwargs(params)
    if resume:
        model = cls.load(str(resume), env=train_env, device="cpu", tensorboard_log=str(run_dir / "tb"))
        return model, False, None
    model = cls(params["policy"], train_env, seed=seed, verbose=verbose, device="cpu",
                tensorboard_log=str(run_dir / "tb"), **kw)
    ws_stats = None
    if op_none_logit and a != "dqn":
        bias_towards_no_op(model, op_none_logit)
    if warm_start and a != "dqn":
        t_ws = time.perf_counter()
        ws_stats = behaviour_clone(model, scenario, warm_start, warm_start_episodes, seed=seed,
                                   env_kwargs=env_kwargs, progress=progress, augment=augment, jobs=warm_start_jobs)
        ws_stats["wall_s"] = time.perf_counter() - t_ws
    return model, True, ws_stats


def _callbacks(a: str, eval_env: Any, run_dir: Path, eval_every: int, checkpoint_every: int, eval_episodes: int,
               verbose: int, time_budget_s: float | None) -> tuple[Any, Any, Any]:
    """:func:`train`'s callbacks (checkpoints, validation keeping the best model, env metrics, the time
    budget; ``*_every`` in calls per env): (the list, the validation callback, the stop callback or None)."""
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback, EvalCallback

    from gaisnet_env.callbacks import EnvMetricsCallback, StopAfterSeconds

    if a == "ppo_mask":
        from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback as EvalCB
    else:
        EvalCB = EvalCallback  # noqa: N806
    eval_cb = _ReseedingEval(EvalCB)(
        eval_env,
        eval_seed=VALIDATION_SEED_BASE,
        n_eval_episodes=eval_episodes,
        eval_freq=eval_every,
        best_model_save_path=str(run_dir),
        log_path=str(run_dir / "eval"),
        deterministic=True,
        verbose=verbose,
    )
    stop_cb = StopAfterSeconds(time_budget_s, verbose=1) if time_budget_s else None
    callbacks = CallbackList([
        CheckpointCallback(save_freq=checkpoint_every, save_path=str(run_dir / "checkpoints"), name_prefix=f"{a}"),
        eval_cb,
        EnvMetricsCallback(),
        *([stop_cb] if stop_cb else []),
    ])
    return callbacks, eval_cb, stop_cb


def _ReseedingEval(base: type) -> type:  # noqa: N802 - a class factory
    """An EvalCallback subclass that reseeds its env before every evaluation, so each evaluation runs the
    same validation episodes: with one env copy per episode (as :func:`train` builds it), episode ``i`` is
    seed ``eval_seed + i``, the episode ``train.py evaluate --seeds`` plays on that seed."""

    class ReseedingEval(base):  # type: ignore[misc, valid-type]
        def __init__(self, eval_env: Any, eval_seed: int = VALIDATION_SEED_BASE, **kwargs: Any) -> None:
            super().__init__(eval_env, **kwargs)
            self.eval_seed = eval_seed

        def _on_step(self) -> bool:
            if self.n_calls == 1:  # evaluate the starting policy too (e.g. a warm start)
                freq, self.eval_freq = self.eval_freq, 1
                self.eval_env.seed(self.eval_seed)
                try:
                    return super()._on_step()
                finally:
                    self.eval_freq = freq
            if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
                self.eval_env.seed(self.eval_seed)
            return super()._on_step()

    return ReseedingEval


__all__ = [
    "ALGOS", "ALIASES", "AUGMENT", "DEFAULTS", "HYPERPARAMS_DIR", "AugmentObservation", "LearnedPolicy", "ObsAugmenter",
    "algo_class", "algo_kwargs", "behaviour_clone", "bias_towards_no_op", "canonical_algo", "detect_algo",
    "load_hyperparams", "load_policy", "make_env_fn", "make_vec_env", "resolve_model_path", "scenario_env_id",
    "teacher_episode", "train",
]
