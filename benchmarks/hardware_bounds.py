"""What this machine allows: issue 13's speed targets beside the floors that no code change can pass.

* **Random policy at the FLOP floor.** Per scenario, a masked random policy (seeded) plays ``--steps`` env
  steps from a snapshot ``--repeats`` times, each replay timed right after a measurement of the float32 matmul
  rate (a 1024^3 matmul at ``--threads``; this VM's rate drifts from one minute to the next), then once more
  under ``torch.utils.flop_counter.FlopCounterMode`` (the env is deterministic: the same ops), so the counted
  FLOPs are those of the timed steps: real op training, accuracy and quality tables. Floor per step = counted
  FLOPs / the rate; medians over the replays. The largest speed-up the hardware allows over the issue's code
  (08d6255) is today's measured / floor times today's rate over the issue's code (side by side in
  ``issue13_random.json``), beside the targets (metro 2.5x, city 10x).
* **PPO's own time.** SB3 PPO (``MlpPolicy``, as ``bench_speed.py --modes ppo-vec``: ``--ppo-envs`` copies,
  ``n_steps`` 128, batch 64) on a free env with metro's spaces (zeros, no simulation): its seconds per env
  step. With the env at its FLOP floor, the env's share of training is floor / (floor + PPO), the least any
  env with the real workers can take, beside the target (<= 50%).
* **Per-copy calls of the vector env.** In a metro no-op step, the time of the calls that are per copy in
  today's workers (feedback draw, label scoring, domain reports: ``bench_vector.breakdown``): a core that
  batched everything else across copies would still make them, so single step / their sum bounds the
  native vector env's speed-up (target 25x) until the workers are batched across copies too. (They are since
  the quiet steps, ``gaisnet_env/quiet_steps.py``: what stays per copy there is its own random draws, which
  ``bench_vector.py`` measures as the vector env's bound.)

Usage::

    python benchmarks/hardware_bounds.py                    # metro and city, writes results/hardware_bounds.*
    python benchmarks/hardware_bounds.py --scenarios tiny --steps 4 --ppo-steps 256 --out /tmp/hb
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, MaskedRandomPolicy, machine_info, median, write_results  # noqa: E402
from bench_batched_ops import measured_gflops  # noqa: E402
from bench_vector import breakdown  # noqa: E402

TARGETS = {"metro": 2.5, "city": 10.0}  # random policy, x the issue's code
BASELINE_KEY = "08d6255"


def random_floor(scenario: str, steps: int, warmup: int, repeats: int) -> dict[str, Any]:
    """Measured and FLOP-floor time per step of the masked random policy on ``scenario``: the same ``steps``
    steps (from a snapshot) ``repeats`` times, each timed right after a measurement of the matmul rate, and
    once under the FLOP counter; medians over the repeats."""
    from torch.utils.flop_counter import FlopCounterMode

    from gaisnet_env.env import GaisNetEnv

    env = GaisNetEnv(scenario)
    env.reset(seed=0)
    policy = MaskedRandomPolicy(env, seed=0)
    for _ in range(warmup):
        env.step(policy(None))
    snap, rng_state = env.snapshot(), policy.rng.bit_generator.state

    def replay() -> float:
        env.restore(snap)
        policy.rng.bit_generator.state = rng_state
        t0 = time.perf_counter()
        for _ in range(steps):
            env.step(policy(None))
        return (time.perf_counter() - t0) / steps

    rates, times = [], []
    for _ in range(repeats):
        rates.append(measured_gflops())
        times.append(replay())
    env.restore(snap)
    policy.rng.bit_generator.state = rng_state
    with FlopCounterMode(display=False) as counter:
        for _ in range(steps):
            env.step(policy(None))
    flops = counter.get_total_flops() / steps
    over = [t * g * 1e9 / flops if flops else float("inf") for t, g in zip(times, rates, strict=True)]
    gflops = median(rates)
    floor_s = flops / (gflops * 1e9)
    return {"steps": steps, "repeats": repeats, "ms_per_step": 1e3 * median(times), "ms_runs": [1e3 * t for t in times],
            "gflops": gflops, "gflops_runs": rates, "gflop_per_step": flops / 1e9, "floor_ms": 1e3 * floor_s,
            "steps_per_s_at_floor": 1.0 / floor_s if floor_s > 0 else float("inf"),
            "measured_over_floor": median(over)}


def ppo_seconds_per_step(n_envs: int, total: int, threads: int) -> dict[str, Any]:
    """SB3 PPO's own wall time per env step on a free env with metro's spaces."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from gaisnet_env.env import GaisNetEnv

    spaces = GaisNetEnv("metro")
    obs_space, act_space = spaces.observation_space, spaces.action_space

    class FreeEnv(gym.Env):
        """metro's spaces, no simulation: zeros, reward 0, 200-step episodes."""

        observation_space, action_space = obs_space, act_space

        def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
            super().reset(seed=seed)
            self.t = 0
            return np.zeros(obs_space.shape, np.float32), {}

        def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
            self.t += 1
            return np.zeros(obs_space.shape, np.float32), 0.0, False, self.t >= 200, {}

    torch.set_num_threads(threads)
    venv = DummyVecEnv([FreeEnv for _ in range(n_envs)])
    model = PPO("MlpPolicy", venv, n_steps=128, batch_size=min(64, 128 * n_envs), seed=0, device="cpu", verbose=0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=total)
    wall = time.perf_counter() - t0
    return {"n_envs": n_envs, "steps": int(model.num_timesteps), "wall_s": wall,
            "ms_per_env_step": 1e3 * wall / model.num_timesteps}


def per_copy_calls(steps: int) -> dict[str, Any]:
    """metro no-op step and its per-copy worker calls, µs per step (bench_vector.breakdown)."""
    from gaisnet_env.env import GaisNetEnv

    env = GaisNetEnv("metro")
    env.reset(seed=0)
    parts = breakdown(env, steps)
    per_copy = sum(v for k, v in parts.items() if k.startswith("workers."))
    return {"breakdown_us": parts, "per_copy_us": per_copy, "max_vector_speedup": parts["step"] / per_copy}


def _baseline_ratios() -> dict[str, float]:
    """Today's random-policy rate over the issue's code's per scenario (``issue13_random.json``: both measured
    side by side in one run)."""
    path = RESULTS / "issue13_random.json"
    summary = json.loads(path.read_text()).get("summary", {}) if path.exists() else {}
    return {name: float(row["ratio"]) for name, row in summary.items() if row.get("ratio")}


def most_speedup(measured_over_floor: float, today_over_issue: float | None) -> float | None:
    """The most a random step could gain over the issue's code on this machine: today's step is
    ``measured_over_floor`` times its floor, and ``today_over_issue`` times the issue's code's rate (each ratio
    from one run, so a machine whose speed drifts between runs does not bias it)."""
    return None if today_over_issue is None else measured_over_floor * today_over_issue


def table(data: dict[str, Any]) -> str:
    """The markdown: one row per target with the bound this machine sets."""
    g, lines = data["gflops"], []
    lines += [f"Measured float32 rate: {g:.1f} GFLOP/s at the start (1024^3 matmul, median, {data['threads']} torch "
              "thread(s)); each scenario's floor uses the rate measured right before each of its timed replays "
              "(medians over the replays). Every figure below is from this one run.", "",
              "## Masked random policy, real workers", "",
              "| scenario | measured ms/step | counted GFLOP/step | floor ms/step | measured / floor | steps/s at the "
              "floor | today / issue's code (issue13_random) | most speed-up the hardware allows | target |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in data["random"].items():
        ratio = data["today_over_issue"].get(name)
        most = most_speedup(r["measured_over_floor"], ratio)
        lines.append(f"| {name} | {r['ms_per_step']:.1f} | {r['gflop_per_step']:.3f} | {r['floor_ms']:.1f} "
                     f"| {r['measured_over_floor']:.1f}x | {r['steps_per_s_at_floor']:.0f} | "
                     f"{'-' if ratio is None else f'{ratio:.2f}x'} | {'-' if most is None else f'{most:.1f}x'} "
                     f"| {TARGETS.get(name, '-')}x |")
    rates = [g for r in data["random"].values() for g in r["gflops_runs"]]
    lines += ["", "Most speed-up = (measured / floor) x (today / the issue's code): each ratio from one run, so the "
              f"machine's speed drifting between runs does not enter (the matmul rate ranged {min(rates):.0f} to "
              f"{max(rates):.0f} GFLOP/s over this run's replays)."]
    ppo = data["ppo"]
    lines += ["", "## Env share of PPO training at the FLOP floor", "",
              f"SB3 PPO on a free env with metro's spaces, {ppo['n_envs']} copies, {ppo['steps']} steps: "
              f"{ppo['ms_per_env_step']:.2f} ms of PPO per env step."]
    if "metro" in data["random"]:
        floor = data["random"]["metro"]["floor_ms"]
        share = floor / (floor + ppo["ms_per_env_step"])
        data["min_env_share_metro"] = share
        lines.append(f"metro's random step at its floor ({floor:.1f} ms) would still be **{100 * share:.0f}%** of "
                     "training wall time (target: at most 50%).")
    pc = data["per_copy"]
    lines += ["", "## Native vector env, no operations: the per-copy calls of today's workers", "",
              "| piece | µs per step |", "|---|---:|"]
    lines += [f"| {k} | {v:,.1f} |" for k, v in pc["breakdown_us"].items()]
    lines += ["", f"Per-copy worker calls: {pc['per_copy_us']:.0f} µs of a {pc['breakdown_us']['step']:.0f} µs step: "
              f"a core batched across copies around today's workers reaches at most "
              f"**{pc['max_vector_speedup']:.1f}x** per env-step (target 25x); past that the workers' feedback "
              "buffers, label tables and domain reports must be batched across copies too."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", nargs="+", default=["metro", "city"])
    p.add_argument("--steps", type=int, default=12, help="random-policy steps timed and counted per scenario")
    p.add_argument("--warmup", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3, help="timed replays of the same steps (medians)")
    p.add_argument("--ppo-envs", type=int, default=8)
    p.add_argument("--ppo-steps", type=int, default=4096)
    p.add_argument("--noop-steps", type=int, default=400)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data: dict[str, Any] = {"threads": args.threads, "gflops": measured_gflops(),
                            "today_over_issue": _baseline_ratios(), "baseline": BASELINE_KEY}
    data["random"] = {name: random_floor(name, args.steps, args.warmup, args.repeats) for name in args.scenarios}
    runs = [ppo_seconds_per_step(args.ppo_envs, args.ppo_steps, args.threads) for _ in range(2)]
    data["ppo"] = {**runs[0], "ms_per_env_step": median([r["ms_per_env_step"] for r in runs]),
                   "ms_runs": [r["ms_per_env_step"] for r in runs]}
    data["per_copy"] = per_copy_calls(args.noop_steps)
    data["machine"] = machine_info()
    md = table(data)
    write_results("hardware_bounds", data, md, args.out)
    print(md)
    return data


if __name__ == "__main__":
    main()
