"""Per-op time of every knowledge operation kind on a scenario's real workers, serial, beside its FLOP floor.

On ``metro`` (default) after ``--warm-steps`` no-op steps from ``reset(seed=0)`` (at most one episode, so
every edge's feedback buffer holds samples), each kind (finetune, relay_down, relay_up as a round of one
sender, relay_to_end) is started ``--repeats`` times on every edge with
:meth:`~gaisnet_env.workers.WorkerSystem.start_op` and aborted at once (no weights change; the workers'
random stream moves on), in an interleaved order (one pass over the kinds per repeat). Time per op =
median wall time of ``start_op``: the whole op (sampling, labelling, classifier and generator training),
as the env runs it. Beside it:

* counted FLOPs: the sum of the op's ``OpResult.flops`` (its ``work`` parts, :mod:`gaisnet_env.op_costs`),
  per part too; the classifier-training part alone is what ``bench_batched_ops`` batches;
* FLOP floor = counted FLOPs / this machine's float32 rate (median 1024^3 matmul at the same torch
  thread count, ``bench_batched_ops.measured_gflops``);
* the accuracy table of each tier (a forward pass over the held-out test pool, what a commit costs
  later), with its floor (pool size x the model's counted inference FLOPs);
* cProfile's top functions by own and by cumulative time, per kind (``--profile-top``; a separate pass
  of ``--repeats`` // 2 starts per edge, not timed).

Usage::

    python benchmarks/bench_ops.py                          # metro, 5 repeats x 4 edges per kind, 1 thread
    python benchmarks/bench_ops.py --scenario tiny --repeats 1 --warm-steps 20 --out /tmp/b   # smoke

Results: ``benchmarks/results/bench_ops.json`` and ``.md`` (or ``--out``/``--name``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import NoOpPolicy, machine_info, median, write_results  # noqa: E402
from bench_batched_ops import measured_gflops  # noqa: E402
from bench_vector import profile_top  # noqa: E402

KINDS = ("finetune", "relay_down", "relay_up", "relay_to_end")
TIERS = ("end", "edge", "cloud")


def warm_env(scenario: str, steps: int) -> Any:
    """A reset env stepped ``steps`` no-op steps, or to its episode's end (feedback buffers fill; no weights
    change; a reset would empty them)."""
    from gaisnet_env.env import GaisNetEnv

    env = GaisNetEnv(scenario)
    obs, _ = env.reset(seed=0)
    policy = NoOpPolicy(env)
    for _ in range(steps):
        obs, _r, term, trunc, _ = env.step(policy(obs))
        if term or trunc:
            break
    return env


def _one_op(workers: Any, kind: str, edge: int) -> tuple[float, Any]:
    """Seconds of one ``start_op(kind, edge)`` (aborted at once) and its result."""
    workers.abort_op(edge)
    t0 = time.perf_counter()
    res = workers.start_op(kind, edge)
    dt = time.perf_counter() - t0
    workers.abort_op(edge)
    return dt, res


def _parts(res: Any) -> list[dict[str, Any]]:
    return [{"part": w.part, "tier": w.tier, "model": w.model, "kind": w.kind, "samples": w.samples,
             "flops": w.flops} for w in getattr(res, "work", [])]


def time_ops(workers: Any, repeats: int, gflops: float) -> list[dict[str, Any]]:
    """Per kind: median ms per op over ``repeats`` x edges starts, counted FLOPs and the floor."""
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    flops: dict[str, list[float]] = {k: [] for k in KINDS}
    last: dict[str, Any] = {}
    refused: dict[str, list[str]] = {k: [] for k in KINDS}
    for k in KINDS:  # warm-up: one of each
        _one_op(workers, k, 0)
    for _ in range(repeats):
        for k in KINDS:
            for e in range(workers.n_edges):
                dt, res = _one_op(workers, k, e)
                if not res.ok:
                    refused[k].append(res.message)
                    continue
                times[k].append(dt)
                flops[k].append(float(sum(res.flops.values())))
                last[k] = res
    rows = []
    for k in KINDS:
        ms = 1e3 * median(times[k])
        fl = median(flops[k])
        parts = _parts(last[k]) if k in last else []
        cls = sum(p["flops"] for p in parts if p["model"].endswith("classifier") and p["kind"] == "train")
        floor = 1e3 * fl / (gflops * 1e9)
        rows.append({"op": k, "n": len(times[k]), "refused": refused[k][:3], "ms_per_op": ms,
                     "ms_runs": [1e3 * t for t in times[k]], "counted_flops": fl, "floor_ms": floor,
                     "over_floor": ms / floor if floor > 0 else float("nan"),
                     "classifier_train_flops": cls, "classifier_train_floor_ms": 1e3 * cls / (gflops * 1e9),
                     "parts": parts})
    return rows


def time_tables(workers: Any, repeats: int, gflops: float) -> list[dict[str, Any]]:
    """Per tier: median ms of one accuracy table (forward pass over the test pool), and its floor."""
    n_eval = int(workers._x_eval.shape[0])
    per = {"end": workers._flops["end"][0], "edge": workers._flops["edge"][0],
           "cloud": workers._flops["teacher"][0] if workers._mixture is None else float("nan")}
    rows = []
    for tier in TIERS:
        ts = []
        for _ in range(repeats):
            for e in range(workers.n_edges):
                t0 = time.perf_counter()
                workers.accuracy_table(tier, e, use_cache=False)
                ts.append(time.perf_counter() - t0)
        fl = n_eval * per[tier]
        ms, floor = 1e3 * median(ts), 1e3 * fl / (gflops * 1e9)
        rows.append({"tier": tier, "ms": ms, "samples": n_eval, "counted_flops": fl, "floor_ms": floor,
                     "over_floor": ms / floor if floor > 0 else float("nan")})
    return rows


def profiles(workers: Any, repeats: int, top: int) -> dict[str, str]:
    """cProfile's ``top`` functions per kind over ``repeats`` starts per edge (separate, untimed pass)."""
    out = {}
    for k in KINDS:
        def ops(kind: str = k) -> None:
            for _ in range(repeats):
                for e in range(workers.n_edges):
                    _one_op(workers, kind, e)

        own, cum = profile_top(ops, top, ("tottime", "cumulative"))
        out[k] = own
        out[k + " (cumulative)"] = cum
    return out


def table(data: dict[str, Any]) -> str:
    g = data["gflops"]
    lines = [f"`{data['scenario']}`, real workers, {data['threads']} torch thread(s); {data['warm_steps']} no-op "
             f"steps from reset(seed=0) before (feedback per edge: {data['feedback_counts']}). Measured float32 rate "
             f"{g:.1f} GFLOP/s (1024^3 matmul); 1-minute load average {data['load_average_1min'][0]:.2f} at the "
             f"start, {data['load_average_1min'][1]:.2f} at the end.", "",
             "Serial: one `start_op` at a time (aborted at once), medians over repeats x edges:", "",
             "| op | ops timed | ms per op | counted MFLOP | FLOP floor ms | time / floor | classifier-training "
             "floor ms |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in data["ops"]:
        lines.append(f"| {r['op']} | {r['n']} | {r['ms_per_op']:.2f} | {r['counted_flops'] / 1e6:,.1f} | "
                     f"{r['floor_ms']:.3f} | {r['over_floor']:.1f}x | {r['classifier_train_floor_ms']:.3f} |")
    lines += ["", "Accuracy table (one tier at one edge, forward pass over the test pool):", "",
              "| tier | samples | ms | counted MFLOP | floor ms | time / floor |", "|---|---:|---:|---:|---:|---:|"]
    for r in data["tables"]:
        lines.append(f"| {r['tier']} | {r['samples']} | {r['ms']:.2f} | {r['counted_flops'] / 1e6:,.1f} | "
                     f"{r['floor_ms']:.3f} | {r['over_floor']:.1f}x |")
    lines += ["", "Counted FLOPs per part (one op of each kind):", "", "| op | part | tier | model | kind | samples "
              "| MFLOP |", "|---|---|---|---|---|---:|---:|"]
    for r in data["ops"]:
        for p in r["parts"]:
            lines.append(f"| {r['op']} | {p['part']} | {p['tier']} | {p['model']} | {p['kind']} | "
                         f"{p['samples']:,.0f} | {p['flops'] / 1e6:,.2f} |")
    for k, text in data.get("profiles", {}).items():
        by = "cumulative time" if k.endswith("(cumulative)") else "own time"
        lines += ["", f"cProfile, {k.removesuffix(' (cumulative)')}, top functions by {by}:", "", "```", text, "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="metro")
    p.add_argument("--repeats", type=int, default=5, help="starts per kind and edge")
    p.add_argument("--warm-steps", type=int, default=200, help="no-op steps before (feedback buffers fill)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--profile-top", type=int, default=12, help="cProfile functions kept per kind (0: none)")
    p.add_argument("--out", type=str, default=None, help="output folder (default benchmarks/results)")
    p.add_argument("--name", type=str, default="bench_ops")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = [os.getloadavg()[0]]
    env = warm_env(args.scenario, args.warm_steps)
    w = env.workers
    gflops = measured_gflops()
    data: dict[str, Any] = {"scenario": args.scenario, "threads": args.threads, "warm_steps": args.warm_steps,
                            "repeats": args.repeats, "gflops": gflops,
                            "feedback_counts": [int(x) for x in np.asarray(w._fb_count)],
                            "ops": time_ops(w, args.repeats, gflops), "tables": time_tables(w, args.repeats, gflops)}
    if args.profile_top:
        data["profiles"] = profiles(w, max(1, args.repeats // 2), args.profile_top)
    load.append(os.getloadavg()[0])
    data["load_average_1min"] = load
    data["machine"] = machine_info()
    md = table(data)
    write_results(args.name, data, md, Path(args.out) if args.out else None)
    print(md)
    return data


if __name__ == "__main__":
    main()
