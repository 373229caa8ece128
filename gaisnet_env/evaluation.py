"""Evaluating policies given as specs (heuristic names with settings, ``oracle:...``, model paths) on
held-out seeds, one env per process and (scenario, overrides), in worker processes when asked."""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from gaisnet_env.agents.base import EpisodeMetrics, run_episode
from gaisnet_env.specs import parse_spec


def build_policy(spec: str, env: Any) -> Any:
    """A :class:`~gaisnet_env.agents.base.Policy` from a spec, bound to the live ``env``."""
    from gaisnet_env.agents.heuristics import HEURISTICS, make_heuristic

    name, params = parse_spec(spec)
    if name in HEURISTICS:
        pol = make_heuristic(name, env=env, **params)
    elif name == "oracle":
        from gaisnet_env.agents.oracle import LookaheadOracle

        pol = LookaheadOracle(env=env, **params)
    elif name == "finetune-value":
        from gaisnet_env.agents.finetune_value import FinetuneValuePolicy

        pol = FinetuneValuePolicy(env=env, **params)
    else:
        from gaisnet_env.agents.saved_models import load_policy

        pol = load_policy(spec)
    if hasattr(pol, "bind") and name not in HEURISTICS and name != "oracle":
        pol.bind(env)
    return pol


def policy_label(spec: str) -> str:
    """Short table label of a policy spec."""
    name, params = parse_spec(spec)
    if name == "oracle":  # all its search settings in the label, so oracles of different settings stay apart
        return f"oracle:{oracle_settings(params)} (upper ref.)"
    if name == "finetune-value":  # the model's folder names the agent
        rest = ",".join(f"{k}={v}" for k, v in params.items() if k != "model")
        return f"finetune-value:{rest} ({Path(str(params.get('model', ''))).parent.name})"
    p = Path(spec)
    if p.suffix == ".zip" or p.is_dir():
        try:
            from gaisnet_env.agents.saved_models import detect_algo, resolve_model_path

            mp = resolve_model_path(p)
            return f"{detect_algo(mp)} ({mp.parent.name}/{mp.stem})"
        except (OSError, ValueError):
            return p.name
    return spec


def oracle_settings(params: dict[str, Any]) -> str:
    """The look-ahead oracle's search settings, ``params`` over its defaults, as ``horizon=3,max_candidates=12,...``
    (the proposer list is left out unless given)."""
    import inspect

    from gaisnet_env.agents.oracle import LookaheadOracle

    sig = inspect.signature(LookaheadOracle.__init__).parameters
    settings = {k: p.default for k, p in sig.items() if k not in ("self", "env", "proposers")}
    settings.update(params)
    return ",".join(f"{k}={v}" for k, v in settings.items())


_ENV_CACHE: dict[str, Any] = {}


def _env(scenario: str, env_kwargs: dict[str, Any] | None) -> Any:
    """One env per (scenario, overrides) per process (building one loads the workers)."""
    from gaisnet_env.env import GaisNetEnv

    key = json.dumps([scenario, env_kwargs or {}], sort_keys=True, default=str)
    if key not in _ENV_CACHE:
        _ENV_CACHE[key] = GaisNetEnv(scenario, **(env_kwargs or {}))
    return _ENV_CACHE[key]


def _eval_job(spec: str, scenario: str, seed: int, episode: int, env_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """Run one episode of ``spec`` (in a worker process); returns the metrics as a dict."""
    env = _env(scenario, env_kwargs)
    pol = build_policy(spec, env)
    m = run_episode(pol, env, seed + 100_000 * episode, name=policy_label(spec), episode=episode)
    return m.as_dict()


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def evaluate_specs(
    specs: Sequence[str],
    scenario: str,
    seeds: Sequence[int],
    episodes: int = 1,
    jobs: int = 1,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[EpisodeMetrics]:
    """Evaluate every policy spec on every seed (x episodes), in ``jobs`` processes."""
    from tqdm.auto import tqdm

    work = [(s, sd, k) for s in specs for sd in seeds for k in range(episodes)]
    # slow policies first so the pool's tail is short
    work.sort(key=lambda w: 0 if parse_spec(w[0])[0] == "oracle" else 1)
    out: list[dict[str, Any]] = []
    bar = tqdm(total=len(work), desc=f"benchmark {scenario}", unit="ep", disable=not progress)
    if jobs <= 1:
        for s, sd, k in work:
            bar.set_postfix_str(policy_label(s)[:30])
            out.append(_eval_job(s, scenario, sd, k, env_kwargs))
            bar.update()
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init) as ex:
            futs = [ex.submit(_eval_job, s, scenario, sd, k, env_kwargs) for s, sd, k in work]
            for f in as_completed(futs):
                out.append(f.result())
                bar.update()
    bar.close()
    order = {s: i for i, s in enumerate(policy_label(s) for s in specs)}
    out.sort(key=lambda d: (order.get(d["policy"], 99), d["seed"], d["episode"]))
    return [EpisodeMetrics(**d) for d in out]
