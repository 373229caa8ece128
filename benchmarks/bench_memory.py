"""Memory growth over a long run: ``--steps`` steps (default 1,000,000) of one scenario in one process.

The policy is cheap (``noop``: every cell routes to its edge, no knowledge operations; or ``random``:
masked random routes and operations, slow because operations train for real). Resident memory
(RSS) is sampled every ``--every`` steps (default 10,000); growth is measured against the sample
at the first ``--every`` steps (after warm-up: caches filled, allocator settled). ``--max-seconds``
stops early (the steps reached are reported).

Usage::

    python benchmarks/bench_memory.py                         # metro, 1M no-op steps
    python benchmarks/bench_memory.py --steps 200000 --max-seconds 600
    python benchmarks/bench_memory.py --scenario tiny --steps 300 --every 100 --out /tmp/bench   # smoke

Results: ``benchmarks/results/bench_memory.json`` and ``bench_memory.md`` (or ``--out``/``--name``).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MaskedRandomPolicy, NoOpPolicy, machine_info, peak_rss_mb, rss_mb, write_results  # noqa: E402


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="metro")
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--every", type=int, default=10_000, help="RSS sample interval, steps")
    p.add_argument("--policy", choices=["noop", "random"], default="noop")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this wall time")
    p.add_argument("--out", type=str, default=None, help="output folder (default benchmarks/results)")
    p.add_argument("--name", type=str, default="bench_memory")
    args = p.parse_args(argv)

    from gaisnet_env.env import GaisNetEnv

    env = GaisNetEnv(args.scenario)
    policy = NoOpPolicy(env) if args.policy == "noop" else MaskedRandomPolicy(env)
    obs, _ = env.reset(seed=0)
    samples: list[dict[str, float]] = [{"step": 0, "rss_mb": rss_mb(), "elapsed_s": 0.0}]
    t0 = time.perf_counter()
    step = episodes = 0
    stopped_early = False
    while step < args.steps:
        obs, _r, term, trunc, _info = env.step(policy(obs))
        step += 1
        if term or trunc:
            obs, _ = env.reset()
            episodes += 1
        if step % args.every == 0 or step == args.steps:
            gc.collect()
            el = time.perf_counter() - t0
            samples.append({"step": step, "rss_mb": rss_mb(), "elapsed_s": el})
            print(f"[bench_memory] {step:>9,} steps  RSS {samples[-1]['rss_mb']:.1f} MiB  {step / el:,.0f} steps/s",
                  flush=True)
            if args.max_seconds is not None and el > args.max_seconds and step < args.steps:
                stopped_early = True
                break
    wall = time.perf_counter() - t0
    ref = next((s for s in samples if s["step"] >= min(args.every, step)), samples[-1])
    last = samples[-1]
    growth = (last["rss_mb"] - ref["rss_mb"]) / ref["rss_mb"] if ref["rss_mb"] else float("nan")
    res = {
        "machine": machine_info(),
        "args": vars(args),
        "scenario": args.scenario,
        "policy": args.policy,
        "steps_requested": args.steps,
        "steps_done": step,
        "episodes": episodes,
        "stopped_early": stopped_early,
        "wall_s": wall,
        "steps_per_s": step / wall if wall > 0 else float("nan"),
        "rss_start_mb": samples[0]["rss_mb"],
        "rss_ref_mb": ref["rss_mb"],
        "rss_ref_step": ref["step"],
        "rss_end_mb": last["rss_mb"],
        "growth_after_ref": growth,
        "peak_rss_mb": peak_rss_mb(),
        "samples": samples,
    }
    md = "\n".join([
        f"## Memory over {step:,} steps of {args.scenario} ({args.policy} policy)"
        + (f" - stopped early at {args.max_seconds:.0f} s of {args.steps:,} requested" if stopped_early else ""),
        "",
        "| steps | RSS at start MiB | RSS at reference step MiB | RSS at end MiB | growth after reference | "
        "peak RSS MiB | steps/s |",
        "|---|---|---|---|---|---|---|",
        f"| {step:,} | {samples[0]['rss_mb']:.1f} | {ref['rss_mb']:.1f} (step {ref['step']:,}) | "
        f"{last['rss_mb']:.1f} | "
        f"{100 * growth:+.2f}% | {res['peak_rss_mb']:.1f} | {res['steps_per_s']:,.0f} |",
    ])
    pj, pm = write_results(args.name, res, md, args.out)
    print(md)
    print(f"\nwrote {pj} and {pm}")
    return res


if __name__ == "__main__":
    main()
