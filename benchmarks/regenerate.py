"""Regenerate the committed results under ``benchmarks/results/``: one registry of every result file and
the command that makes it.

Every entry is run from the repository root, one after the other; each result file records the commit
and the command that made it. ``--cheap`` runs the quick ones only (minutes: what a change to the env
should always refresh); ``--only`` picks entries by name; ``--list`` prints the registry with each
file's recorded commit. Results of older envs that no command reproduces today live under
``benchmarks/results/history/`` and are not regenerated.

    python benchmarks/regenerate.py --list
    python benchmarks/regenerate.py --cheap
    python benchmarks/regenerate.py --only metro_main knowledge_flow_metro
    python benchmarks/regenerate.py                  # everything: many hours on 2 cores
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class Result:
    """One committed result: its name (file stem), the command that writes it, a wall-time guess on
    2 quiet cores and whether it is cheap enough to refresh on every env change."""

    name: str
    command: str
    minutes: float
    cheap: bool = False


REGISTRY: tuple[Result, ...] = (
    Result("long_horizon", "python benchmarks/long_horizon.py", 1, cheap=True),
    Result("metro_main", "python train.py --out benchmarks/results", 7, cheap=True),
    Result("knowledge_flow_metro", "python benchmarks/knowledge_flow.py --scenario metro --seeds 1000-1009", 60),
    Result("knowledge_flow_drift-storm",
           "python benchmarks/knowledge_flow.py --scenario drift-storm --seeds 1000-1009", 60),
    Result("metro_benchmark_v03",
           "python train.py benchmark --scenario metro --seeds 10 --policies oracle:horizon=10,max_candidates=12 "
           "cost-aware periodic always-end always-edge threshold --jobs 2 --stem metro_benchmark_v03 --no-progress",
           80),
    Result("metro_oracle_v04",
           "python train.py benchmark --scenario metro --seeds 10 --policies oracle --jobs 2 --stem metro_oracle_v04 "
           "--no-progress", 16),
    Result("metro_oracle24_v04",
           "python train.py benchmark --scenario metro --seeds 10 --policies oracle:max_candidates=24 --jobs 2 "
           "--stem metro_oracle24_v04 --no-progress", 19),
    # after the two oracles (it reads their episodes)
    Result("metro_benchmark_v04",
           "python train.py benchmark --scenario metro --seeds 10 --policies always-end always-edge always-cloud "
           "random greedy-latency greedy-accuracy periodic threshold cost-aware "
           "benchmarks/results/agents/metro_ppo_mask_periodic "
           "benchmarks/results/agents/metro_ppo_mask_periodic_v2 --include-episodes "
           "benchmarks/results/metro_oracle_v04_episodes.csv --include-episodes "
           "benchmarks/results/metro_oracle24_v04_episodes.csv --jobs 2 --stem metro_benchmark_v04 --no-progress", 4),
    Result("oracle_gap_metro", "python benchmarks/oracle_gap.py", 5),
    # issue 16: the learned finetune scheduler (its model: benchmarks/results/agents/README.md); its threshold
    # tuned on the validation seeds, then the held-out benchmark with the oracles' episodes of v04
    Result("metro_finetune_value_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic finetune-value --baseline periodic --grid "
           "model=benchmarks/results/agents/metro_finetune_value/model.npz "
           "tau=0.0,0.01,0.02,0.04,0.06,0.08,0.1,0.12,0.15,0.2,0.3 --seeds 10 --jobs 2 --no-progress "
           "--name metro_finetune_value_sweep", 11),
    Result("metro_benchmark_v05",
           "python train.py benchmark --scenario metro --seeds 10 --policies always-end always-edge always-cloud "
           "random greedy-latency greedy-accuracy periodic threshold cost-aware "
           "benchmarks/results/agents/metro_ppo_mask_periodic_v2 "
           "finetune-value:model=benchmarks/results/agents/metro_finetune_value/model.npz,tau=0.08 "
           "--include-episodes benchmarks/results/metro_oracle_v04_episodes.csv --include-episodes "
           "benchmarks/results/metro_oracle24_v04_episodes.csv --jobs 2 --stem metro_benchmark_v05 --no-progress", 4),
    Result("drift-storm_finetune_value_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic finetune-value --scenario drift-storm --baseline "
           "periodic:j=2,k=0,m=0,n=1 --grid model=benchmarks/results/agents/drift-storm_finetune_value/model.npz "
           "tau=0.02,0.04,0.06,0.08,0.1,0.12,0.15,0.2 --seeds 10 --jobs 2 --no-progress "
           "--name drift-storm_finetune_value_sweep", 7),
    # after drift-storm_suite (it reads that run's episodes: heuristics, the cloned agent, the oracle)
    Result("drift-storm_benchmark_v05",
           "python train.py benchmark --scenario drift-storm --seeds 10 --policies "
           "finetune-value:model=benchmarks/results/agents/drift-storm_finetune_value/model.npz,tau=0.08 "
           "--include-episodes benchmarks/results/drift-storm_suite_episodes.csv --jobs 2 "
           "--stem drift-storm_benchmark_v05 --no-progress", 2),
    # issue 16's suite: tiny and drift-storm in one run (heuristics tuned per scenario by the sweeps below),
    # green on its own (the oracle with its best heuristic as rollout), then the summary over the three
    Result("drift-storm_suite",
           "python train.py benchmark --suite --scenarios tiny drift-storm --seeds 10 --jobs 1 --no-progress "
           "--policies periodic threshold cost-aware always-end always-edge "
           "cost-aware:acc_drop=0.25,cooldown=2,drift_finetune=0.6 periodic:j=4,k=5,m=0,n=5 "
           "threshold:acc_drop=0.3,cooldown=1,drift_finetune=0.6 cost-aware:acc_drop=0.1,cooldown=4,drift_finetune=0.4 "
           "periodic:j=2,k=0,m=0,n=1 benchmarks/results/agents/{scenario}_ppo_mask_tuned-teacher/best_model.zip oracle",
           60),
    Result("green_suite_base",
           "python train.py benchmark --scenario green --seeds 10 --jobs 1 --no-progress --stem green_suite_base "
           "--policies periodic threshold cost-aware always-end always-edge oracle oracle:rollout=always-end "
           "benchmarks/results/agents/green_ppo_mask_always-end/best_model.zip", 40),
    # green's tuned heuristics beside green_suite_base's episodes (run that first)
    Result("green_suite",
           "python train.py benchmark --scenario green --seeds 10 --jobs 1 --no-progress --stem green_suite "
           "--policies periodic:j=0,k=0,m=0,n=80 cost-aware:acc_drop=0.4,cooldown=4,drift_finetune=0.4 "
           "benchmarks/results/agents/green_ppo_mask_edges_scratch/best_model.zip "
           "--include-episodes benchmarks/results/green_suite_base_episodes.csv", 2),
    # city: the oracle (about 8.5 minutes an episode at 6 candidates and 2 epochs ahead) on its own, then the rest
    Result("city_oracle",
           "python train.py benchmark --scenario city --seeds 10 --jobs 1 --no-progress --stem city_oracle "
           "--policies oracle:horizon=2,max_candidates=6,rollout=always-end", 85),
    Result("city_suite",
           "python train.py benchmark --scenario city --seeds 10 --jobs 1 --no-progress --stem city_suite "
           "--policies always-end greedy-latency periodic:j=0,k=0,m=0,n=40 "
           "cost-aware:acc_drop=0.25,cooldown=2,drift_finetune=0.6 "
           "benchmarks/results/agents/city_ppo_mask_edges_always-end/best_model.zip "
           "benchmarks/results/agents/city_ppo_mask_edges_scratch/best_model.zip "
           "--include-episodes benchmarks/results/city_oracle_episodes.csv", 20),
    Result("suite_summary",
           "python train.py benchmark --suite --summary-only --scenarios tiny drift-storm green city", 1),
    Result("tiny_cost-aware_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic cost-aware --scenario tiny "
           "--seeds 10 --jobs 1 --no-progress --grid acc_drop=0.05,0.1,0.15,0.25 cooldown=1,2,4,6 "
           "drift_finetune=0.25,0.4,0.6 "
           "--name tiny_cost-aware_sweep", 2),
    Result("tiny_cost-aware_sweep_wide",
           "python benchmarks/heuristic_sweep.py --heuristic cost-aware --scenario tiny "
           "--seeds 10 --jobs 1 --no-progress --grid acc_drop=0.1,0.25,0.4 cooldown=1,2,4 "
           "drift_finetune=0.6,0.8,1.0,2.0 "
           "--name tiny_cost-aware_sweep_wide", 2),
    Result("tiny_periodic_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --scenario tiny "
           "--seeds 10 --jobs 1 --no-progress --grid j=2,3,5,8,12 k=0,5,10 m=0 n=1,2,5,10 "
           "--name tiny_periodic_sweep", 2),
    Result("tiny_periodic_sweep_wide",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --scenario tiny "
           "--seeds 10 --jobs 1 --no-progress --grid j=3,4 k=3,4,5,7 m=0,5 n=4,5 --name tiny_periodic_sweep_wide", 2),
    Result("tiny_threshold_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic threshold --scenario tiny "
           "--seeds 10 --jobs 1 --no-progress --grid acc_drop=0.1,0.25,0.4 cooldown=2,4,8 drift_finetune=0.4,0.6,1.0 "
           "--name tiny_threshold_sweep", 2),
    Result("tiny_threshold_sweep_edge",
           "python benchmarks/heuristic_sweep.py --heuristic threshold --scenario tiny "
           "--seeds 10 --jobs 1 --no-progress --grid acc_drop=0.2,0.25,0.3 cooldown=0,1,2 drift_finetune=0.6 "
           "--name tiny_threshold_sweep_edge", 2),
    Result("drift-storm_cost-aware_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic cost-aware --scenario drift-storm "
           "--seeds 10 --jobs 1 --no-progress --grid acc_drop=0.1,0.15,0.25 cooldown=4 drift_finetune=0.25,0.4,0.6 "
           "--name drift-storm_cost-aware_sweep", 10),
    Result("drift-storm_cost-aware_sweep_wide",
           "python benchmarks/heuristic_sweep.py --heuristic cost-aware --scenario drift-storm "
           "--seeds 10 --jobs 1 --no-progress --grid acc_drop=0.05,0.075,0.1 cooldown=2,4,6 drift_finetune=0.4 "
           "--name drift-storm_cost-aware_sweep_wide", 10),
    Result("drift-storm_periodic_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --scenario drift-storm "
           "--seeds 10 --jobs 1 --no-progress --grid j=3,5,8 k=0,20 m=0 n=1 --name drift-storm_periodic_sweep", 10),
    Result("drift-storm_periodic_sweep_edge",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --scenario drift-storm "
           "--seeds 10 --jobs 1 --no-progress --grid j=2,3 k=0 m=0 n=1,3 --name drift-storm_periodic_sweep_edge", 10),
    # issue 16, city and green: 5 validation seeds on city (an episode takes 15-40 s), 10 on green
    Result("city_cost-aware_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic cost-aware --scenario city --seeds 5 --jobs 1 "
           "--no-progress "
           "--grid acc_drop=0.1,0.25 cooldown=2,4 drift_finetune=0.25,0.6 --name city_cost-aware_sweep", 15),
    Result("city_cost-aware_sweep_wide",
           "python benchmarks/heuristic_sweep.py --heuristic cost-aware --scenario city --seeds 5 --jobs 1 "
           "--no-progress "
           "--grid acc_drop=0.4,0.6 cooldown=2,8 drift_finetune=1.0,2.0 --name city_cost-aware_sweep_wide", 15),
    Result("city_periodic_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --scenario city --seeds 5 --jobs 1 --no-progress "
           "--grid j=0,10,30 k=0 m=0 n=1,5 --name city_periodic_sweep", 12),
    Result("city_periodic_sweep_edge",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --scenario city --seeds 5 --jobs 1 --no-progress "
           "--grid j=0,30 k=0 m=0 n=10,20,40 --name city_periodic_sweep_edge", 12),
    Result("green_cost-aware_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic cost-aware --scenario green --seeds 10 --jobs 1 "
           "--no-progress --grid acc_drop=0.15,0.25,0.4 cooldown=4,8,16 drift_finetune=0.6,1.0 "
           "--name green_cost-aware_sweep", 6),
    Result("green_cost-aware_sweep_wide",
           "python benchmarks/heuristic_sweep.py --heuristic cost-aware --scenario green --seeds 10 --jobs 1 "
           "--no-progress --grid acc_drop=0.15,0.4 cooldown=4,16 drift_finetune=0.2,0.3,0.4 "
           "--name green_cost-aware_sweep_wide", 4),
    Result("green_periodic_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --scenario green --seeds 10 --jobs 1 "
           "--no-progress --grid j=0,10,30 k=0 m=0 n=1,5,20 --name green_periodic_sweep", 5),
    Result("green_periodic_sweep_edge",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --scenario green --seeds 10 --jobs 1 "
           "--no-progress --grid j=0 k=0 m=0 n=10,20,40,80 --name green_periodic_sweep_edge", 2),
    Result("green_periodic_sweep_n",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --scenario green --seeds 10 --jobs 1 "
           "--no-progress --grid j=0 k=0 m=0 n=0,160,400 --name green_periodic_sweep_n", 2),
    Result("green_threshold_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic threshold --scenario green --seeds 10 --jobs 1 "
           "--no-progress --grid acc_drop=0.25,0.4 cooldown=4,16 drift_finetune=0.6,1.0,2.0 "
           "--name green_threshold_sweep", 2),
    Result("cost-aware_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic cost-aware --seeds 10 --jobs 2 --no-progress "
           "--grid acc_drop=0.02,0.05,0.1 cooldown=1,2,4 drift_finetune=0.15,0.25", 12),
    Result("cost-aware_sweep_wide",
           "python benchmarks/heuristic_sweep.py --heuristic cost-aware --seeds 10 --jobs 2 --no-progress "
           "--grid acc_drop=0.1,0.15,0.2,0.3 cooldown=4,6,8 drift_finetune=0.25,0.4 --name cost-aware_sweep_wide", 15),
    Result("periodic_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --seeds 10 --jobs 2 --no-progress "
           "--grid j=5,10,20 k=25,50,100 m=0,50", 8),
    Result("periodic_sweep_wide",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --seeds 10 --jobs 2 --no-progress "
           "--grid j=3,5 k=100,200 m=0 --name periodic_sweep_wide", 3),
    Result("threshold_sweep",
           "python benchmarks/heuristic_sweep.py --heuristic threshold --seeds 10 --jobs 2 --no-progress "
           "--grid acc_drop=0.05,0.1,0.15 cooldown=2,4 drift_finetune=0.25,0.4", 8),
    Result("threshold_sweep_wide",
           "python benchmarks/heuristic_sweep.py --heuristic threshold --seeds 10 --jobs 2 --no-progress "
           "--grid acc_drop=0.15,0.25 cooldown=4,8 drift_finetune=0.4 --name threshold_sweep_wide", 3),
    Result("periodic_sweep_wider",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --seeds 10 --jobs 2 --no-progress "
           "--grid j=4,5,7 k=0,200 m=0 n=5,10,20 --name periodic_sweep_wider", 10),
    Result("periodic_sweep_edge",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --seeds 10 --jobs 2 --no-progress "
           "--grid j=3,4 k=0 m=0 n=3,4,5 --name periodic_sweep_edge", 4),
    Result("periodic_sweep_n2",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --seeds 10 --jobs 2 --no-progress "
           "--grid j=4 k=0 m=0 n=2,3 --name periodic_sweep_n2", 2),
    Result("periodic_sweep_n1",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --seeds 10 --jobs 2 --no-progress "
           "--grid j=3,4,5 k=0 m=0 n=1,2 --name periodic_sweep_n1", 4),
    Result("periodic_sweep_j",
           "python benchmarks/heuristic_sweep.py --heuristic periodic --seeds 10 --jobs 2 --no-progress "
           "--grid j=5,6,8 k=0 m=0 n=1 --name periodic_sweep_j", 2),
    Result("threshold_sweep_wider",
           "python benchmarks/heuristic_sweep.py --heuristic threshold --seeds 10 --jobs 2 --no-progress "
           "--grid acc_drop=0.25,0.35,0.5 cooldown=3,4,6 drift_finetune=0.4,0.6 --name threshold_sweep_wider", 12),
    Result("cost-aware_sweep_edge",
           "python benchmarks/heuristic_sweep.py --heuristic cost-aware --seeds 10 --jobs 2 --no-progress "
           "--grid acc_drop=0.15 cooldown=4 drift_finetune=0.6,0.8 --name cost-aware_sweep_edge", 2),
    Result("fast_path", "python benchmarks/fast_path.py --calibrate", 60),
    Result("bench_speed",
           "python benchmarks/bench_speed.py --scenarios tiny metro city --steps 2000 --random-steps 100 "
           "--random-steps-for city=10 --repeats 3 --modes noop random ppo ppo-vec --ppo-train-steps 1024 "
           "--ppo-eval-steps 200 --ppo-scenarios metro --ppo-envs 8 --ppo-vec-steps 2048 --ppo-vec-n-steps 128 "
           "--scaling 1 4 16 64 --scaling-steps 500 --scaling-modes noop --threads 1", 7),
    Result("bench_speed_fast",
           "python benchmarks/bench_speed.py --workers fast --name bench_speed_fast --scenarios tiny metro city "
           "--steps 2000 --random-steps 300 --repeats 3 --modes noop random ppo --ppo-train-steps 2048 "
           "--ppo-eval-steps 300 --ppo-scenarios metro --scaling 1 4 16 64 --scaling-steps 500 --threads 1", 8),
    Result("bench_vae_training", "python benchmarks/bench_vae_training.py", 1),
    Result("bench_vector",
           "python benchmarks/bench_vector.py --policy noop random --sizes 1 16 64 256 --random-sizes 1 8 16 "
           "--random-block 32 --random-rounds 5 --batched-ops --one-by-one --episodes 2 --threads 1", 7, cheap=True),
    Result("hardware_bounds", "python benchmarks/hardware_bounds.py", 2, cheap=True),
    # the quiet steps of 2026-12-07 (session 3) against the commit before them: early epochs, and metro's
    # fault windows (epochs 130-139 and 160-169)
    Result("ab_vector", "python benchmarks/ab_vector.py --against 5aa82f6 --sizes 64 256 --rounds 15", 8),
    Result("quiet_phases", "python benchmarks/quiet_phases.py --sizes 64 256 --steps 200", 2, cheap=True),
    Result("quiet_ceiling", "python benchmarks/quiet_ceiling.py --sizes 16 64 256 --rounds 9", 5),
    Result("ab_vector_faults",
           "python benchmarks/ab_vector.py --against 5aa82f6 --sizes 64 --rounds 9 --skip 128 --name ab_vector_faults",
           3),
    Result("ppo_vec_engine", "python benchmarks/ppo_vec_engine.py --rounds 2", 10),
    Result("bench_batched_ops", "python benchmarks/bench_batched_ops.py --threads 1", 3),
    Result("bench_engine_ops", "python benchmarks/bench_engine_ops.py", 4),
    Result("bench_ops", "python benchmarks/bench_ops.py --threads 1 --profile-top 16", 1, cheap=True),
    # issue 13: today's code against the commit the issue was filed at (needs git), then the targets table
    # composed from the results above (run it last; its notes section is written by hand)
    Result("issue13_random",
           "python benchmarks/issue13_targets.py random --scenarios metro city --random-steps metro=60 city=8 "
           "--repeats 3 --rounds 3 --threads 1", 15),
    Result("issue13_targets", "python benchmarks/issue13_targets.py compose", 1),
    Result("bench_memory", "python benchmarks/bench_memory.py --scenario metro --steps 1000000 --max-seconds 1500", 25),
    Result("soak_tiny",
           "python benchmarks/soak.py --steps 1000000 --scenario tiny --faults-rate 0.05 --op-prob 0.05 "
           "--battery-j 400 --recharge-w 1 --max-seconds 2520", 42),
)

_COMMIT = re.compile(r"[Cc]ommit ([0-9a-f]{7,40}(?:\+dirty)?)")


def recorded_commit(name: str) -> str:
    """The commit a result's markdown file says made it, or "none recorded"."""
    path = RESULTS / f"{name}.md"
    if not path.exists():
        return "missing"
    m = _COMMIT.search(path.read_text()[:4000])
    return m.group(1) if m else "none recorded"


def select(names: list[str] | None, cheap: bool) -> list[Result]:
    """The registry entries to run; unknown names are an error naming the known ones."""
    known = {r.name: r for r in REGISTRY}
    if names:
        bad = [n for n in names if n not in known]
        if bad:
            raise SystemExit(f"regenerate: unknown result(s) {bad}; known: {', '.join(known)}")
        return [known[n] for n in names]
    return [r for r in REGISTRY if r.cheap or not cheap]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", default=None, help="entries to run, by name")
    p.add_argument("--cheap", action="store_true", help="only the quick entries")
    p.add_argument("--list", action="store_true", help="print the registry and exit")
    args = p.parse_args(argv)
    chosen = select(args.only, args.cheap)
    if args.list:
        for r in chosen:
            print(f"{r.name:28s} ~{r.minutes:>4.0f} min  {'cheap' if r.cheap else 'long ':5s}  "
                  f"recorded commit {recorded_commit(r.name):14s} {r.command}")
        return 0
    failed = []
    for r in chosen:
        print(f"== {r.name} (~{r.minutes:.0f} min): {r.command}", flush=True)
        t0 = time.perf_counter()
        argv_r = shlex.split(r.command)
        rc = subprocess.run([sys.executable, *argv_r[1:]], cwd=ROOT).returncode
        print(f"== {r.name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(r.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
