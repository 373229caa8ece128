"""Learned agents from stable-baselines3 / sb3-contrib: PPO, A2C, DQN and MaskablePPO.

* Hyperparameters per algorithm and scenario live in ``agents/hyperparams/<algo>.yml`` in the
  rl-zoo3 format (top-level key = registered env id, e.g. ``gaisnet_env/GaisNet-metro-v0``);
  :func:`load_hyperparams` merges them over :data:`DEFAULTS`.
* :func:`train` builds the vectorised training envs (seeds ``seed, seed+1, ...``), a
  validation env (seeds from :data:`~gaisnet_env.agents.base.VALIDATION_SEED_BASE`, disjoint from the
  benchmark's evaluation seeds), checkpoints, keeps the best model on the validation env and can resume
  from a saved model.
* :class:`LearnedPolicy` adapts a trained model to the :class:`~gaisnet_env.agents.base.Policy`
  interface (deterministic actions; MaskablePPO gets ``info['action_mask']`` made flat, its layout).
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml
from gaisnet_env.agents.base import VALIDATION_SEED_BASE

from gaisnet_env.masks import flat_mask

HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
#: Dotted name of the observation-memory wrapper (rl-zoo3 ``env_wrapper`` entry).
AUGMENT = "gaisnet_env.agents.learned.AugmentObservation"

#: Algorithm names (rl-zoo3 spelling) and accepted aliases.
ALGOS: tuple[str, ...] = ("ppo", "a2c", "dqn", "ppo_mask")
ALIASES: dict[str, str] = {"maskable_ppo": "ppo_mask", "maskableppo": "ppo_mask", "mppo": "ppo_mask"}

#: Defaults used when a scenario has no entry in the YAML file.
DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {"policy": "MlpPolicy", "n_envs": 2, "n_timesteps": 20_000, "n_steps": 256, "batch_size": 64},
    "a2c": {"policy": "MlpPolicy", "n_envs": 2, "n_timesteps": 20_000, "n_steps": 16},
    "dqn": {
        "policy": "MlpPolicy",
        "n_envs": 1,
        "n_timesteps": 20_000,
        "learning_starts": 500,
        "env_wrapper": "gaisnet_env.wrappers.FlattenMultiDiscreteAction",
    },
    "ppo_mask": {"policy": "MlpPolicy", "n_envs": 2, "n_timesteps": 20_000, "n_steps": 256, "batch_size": 64},
}
# keys of the rl-zoo3 format that are not constructor arguments of the algorithm
_ZOO_KEYS = ("n_timesteps", "policy", "n_envs", "env_wrapper", "normalize", "frame_stack", "callback",
             "vec_env_wrapper", "env_kwargs")


def canonical_algo(algo: str) -> str:
    """``ppo`` / ``a2c`` / ``dqn`` / ``ppo_mask`` from a name or alias (case-insensitive)."""
    a = algo.lower().replace("-", "_")
    a = ALIASES.get(a, a)
    if a not in ALGOS:
        raise ValueError(f"algo: got {algo!r}; known: {', '.join(ALGOS)} (aliases: {', '.join(ALIASES)})")
    return a


def algo_class(algo: str) -> type:
    """The SB3 / sb3-contrib class of ``algo``."""
    a = canonical_algo(algo)
    if a == "ppo_mask":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    import stable_baselines3 as sb3

    return {"ppo": sb3.PPO, "a2c": sb3.A2C, "dqn": sb3.DQN}[a]


def scenario_env_id(scenario: str) -> str:
    """Registered id of a built-in scenario, else the generic id (custom scenario files)."""
    import gaisnet_env

    return gaisnet_env.env_id(scenario) if scenario in gaisnet_env.BUILTIN_SCENARIOS else "gaisnet_env/GaisNet-v0"


def load_hyperparams(algo: str, scenario: str = "metro", path: str | Path | None = None) -> dict[str, Any]:
    """Hyperparameters of ``algo`` for ``scenario``: the YAML entry merged over :data:`DEFAULTS`."""
    a = canonical_algo(algo)
    params = dict(DEFAULTS[a])
    file = Path(path) if path else HYPERPARAMS_DIR / f"{a}.yml"
    if file.exists():
        data = yaml.safe_load(file.read_text()) or {}
        entry = data.get(scenario_env_id(scenario)) or data.get(scenario)
        if entry:
            params.update(entry)
    return params


def _schedule(value: Any) -> Any:
    """rl-zoo3 ``lin_<x>`` strings -> linear schedules; numbers pass through."""
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress: progress * start
    return float(value) if isinstance(value, str) else value


def algo_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments of the algorithm from a hyperparameter dict (rl-zoo3 conventions)."""
    kw = {k: v for k, v in params.items() if k not in _ZOO_KEYS}
    for key in ("learning_rate", "clip_range"):
        if key in kw:
            kw[key] = _schedule(kw[key])
    pk = kw.get("policy_kwargs")
    if isinstance(pk, str):  # rl-zoo3 writes e.g. "dict(net_arch=[64, 64])"
        import torch.nn as nn

        kw["policy_kwargs"] = eval(pk, {"__builtins__": {}}, {"dict": dict, "nn": nn})  # noqa: S307
    return kw


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
    scenario: str = "metro",
    algo: str = "ppo",
    timesteps: int | None = None,
    seed: int = 0,
    logdir: str | Path = "runs",
    resume: str | Path | None = None,
    eval_freq: int | None = None,
    eval_episodes: int = 4,
    hyperparams: dict[str, Any] | None = None,
    progress: bool = True,
    subproc: bool = False,
    env_kwargs: dict[str, Any] | None = None,
    checkpoint_freq: int | None = None,
    verbose: int = 0,
    run_name: str | None = None,
    time_budget_s: float | None = None,
    op_none_logit: float = 3.0,
    warm_start: str | None = None,
    warm_start_episodes: int = 12,
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
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback, EvalCallback

    from gaisnet_env.callbacks import EnvMetricsCallback, StopAfterSeconds

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
    eval_env = make_vec_env(scenario, 1, VALIDATION_SEED_BASE, wrapper, masked, False, env_kwargs)
    horizon = int(train_env.get_attr("scenario")[0].horizon) if hasattr(train_env, "get_attr") else 200

    cls = algo_class(a)
    kw = algo_kwargs(params)
    if resume:
        model = cls.load(str(resume), env=train_env, device="cpu", tensorboard_log=str(run_dir / "tb"))
        reset_steps = False
    else:
        model = cls(params["policy"], train_env, seed=seed, verbose=verbose, device="cpu",
                    tensorboard_log=str(run_dir / "tb"), **kw)
        reset_steps = True
        if op_none_logit and a != "dqn":
            bias_towards_no_op(model, op_none_logit)
        if warm_start and a != "dqn":
            t_ws = time.perf_counter()
            ws_stats = behaviour_clone(model, scenario, warm_start, warm_start_episodes, seed=seed,
                                       env_kwargs=env_kwargs, progress=progress,
                                       augment=AUGMENT in _wrapper_list(wrapper), jobs=warm_start_jobs)
            ws_stats["wall_s"] = time.perf_counter() - t_ws

    ws_stats = locals().get("ws_stats")
    per_env = max(1, n_envs)
    ev = eval_freq or max(horizon, n_steps_total // 5)
    ck = checkpoint_freq or max(horizon, n_steps_total // 4)
    if masked:
        from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback as EvalCB
    else:
        EvalCB = EvalCallback  # noqa: N806
    eval_cb = _ReseedingEval(EvalCB)(
        eval_env,
        eval_seed=VALIDATION_SEED_BASE,
        n_eval_episodes=eval_episodes,
        eval_freq=max(1, ev // per_env),
        best_model_save_path=str(run_dir),
        log_path=str(run_dir / "eval"),
        deterministic=True,
        verbose=verbose,
    )
    stop_cb = StopAfterSeconds(time_budget_s, verbose=1) if time_budget_s else None
    callbacks = CallbackList([
        CheckpointCallback(save_freq=max(1, ck // per_env), save_path=str(run_dir / "checkpoints"),
                           name_prefix=f"{a}"),
        eval_cb,
        EnvMetricsCallback(),
        *([stop_cb] if stop_cb else []),
    ])
    t0 = time.perf_counter()
    model.learn(total_timesteps=n_steps_total, callback=callbacks, progress_bar=progress,
                reset_num_timesteps=reset_steps, tb_log_name=a)
    wall = time.perf_counter() - t0
    model.save(str(run_dir / "final_model"))
    if not (run_dir / "best_model.zip").exists():
        model.save(str(run_dir / "best_model"))
    meta = {
        "algo": a,
        "scenario": scenario,
        "seed": seed,
        "timesteps": n_steps_total,
        "num_timesteps": int(model.num_timesteps),
        "stopped_by": "time" if stop_cb is not None and stop_cb.stopped_at is not None else "steps",
        "time_budget_s": time_budget_s,
        "train_wall_s": wall,
        "hyperparams": {k: (v if isinstance(v, (int, float, str, bool, type(None), list, dict)) else str(v))
                        for k, v in params.items()},
        "env_kwargs": env_kwargs or {},
        "best_eval_reward": float(getattr(eval_cb, "best_mean_reward", float("nan"))),
        "resumed_from": str(resume) if resume else None,
        "warm_start": {"teacher": warm_start, **ws_stats} if ws_stats else None,
        "op_none_logit": op_none_logit,
    }
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    train_env.close()
    eval_env.close()
    return model, run_dir


def bias_towards_no_op(model: Any, logit: float) -> None:
    """Add ``logit`` to the bias of op "none" in each edge's op head of an actor-critic policy.

    The MultiDiscrete logits are ``[route(3), op(5)] * E``; only the initial distribution
    changes (the agent may still learn any op). Each op is real model training, so a
    uniform initial policy (4 of 5 choices start one) would make early training very slow.
    """
    import torch

    net = getattr(model.policy, "action_net", None)
    nvec = getattr(model.action_space, "nvec", None)
    if net is None or nvec is None or getattr(net, "bias", None) is None:
        return
    with torch.no_grad():
        start = 0
        for i, n in enumerate(np.asarray(nvec).ravel()):
            if i % 2 == 1:  # an op component
                net.bias[start] += float(logit)
            start += int(n)


def teacher_episode(scenario: str, teacher: str, seed: int, env_kwargs: dict[str, Any] | None = None,
                    augment: bool = False) -> tuple[list, list, list, list]:
    """One episode of the policy spec ``teacher`` (a heuristic, ``name:key=value`` overrides, or the
    ``oracle``) on seed ``seed``: (observations, actions, action masks, rewards), one entry per step.
    Observations are augmented (:class:`ObsAugmenter`) when ``augment``."""
    from gaisnet_env.env import GaisNetEnv
    from gaisnet_env.evaluation import build_policy

    env = GaisNetEnv(scenario, **(env_kwargs or {}))
    pol = build_policy(teacher, env)
    pol.reset(seed)
    aug = ObsAugmenter()
    aug.reset()
    o, info = env.reset(seed=seed)
    obs_l, act_l, mask_l, rews = [], [], [], []
    while True:
        a = pol.act(o, info)
        obs_l.append(aug(o) if augment else o)
        act_l.append(np.asarray(a))
        mask_l.append(flat_mask(info["action_mask"]))
        o, r, term, trunc, info = env.step(a)
        rews.append(float(r))
        if term or trunc:
            break
    env.close()
    return obs_l, act_l, mask_l, rews


def behaviour_clone(
    model: Any,
    scenario: str,
    teacher: str,
    episodes: int = 12,
    seed: int = 0,
    epochs: int = 150,
    lr: float = 2e-3,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = False,
    augment: bool = False,
    jobs: int = 1,
) -> dict[str, float]:
    """Warm-start an actor-critic ``model`` by imitating ``teacher`` (a heuristic, with optional
    ``name:key=value`` overrides, or ``oracle:...``: slow, so give it ``jobs`` processes).

    Collects ``episodes`` teacher episodes on *training* seeds (``seed + 50_000 + i``, far from
    the evaluation seeds), then minimises ``-log pi(a_teacher | s) + 0.5 (V(s) - G)^2`` with
    ``G`` the discounted return (the model's gamma). Returns the teacher's mean episode reward,
    the number of samples and the final imitation accuracy (share of matching action parts).
    """
    import torch

    gamma = float(getattr(model, "gamma", 0.99))
    seeds = [seed + 50_000 + i for i in range(episodes)]
    it: Any
    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from gaisnet_env.evaluation import _worker_init

        ex = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init)
        it = ex.map(teacher_episode, *zip(*[(scenario, teacher, s, env_kwargs, augment) for s in seeds], strict=True))
    else:
        ex = None
        it = (teacher_episode(scenario, teacher, s, env_kwargs, augment) for s in seeds)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=episodes, desc=f"warm start: {teacher} episodes", unit="ep")
    obs_l, act_l, mask_l, ret_l, ep_rewards = [], [], [], [], []
    try:
        for o_ep, a_ep, m_ep, rews in it:
            obs_l += o_ep
            act_l += a_ep
            mask_l += m_ep
            g, rets = 0.0, []
            for r in reversed(rews):
                g = r + gamma * g
                rets.append(g)
            ret_l.extend(reversed(rets))
            ep_rewards.append(sum(rews))
    finally:  # the worker processes end also when an episode raised
        if ex is not None:
            ex.shutdown(cancel_futures=True)
    policy = model.policy
    obs = torch.as_tensor(np.asarray(obs_l), dtype=torch.float32)
    acts = torch.as_tensor(np.asarray(act_l), dtype=torch.int64)
    masks = np.asarray(mask_l)
    rets = torch.as_tensor(np.asarray(ret_l), dtype=torch.float32)
    masked = type(model).__name__ == "MaskablePPO"
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    ret_var = float(rets.var()) + 1e-6  # scale the value loss so it does not swamp the imitation
    n = len(obs)
    policy.set_training_mode(True)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for b in range(0, n, 128):
            idx = perm[b : b + 128]
            kw = {"action_masks": masks[idx.numpy()]} if masked else {}
            values, log_prob, _ent = policy.evaluate_actions(obs[idx], acts[idx], **kw)
            v_loss = torch.nn.functional.mse_loss(values.flatten(), rets[idx]) / ret_var
            loss = -log_prob.mean() + 0.5 * v_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    policy.set_training_mode(False)
    with torch.no_grad():
        kw = {"action_masks": masks} if masked else {}
        pred, _ = model.predict(obs.numpy(), deterministic=True, **kw)
    pred = np.asarray(pred)
    a_np = acts.numpy()
    match = float((pred == a_np).mean())
    op_t, op_p = a_np[:, 1::2], pred[:, 1::2]
    recall = float(((op_p == op_t) & (op_t > 0)).sum() / max((op_t > 0).sum(), 1))
    return {"teacher_reward": float(np.mean(ep_rewards)), "samples": float(n), "imitation_accuracy": match,
            "op_recall": recall}


def _ReseedingEval(base: type) -> type:  # noqa: N802 - a class factory
    """An EvalCallback subclass that reseeds its env before every evaluation, so each
    evaluation runs the same held-out episodes (seed ``eval_seed`` onward)."""

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


# ----------------------------------------------------------------------------------------
# trained models as policies


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


def load_policy(path: str | Path, algo: str | None = None, deterministic: bool = True) -> LearnedPolicy:
    """Load a saved model (file, or run directory -> its best model) as a :class:`LearnedPolicy`."""
    p = resolve_model_path(path)
    a = canonical_algo(algo) if algo else detect_algo(p)
    model = algo_class(a).load(str(p), device="cpu")
    return LearnedPolicy(model, deterministic=deterministic, name=f"{a}:{p.parent.name}/{p.stem}")
