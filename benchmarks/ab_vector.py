"""This checkout's native vector env against another commit's, side by side: no-op metro steps per env-step.

Each round runs one process per side (a git worktree of ``--against`` for the other), alternating, so both
meet the same machine load; a process warms up, then times ``--blocks`` blocks of ``--block`` env-steps per
variant and reports their median (``--skip`` steps run untimed first: the blocks then start later in the
episode). The result is the median over the rounds of each side and their ratio.

    python benchmarks/ab_vector.py --against 49a5dec --sizes 64 256 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import machine_info, median, write_results

ROOT = Path(__file__).resolve().parents[1]

#: What each side's process runs: argv = scenario, block, blocks, skip, sizes...; prints {variant: µs per env-step}.
_SIDE = r"""
import json, statistics, sys, time
import numpy as np
import torch
torch.set_num_threads(1)
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.vector_env import GaisNetVectorEnv
scenario, block, blocks, skip = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sizes = [int(x) for x in sys.argv[5:]]
envs = {"single GaisNetEnv": GaisNetEnv(scenario), **{f"native N={n}": GaisNetVectorEnv(n, scenario) for n in sizes}}
def noop(env):
    n = getattr(env, "num_envs", 1)
    act = np.zeros((n, env.n_edges, 2), np.int64)
    act[..., 0] = 1
    return act.reshape(n, -1) if hasattr(env, "num_envs") else act.reshape(-1)
def run(env, act, steps):
    for _ in range(steps):
        out = env.step(act)
        if not hasattr(env, "num_envs") and (out[2] or out[3]):
            env.reset()
out = {}
for name, env in envs.items():
    env.reset(seed=0)
    act, n = noop(env), getattr(env, "num_envs", 1)
    run(env, act, max(1, 64 // n))
    run(env, act, skip)  # untimed: the timed blocks start at a later epoch
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        run(env, act, max(1, block // n))
        times.append((time.perf_counter() - t0) / (max(1, block // n) * n))
    out[name] = 1e6 * statistics.median(times)
print(json.dumps(out))
"""


def side(src: Path, args: argparse.Namespace) -> dict[str, float]:
    """One process of the checkout at ``src``: µs per env-step of each variant."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-c", _SIDE, args.scenario, str(args.block), str(args.blocks), str(args.skip),
           *map(str, args.sizes)]
    done = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(res: dict) -> str:
    """The markdown: each variant's median on both sides and the speed-up of this checkout."""
    lines = [f"`{res['scenario']}`, no operations, {res['rounds']} rounds (one process per side each, alternating), "
             f"{res['blocks']} blocks of {res['block']} env-steps per variant in each process"
             + (f", after {res['skip']} untimed steps of each variant (vector steps for the vector env)"
                if res.get("skip") else "") + "; medians over the rounds.", "",
             f"| variant | {res['against']} µs per env-step | this checkout µs per env-step | speed-up | "
             f"{res['against']} vs its single env | this checkout vs its single env |",
             "|---|---:|---:|---:|---:|---:|"]
    base, new = res["median_us"]["against"], res["median_us"]["this"]
    for name in new:
        lines.append(f"| {name} | {base[name]:,.1f} | {new[name]:,.1f} | {base[name] / new[name]:.2f}x "
                     f"| {base['single GaisNetEnv'] / base[name]:.2f}x | {new['single GaisNetEnv'] / new[name]:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--against", required=True, help="the commit to compare with (any git revision)")
    p.add_argument("--scenario", default="metro")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256], help="copies of the native vector env")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--block", type=int, default=512, help="env-steps per timed block")
    p.add_argument("--blocks", type=int, default=5, help="timed blocks per variant in each process")
    p.add_argument("--skip", type=int, default=0,
                   help="steps each variant runs untimed after its warm-up (vector steps for a vector env), so "
                        "that the timed blocks start later in the episode (metro's faults: epochs 130-139, 160-169)")
    p.add_argument("--out", default=None)
    p.add_argument("--name", default="ab_vector")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "against"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(other), args.against], cwd=ROOT, check=True)
        try:
            runs: dict[str, list[dict[str, float]]] = {"against": [], "this": []}
            for r in range(args.rounds):
                for key, src in (("against", other), ("this", ROOT)):
                    runs[key].append(side(src, args))
                print(f"[ab_vector] round {r + 1}/{args.rounds}: "
                      + ", ".join(f"{k} N={args.sizes[0]} {v[-1][f'native N={args.sizes[0]}']:.1f} µs"
                                  for k, v in runs.items()), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
    meds = {key: {name: median([run[name] for run in rs]) for name in rs[0]} for key, rs in runs.items()}
    res = {"machine": machine_info(), "scenario": args.scenario, "against": args.against, "sizes": args.sizes,
           "rounds": args.rounds, "block": args.block, "blocks": args.blocks, "skip": args.skip, "runs_us": runs,
           "median_us": meds}
    md = table(res)
    write_results(args.name, res, md, Path(args.out) if args.out else None)
    print(md)
    return res


if __name__ == "__main__":
    main()
