"""Soak test: many steps with random masked policies and randomly injected faults.

Runs ``--steps`` env steps (episodes back to back) on one scenario, with a random policy per
episode (uniform over the feasible routes and operations, operations started with probability
``--op-prob`` per edge and step so that real training happens at a realistic rate) and faults
injected at random by :class:`gaisnet_env.wrappers.FaultInjection` (``--faults-rate`` per
epoch, every kind). Every step's observation, reward and info are checked (in the observation
space, finite); any exception counts as a crash (none are allowed), is recorded with its
traceback and the run goes on after a reset. Every ``--restore-every`` steps the env's snapshot is
restored into a second instance that has its own history, which then steps beside the env for
``--restore-steps`` steps: any step whose observation, reward or info differs counts as a restore
mismatch (none are allowed). Reports crashes, restore mismatches, resident memory (RSS) growth after
warm-up, the workers' accuracy-cache size, fault and request counters and steps per second, as
JSON and Markdown in ``--out`` (``soak_<scenario>.json`` / ``.md``).

    python benchmarks/soak.py --steps 2000 --scenario tiny --faults-rate 0.1
    nice -n 10 python benchmarks/soak.py --steps 1000000 --max-seconds 3600 --battery-j 400

Exit status: 0 if no crash and no restore mismatch, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
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
from gaisnet_env.provenance import provenance_line  # noqa: E402
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


def step_digest(obs: np.ndarray, reward: float, info: dict[str, Any]) -> str:
    """SHA-256 of a step's observation, reward and info (to compare two envs bit for bit)."""
    blob = np.asarray(obs).tobytes() + np.float64(reward).tobytes()
    blob += json.dumps({k: v.tolist() for k, v in sorted(info_arrays(info).items())}, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


class RestoreCheck:
    """A second env instance that, every ``every`` steps, takes the main env's snapshot and then steps
    beside it for ``steps`` steps with the same actions; counts the steps that differ."""

    def __init__(self, make: Any, every: int, steps: int) -> None:
        self.twin = make(seed=12345) if every else None
        if self.twin is not None:
            self.twin.reset(seed=12345)
        self.every, self.steps = every, steps
        self.left = 0
        self.restores = self.compared = self.mismatches = 0

    def before(self, env: Any, step: int) -> None:
        """Restore ``env``'s state into the twin when one is due at ``step``."""
        if self.twin is not None and self.left == 0 and step % self.every == 0:
            self.twin.restore(env.snapshot())
            self.restores += 1
            self.left = self.steps

    def after(self, action: np.ndarray, out: tuple) -> None:
        """Step the twin with the env's ``action`` and compare with the env's step ``out``."""
        if self.left == 0:
            return
        self.left -= 1
        twin_out = self.twin.step(action)
        self.compared += 1
        if step_digest(*twin_out[:2], twin_out[4]) != step_digest(*out[:2], out[4]):
            self.mismatches += 1
        if out[2] or out[3]:
            self.left = 0

    def stop(self) -> None:
        self.left = 0


def trace_point(steps: int, elapsed: float, base: GaisNetEnv) -> dict[str, float]:
    """Steps, wall seconds, RSS (MiB), accuracy-cache entries and steps/s so far."""
    return {"step": steps, "elapsed_s": round(elapsed, 2), "rss_mb": round(rss_mb(), 2),
            "acc_cache": len(getattr(base.workers, "_acc_cache", ())), "steps_per_s": round(steps / elapsed, 2)}


def soak(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.battery_j:
        overrides["energy"] = {"end_battery_j": args.battery_j, "end_recharge_w": args.recharge_w}

    def make(seed: int) -> FaultInjection:
        base = GaisNetEnv(args.scenario, cache_dir=args.cache_dir, **overrides)
        return FaultInjection(base, rate=args.faults_rate, max_duration=args.max_fault_epochs, seed=seed)

    env = make(args.seed)
    base = env.unwrapped
    check = RestoreCheck(make, args.restore_every, args.restore_steps)
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
        check.stop()
        return flat_mask(info["action_mask"]), policy

    mask, policy = new_episode()
    while steps < args.steps and time.perf_counter() < deadline:
        try:
            if policy == "masked_random":
                action = random_masked_action(mask, n_edges, args.op_prob, rng)
            else:
                action = unmasked_action(n_edges, args.op_prob, rng)
            check.before(env, steps)
            out = env.step(action)
            check.after(action, out)
            obs, reward, terminated, truncated, info = out
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
            trace.append(trace_point(steps, time.perf_counter() - t0, base))
            if args.verbose:
                print(json.dumps(trace[-1]), flush=True)
    elapsed = time.perf_counter() - t0
    rss_end = rss_mb()
    run = {"trace": trace, "warm_step": warm_step, "steps": steps, "crashes": crashes, "check": check,
           "elapsed": elapsed, "rss_end": rss_end, "base": base, "env": env, "episodes": episodes,
           "rss_start": rss_start, "rss_warm": rss_warm, "kinds": kinds, "policies": policies, "totals": totals}
    return _report(args, run)


def _report(args: argparse.Namespace, run: dict[str, Any]) -> dict[str, Any]:
    """The soak's result dict from the run's counters, trace and envs (``run``, built by ``soak``)."""
    trace, warm_step, steps, crashes, check = run["trace"], run["warm_step"], run["steps"], run["crashes"], run["check"]
    elapsed, rss_end, base, env = run["elapsed"], run["rss_end"], run["base"], run["env"]
    episodes, rss_start, rss_warm = run["episodes"], run["rss_start"], run["rss_warm"]
    kinds, policies, totals = run["kinds"], run["policies"], run["totals"]
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
        "restores": check.restores,
        "restore_steps_compared": check.compared,
        "restore_mismatches": check.mismatches,
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
            "restore_every": args.restore_every,
            "restore_steps": args.restore_steps,
        },
        "provenance": provenance_line(),
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
        f"| restore mismatches (snapshot into a second instance) | **{r['restore_mismatches']}** of "
        f"{r['restore_steps_compared']:,} steps after {r['restores']:,} restores |",
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
    lines += ["", f"Machine: {r['machine']['platform']}, {r['machine']['cpus']} CPUs, Python {r['machine']['python']}.",
              "", f"{r.get('provenance', '')}."]
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
    p.add_argument("--restore-every", type=int, default=100,
                   help="steps between restores of the env's snapshot into a second instance (0 = off)")
    p.add_argument("--restore-steps", type=int, default=5, help="steps the second instance is compared after each")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="print each trace point")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps must be >= 1")
    if not 0.0 <= args.faults_rate <= 1.0:
        p.error("--faults-rate must be in [0, 1]")
    if not 0.0 <= args.op_prob <= 1.0:
        p.error("--op-prob must be in [0, 1]")
    if args.restore_every < 0 or args.restore_steps < 1:
        p.error("--restore-every must be >= 0 and --restore-steps >= 1")
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
    return 0 if result["crashes"] == 0 and result["restore_mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
