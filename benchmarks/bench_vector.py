"""Native vector env against the single env: time per env-step, side by side in one run.

Per scenario (default ``metro``) and policy (``--policy``: ``noop``, every cell routes to its edge and
starts no operation; ``random``, uniform over what each copy's ``action_masks()`` allows, so knowledge
operations are real training), episodes autoresetting inside the timing as in training:

* ``single gym.make``: ``gym.make(id)`` (Gymnasium's env checker and order wrappers), one step at a time;
* ``single GaisNetEnv``: the bare env, one step at a time;
* ``native N=n``: :class:`gaisnet_env.vector_env.GaisNetVectorEnv` with ``n`` copies, time per step / n.

Each round times a block of ``--block`` env-steps of every variant in turn, in a shuffled order (N
copies: block / N vector steps), so a load change on the machine hits them alike; the table gives
medians over ``--rounds`` rounds and each variant's ratio to ``single gym.make`` and to the bare
``single GaisNetEnv``, then (no-op) where the single env's step time goes (the pieces that call the model
workers, timed in a separate pass) and cProfile's top functions (by own time) of the native env at the
largest N (``--profile-top``; 0: none). The random policy runs its own, shorter rounds
(``--random-sizes``, ``--random-block``, ``--random-rounds``); its profile is of the single env.
``--batched-ops`` adds, for the random policy, the single env and every N with the batched training
engine (``workers.batched_ops``; the vector env's copies then train their ops as one batch).
``--episodes K`` adds K whole no-op episodes per variant (fault windows included; means per episode).
``--one-by-one`` adds every N with its copies stepped one by one (``quiet_steps = False``; by default the
native env steps its quiet copies together, :mod:`gaisnet_env.quiet_steps`). ``--profile N`` prints
cProfile's top functions of the native env at N copies instead. ``--threads``
sets torch's intra-op threads (default 1) for every variant alike.

Usage::

    python benchmarks/bench_vector.py                       # metro, no-op, N = 1, 16, 64
    python benchmarks/bench_vector.py --policy noop random  # and the masked random policy at N = 1, 8
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
from _common import add_timer, machine_info, median, write_results  # noqa: E402

POLICIES = ("noop", "random")


class Policy:
    """Actions of one variant: ``noop`` (every cell routes to its edge, no operation) or ``random``
    (uniform over the choices each copy's ``action_masks()`` allows, route and operation per cell)."""

    def __init__(self, kind: str, env: Any, seed: int = 0) -> None:
        base = getattr(env, "unwrapped", env)
        self.vector = hasattr(base, "num_envs")
        self.env, self.kind, self.E = base, kind, int(base.n_edges)
        self.n = int(base.num_envs) if self.vector else 1
        self.rng = np.random.default_rng(seed)
        act = np.zeros((self.n, self.E, 2), dtype=np.int64)
        act[:, :, 0] = 1  # route to the edge, no operation
        self.noop = act.reshape(self.n, 2 * self.E) if self.vector else act.reshape(2 * self.E)

    def __call__(self) -> np.ndarray:
        if self.kind == "noop":
            return self.noop
        m = np.asarray(self.env.action_masks()).reshape(self.n, self.E, 8)
        noise = self.rng.random(m.shape)  # argmax of noise over the allowed entries: a uniform pick
        noise[~m] = -1.0
        act = np.stack([noise[..., :3].argmax(-1), noise[..., 3:].argmax(-1)], axis=-1)
        return act.reshape(self.n, 2 * self.E) if self.vector else act.reshape(2 * self.E)


def _time_single(env: Any, steps: int, policy: Policy | None = None) -> float:
    """Seconds per step of ``steps`` steps (reset at each episode's end); no-op unless ``policy``."""
    policy = policy or Policy("noop", env)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(policy())
        if term or trunc:
            env.reset()
    return (time.perf_counter() - t0) / steps


def _time_vector(envs: Any, steps: int, policy: Policy | None = None) -> float:
    """Seconds per env-step of ``steps`` vector steps of the N copies (autoreset inside)."""
    policy = policy or Policy("noop", envs)
    t0 = time.perf_counter()
    for _ in range(steps):
        envs.step(policy())
    return (time.perf_counter() - t0) / (steps * envs.num_envs)


def build(scenario: str, sizes: list[int], policy: str = "noop", batched: bool = False,
          warmup: int | None = None, one_by_one: bool = False) -> dict[str, tuple[Any, Policy]]:
    """The variants and their policies, each reset and warmed up by a few steps; with ``batched`` also the
    single env and each N with the batched training engine (``workers.batched_ops``: a vector env's copies
    then train their ops as one batch, :mod:`gaisnet_env.copy_steps`); with ``one_by_one`` each N with its
    copies stepped one by one (``quiet_steps = False``: no quiet epochs stepped together)."""
    import gymnasium as gym

    import gaisnet_env
    from gaisnet_env.env import GaisNetEnv
    from gaisnet_env.vector_env import GaisNetVectorEnv

    envs: dict[str, Any] = {"single gym.make": gym.make(gaisnet_env.env_id(scenario)),
                            "single GaisNetEnv": GaisNetEnv(scenario)}
    for n in sizes:
        envs[f"native N={n}"] = GaisNetVectorEnv(n, scenario)
    if one_by_one:
        for n in sizes:
            envs[f"native N={n} one by one"] = venv = GaisNetVectorEnv(n, scenario)
            venv.quiet_steps = False
    if batched:
        engine = {"workers": {"batched_ops": True}}
        envs["single GaisNetEnv batched_ops"] = GaisNetEnv(scenario, **engine)
        for n in sizes:
            envs[f"native N={n} batched_ops"] = GaisNetVectorEnv(n, scenario, **engine)
    out = {}
    for name, env in envs.items():
        env.reset(seed=0)
        pol = Policy(policy, env)
        if name.startswith("native"):
            _time_vector(env, warmup or (1 if policy == "random" else 3), pol)
        else:
            _time_single(env, warmup or (2 if policy == "random" else 5), pol)
        out[name] = (env, pol)
    return out


def breakdown(env: Any, steps: int) -> dict[str, float]:
    """Microseconds per no-op step of the single env and of its pieces that call the workers (wrapped
    with timers for this pass only)."""
    totals: dict[str, float] = {}

    def timed(owner: Any, name: str, key: str) -> None:
        add_timer(owner, name, totals, key)

    pieces = {"label_hits_batch": "workers.label_hits_batch (label scoring: table lookups)",
              "add_feedback_batch": "workers.add_feedback_batch (feedback draw)",
              "domain_reports": "workers.domain_reports"}
    for name, key in pieces.items():
        timed(env.workers, name, key)
    timed(env, "_observation", "observation (domain reports included)")
    step_s = _time_single(env, steps)
    for name in (*pieces, "_observation"):
        delattr(env.workers if name != "_observation" else env, name)
    out = {"step": 1e6 * step_s}
    out.update({k: 1e6 * v / steps for k, v in totals.items()})
    return out


def copy_draws(env: Any, steps: int) -> float:
    """Microseconds of the random draws one copy makes in a no-op epoch, in the single env's order (arrivals,
    generate split, returned labels, the labelled samples' uniforms), on a copy of ``env``'s generator at its
    current epoch: every copy must make them itself (its own stream), however the rest is batched."""
    import copy

    from gaisnet_env.core import draws

    sc, rng = env.scenario, copy.deepcopy(env.np_random)
    wl = sc.workload
    lam = (env._figures(env.state.epoch).rates * sc.epoch_s).tolist()
    t0 = time.perf_counter()
    for _ in range(steps):  # as the quiet steps draw them (core.draws: scalar calls for a few cells, as lists)
        _, _, n_lab = draws.arrivals_and_labels(rng, lam, wl.generate_share, wl.label_rate)
        total = sum(min(x, wl.feedback_per_epoch) for x in n_lab)
        if total:
            rng.random(3 * total)
    return 1e6 * (time.perf_counter() - t0) / steps


def profile_top(fn: Any, top: int, sort: str | tuple[str, ...] = "tottime") -> str | tuple[str, ...]:
    """cProfile's ``top`` functions while ``fn()`` runs, as pstats prints them (with its line of total calls
    and seconds), sorted by ``sort`` (own time by default); one listing per key when ``sort`` is a tuple."""
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = []
    for key in (sort,) if isinstance(sort, str) else sort:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats(key).print_stats(top)
        text = s.getvalue()
        total = next((line.strip() for line in text.splitlines() if "function calls" in line), "")
        out.append(total + "\n\n" + text[text.find("   ncalls"):].rstrip() if "   ncalls" in text else text.strip())
    return out[0] if isinstance(sort, str) else tuple(out)


def episode_means(scenario: str, sizes: list[int], reps: int) -> dict[str, float]:
    """Microseconds per env-step over whole no-op episodes (every epoch, fault windows included: a mean,
    not a median over blocks): the bare single env, and each N with the quiet steps and one by one; ``reps``
    interleaved episodes each after a warm-up episode, medians over them."""
    from gaisnet_env.env import GaisNetEnv
    from gaisnet_env.vector_env import GaisNetVectorEnv

    single = GaisNetEnv(scenario)
    horizon, pol = single.scenario.horizon, Policy("noop", single)
    variants: dict[str, Any] = {"single GaisNetEnv": single}
    for n in sizes:
        variants[f"native N={n}"] = GaisNetVectorEnv(n, scenario)
        variants[f"native N={n} one by one"] = venv = GaisNetVectorEnv(n, scenario)
        venv.quiet_steps = False
    times: dict[str, list[float]] = {k: [] for k in variants}
    for rep in range(reps + 1):
        for name, env in variants.items():
            env.reset(seed=100 + rep)
            n = getattr(env, "num_envs", 1)
            acts = np.tile(pol(), (n, 1)) if name.startswith("native") else pol()
            t0 = time.perf_counter()
            for _ in range(horizon):
                env.step(acts)
            if rep:  # the first episode warms the caches (pre-trained label rows)
                times[name].append((time.perf_counter() - t0) / (horizon * n))
    for env in variants.values():
        env.close()
    return {k: 1e6 * median(v) for k, v in times.items()}


def run(args: argparse.Namespace, policy: str = "noop") -> dict[str, Any]:
    """One policy's interleaved rounds over its variants; ratios to the single envs, breakdown, profile."""
    rnd = policy == "random"
    sizes, block, rounds = ((args.random_sizes, args.random_block, args.random_rounds) if rnd
                            else (args.sizes, args.block, args.rounds))
    variants = build(args.scenario, sizes, policy, rnd and args.batched_ops, args.random_warmup if rnd else None,
                     args.one_by_one)
    times: dict[str, list[float]] = {k: [] for k in variants}
    order = np.random.default_rng(0)
    for _ in range(rounds):  # short interleaved blocks, in a shuffled order: load changes hit all alike
        for name in order.permutation(list(variants)).tolist():
            env, pol = variants[name]
            if name.startswith("native"):
                times[name].append(_time_vector(env, max(1, block // env.num_envs), pol))
            else:
                times[name].append(_time_single(env, block, pol))
    base = median(times["single gym.make"])
    bare = median(times["single GaisNetEnv"])
    rows = {k: {"us_per_env_step": 1e6 * median(v), "speedup_vs_gym_make": base / median(v),
                "speedup_vs_bare_env": bare / median(v), "rounds_us": [1e6 * x for x in v]}
            for k, v in times.items()}
    out = {"policy": policy, "block_env_steps": block, "rounds": rounds, "rows": rows}
    if not rnd:
        out["single_env_breakdown_us"] = breakdown(variants["single GaisNetEnv"][0], block)
        out["copy_draws_us"] = copy_draws(variants["single GaisNetEnv"][0], 20 * block)
        if args.episodes:
            out["episode_means_us"] = episode_means(args.scenario, [n for n in sizes if n > 1], args.episodes)
    if args.profile_top:
        name = "single GaisNetEnv" if rnd else f"native N={max(sizes)}"
        env, pol = variants[name]
        steps = max(1, block // getattr(env, "num_envs", 1))
        timer = _time_single if name.startswith("single") else _time_vector
        own, cum = profile_top(lambda: timer(env, steps, pol), args.profile_top, ("tottime", "cumulative"))
        out["profile"] = {"variant": name, "steps": steps, "top": own, "top_cumulative": cum}
    for env, _ in variants.values():
        env.close()
    return out


def _section(res: dict[str, Any], scenario: str) -> list[str]:
    """The markdown of one policy's section."""
    what = ("no operations" if res["policy"] == "noop"
            else "masked random policy (real knowledge operations)")
    lines = [f"`{scenario}`, {what}, {res['rounds']} interleaved rounds of {res['block_env_steps']} "
             "env-steps per variant (autoresets inside); medians over the rounds.", "",
             "| variant | µs per env-step | env-steps/s | speed-up vs gym.make | vs bare GaisNetEnv |",
             "|---|---:|---:|---:|---:|"]
    for name, r in res["rows"].items():
        us = r["us_per_env_step"]
        lines.append(f"| {name} | {us:,.1f} | {1e6 / us:,.1f} | {r['speedup_vs_gym_make']:.2f}x "
                     f"| {r['speedup_vs_bare_env']:.2f}x |")
    parts = res.get("single_env_breakdown_us")
    if parts:
        step = parts["step"]
        lines += ["", "Single env (`GaisNetEnv`), where a no-op step's time goes (separate timed pass; pieces "
                  "overlap:", "the observation includes the domain reports):", "",
                  "| piece | µs per step | share |", "|---|---:|---:|"]
        for k, v in parts.items():
            lines.append(f"| {k} | {v:,.1f} | {100 * v / step:.0f}% |")
    means = res.get("episode_means_us")
    if means:
        bare = means["single GaisNetEnv"]
        lines += ["", "Whole no-op episodes (every epoch, fault windows included; the mean per env-step of an "
                  "episode, median over the episodes):", "", "| variant | µs per env-step | vs bare GaisNetEnv |",
                  "|---|---:|---:|"]
        lines += [f"| {k} | {v:,.1f} | {bare / v:.2f}x |" for k, v in means.items()]
    draws = res.get("copy_draws_us")
    if draws:
        bare = res["rows"]["single GaisNetEnv"]["us_per_env_step"]
        lines += ["", f"Every copy makes its own random draws in the single env's order (arrivals, generate split, "
                  f"returned labels, the labelled samples): {draws:.1f} µs per copy and epoch here (same run), so "
                  f"N copies take at least that per env-step however the rest is batched: at most "
                  f"{bare / draws:.0f}x the bare single env."]
    prof = res.get("profile")
    if prof:
        lines += ["", f"cProfile, {prof['variant']}, {prof['steps']} steps, top functions by own time:", "",
                  "```", prof["top"], "```"]
        if prof.get("top_cumulative"):
            lines += ["", "and by cumulative time:", "", "```", prof["top_cumulative"], "```"]
    return lines


def table(res: dict[str, Any]) -> str:
    """Every policy's section (no-op first)."""
    lines = [f"torch threads: {res.get('threads', 'default')}.", ""]
    for k, policy in enumerate(p for p in POLICIES if p in res.get("policies", ["noop"])):
        sec = res if policy == "noop" else res[policy]
        if k:
            lines += ["", f"## {policy} policy", ""]
        lines += _section(sec, res["scenario"])
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="metro")
    p.add_argument("--policy", nargs="+", choices=POLICIES, default=["noop"], help="policies, each its own rounds")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64], help="copies of the native vector env")
    p.add_argument("--block", type=int, default=256, help="env-steps per variant and round (N copies: block / N steps)")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--random-sizes", type=int, nargs="+", default=[1, 8], help="copies, random policy")
    p.add_argument("--random-block", type=int, default=16, help="env-steps per variant and round, random policy")
    p.add_argument("--random-rounds", type=int, default=3)
    p.add_argument("--profile-top", type=int, default=15, help="cProfile functions kept per policy (0: none)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--steps", type=int, default=20, help="vector steps profiled with --profile")
    p.add_argument("--profile", type=int, default=None, metavar="N", help="print a profile of N copies instead")
    p.add_argument("--random-warmup", type=int, default=None,
                   help="random policy: steps of every variant before the timing (default 1 vector / 2 single)")
    p.add_argument("--episodes", type=int, default=0,
                   help="also time this many whole no-op episodes per variant (the means; 0: none)")
    p.add_argument("--one-by-one", action="store_true",
                   help="also each N with its copies stepped one by one (quiet_steps off), side by side")
    p.add_argument("--batched-ops", action="store_true",
                   help="random policy: also every variant with workers.batched_ops (the copies' ops as one batch)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--name", default="bench_vector", help="file name stem of the results")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.profile:
        print(profile(args, args.profile))
        return {}
    res: dict[str, Any] = {"scenario": args.scenario, "threads": args.threads, "policies": args.policy}
    for policy in args.policy:  # the no-op section at the top level (as before), the random one under "random"
        sec = run(args, policy)
        print(f"[bench_vector] {policy} done", flush=True)
        if policy == "noop":
            res.update(sec)
        else:
            res[policy] = sec
    res["machine"] = machine_info()
    md = table(res)
    write_results(args.name, res, md, args.out)
    print(md)
    return res


if __name__ == "__main__":
    main()
