"""Reset time and snapshot size against the horizon: they must not grow with it.

For each case (a scenario, a horizon, drift every ``every`` epochs, ``edges`` cells) builds the env
once, then times ``reset()`` (median of ``--repeats``, after one warm-up reset) and measures the
pickled size of ``snapshot()`` after reset and after ``--steps`` no-op steps. The cases put the
default horizon beside 10^7 (the schema's maximum) side by side in one run, including the audit's
worst case (10^6 epochs, drift every epoch, 32 edges).

    python benchmarks/long_horizon.py
    python benchmarks/long_horizon.py --repeats 3 --out /tmp/bench     # quicker

Results: ``benchmarks/results/long_horizon.json`` and ``long_horizon.md``.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, median, scenario_for_edges, write_results  # noqa: E402

#: (label, scenario, horizon (None: the scenario's), drift.every_epochs (None: the scenario's), edges)
CASES: tuple[tuple[str, str, int | None, int | None, int | None], ...] = (
    ("metro, default horizon", "metro", None, None, None),
    ("metro, horizon 10^7", "metro", 10_000_000, None, None),
    ("metro, drift every epoch", "metro", None, 1, None),
    ("metro, horizon 10^7, drift every epoch", "metro", 10_000_000, 1, None),
    ("32 edges, drift every epoch", "metro", None, 1, 32),
    ("32 edges, horizon 10^6, drift every epoch", "metro", 1_000_000, 1, 32),
)


def measure(scenario: str, horizon: int | None, every: int | None, edges: int | None, repeats: int,
            steps: int) -> dict[str, Any]:
    from gaisnet_env.env import GaisNetEnv

    source: Any = scenario_for_edges(edges) if edges else scenario
    over: dict[str, Any] = {}
    if horizon is not None:
        over["horizon"] = horizon
    if every is not None:
        over["drift"] = {"every_epochs": every}
    env = GaisNetEnv(source, **over)
    env.reset(seed=0)  # warm-up: caches, first block of domains
    times = []
    for k in range(repeats):
        t0 = time.perf_counter()
        env.reset(seed=k + 1)
        times.append(time.perf_counter() - t0)
    size_reset = len(pickle.dumps(env.snapshot()))
    action = np.zeros(env.action_space.shape, dtype=np.int64)
    action.reshape(-1, 2)[:, 0] = 1  # every cell routes to its edge, no ops
    for _ in range(steps):
        env.step(action)
    return {
        "horizon": env.scenario.horizon,
        "every_epochs": env.scenario.drift.every_epochs,
        "edges": env.n_edges,
        "reset_s_median": median(times),
        "reset_s": times,
        "snapshot_bytes_after_reset": size_reset,
        "snapshot_bytes_after_steps": len(pickle.dumps(env.snapshot())),
    }


def table(rows: list[dict[str, Any]], steps: int) -> str:
    lines = [
        "# Reset time and snapshot size against the horizon",
        "",
        f"| case | horizon | drift every | edges | reset (ms, median) | snapshot after reset (KiB) | "
        f"after {steps} steps (KiB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['horizon']:,} | {r['every_epochs']} | {r['edges']} | "
            f"{1e3 * r['reset_s_median']:.1f} | {r['snapshot_bytes_after_reset'] / 1024:.1f} | "
            f"{r['snapshot_bytes_after_steps'] / 1024:.1f} |"
        )
    lines += ["", "Domains are drawn lazily in blocks of 64 per cell (gaisnet_env.workload.DomainSequence), "
              "so neither column depends on the horizon."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7, help="timed resets per case")
    p.add_argument("--steps", type=int, default=100, help="no-op steps before the second snapshot")
    p.add_argument("--out", default=None, help="output folder (default benchmarks/results)")
    args = p.parse_args(argv)
    rows = []
    for label, scenario, horizon, every, edges in CASES:
        r = measure(scenario, horizon, every, edges, args.repeats, args.steps)
        rows.append({"case": label, **r})
        print(f"{label}: reset {1e3 * r['reset_s_median']:.1f} ms, snapshot {r['snapshot_bytes_after_reset']:,} B",
              flush=True)
    data = {"machine": machine_info(), "repeats": args.repeats, "steps": args.steps, "rows": rows}
    write_results("long_horizon", data, table(rows, args.steps), Path(args.out) if args.out else None)
    return data


if __name__ == "__main__":
    main()
