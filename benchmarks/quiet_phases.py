"""Where a quiet step of the native vector env spends its time: phase timers around the parts of the quiet
path (select and gather, fault multipliers, cost-figure rows, draws, the epoch's arithmetic, feedback, vector
info, observation with the next epoch's figures, scatter), in µs per copy and epoch.

Each process first times the untimed no-op steps, then wraps the parts in timers and steps again from the
same seed; the timed step's total stands beside the untimed one, so the timers' own cost (and the machine's
noise between the two passes) can be read off. Nested parts are indented under the part that calls them; a
part called from two places counts both (under a fault, ``select`` also builds the fault multipliers).

    python benchmarks/quiet_phases.py --sizes 64 256 --steps 200
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import machine_info, write_results

#: (label, module or class path, attribute); the label's indent is its nesting under the part above it.
PARTS = (
    ("vector env step", "gaisnet_env.vector_env:GaisNetVectorEnv", "step"),
    ("  select (gather, fault checks)", "gaisnet_env.quiet_steps:QuietSteps", "select"),
    ("    gather the states", "gaisnet_env.quiet_steps", "_gather"),
    ("  quiet step", "gaisnet_env.quiet_steps:QuietSteps", "step"),
    ("    feedback sync", "gaisnet_env.copy_feedback:CopyFeedback", "sync"),
    ("    fault multipliers", "gaisnet_env.quiet_steps", "epoch_faults"),
    ("    cost-figure rows", "gaisnet_env.quiet_steps", "kept_figures"),
    ("    draws and their bookkeeping", "gaisnet_env.quiet_steps", "_draw"),
    ("    epoch", "gaisnet_env.quiet_steps:QuietSteps", "_epoch"),
    ("      latency", "gaisnet_env.quiet_steps", "_latency"),
    ("      feedback rings and label scoring", "gaisnet_env.quiet_steps:QuietSteps", "_feedback"),
    ("      scatter the states", "gaisnet_env.quiet_steps", "_scatter"),
    ("      vector info", "gaisnet_env.quiet_steps", "vector_info"),
    ("      action masks", "gaisnet_env.quiet_steps:QuietSteps", "_action_masks"),
    ("      observation", "gaisnet_env.quiet_steps:QuietSteps", "_observation"),
    ("        next epoch's figures", "gaisnet_env.quiet_steps", "epoch_figures"),
    ("        domain reports", "gaisnet_env.copy_feedback:CopyFeedback", "domain_reports"),
)


def _owner(path: str) -> Any:
    import importlib

    module, _, cls = path.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, cls) if cls else mod


def _wrap(totals: Counter, label: str, fn: Any) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - t0
    return timed


def _noop(venv: Any) -> np.ndarray:
    n = venv.num_envs
    act = np.zeros((n, venv.n_edges, 2), np.int64)
    act[..., 0] = 1  # every request at the edge, no operation
    return act.reshape(n, -1)


def phases(scenario: str, n: int, steps: int, warmup: int) -> dict[str, Any]:
    """µs per copy and epoch of the untimed steps and of each part, for ``n`` copies of ``scenario``."""
    from gaisnet_env.vector_env import GaisNetVectorEnv

    def run(timers: bool) -> tuple[float, Counter]:
        venv = GaisNetVectorEnv(n, scenario)
        venv.reset(seed=0)
        act = _noop(venv)
        for _ in range(warmup):
            venv.step(act)
        totals: Counter = Counter()
        saved = []
        if timers:
            for label, path, attr in PARTS:
                owner = _owner(path)
                saved.append((owner, attr, owner.__dict__[attr]))
                setattr(owner, attr, _wrap(totals, label.strip(), getattr(owner, attr)))
        try:
            t0 = time.perf_counter()
            for _ in range(steps):
                venv.step(act)
            wall = time.perf_counter() - t0
        finally:
            for owner, attr, fn in saved:
                setattr(owner, attr, fn)
            venv.close()
        return wall, totals

    untimed, _ = run(False)
    timed, totals = run(True)
    per = 1e6 / (steps * n)
    return {"copies": n, "steps": steps, "warmup": warmup, "untimed_us": untimed * per, "timed_us": timed * per,
            "parts_us": {label.strip(): totals[label.strip()] * per for label, _, _ in PARTS}}


def table(rows: list[dict[str, Any]], scenario: str) -> str:
    """The markdown: one column per size, a row per part (indented as nested)."""
    head = " | ".join(f"N = {r['copies']}" for r in rows)
    lines = [f"`{scenario}`, no operations, {rows[0]['steps']} vector steps after {rows[0]['warmup']} warm-up steps "
             "from seed 0 (autoresets inside); µs per copy and epoch.", "",
             f"| part | {head} |", "|---|" + "---:|" * len(rows),
             "| untimed vector env step | " + " | ".join(f"{r['untimed_us']:.1f}" for r in rows) + " |"]
    for label, _, _ in PARTS:
        pad = "&nbsp;" * (len(label) - len(label.lstrip()))
        lines.append(f"| {pad}{label.strip()} | "
                     + " | ".join(f"{r['parts_us'][label.strip()]:.1f}" for r in rows) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="metro")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256], help="copies of the native vector env")
    p.add_argument("--steps", type=int, default=200, help="timed vector steps per size")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = [phases(args.scenario, n, args.steps, args.warmup) for n in args.sizes]
    res = {"machine": machine_info(), "scenario": args.scenario, "rows": rows}
    md = table(rows, args.scenario)
    write_results("quiet_phases", res, md, Path(args.out) if args.out else None)
    print(md)
    return res


if __name__ == "__main__":
    main()
