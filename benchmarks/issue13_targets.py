"""Issue 13's targets, each met or not with its numbers: ``benchmarks/results/issue13_targets.md``.

Two steps (each a few minutes on 2 cores):

* ``random``: the masked random policy with the real workers on today's code and on the commit the
  issue was filed at (``--baseline``, default 08d6255: the code the issue measured, before the core split),
  side by side in one run: per round and scenario, each side runs its own ``benchmarks/bench_speed.py
  --modes random`` in a fresh process (the sides alternate which goes first), with the same steps, repeats,
  seed and torch threads (``OMP_NUM_THREADS``; the baseline's script has no ``--threads``). The baseline is
  a ``git archive`` of that commit with its ``models/``, ``agents/`` and ``scenarios/`` linked into its
  ``gaisnet_env/`` as its install maps them, and a copy of the weight cache. Writes ``issue13_random``.
* ``compose``: reads ``bench_vector``, ``bench_speed`` (its ``ppo-vec`` mode), ``issue13_random``,
  ``bench_ops``, ``bench_batched_ops``, ``bench_engine_ops`` and ``hardware_bounds`` (the floors this
  machine sets: a target past one is marked "beyond the hardware") under ``benchmarks/results/`` (or
  ``--results``), runs the tests that check the bit-for-bit and structure targets (``--no-tests``: skip them) and writes
  ``issue13_targets``: one row per target (MET / NOT MET, its numbers) and, where one is not met, the
  profile that shows why (the benchmarks' cProfile top entries and step-time breakdowns).

Usage::

    python benchmarks/issue13_targets.py random --scenarios metro city --random-steps metro=60 city=8
    python benchmarks/issue13_targets.py compose
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, median, write_results  # noqa: E402
from _issue13_compose import compose_rows, compose_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "08d6255"
#: the install's package-dir mapping (pyproject.toml): folder -> name inside gaisnet_env
LINKED = ("models", "agents", "scenarios")
#: rates quoted when the issue was filed, and the older committed bench_speed.md (another env: see compose)
QUOTED = {"issue_ppo_steps_per_s": 15.0, "issue_ppo_env_share": 0.905, "issue_city_steps_per_s": 1.0,
          "old_md_metro_random": 45.0, "old_md_city_random": 1.8, "old_md_commit": "3117484"}
TESTS = {"bit for bit": ["tests/test_vector_native.py::test_copies_equal_single_envs_bit_for_bit_across_autoresets",
                         "tests/test_quiet_steps.py::test_copy_equals_the_single_env", "tests/test_core_golden.py"],
         "structure": ["tests/test_structure.py"]}


def materialise(commit: str, dest: Path) -> Path:
    """``commit``'s tree under ``dest`` (git archive), its source folders linked as its install maps them."""
    dest.mkdir(parents=True, exist_ok=True)
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    for name in LINKED:
        link = dest / "gaisnet_env" / name
        if (dest / name).is_dir() and not link.exists():
            link.symlink_to(Path("..") / name)
    return dest


def _side_env(root: Path, cache: Path, threads: int) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(root), GAISNET_CACHE_DIR=str(cache), PYTHONHASHSEED="0",
                OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))


def run_side(root: Path, env: dict[str, str], scenario: str, steps: int, repeats: int, out: Path,
             threads: int | None, batched: bool = False) -> dict[str, Any]:
    """One ``bench_speed.py --modes random`` run of ``root``'s code on ``scenario`` (``batched``: with
    ``--batched-ops``): its random result."""
    cmd = [sys.executable, str(root / "benchmarks" / "bench_speed.py"), "--scenarios", scenario, "--modes", "random",
           "--random-steps", str(steps), "--repeats", str(repeats), "--scaling", "--out", str(out), "--name", "side"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if batched:
        cmd += ["--batched-ops"]
    p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"{root}: bench_speed failed:\n{p.stderr[-3000:]}")
    data = json.loads((out / "side.json").read_text())
    res = data["scenarios"][scenario]
    if "error" in res:
        raise RuntimeError(f"{root} {scenario}: {res['error']}")
    return {**res["random"], "torch_threads": data["machine"].get("torch_threads")}


def run_vector_side(env: dict[str, str], scenario: str, copies: int, block: int, out: Path,
                    threads: int) -> dict[str, Any]:
    """Today's code: the masked random policy over ``copies`` copies of the native vector env with the batched
    engine (their ops as one batch, ``bench_vector.py --batched-ops``): env-steps/s of that variant, after 5
    vector steps (the single-env sides warm up 5 steps too: an episode's first epochs start the most ops)."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_vector.py"), "--scenario", scenario, "--policy", "random",
           "--random-sizes", str(copies), "--random-block", str(block), "--random-rounds", "1", "--profile-top", "0",
           "--batched-ops", "--random-warmup", "5", "--threads", str(threads), "--out", str(out), "--name", "side"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"bench_vector failed:\n{p.stderr[-3000:]}")
    rows = json.loads((out / "side.json").read_text())["random"]["rows"]
    us = rows[f"native N={copies} batched_ops"]["us_per_env_step"]
    return {"steps_per_s_env": 1e6 / us, "copies": copies, "torch_threads": threads}


def random_main(args: argparse.Namespace) -> dict[str, Any]:
    """Today's code and ``--baseline``'s, masked random policy, alternating per round; writes issue13_random."""
    steps = dict(item.split("=") for item in args.random_steps)
    vector = dict(item.split("=") for item in args.vector_copies)
    from gaisnet_env.model_cache import default_cache_dir

    with tempfile.TemporaryDirectory(prefix="issue13-") as tmp:
        base_root = materialise(args.baseline, Path(tmp) / "baseline")
        base_cache = Path(tmp) / "cache"
        src = default_cache_dir()
        shutil.copytree(src, base_cache) if src.is_dir() else base_cache.mkdir()
        sides = {"today": (ROOT, _side_env(ROOT, src, args.threads), args.threads),
                 "baseline": (base_root, _side_env(base_root, base_cache, args.threads), None),
                 "batched": (ROOT, _side_env(ROOT, src, args.threads), args.threads),
                 "vector": (ROOT, _side_env(ROOT, src, args.threads), args.threads)}
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {k: [] for k in sides} for s in args.scenarios}
        for r in range(args.rounds):
            for scenario in args.scenarios:
                order = list(sides) if r % 2 == 0 else list(sides)[::-1]
                for side in order:
                    root, env, threads = sides[side]
                    n = int(steps.get(scenario, args.default_steps))
                    if side == "vector":
                        copies = int(vector.get(scenario, 8))
                        res = run_vector_side(env, scenario, copies, max(4 * copies, n), Path(tmp) / side,
                                              args.threads)
                    else:
                        res = run_side(root, env, scenario, n, args.repeats, Path(tmp) / side, threads,
                                       batched=side == "batched")
                    runs[scenario][side].append(res)
                    print(f"[issue13 random] round {r} {scenario} {side}: {res['steps_per_s_env']:.2f} steps/s "
                          f"(torch threads {res['torch_threads']})", flush=True)
    summary = {}
    for scenario, by_side in runs.items():
        rate = {side: median([x["steps_per_s_env"] for x in xs]) for side, xs in by_side.items()}
        summary[scenario] = {"today": rate["today"], "baseline": rate["baseline"],
                             "ratio": rate["today"] / rate["baseline"], "batched": rate["batched"],
                             "batched_ratio": rate["batched"] / rate["baseline"],
                             "vector": rate["vector"], "vector_ratio": rate["vector"] / rate["baseline"],
                             "vector_copies": int(vector.get(scenario, 8)),
                             "today_breakdown_us": by_side["today"][-1]["breakdown_us_per_step"],
                             "baseline_breakdown_us": by_side["baseline"][-1]["breakdown_us_per_step"]}
    data = {"baseline": args.baseline, "rounds": args.rounds, "repeats": args.repeats, "steps": steps,
            "threads": args.threads, "runs": runs, "summary": summary, "machine": machine_info()}
    write_results("issue13_random", data, random_table(data), Path(args.out) if args.out else None)
    return data


def random_table(data: dict[str, Any]) -> str:
    lines = [f"Masked random policy, real workers, {data['threads']} torch thread(s): today's code against commit "
             f"{data['baseline']} (where issue 13 was filed), {data['rounds']} alternating rounds, each a fresh "
             f"process per side running its own `bench_speed.py --modes random` ({data['repeats']} timed runs, "
             "median); medians over the rounds.", "",
             "| scenario | steps per run | today steps/s | baseline steps/s | today / baseline | "
             "today, batched_ops, steps/s | batched / baseline | today, vector env + batched_ops, env-steps/s | "
             "vector / baseline |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s, r in data["summary"].items():
        b = (f"{r['batched']:.2f} | {r['batched_ratio']:.2f}x" if "batched" in r else "- | -")
        v = (f"{r['vector']:.2f} (N = {r['vector_copies']}) | {r['vector_ratio']:.2f}x" if "vector" in r else "- | -")
        lines.append(f"| {s} | {data['steps'].get(s, '-')} | {r['today']:.2f} | {r['baseline']:.2f} | "
                     f"{r['ratio']:.2f}x | {b} | {v} |")
    lines += ["", "`batched_ops`: today's code with the opt-in batched training engine (`workers.batched_ops: "
              "true`, `bench_speed.py --batched-ops`); the default is one op after another. `vector`: N copies of "
              "the native vector env with the batched engine, their ops trained as one batch (`bench_vector.py "
              "--batched-ops`, one block of interleaved variants per round), env-steps/s on the same core."]
    return "\n".join(lines)


def _load(results: Path, name: str) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def run_tests(which: str) -> tuple[bool, str]:
    """Run the tests that check a target; (passed, pytest's last line)."""
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])  # this checkout's package
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS[which]], cwd=ROOT,
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=path))
    tail = (p.stdout.strip().splitlines() or [""])[-1]
    return p.returncode == 0, tail


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**MET**" if ok else "**NOT MET**")


def compose_main(args: argparse.Namespace) -> dict[str, Any]:
    results = Path(args.results) if args.results else RESULTS
    src = {n: _load(results, n) for n in ("bench_vector", "bench_speed", "issue13_random", "bench_ops",
                                            "bench_batched_ops", "bench_engine_ops", "hardware_bounds",
                                            "ppo_vec_engine", "quiet_ceiling")}
    tests = {} if args.no_tests else {k: run_tests(k) for k in TESTS}
    readme = (ROOT / "README.md").read_text()
    rows = compose_rows(src, tests, "### Architecture" in readme, QUOTED)
    data = {"rows": rows, "sources": {n: (d or {}).get("machine", {}).get("commit") if d else None
                                      for n, d in src.items()},
            "tests": tests, "quoted": QUOTED, "machine": machine_info()}
    md = compose_table(data, src, _met)
    write_results("issue13_targets", data, md, Path(args.out) if args.out else None)
    print(md)
    return data


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    r = sub.add_parser("random", help="today's code vs the issue's commit, masked random policy")
    r.add_argument("--baseline", default=BASELINE, help="the commit the issue was filed at")
    r.add_argument("--scenarios", nargs="+", default=["metro", "city"])
    r.add_argument("--random-steps", nargs="*", default=["metro=60", "city=8"], metavar="NAME=N")
    r.add_argument("--default-steps", type=int, default=30)
    r.add_argument("--vector-copies", nargs="*", default=["metro=16", "city=4"], metavar="NAME=N",
                   help="copies of the native vector env (batched engine) in the 'vector' side")
    r.add_argument("--repeats", type=int, default=3)
    r.add_argument("--rounds", type=int, default=3)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--out", default=None)
    c = sub.add_parser("compose", help="the targets table from the committed results")
    c.add_argument("--results", default=None, help="folder of the results read (default benchmarks/results)")
    c.add_argument("--no-tests", action="store_true", help="do not run the bit-for-bit and structure tests")
    c.add_argument("--out", default=None)
    c.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(getattr(args, "threads", 1))  # what machine_info records; the sides set their own
    return random_main(args) if args.step == "random" else compose_main(args)


if __name__ == "__main__":
    main()
