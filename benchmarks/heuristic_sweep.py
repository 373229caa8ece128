"""Grid search of a heuristic's parameters on validation seeds: is the benchmark's baseline well tuned?

Every combination of the ``--grid`` values is evaluated on the validation seeds (from
``VALIDATION_SEED_BASE`` = 20000, disjoint from the benchmark's held-out seeds 10000..) and compared,
paired seed by seed, with the heuristic at its defaults: mean episode reward, and the paired
difference with its 95% t-interval.

Usage::

    python benchmarks/heuristic_sweep.py --heuristic cost-aware --seeds 10 --jobs 2 \
        --grid acc_drop=0.02,0.03,0.05 cooldown=0,1,2 drift_finetune=0.15,0.25

Results: ``benchmarks/results/<name>.json`` and ``<name>.md`` (default name ``<heuristic>_sweep``).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_results  # noqa: E402


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``["a=1,2", "b=x"]`` -> ``{"a": ["1", "2"], "b": ["x"]}`` (values stay text, as in a policy spec)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise SystemExit(f"--grid: expected NAME=V1,V2,... , got {item!r}")
        grid[key] = values.split(",")
    return grid


def specs_of(heuristic: str, grid: dict[str, list[str]], baseline: str | None = None) -> list[str]:
    """The baseline (default: the heuristic at its defaults) first, then one policy spec per combination of the
    grid's values."""
    keys = list(grid)
    combos = itertools.product(*(grid[k] for k in keys))
    specs = [f"{heuristic}:" + ",".join(f"{k}={v}" for k, v in zip(keys, c, strict=True)) for c in combos]
    return [baseline or heuristic, *specs]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--heuristic", default="cost-aware")
    p.add_argument("--grid", nargs="+", required=True, metavar="NAME=V1,V2", help="parameter values to combine")
    p.add_argument("--scenario", default="metro")
    p.add_argument("--seeds", type=int, default=10, help="validation seeds (20000..)")
    p.add_argument("--jobs", type=int, default=1, help="evaluation processes")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default=None, help="output folder (default benchmarks/results)")
    p.add_argument("--name", default=None, help="file name stem of the results (default <heuristic>_sweep)")
    p.add_argument("--baseline", default=None, help="policy spec the paired column compares with (default: the "
                   "heuristic at its defaults), e.g. periodic for --heuristic finetune-value")
    args = p.parse_args(argv)

    from gaisnet_env.agents.base import VALIDATION_SEED_BASE, eval_seeds, summarise

    from gaisnet_env.evaluation import evaluate_specs, policy_label  # noqa: I001 - it imports the agents first
    from gaisnet_env.report import paired_difference

    specs = specs_of(args.heuristic, parse_grid(args.grid), args.baseline)
    base = policy_label(specs[0])
    seeds = eval_seeds(args.seeds, VALIDATION_SEED_BASE)
    t0 = time.perf_counter()
    res = evaluate_specs(specs, args.scenario, seeds, 1, args.jobs, None, not args.no_progress)
    rows = []
    for spec in specs:
        mean, ci = summarise([r.reward for r in res if r.policy == policy_label(spec)])
        d, dh, _ = paired_difference(res, policy_label(spec), base)
        rows.append({"policy": spec, "reward_mean": mean, "reward_ci95": ci, "paired_vs_defaults": d,
                     "paired_ci95": dh})
    rows.sort(key=lambda r: -r["reward_mean"])
    data = {"machine": machine_info(), "scenario": args.scenario, "seeds": seeds, "heuristic": args.heuristic,
            "baseline": specs[0],
            "grid": args.grid, "wall_s": time.perf_counter() - t0, "rows": rows}
    lines = [f"## {args.heuristic} on {args.scenario}: {len(seeds)} validation seeds ({seeds[0]}..{seeds[-1]})", "",
             f"| policy | episode reward | paired - {specs[0]} |", "|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['policy']} | {r['reward_mean']:.2f} ± {r['reward_ci95']:.2f} | "
                     f"{r['paired_vs_defaults']:+.2f} ± {r['paired_ci95']:.2f} |")
    lines += ["", "Mean ± half-width of the 95% t-interval over the seeds; the paired column is the per-seed "
              f"difference to `{specs[0]}`."]
    pj, pm = write_results(args.name or f"{args.heuristic}_sweep", data, "\n".join(lines), args.out)
    print("\n".join(lines))
    print(f"wrote {pj} and {pm}")
    return data


if __name__ == "__main__":
    main()
