"""Environment speed: steps/s per built-in scenario, step-time breakdown, peak RSS, PPO share, edge scaling.

Runs, per scenario (each in its own process, so peak RSS is per scenario):

* (a) ``noop``: every cell routes to its edge, no knowledge operations;
* (b) ``random``: masked random policy (uniform over what ``env.action_masks()`` allows);
* (c) ``ppo``: a PPO policy (stable-baselines3, ``MlpPolicy``), trained here for ``--ppo-train-steps``
  steps or loaded with ``--ppo PATH``; while it trains, the time spent in ``env.step``/``env.reset``
  is measured against the wall time of ``PPO.learn`` (the env's share of training time).
* (d) ``ppo-vec`` (not by default): SB3 PPO (``MlpPolicy``) over the native vector env
  (:func:`gaisnet_env.sb3_vec.make_sb3_vec_env`, ``--ppo-envs`` copies, ``n_steps = --ppo-vec-n-steps``)
  learning ``--ppo-vec-steps`` steps: steps/s of ``PPO.learn`` and the share of its wall time inside the
  VecEnv's ``step_wait``/``reset`` (and in PPO's updates), with the step-time breakdown summed over the copies.

Steps/s are medians over ``--repeats`` runs of ``--steps`` steps (episodes reset inside the
timing, as in training). The breakdown times the env's pieces with lightweight hooks
(exclusive time, nested pieces subtracted): knowledge operations (real training in
``workers.start_op`` + commit/abort), feedback (``workers.add_feedback*``), inference/accuracy
(tier accuracy, generation quality and the workers' scoring of the returned labels, ``label_hits``),
observation building, info/masks, and the rest of ``step`` (simulation and cost model). Scaling runs
``metro`` with E = 1, 4, 16, 64 cells (``--scaling-modes``: which policies). ``--random-steps-for
city=10`` sets a slow scenario's random steps apart; ``--threads`` (default 1) sets torch's threads in
every process.

Usage::

    python benchmarks/bench_speed.py                      # all scenarios, defaults (~20 min)
    python benchmarks/bench_speed.py --scenarios metro --steps 2000 --repeats 5
    python benchmarks/bench_speed.py --scenarios tiny --steps 50 --random-steps 20 --ppo-train-steps 64 \
        --scaling 1 --out /tmp/bench                      # smoke test

``--workers fast`` measures the calibrated fast path (:mod:`gaisnet_env.surrogate`) instead of the real
workers (the default).

Results: ``benchmarks/results/bench_speed.json`` and ``bench_speed.md`` (or ``--out``/``--name``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    MaskedRandomPolicy,
    NoOpPolicy,
    add_timer,
    machine_info,
    median,
    peak_rss_mb,
    scenario_for_edges,
    write_results,
)

SCENARIOS = ("tiny", "metro", "city", "drift-storm", "green")
PHASES = ("knowledge_ops", "feedback", "inference_accuracy", "observation", "info_masks", "simulation_cost", "reset")
# (phase, owner, method) hooks; missing methods are skipped (custom workers, older versions)
_HOOKS = (
    ("knowledge_ops", "workers", "start_op"),
    ("knowledge_ops", "workers", "start_ops"),
    ("knowledge_ops", "workers", "commit_op"),
    ("knowledge_ops", "workers", "abort_op"),
    ("feedback", "workers", "add_feedback"),
    ("feedback", "workers", "add_feedback_batch"),
    ("inference_accuracy", "env", "_tier_accuracy"),
    ("inference_accuracy", "env", "_generation_quality"),
    ("inference_accuracy", "workers", "label_hits"),
    ("observation", "env", "_observation"),
    ("info_masks", "env", "_base_info"),
    ("info_masks", "env", "action_masks"),
    ("info_masks", "env", "gym_action_mask"),
    ("info_masks", "env", "_mask_arrays"),
)


class PhaseTimer:
    """Wraps methods of one env instance to accumulate exclusive time per phase (off by default)."""

    def __init__(self, env: Any) -> None:
        self.totals = dict.fromkeys((*PHASES, "step"), 0.0)
        self._top = ("step", "reset")
        self._stack: list[list[float]] = []  # [start, child time]
        self.on = False
        self.steps = 0
        base = env.unwrapped
        owners = {"env": base, "workers": base.workers}
        for phase, owner, name in _HOOKS:
            obj = owners[owner]
            fn = getattr(obj, name, None)
            if callable(fn):
                setattr(obj, name, self._wrap(phase, fn))
        base.step = self._wrap("step", base.step)
        base.reset = self._wrap("reset", base.reset)

    def _wrap(self, phase: str, fn: Any) -> Any:
        def timed(*a: Any, **k: Any) -> Any:
            if not self.on:
                return fn(*a, **k)
            top = phase in self._top
            if top == bool(self._stack):  # pieces count inside step()/reset() only, which never nest
                return fn(*a, **k)
            frame = [time.perf_counter(), 0.0]
            self._stack.append(frame)
            try:
                return fn(*a, **k)
            finally:
                dt = time.perf_counter() - frame[0]
                self._stack.pop()
                if self._stack:
                    self._stack[-1][1] += dt
                self.totals[phase] += dt - frame[1]
                if phase == "step":
                    self.steps += 1

        return timed

    def breakdown(self) -> dict[str, float]:
        """Mean microseconds per step of each phase; ``simulation_cost`` = the rest of ``step``; ``reset``
        (amortised over the steps) is the rest of ``reset()``."""
        n = max(self.steps, 1)
        out = {p: 1e6 * self.totals[p] / n for p in PHASES if p != "simulation_cost"}
        out["simulation_cost"] = 1e6 * self.totals["step"] / n
        out["total_step"] = sum(out.values())
        return out


def run_steps(env: Any, policy: Any, n: int, obs: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """Run ``n`` steps (resetting at episode ends); returns (wall s, wall s inside env.step/reset, CPU s of
    this process inside env.step/reset, last obs). CPU time is less disturbed by other load on the machine."""
    t_env = c_env = 0.0
    t0 = time.perf_counter()
    for _ in range(n):
        a = policy(obs)
        c1, t1 = time.process_time(), time.perf_counter()
        obs, _r, term, trunc, _info = env.step(a)
        if term or trunc:
            obs, _ = env.reset()
        t_env += time.perf_counter() - t1
        c_env += time.process_time() - c1
    return time.perf_counter() - t0, t_env, c_env, obs


def bench_policy(env: Any, policy: Any, steps: int, repeats: int, warmup: int) -> dict[str, Any]:
    obs, _ = env.reset(seed=0)
    *_, obs = run_steps(env, policy, warmup, obs)
    rates, env_rates, cpu_rates = [], [], []
    for _ in range(repeats):
        wall, t_env, c_env, obs = run_steps(env, policy, steps, obs)
        rates.append(steps / wall)
        env_rates.append(steps / max(t_env, 1e-12))
        cpu_rates.append(steps / max(c_env, 1e-12))
    timer = PhaseTimer(env)
    timer.on = True
    run_steps(env, policy, steps, obs)
    timer.on = False
    return {
        "steps": steps,
        "repeats": repeats,
        "steps_per_s_env": median(env_rates),
        "steps_per_s_env_runs": env_rates,
        "steps_per_s_env_cpu": median(cpu_rates),
        "steps_per_s_env_cpu_runs": cpu_rates,
        "steps_per_s_with_policy": median(rates),
        "breakdown_us_per_step": timer.breakdown(),
    }


class _EnvTimer:
    """Gymnasium wrapper accumulating the wall time spent in step() and reset()."""

    def __new__(cls, env: Any) -> Any:
        import gymnasium as gym

        class Timed(gym.Wrapper):
            t_env = 0.0

            def step(self, action: Any) -> Any:
                t = time.perf_counter()
                try:
                    return self.env.step(action)
                finally:
                    Timed.t_env += time.perf_counter() - t

            def reset(self, **kw: Any) -> Any:
                t = time.perf_counter()
                try:
                    return self.env.reset(**kw)
                finally:
                    Timed.t_env += time.perf_counter() - t

        return Timed(env)


def bench_ppo(make: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or load) PPO; the env's share of ``PPO.learn`` wall time; steps/s under the policy."""
    import torch
    from stable_baselines3 import PPO

    env = _EnvTimer(make())
    out: dict[str, Any] = {}
    model = None
    if args.ppo:
        try:
            model = PPO.load(args.ppo, device="cpu")
            if model.observation_space.shape != env.observation_space.shape:
                model = None
            else:
                out["loaded"] = str(args.ppo)
        except Exception as e:  # report and train instead
            out["load_error"] = repr(e)
    if args.ppo_train_steps > 0:
        n_steps = min(256, max(16, args.ppo_train_steps))
        if model is None:
            model = PPO("MlpPolicy", env, n_steps=n_steps, batch_size=min(64, n_steps), seed=0, device="cpu",
                        verbose=0)
        else:
            model.set_env(env)
        torch.set_num_threads(args.threads)
        type(env).t_env = 0.0
        t0 = time.perf_counter()
        model.learn(total_timesteps=args.ppo_train_steps)
        wall = time.perf_counter() - t0
        out.update(
            train_steps=args.ppo_train_steps,
            n_steps=n_steps,
            learn_wall_s=wall,
            env_s=type(env).t_env,
            env_share_of_training=type(env).t_env / wall,
            train_steps_per_s=args.ppo_train_steps / wall,
        )
    if model is None:
        return out

    def policy(obs: np.ndarray) -> np.ndarray:
        a, _ = model.predict(obs, deterministic=True)
        return a

    res = bench_policy(env, policy, args.ppo_eval_steps, args.repeats, warmup=min(10, args.ppo_eval_steps))
    out.update(res)
    return out


def bench_ppo_vec(scenario: Any, args: argparse.Namespace) -> dict[str, Any]:
    """SB3 PPO (``MlpPolicy``) over :func:`gaisnet_env.sb3_vec.make_sb3_vec_env` (``--ppo-envs`` copies in one
    process): steps/s of ``PPO.learn`` and the share of its wall time inside the VecEnv's ``step_wait`` and
    ``reset``, the time in PPO's updates (``train``), and where the env's time goes (phase hooks on every
    copy, summed)."""
    import torch
    from stable_baselines3 import PPO

    from gaisnet_env.sb3_vec import make_sb3_vec_env

    torch.set_num_threads(args.threads)
    extra = {"workers": {"batched_ops": True}} if getattr(args, "batched_ops", False) else {}
    venv = make_sb3_vec_env(scenario, n_envs=args.ppo_envs, seed=0, worker_system=getattr(args, "workers", "real"),
                            **extra)  # batched_ops: the copies' ops train as one batch (gaisnet_env.copy_steps)
    clock = {"env": 0.0, "train": 0.0}

    def timed(owner: Any, name: str, key: str) -> None:
        add_timer(owner, name, clock, key)

    timed(venv, "step_wait", "env")
    timed(venv, "reset", "env")
    timers = [PhaseTimer(env) for env in venv.envs]
    n_steps = max(8, args.ppo_vec_n_steps)
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=min(64, n_steps * args.ppo_envs), seed=0,
                device="cpu", verbose=0)
    timed(model, "train", "train")
    for t in timers:
        t.on = True
    t0 = time.perf_counter()
    model.learn(total_timesteps=args.ppo_vec_steps)
    wall = time.perf_counter() - t0
    venv.close()
    steps = sum(t.steps for t in timers)
    phases = {p: 1e6 * sum(t.totals[p] for t in timers) / max(steps, 1) for p in (*PHASES, "step")}
    phases["simulation_cost"] = phases.pop("step")
    phases["total_step"] = sum(phases.values())
    return {"n_envs": args.ppo_envs, "n_steps": n_steps, "train_steps": int(model.num_timesteps),
            "learn_wall_s": wall, "env_s": clock["env"], "ppo_update_s": clock["train"],
            "env_share_of_training": clock["env"] / wall, "update_share_of_training": clock["train"] / wall,
            "train_steps_per_s": model.num_timesteps / wall, "breakdown_us_per_step": phases}


def worker_main(spec: dict[str, Any]) -> dict[str, Any]:
    """One scenario (or one scaling point) in this process."""
    import torch

    from gaisnet_env.env import GaisNetEnv

    args = argparse.Namespace(**spec["args"])
    torch.set_num_threads(args.threads)
    scenario = spec["scenario"]

    def make() -> Any:
        extra = {"workers": {"batched_ops": True}} if getattr(args, "batched_ops", False) else {}
        return GaisNetEnv(scenario, worker_system=getattr(args, "workers", "real"), **extra)

    t0 = time.perf_counter()
    env = make()
    res: dict[str, Any] = {"build_s": time.perf_counter() - t0, "n_edges": env.n_edges}
    warm = min(20, args.steps)
    for mode in spec["modes"]:
        if mode == "noop":
            res["noop"] = bench_policy(env, NoOpPolicy(env), args.steps, args.repeats, warm)
        elif mode == "random":
            n = random_steps(args, spec.get("name", scenario))
            res["random"] = bench_policy(env, MaskedRandomPolicy(env), n, args.repeats, min(5, n))
        elif mode == "ppo":
            res["ppo"] = bench_ppo(make, args)
        elif mode == "ppo-vec":
            res["ppo_vec"] = bench_ppo_vec(scenario, args)
    res["peak_rss_mb"] = peak_rss_mb()
    return res


def random_steps(args: argparse.Namespace, name: Any) -> int:
    """Steps per timed random-policy run of scenario ``name``: its ``--random-steps-for`` entry, else
    ``--random-steps``."""
    for item in args.random_steps_for or []:
        key, _, value = item.partition("=")
        if key == name:
            return int(value)
    return args.random_steps


def run_in_subprocess(spec: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
    env = dict(os.environ, PYTHONHASHSEED="0")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return {"error": p.stderr[-3000:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def _fmt(x: Any, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return f"{x:,.{nd}f}"


MODES = ("noop", "random", "ppo", "ppo-vec")


def table(results: dict[str, Any]) -> str:
    workers = results.get("args", {}).get("workers", "real")
    threads = results.get("args", {}).get("threads")
    lines = [f"Model workers: **{workers}**" + (" (calibrated fast path: operations predicted, not trained)"
                                                if workers == "fast" else " (real PyTorch training)")
             + ("; batched training engine (`workers.batched_ops: true`)"
                if results.get("args", {}).get("batched_ops") else "")
             + (f"; torch threads: {threads}" if threads else ""), ""]
    lines += ["## Steps per second (median; wall time inside env.step/reset, CPU-time rate in brackets)", ""]
    lines.append("| scenario | E | no-op | random | PPO policy | PPO env share of training | peak RSS MiB |")
    lines.append("|---|---|---|---|---|---|---|")

    def rate(r: dict[str, Any]) -> str:
        return f"{_fmt(r.get('steps_per_s_env'))} ({_fmt(r.get('steps_per_s_env_cpu'))})" if r else "-"

    for name, r in results["scenarios"].items():
        if "error" in r:
            lines.append(f"| {name} | error | | | | | |")
            continue
        ppo = r.get("ppo", {})
        share = ppo.get("env_share_of_training")
        lines.append(
            f"| {name} | {r['n_edges']} | {rate(r.get('noop', {}))} | {rate(r.get('random', {}))} | {rate(ppo)} | "
            f"{'-' if share is None else f'{100 * share:.0f}%'} | {_fmt(r['peak_rss_mb'], 0)} |"
        )
    lines += _ppo_vec_table(results)
    lines += ["", "## Step-time breakdown (us per step, exclusive)", ""]
    lines.append("| scenario | policy | " + " | ".join(PHASES) + " | total |")
    lines.append("|---|---|" + "---|" * (len(PHASES) + 1))
    for name, r in results["scenarios"].items():
        for mode in ("noop", "random", "ppo", "ppo_vec"):
            b = r.get(mode, {}).get("breakdown_us_per_step")
            if b:
                lines.append(f"| {name} | {mode} | " + " | ".join(_fmt(b[p]) for p in PHASES)
                             + f" | {_fmt(b['total_step'])} |")
    lines += _scaling_table(results)
    return "\n".join(lines)


def _ppo_vec_table(results: dict[str, Any]) -> list[str]:
    rows = [(n, r["ppo_vec"]) for n, r in results["scenarios"].items() if "ppo_vec" in r]
    if not rows:
        return []
    lines = ["", "## SB3 PPO over the native vector env (`make_sb3_vec_env`, MlpPolicy, PPO.learn wall time)", "",
             "| scenario | copies | n_steps | steps learnt | steps/s | env share (step_wait + reset) | "
             "PPO updates share | learn wall s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, v in rows:
        lines.append(f"| {name} | {v['n_envs']} | {v['n_steps']} | {v['train_steps']} | "
                     f"{_fmt(v['train_steps_per_s'])} | {100 * v['env_share_of_training']:.1f}% | "
                     f"{100 * v['update_share_of_training']:.1f}% | {_fmt(v['learn_wall_s'])} |")
    return lines


def _scaling_table(results: dict[str, Any]) -> list[str]:
    if not results.get("scaling"):
        return []
    lines = ["", "## Scaling with edges (metro, E cells; CPU us per step inside the env, median)", "",
             "| E | no-op us/step | no-op us/step/edge | random us/step | random us/step/edge |",
             "|---|---|---|---|---|"]
    for e, r in results["scaling"].items():
        if "error" in r:
            lines.append(f"| {e} | error | | | |")
            continue
        n = 1e6 / r["noop"]["steps_per_s_env_cpu"] if "noop" in r else float("nan")
        m = 1e6 / r["random"]["steps_per_s_env_cpu"] if "random" in r else float("nan")
        lines.append(f"| {e} | {_fmt(n)} | {_fmt(n / int(e))} | {_fmt(m)} | {_fmt(m / int(e))} |")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    p.add_argument("--steps", type=int, default=3000, help="steps per timed run, no-op policy")
    p.add_argument("--random-steps", type=int, default=300, help="steps per timed run, random policy")
    p.add_argument("--random-steps-for", nargs="*", default=[], metavar="NAME=N",
                   help="random steps per timed run for a scenario (or E<n> for a scaling run), e.g. city=10")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median reported)")
    p.add_argument("--modes", nargs="+", default=["noop", "random", "ppo"], choices=MODES)
    p.add_argument("--ppo", type=str, default=None, help="load this SB3 PPO zip instead of training one")
    p.add_argument("--ppo-train-steps", type=int, default=2048, help="PPO training steps (0: no training)")
    p.add_argument("--ppo-eval-steps", type=int, default=300, help="steps per timed run under the PPO policy")
    p.add_argument("--ppo-scenarios", nargs="+", default=["tiny", "metro"], help="scenarios that run PPO")
    p.add_argument("--ppo-envs", type=int, default=8, help="ppo-vec: copies of the native vector env")
    p.add_argument("--ppo-vec-steps", type=int, default=2048, help="ppo-vec: PPO.learn total timesteps")
    p.add_argument("--ppo-vec-n-steps", type=int, default=128, help="ppo-vec: PPO n_steps (per copy per rollout)")
    p.add_argument("--scaling", nargs="*", type=int, default=[1, 4, 16, 64], help="edge counts (metro)")
    p.add_argument("--scaling-steps", type=int, default=None, help="no-op steps per scaling run (default --steps)")
    p.add_argument("--scaling-modes", nargs="+", default=["noop", "random"], choices=["noop", "random"],
                   help="policies of the scaling runs (those also in --modes)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads in every process")
    p.add_argument("--batched-ops", action="store_true",
                   help="real workers with the batched training engine (workers.batched_ops: true)")
    p.add_argument("--out", type=str, default=None, help="output folder (default benchmarks/results)")
    p.add_argument("--name", type=str, default="bench_speed", help="file name stem of the results")
    p.add_argument("--workers", choices=["real", "fast"], default="real",
                   help="model workers: real (default) or the calibrated fast path (gaisnet_env.surrogate)")
    p.add_argument("--worker", type=str, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(worker_main(json.loads(args.worker))))
        return {}

    sargs = {k: v for k, v in vars(args).items() if k != "worker"}
    results: dict[str, Any] = {"machine": machine_info(), "args": sargs, "scenarios": {}, "scaling": {}}
    for name in args.scenarios:
        modes = [m for m in args.modes if not m.startswith("ppo") or name in args.ppo_scenarios]
        print(f"[bench_speed] {name}: {', '.join(modes)} ...", flush=True)
        results["scenarios"][name] = run_in_subprocess({"scenario": name, "name": name, "modes": modes,
                                                        "args": sargs})
        write_results(args.name, results, table(results), args.out)  # partial results survive an interrupt
    for e in args.scaling:
        print(f"[bench_speed] scaling E={e} ...", flush=True)
        a = dict(sargs, steps=args.scaling_steps or args.steps)
        results["scaling"][str(e)] = run_in_subprocess(
            {"scenario": scenario_for_edges(e), "name": f"E{e}", "args": a,
             "modes": [m for m in args.scaling_modes if m in args.modes]})
        write_results(args.name, results, table(results), args.out)
    md = table(results)
    pj, pm = write_results(args.name, results, md, args.out)
    print(md)
    print(f"\nwrote {pj} and {pm}")
    return results


if __name__ == "__main__":
    main()
