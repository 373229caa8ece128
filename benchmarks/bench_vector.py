"""Native vector env against the single env: time per env-step, side by side in one run.

Per scenario (default ``metro``), without knowledge operations (every cell routes to its edge, op none),
episodes autoresetting inside the timing as in training:

* ``single gym.make``: ``gym.make(id)`` (Gymnasium's env checker and order wrappers), one step at a time;
* ``single GaisNetEnv``: the bare env, one step at a time;
* ``native N=n``: :class:`gaisnet_env.vector_env.GaisNetVectorEnv` with ``n`` copies, time per step / n.

Each round times a block of ``--block`` env-steps of every variant in turn, in a shuffled order (N
copies: block / N vector steps), so a load change on the machine hits them alike; the table gives
medians over ``--rounds`` rounds and each variant's ratio to ``single gym.make`` and to the bare
``single GaisNetEnv``, then where the single env's step time goes (the pieces that call the model
workers, timed in a separate pass). ``--profile N`` prints cProfile's top functions of the native env
at N copies instead.

Usage::

    python benchmarks/bench_vector.py                       # metro, N = 1, 16, 64
    python benchmarks/bench_vector.py --scenario tiny --sizes 1 4 --block 8 --rounds 2 --out /tmp/b
    python benchmarks/bench_vector.py --profile 64

Results: ``benchmarks/results/bench_vector.json`` and ``bench_vector.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, median, write_results  # noqa: E402


def _noop(n_edges: int, n: int | None = None) -> np.ndarray:
    act = np.zeros((n_edges, 2), dtype=np.int64)
    act[:, 0] = 1  # route to the edge, no operation
    flat = act.ravel()
    return flat if n is None else np.stack([flat] * n)


def _time_single(env: Any, steps: int) -> float:
    """Seconds per step of ``steps`` no-op steps (reset at each episode's end)."""
    a = _noop(env.unwrapped.n_edges)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return (time.perf_counter() - t0) / steps


def _time_vector(envs: Any, steps: int) -> float:
    """Seconds per env-step of ``steps`` vector steps of the N copies (autoreset inside)."""
    a = _noop(envs.n_edges, envs.num_envs)
    t0 = time.perf_counter()
    for _ in range(steps):
        envs.step(a)
    return (time.perf_counter() - t0) / (steps * envs.num_envs)


def build(scenario: str, sizes: list[int]) -> dict[str, Any]:
    """The variants, each reset and warmed up by a few steps."""
    import gymnasium as gym

    import gaisnet_env
    from gaisnet_env.env import GaisNetEnv
    from gaisnet_env.vector_env import GaisNetVectorEnv

    out: dict[str, Any] = {"single gym.make": gym.make(gaisnet_env.env_id(scenario)),
                           "single GaisNetEnv": GaisNetEnv(scenario)}
    for n in sizes:
        out[f"native N={n}"] = GaisNetVectorEnv(n, scenario)
    for name, env in out.items():
        env.reset(seed=0)
        if name.startswith("native"):
            _time_vector(env, 3)
        else:
            _time_single(env, 5)
    return out


def breakdown(env: Any, steps: int) -> dict[str, float]:
    """Microseconds per no-op step of the single env and of its pieces that call the workers (wrapped
    with timers for this pass only)."""
    totals: dict[str, float] = {}

    def timed(owner: Any, name: str, key: str) -> None:
        fn = getattr(owner, name)

        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                totals[key] = totals.get(key, 0.0) + time.perf_counter() - t0

        setattr(owner, name, wrapper)

    timed(env.workers, "label_hits", "workers.label_hits (torch forwards)")
    timed(env.workers, "add_feedback_batch", "workers.add_feedback_batch (feedback draw)")
    timed(env.workers, "domain_report", "workers.domain_report")
    timed(env, "_observation", "observation (domain reports included)")
    step_s = _time_single(env, steps)
    for name in ("label_hits", "add_feedback_batch", "domain_report", "_observation"):
        delattr(env.workers if name != "_observation" else env, name)
    out = {"step": 1e6 * step_s}
    out.update({k: 1e6 * v / steps for k, v in totals.items()})
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    variants = build(args.scenario, args.sizes)
    times: dict[str, list[float]] = {k: [] for k in variants}
    order = np.random.default_rng(0)
    for _ in range(args.rounds):  # short interleaved blocks, in a shuffled order: load changes hit all alike
        for name in order.permutation(list(variants)).tolist():
            env = variants[name]
            if name.startswith("native"):
                times[name].append(_time_vector(env, max(1, args.block // env.num_envs)))
            else:
                times[name].append(_time_single(env, args.block))
    base = median(times["single gym.make"])
    bare = median(times["single GaisNetEnv"])
    rows = {k: {"us_per_env_step": 1e6 * median(v), "speedup_vs_gym_make": base / median(v),
                "speedup_vs_bare_env": bare / median(v), "rounds_us": [1e6 * x for x in v]}
            for k, v in times.items()}
    parts = breakdown(variants["single GaisNetEnv"], args.block)
    for env in variants.values():
        env.close()
    return {"scenario": args.scenario, "block_env_steps": args.block, "rounds": args.rounds, "rows": rows,
            "single_env_breakdown_us": parts}


def table(res: dict[str, Any]) -> str:
    lines = [f"`{res['scenario']}`, no operations, {res['rounds']} interleaved rounds of {res['block_env_steps']} "
             "env-steps per variant (autoresets inside); medians over the rounds.", "",
             "| variant | µs per env-step | env-steps/s | speed-up vs gym.make | vs bare GaisNetEnv |",
             "|---|---:|---:|---:|---:|"]
    for name, r in res["rows"].items():
        us = r["us_per_env_step"]
        lines.append(f"| {name} | {us:,.1f} | {1e6 / us:,.0f} | {r['speedup_vs_gym_make']:.2f}x "
                     f"| {r['speedup_vs_bare_env']:.2f}x |")
    parts = res["single_env_breakdown_us"]
    step = parts["step"]
    lines += ["", "Single env (`GaisNetEnv`), where a no-op step's time goes (separate timed pass; pieces overlap:",
              "the observation includes the domain reports):", "", "| piece | µs per step | share |", "|---|---:|---:|"]
    for k, v in parts.items():
        lines.append(f"| {k} | {v:,.1f} | {100 * v / step:.0f}% |")
    return "\n".join(lines)


def profile(args: argparse.Namespace, n: int) -> str:
    from gaisnet_env.vector_env import GaisNetVectorEnv

    envs = GaisNetVectorEnv(n, args.scenario)
    envs.reset(seed=0)
    _time_vector(envs, 3)
    prof = cProfile.Profile()
    prof.enable()
    _time_vector(envs, args.steps)
    prof.disable()
    envs.close()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(30)
    return s.getvalue()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="metro")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64], help="copies of the native vector env")
    p.add_argument("--block", type=int, default=256, help="env-steps per variant and round (N copies: block / N steps)")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--steps", type=int, default=20, help="vector steps profiled with --profile")
    p.add_argument("--profile", type=int, default=None, metavar="N", help="print a profile of N copies instead")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.profile:
        print(profile(args, args.profile))
        return {}
    res = run(args)
    res["machine"] = machine_info()
    md = table(res)
    write_results("bench_vector", res, md, args.out)
    print(md)
    return res


if __name__ == "__main__":
    main()
