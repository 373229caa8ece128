"""Soak test: many steps with random masked policies and randomly injected faults.

Runs ``--steps`` env steps (episodes back to back) on one scenario, with a random policy per
episode (uniform over the feasible routes and operations, operations started with probability
``--op-prob`` per edge and step so that real training happens at a realistic rate) and faults
injected at random by :class:`gaisnet_env.wrappers.FaultInjection` (``--faults-rate`` per
epoch, every kind). Every step's observation, reward and info are checked (in the observation
space, finite); any exception counts as a crash (none are allowed), is recorded with its
traceback and the run goes on after a reset. Reports crashes, resident memory (RSS) growth after
warm-up, the workers' accuracy-cache size, fault and request counters and steps per second, as
JSON and Markdown in ``--out`` (``soak_<scenario>.json`` / ``.md``).

    python benchmarks/soak.py --steps 2000 --scenario tiny --faults-rate 0.1
    nice -n 10 python benchmarks/soak.py --steps 1000000 --max-seconds 3600 --battery-j 400

Exit status: 0 if no crash, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from gaisnet_env.env import GaisNetEnv  # noqa: E402
from gaisnet_env.masks import flat_mask, info_arrays  # noqa: E402
from gaisnet_env.wrappers import FaultInjection  # noqa: E402

COUNTERS = (
    "requests",
    "requests_failed",
    "requests_rerouted",
    "requests_dropped",
    "sla_violations",
    "ops_started",
    "ops_finished",
    "ops_failed",
    "ops_aborted",
    "actions_masked",
    "faults_active",
    "edges_down",
    "batteries_empty",
)


def rss_mb() -> float:
    """Current resident set size of this process, MiB (Linux /proc; else peak RSS)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def random_masked_action(mask: np.ndarray, n_edges: int, op_prob: float, rng: np.random.Generator) -> np.ndarray:
    """Uniform feasible route per edge; a uniform feasible operation with probability ``op_prob``."""
    m = mask.reshape(n_edges, 8)
    out = np.zeros((n_edges, 2), dtype=np.int64)
    for e in range(n_edges):
        out[e, 0] = rng.choice(np.flatnonzero(m[e, :3]))
        ops = np.flatnonzero(m[e, 4:]) + 1
        if ops.size and rng.random() < op_prob:
            out[e, 1] = rng.choice(ops)
    return out.ravel()


def unmasked_action(n_edges: int, op_prob: float, rng: np.random.Generator) -> np.ndarray:
    """Random action ignoring the mask (the env's fallback policy handles infeasible choices)."""
    out = np.zeros((n_edges, 2), dtype=np.int64)
    out[:, 0] = rng.integers(0, 3, n_edges)
    ops = rng.integers(1, 5, n_edges)
    out[:, 1] = np.where(rng.random(n_edges) < op_prob, ops, 0)
    return out.ravel()


def check_step(env: Any, obs: np.ndarray, reward: float, info: dict[str, Any]) -> None:
    if not env.observation_space.contains(obs):
        raise AssertionError(f"observation outside its space: min {obs.min()}, max {obs.max()}, dtype {obs.dtype}")
    if not math.isfinite(reward):
        raise AssertionError(f"reward {reward}")
    for k, a in info_arrays(info).items():
        if k == "fault_injected":
            continue
        if a.dtype.kind in "fiub" and not np.all(np.isfinite(a.astype(np.float64))):
            raise AssertionError(f"info[{k!r}] not finite: {info[k]}")
    for k in ("accuracy", "accuracy_end", "accuracy_edge", "accuracy_cloud", "sla_violation_share"):
        if not 0.0 <= info[k] <= 1.0:
            raise AssertionError(f"info[{k!r}] = {info[k]} outside [0, 1]")
    for k in ("latency_mean_s", "latency_p95_s", "energy_j", "carbon_g", "requests_failed", "requests_dropped"):
        if info[k] < 0:
            raise AssertionError(f"info[{k!r}] = {info[k]} < 0")


def soak(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.battery_j:
        overrides["energy"] = {"end_battery_j": args.battery_j, "end_recharge_w": args.recharge_w}
    base = GaisNetEnv(args.scenario, cache_dir=args.cache_dir, **overrides)
    env = FaultInjection(base, rate=args.faults_rate, max_duration=args.max_fault_epochs, seed=args.seed)
    n_edges = base.n_edges
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    deadline = t0 + args.max_seconds if args.max_seconds else math.inf
    crashes: list[dict[str, Any]] = []
    totals = dict.fromkeys(COUNTERS, 0.0)
    kinds: dict[str, int] = {}
    policies = {"masked_random": 0, "unmasked_random": 0}
    trace: list[dict[str, float]] = []
    episodes = 0
    steps = 0
    rss_start = rss_warm = rss_mb()
    warm_step = min(args.warmup, args.steps)

    def new_episode() -> tuple[np.ndarray, str]:
        nonlocal episodes
        obs, info = env.reset(seed=int(rng.integers(2**31 - 1)))
        episodes += 1
        policy = "masked_random" if rng.random() < 0.75 else "unmasked_random"
        policies[policy] += 1
        return flat_mask(info["action_mask"]), policy

    mask, policy = new_episode()
    while steps < args.steps and time.perf_counter() < deadline:
        try:
            if policy == "masked_random":
                action = random_masked_action(mask, n_edges, args.op_prob, rng)
            else:
                action = unmasked_action(n_edges, args.op_prob, rng)
            obs, reward, terminated, truncated, info = env.step(action)
            steps += 1
            check_step(env, obs, reward, info)
            for k in COUNTERS:
                totals[k] += float(info[k])
            if "fault_injected" in info:
                kinds[info["fault_injected"]] = kinds.get(info["fault_injected"], 0) + 1
            mask = flat_mask(info["action_mask"])
            if terminated or truncated:
                mask, policy = new_episode()
        except Exception as exc:  # a crash: record it and go on from a fresh episode
            steps += 1
            crashes.append({"step": steps, "error": repr(exc), "traceback": traceback.format_exc()[-4000:]})
            if len(crashes) >= args.max_crashes:
                break
            mask, policy = new_episode()
        if steps == warm_step:
            rss_warm = rss_mb()
        if steps % args.report_every == 0 or steps == args.steps:
            elapsed = time.perf_counter() - t0
            trace.append(
                {
                    "step": steps,
                    "elapsed_s": round(elapsed, 2),
                    "rss_mb": round(rss_mb(), 2),
                    "acc_cache": len(getattr(base.workers, "_acc_cache", ())),
                    "steps_per_s": round(steps / elapsed, 2),
                }
            )
            if args.verbose:
                print(json.dumps(trace[-1]), flush=True)
    elapsed = time.perf_counter() - t0
    rss_end = rss_mb()
    # growth after warm-up, and the slope of a least-squares line over the post-warm-up trace
    post = [p for p in trace if p["step"] >= warm_step]
    slope = 0.0
    if len(post) >= 2:
        x = np.array([p["step"] for p in post], dtype=np.float64)
        y = np.array([p["rss_mb"] for p in post], dtype=np.float64)
        slope = float(np.polyfit(x, y, 1)[0]) * 1e5
    return {
        "scenario": args.scenario,
        "steps_requested": args.steps,
        "steps": steps,
        "stopped_by_time_budget": steps < args.steps and not crashes,
        "episodes": episodes,
        "crashes": len(crashes),
        "crash_details": crashes[:10],
        "elapsed_s": round(elapsed, 1),
        "steps_per_s": round(steps / max(elapsed, 1e-9), 1),
        "rss_start_mb": round(rss_start, 1),
        "rss_after_warmup_mb": round(rss_warm, 1),
        "rss_end_mb": round(rss_end, 1),
        "rss_growth_after_warmup_mb": round(rss_end - rss_warm, 1),
        "rss_slope_mb_per_100k_steps": round(slope, 3),
        "acc_cache_size_end": len(getattr(base.workers, "_acc_cache", ())),
        "faults_injected": env.injected,
        "faults_injected_by_kind": kinds,
        "policies_by_episode": policies,
        "totals": {k: round(v, 1) for k, v in totals.items()},
        "settings": {
            "faults_rate": args.faults_rate,
            "op_prob": args.op_prob,
            "max_fault_epochs": args.max_fault_epochs,
            "battery_j": args.battery_j,
            "recharge_w": args.recharge_w,
            "seed": args.seed,
            "max_seconds": args.max_seconds,
            "warmup": args.warmup,
        },
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "trace": trace,
    }


def markdown(r: dict[str, Any]) -> str:
    s = r["settings"]
    budget = " (stopped by the time budget)" if r["stopped_by_time_budget"] else ""
    lines = [
        f"# Soak: `{r['scenario']}`",
        "",
        f"{r['steps']:,} steps of {r['steps_requested']:,} requested{budget} in {r['elapsed_s']:.0f} s "
        f"({r['steps_per_s']:.1f} steps/s), {r['episodes']:,} episodes; random masked / unmasked policies "
        f"(ops with probability {s['op_prob']} per edge and step), random faults at {s['faults_rate']} per epoch "
        f"(up to {s['max_fault_epochs']} epochs), batteries {s['battery_j'] or 'off'}.",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| crashes | **{r['crashes']}** |",
        f"| RSS start / after warm-up / end | {r['rss_start_mb']} / {r['rss_after_warmup_mb']} / "
        f"{r['rss_end_mb']} MiB |",
        f"| RSS growth after warm-up | {r['rss_growth_after_warmup_mb']} MiB |",
        f"| RSS trend after warm-up | {r['rss_slope_mb_per_100k_steps']} MiB per 100k steps |",
        f"| accuracy-cache entries at the end | {r['acc_cache_size_end']} |",
        f"| faults injected | {r['faults_injected']:,} {r['faults_injected_by_kind']} |",
        f"| episodes by policy | {r['policies_by_episode']} |",
    ]
    for k, v in r["totals"].items():
        lines.append(f"| total `{k}` | {v:,.1f} |")
    lines += ["", f"Machine: {r['machine']['platform']}, {r['machine']['cpus']} CPUs, Python {r['machine']['python']}."]
    if r["crash_details"]:
        lines += ["", "## Crashes", ""]
        for c in r["crash_details"]:
            lines += [f"- step {c['step']}: `{c['error']}`"]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1_000_000, help="env steps to run")
    p.add_argument("--scenario", default="tiny", help="built-in name or YAML path")
    p.add_argument("--faults-rate", type=float, default=0.05, help="probability of a new random fault per epoch")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="directory of the JSON/Markdown")
    p.add_argument("--op-prob", type=float, default=0.1, help="probability an edge starts a feasible op per step")
    p.add_argument("--max-fault-epochs", type=int, default=5, help="longest injected fault, epochs")
    p.add_argument("--battery-j", type=float, default=0.0, help="enable end-device batteries with this capacity, J")
    p.add_argument("--recharge-w", type=float, default=1.0, help="recharge power with --battery-j, W")
    p.add_argument("--max-seconds", type=float, default=0.0, help="stop after this wall time (0 = no limit)")
    p.add_argument("--warmup", type=int, default=2000, help="steps before the RSS baseline is taken")
    p.add_argument("--report-every", type=int, default=10_000, help="steps between trace points")
    p.add_argument("--max-crashes", type=int, default=100, help="give up after this many crashes")
    p.add_argument("--cache-dir", default=None, help="pre-trained weight cache directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="print each trace point")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps must be >= 1")
    if not 0.0 <= args.faults_rate <= 1.0:
        p.error("--faults-rate must be in [0, 1]")
    if not 0.0 <= args.op_prob <= 1.0:
        p.error("--op-prob must be in [0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = soak(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.scenario).stem
    (out / f"soak_{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / f"soak_{stem}.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if result["crashes"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
