"""Command line: train, evaluate and benchmark scheduling agents (``gaisnet-train`` / ``train.py``).

Subcommands (each has ``--help``)::

    gaisnet-train train     --scenario metro --algo ppo --timesteps 20000 --seed 0 --logdir runs/
    gaisnet-train evaluate  --policy runs/metro_ppo_s0 --scenario metro --episodes 1 --seeds 10000 10001
    gaisnet-train benchmark --scenario metro --seeds 10 --policies cost-aware threshold ppo \\
                            --train-timesteps 20000 --out benchmarks/results
    gaisnet-train           # the main job: train a small PPO on metro (<= 10 min), print the table

Policies are named by a heuristic (``gaisnet_env.agents.heuristics.HEURISTICS``, parameters as
``periodic:k=10,j=5``), ``oracle`` (look-ahead upper reference, slow), ``finetune-value:model=M.npz,tau=0.08``
(learned finetunes, ``gaisnet_env.agents.finetune_value``), a saved model (``.zip`` or a run directory), or an
algorithm name (``ppo``, ``a2c``, ``dqn``, ``ppo_mask``) that the benchmark trains first with ``--train-timesteps``.
Evaluation seeds start at 10000, training seeds at the ``--seed`` given (default 0): they never overlap.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gaisnet_env import BUILTIN_SCENARIOS
from gaisnet_env.agents.base import EVAL_SEED_BASE, EpisodeMetrics
from gaisnet_env.evaluation import _eval_job as _eval_job
from gaisnet_env.evaluation import build_policy as build_policy
from gaisnet_env.evaluation import evaluate_specs
from gaisnet_env.evaluation import policy_label as policy_label
from gaisnet_env.plots import pareto_plot  # noqa: F401  # re-exported: cli.pareto_plot
from gaisnet_env.provenance import provenance_line
from gaisnet_env.report import aggregate as aggregate
from gaisnet_env.report import load_episodes as load_episodes
from gaisnet_env.report import paired_difference as paired_difference
from gaisnet_env.report import print_table as print_table
from gaisnet_env.report import verdict as verdict
from gaisnet_env.report import write_tables as write_tables
from gaisnet_env.specs import parse_spec as parse_spec
from gaisnet_env.specs import parse_value

DEFAULT_SCENARIO = "metro"
#: Heuristics the benchmark compares by default.
DEFAULT_HEURISTICS: tuple[str, ...] = (
    "always-end",
    "always-edge",
    "always-cloud",
    "random",
    "greedy-latency",
    "greedy-accuracy",
    "periodic",
    "threshold",
    "cost-aware",
)
MAIN_SEEDS = 5
#: Env steps the main job trains for: a step budget (the same agent on any machine with the same CPU kernels),
#: sized so the whole job takes under 10 minutes on 2 quiet cores from a fresh virtualenv (README: measured);
#: the YAML's 20,000 would take over 15.
MAIN_TRAIN_STEPS = 8192
#: Validation evaluations during the main job's training (the best one is kept): 2, at half and at the end
#: (5 took 40% of the training time: 4,000 of 12,200 env steps; the job ran 646 s quiet, over 10 minutes).
MAIN_VALIDATIONS = 2
#: The main job's PPO clones this heuristic before RL (see ``agents.learned.behaviour_clone``).
MAIN_WARM_START = "cost-aware"


# ----------------------------------------------------------------------------------------
# commands


def _env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if getattr(args, "horizon", None):
        kw["horizon"] = int(args.horizon)
    for item in getattr(args, "set", None) or []:
        k, _, v = item.partition("=")
        kw[k.strip()] = parse_value(v.strip())
    if getattr(args, "fast_path", False):
        kw["worker_system"] = "fast"
        print("fast path: knowledge operations are predicted by the calibrated response model, not trained "
              "(docs/fast_path.md); judge agents on the real workers", file=sys.stderr)
    return kw


def cmd_train(args: argparse.Namespace) -> Path:
    """``train``: one SB3 run; prints the run directory."""
    from gaisnet_env.agents.learned import train

    hp = json.loads(args.hyperparams) if args.hyperparams else None
    t0 = time.perf_counter()
    _model, run_dir = train(
        scenario=args.scenario,
        algo=args.algo,
        timesteps=args.timesteps,
        seed=args.seed,
        logdir=args.logdir,
        resume=args.resume,
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        hyperparams=hp,
        progress=not args.no_progress,
        subproc=args.subproc,
        env_kwargs=_env_kwargs(args),
        run_name=args.run_name,
        time_budget_s=args.time_budget,
        warm_start=args.warm_start,
        warm_start_episodes=args.warm_start_episodes,
        warm_start_jobs=args.warm_start_jobs,
    )
    print(training_summary(json.loads((run_dir / "meta.json").read_text())))
    print(f"trained {args.algo} on {args.scenario} in {time.perf_counter() - t0:.1f} s -> {run_dir}")
    print(f"  best model: {run_dir / 'best_model.zip'}   tensorboard --logdir {run_dir / 'tb'}")
    return run_dir


def training_summary(meta: dict[str, Any]) -> str:
    """One line saying when and why a run's training stopped (from its ``meta.json``)."""
    n, asked = int(meta["num_timesteps"]), int(meta["timesteps"])
    if meta.get("stopped_by") == "time":
        return (f"training stopped at {n:,} of {asked:,} env steps: the time budget of "
                f"{float(meta['time_budget_s']):.0f} s ran out")
    rounded = f" ({n:,}: whole rollouts)" if n > asked else ""
    return f"training stopped at its step budget of {asked:,} env steps{rounded}"


def _seeds(arg: Sequence[int] | None, n: int | None) -> list[int]:
    if arg:
        if len(arg) == 1 and n is None and arg[0] < EVAL_SEED_BASE:
            return list(range(EVAL_SEED_BASE, EVAL_SEED_BASE + arg[0]))
        return [int(s) for s in arg]
    return list(range(EVAL_SEED_BASE, EVAL_SEED_BASE + (n or 5)))


def cmd_evaluate(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``evaluate``: one policy on held-out seeds; prints the summary (and per-episode rows)."""
    seeds = _seeds(args.seeds, None)
    res = evaluate_specs([args.policy], args.scenario, seeds, args.episodes, 1, _env_kwargs(args), not args.no_progress)
    for m in res:
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.as_dict().items()}))
    rows = aggregate(res)
    print_table(rows, f"{args.scenario}: {policy_label(args.policy)}")
    if args.out:
        write_tables(rows, res, args.out, f"{args.scenario}_evaluate")
    return rows


def run_benchmark(
    scenario: str,
    seeds: Sequence[int],
    policies: Sequence[str],
    out: str | Path | None,
    train_timesteps: int | None = None,
    train_seed: int = 0,
    logdir: str | Path = "runs",
    episodes: int = 1,
    jobs: int = 1,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    stem: str | None = None,
    time_budget_s: float | None = None,
    note: str = "",
    warm_start: str | None = None,
    warm_start_episodes: int = 12,
    warm_start_jobs: int = 1,
    include: Sequence[str | Path] = (),
    eval_freq: int | None = None,
) -> tuple[list[dict[str, Any]], list[EpisodeMetrics]]:
    """Train the algorithm names in ``policies`` (if ``train_timesteps``; validation every ``eval_freq``
    env steps, default about 5 times a run), evaluate all, write ``<out>/<stem>.md/.csv/.png`` and print
    the table. Returns (summary rows, episodes)."""
    from gaisnet_env.agents.learned import ALGOS, ALIASES, canonical_algo, train

    specs: list[str] = []
    train_info: list[str] = []
    for p in policies:
        base = parse_spec(p)[0].lower().replace("-", "_")
        if base in ALGOS or base in ALIASES:
            a = canonical_algo(base)
            run_dir = Path(logdir) / f"{scenario}_{a}_s{train_seed}"
            if train_timesteps:
                t0 = time.perf_counter()
                _m, run_dir = train(scenario, a, train_timesteps, train_seed, logdir, progress=progress,
                                    env_kwargs=env_kwargs, time_budget_s=time_budget_s, warm_start=warm_start,
                                    warm_start_episodes=warm_start_episodes, warm_start_jobs=warm_start_jobs,
                                    eval_freq=eval_freq)
                meta = json.loads((run_dir / "meta.json").read_text())
                print(training_summary(meta))
                ws = f", warm start from {warm_start}" if warm_start else ""
                budget = " (stopped by the time budget)" if meta.get("stopped_by") == "time" else ""
                train_info.append(f"{a}: {meta['num_timesteps']} timesteps{budget}{ws}, seed {train_seed}, "
                                  f"{time.perf_counter() - t0:.0f} s")
            elif not (run_dir / "best_model.zip").exists():
                raise SystemExit(f"benchmark: no trained {a} under {run_dir}; pass --train-timesteps N")
            specs.append(str(run_dir / "best_model.zip"))
        else:
            specs.append(p)
    t0 = time.perf_counter()
    res = evaluate_specs(specs, scenario, seeds, episodes, jobs, env_kwargs, progress) if specs else []
    for path in include:
        res.extend(load_episodes(path))
    rows = aggregate(res)
    title = f"{scenario}: {len(seeds)} held-out seeds ({seeds[0]}..{seeds[-1]}) x {episodes} episode(s)"
    print_table(rows, title, res)
    print(f"evaluation took {time.perf_counter() - t0:.0f} s")
    if out:
        stem = stem or f"{scenario}_benchmark"
        header = f"# Benchmark: {title}\n\n{provenance_line()}\n"
        if train_info:
            header += "\nTrained: " + "; ".join(train_info) + "\n"
        if note:
            header += f"\n{note}\n"
        paths = write_tables(rows, res, out, stem, header)
        png = pareto_plot(rows, Path(out) / f"{stem}.png", title)
        print(f"wrote {paths['md']}, {paths['csv']}, {png}")
    return rows, res


def cmd_benchmark(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``benchmark``: heuristics, oracle and learned agents on the same held-out seeds; ``--suite``: on
    every scenario of ``--scenarios`` (default all built-ins), with a summary table."""
    seeds = _seeds(args.seeds, None)
    policies = args.policies if args.policies is not None else ([] if args.include_episodes else
                                                                list(DEFAULT_HEURISTICS))
    common = dict(seeds=seeds, train_timesteps=args.train_timesteps, train_seed=args.train_seed,
                  logdir=args.logdir, episodes=args.episodes, jobs=args.jobs, env_kwargs=_env_kwargs(args),
                  progress=not args.no_progress, warm_start=args.warm_start,
                  warm_start_episodes=args.warm_start_episodes, warm_start_jobs=args.warm_start_jobs,
                  note=args.note or "")
    if args.suite:
        from gaisnet_env.suite import run_suite, summary_from_files

        if args.summary_only:
            return summary_from_files(args.scenarios or BUILTIN_SCENARIOS, args.out, args.note or "")
        if args.include_episodes or args.stem:
            raise SystemExit("benchmark --suite: --include-episodes and --stem are per scenario; run the "
                             "scenario's benchmark on its own for them")
        return run_suite(args.scenarios or BUILTIN_SCENARIOS, policies, args.out, run_benchmark, **common)
    rows, _ = run_benchmark(args.scenario, policies=policies, out=args.out, stem=args.stem,
                            include=args.include_episodes or (), **common)
    return rows


def cmd_main(args: argparse.Namespace) -> None:
    """The README's main job: a small PPO on ``metro`` then the benchmark against the heuristics.

    Training has a step budget (:data:`MAIN_TRAIN_STEPS` or ``--timesteps``), so the same command
    trains the same agent on any machine with the same torch CPU kernels. The table (markdown, CSV) and the
    Pareto plot go beside the run (``--logdir``) unless ``--out`` says otherwise; the end lists every file written.
    """
    from gaisnet_env.agents.learned import canonical_algo

    t0 = time.perf_counter()
    n_seeds = args.main_seeds
    algo = canonical_algo(args.algo)
    timesteps = args.timesteps or MAIN_TRAIN_STEPS
    out = Path(args.out or args.logdir)
    stem = f"{DEFAULT_SCENARIO}_main"
    print(f"Main job: train {algo} on '{DEFAULT_SCENARIO}' for {timesteps:,} env steps (a step budget: the same "
          f"agent on any machine with the same torch CPU kernels), then evaluate it against the heuristics on "
          f"{n_seeds} held-out seeds (fewer than the 10 of benchmarks/results/, to fit in about 10 min on 2 cores).")
    jobs = max(1, min(2, os.cpu_count() or 1))
    run_benchmark(
        DEFAULT_SCENARIO,
        list(range(EVAL_SEED_BASE, EVAL_SEED_BASE + n_seeds)),
        [*DEFAULT_HEURISTICS, algo],
        out=out,
        train_timesteps=timesteps,
        train_seed=0,
        logdir=args.logdir,
        jobs=jobs,
        stem=stem,
        warm_start=args.warm_start,
        warm_start_episodes=6,
        warm_start_jobs=jobs,  # the same teacher episodes, collected in parallel
        eval_freq=timesteps // MAIN_VALIDATIONS,
        note=f"The README's main job (`python train.py`: {timesteps:,} PPO steps, {n_seeds} seeds); see "
             "benchmarks/results/metro_benchmark_v03.md for the full run.",
    )
    run_dir = Path(args.logdir) / f"{DEFAULT_SCENARIO}_{algo}_s0"
    print(f"main job finished in {time.perf_counter() - t0:.0f} s. Written:")
    for what, path in (("model", run_dir / "best_model.zip"), ("final model", run_dir / "final_model.zip"),
                       ("TensorBoard logs", run_dir / "tb"), ("table", out / f"{stem}.md"),
                       ("table (CSV)", out / f"{stem}.csv"), ("episodes (CSV)", out / f"{stem}_episodes.csv"),
                       ("Pareto plot", out / f"{stem}.png")):
        print(f"  {what + ':':<18} {path}")
    print(f"  (tensorboard --logdir {run_dir / 'tb'})")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``gaisnet-train``."""
    from gaisnet_env.agents.learned import ALGOS

    p = argparse.ArgumentParser(
        prog="gaisnet-train",
        description="Train, evaluate and benchmark scheduling agents on gaisnet-env. "
        "Without a subcommand: the main job (train a small PPO on metro, print the benchmark table).",
    )
    p.add_argument("--algo", default="ppo", help="main job: algorithm to train (default ppo)")
    p.add_argument("--timesteps", type=int, default=None, help=f"main job: env steps (default {MAIN_TRAIN_STEPS})")
    p.add_argument("--main-seeds", type=int, default=MAIN_SEEDS, help="main job: evaluation seeds")
    p.add_argument("--logdir", default="runs", help="main job: run directory root")
    p.add_argument("--out", default=None, help="main job: where the tables and the plot go (default: --logdir)")
    p.add_argument("--warm-start", default=MAIN_WARM_START, help="main job: heuristic to clone ('none': no)")
    sub = p.add_subparsers(dest="command")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--scenario", default=DEFAULT_SCENARIO, help="built-in name or YAML path (default metro)")
        sp.add_argument("--horizon", type=int, default=None, help="override the scenario's episode length (epochs)")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="scenario override, dotted (e.g. reward.w_lat=0.5); repeatable")
        sp.add_argument("--no-progress", action="store_true", help="no progress bars")
        sp.add_argument("--fast-path", action="store_true",
                        help="calibrated fast path: knowledge operations predicted by a response model fitted on "
                        "real runs instead of trained (gaisnet_env.surrogate); evaluate on the real workers after")

    def warm(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--warm-start", default=None, metavar="POLICY",
                        help="clone this policy's behaviour before RL: a heuristic (e.g. cost-aware, with "
                        "name:key=value overrides) or oracle:... (slow); default none")
        sp.add_argument("--warm-start-episodes", type=int, default=12, help="teacher episodes for the warm start")
        sp.add_argument("--warm-start-jobs", type=int, default=1, help="processes collecting the teacher episodes")

    t = sub.add_parser("train", help="train an SB3 agent", description="Train PPO / A2C / DQN / MaskablePPO.")
    common(t)
    t.add_argument("--algo", default="ppo", help=f"one of {', '.join(ALGOS)} (alias maskable_ppo)")
    t.add_argument("--timesteps", type=int, default=None, help="env steps (default: the YAML's n_timesteps)")
    t.add_argument("--seed", type=int, default=0, help="training seed (train envs use seed, seed+1, ...)")
    t.add_argument("--logdir", default="runs", help="root of run directories (default runs/)")
    t.add_argument("--run-name", default=None, help="run directory name (default <scenario>_<algo>_s<seed>)")
    t.add_argument("--resume", default=None, metavar="PATH", help="continue training a saved model (.zip)")
    t.add_argument("--eval-freq", type=int, default=None, help="env steps between evaluations")
    t.add_argument("--eval-episodes", type=int, default=4, help="validation episodes (seeds 20000+) per evaluation")
    t.add_argument("--hyperparams", default=None, help='JSON overrides, e.g. \'{"learning_rate": 1e-3}\'')
    t.add_argument("--subproc", action="store_true", help="training envs in subprocesses")
    t.add_argument("--time-budget", type=float, default=None, help="stop training after this many seconds")
    warm(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate one policy", description="Evaluate a heuristic, the oracle "
                       "or a saved model on held-out seeds.")
    common(e)
    e.add_argument("--policy", required=True, help="a heuristic, 'oracle', finetune-value:model=M,tau=T or a model")
    e.add_argument("--episodes", type=int, default=1, help="episodes per seed")
    e.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="explicit seeds, or one number N < 10000 meaning seeds 10000..10000+N-1 (default 5)")
    e.add_argument("--out", default=None, help="write <scenario>_evaluate.md/.csv here")
    e.set_defaults(func=cmd_evaluate)

    _benchmark_parser(sub, common, warm)
    return p


def _benchmark_parser(sub: Any, common: Any, warm: Any) -> None:
    """The ``benchmark`` subcommand's arguments (``common`` and ``warm`` add the shared ones)."""
    b = sub.add_parser("benchmark", help="compare policies", description="Benchmark policies on the same held-out "
                       "seeds; writes a markdown and CSV table and a Pareto plot.")
    common(b)
    b.add_argument("--seeds", type=int, nargs="+", default=[10],
                   help="number of held-out seeds (from 10000), or explicit seeds (default 10)")
    b.add_argument("--policies", nargs="+", default=None,
                   help="heuristics, 'oracle', finetune-value:..., models, algorithms to train (default: heuristics)")
    b.add_argument("--train-timesteps", type=int, default=None, help="train the algorithm names first")
    b.add_argument("--train-seed", type=int, default=0, help="training seed of the algorithm names")
    b.add_argument("--logdir", default="runs", help="where trained runs go / are looked up")
    b.add_argument("--episodes", type=int, default=1, help="episodes per seed")
    b.add_argument("--jobs", type=int, default=1, help="worker processes for the evaluation")
    b.add_argument("--out", default="benchmarks/results", help="output folder (default benchmarks/results)")
    b.add_argument("--stem", default=None, help="output file stem (default <scenario>_benchmark)")
    b.add_argument("--include-episodes", action="append", metavar="CSV",
                   help="add episodes from an earlier run's <stem>_episodes.csv (same seeds!); repeatable")
    b.add_argument("--note", default=None, help="a paragraph written under the markdown table's title")
    b.add_argument("--suite", action="store_true", help="run on every scenario of --scenarios (one results file "
                   "each, <scenario>_suite.md) and write suite_summary.md/.csv; '{scenario}' in a policy is "
                   "replaced by each scenario's name")
    b.add_argument("--scenarios", nargs="+", default=None, choices=BUILTIN_SCENARIOS,
                   help="--suite: the scenarios (default all built-ins)")
    b.add_argument("--summary-only", action="store_true", help="--suite: rebuild suite_summary from the "
                   "<scenario>_suite_episodes.csv files under --out (runs nothing)")
    warm(b)
    b.set_defaults(func=cmd_benchmark)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gaisnet-train`` and ``train.py``."""
    args = build_parser().parse_args(argv)
    if getattr(args, "warm_start", None) in ("none", ""):
        args.warm_start = None
    if args.command is None:
        cmd_main(args)
    else:
        args.func(args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
