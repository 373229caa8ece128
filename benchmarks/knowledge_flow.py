"""Does bidirectional knowledge flow beat none? The seeds' claim, checked on real workers.

Five fixed schedules run on a drifting scenario, every request served at the edge (so the
accuracy measured is the edge model's, on held-out samples of each cell's current domain):

- ``bidirectional``: per edge, every ``period`` epochs: finetune, then relay_up, then relay_down;
- ``down_only``: relay_down at the same phase as bidirectional's relay_down;
- ``finetune_only``: finetune at the same phase as bidirectional's finetune;
- ``finetune_twice``: control for bidirectional's relay_down, whose loss may include a cross-entropy
  term on local feedback (``workers.relay_down_local_weight``): finetune at bidirectional's finetune
  and relay_down phases, so it sees as many local labels as bidirectional but no cloud knowledge;
- ``none``: no knowledge operations.

Variants with other worker settings (``SCHEDULE_WORKERS``): ``down_only_pure`` (relay_down without the
local-label term), ``down_only_task`` (the cloud distils the edge's adapter for the reported domain and
ships it: task-oriented deployment), ``bidirectional_nogen`` (no generator relay) and
``bidirectional_mixture`` (the cloud model is the gated mixture of the edge experts).

Edges are staggered (edge ``e`` starts its cycle at epoch ``e * stagger``). A relay_up keeps the cloud
busy (~1.9 epochs on metro), so with ``stagger`` 1 the relay_up of edge ``e + 1`` is masked while
edge ``e``'s runs (the "ops masked" column); ``--period 8 --stagger 2`` lets every edge relay up.
Over ``--seeds`` seeds it writes mean episode accuracy, final accuracy per tier, bytes moved and
energy, each with a 95% confidence interval (Student t), to
``benchmarks/results/knowledge_flow_<scenario>.md`` and ``.json``.

Run: ``python benchmarks/knowledge_flow.py --scenario metro --seeds 5``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gaisnet_env.env import OP_FINETUNE, OP_NONE, OP_RELAY_DOWN, OP_RELAY_UP, ROUTE_EDGE, GaisNetEnv
from gaisnet_env.provenance import provenance_line
from gaisnet_env.worker_config import PERSONAL_STYLES, STYLES

_PERSONAL_COLS = [STYLES.index(s) for s in PERSONAL_STYLES]

SCHEDULES: tuple[str, ...] = ("bidirectional", "bidirectional_nogen", "bidirectional_mixture", "finetune_down",
                              "down_only", "down_only_pure", "down_only_task", "finetune_only", "finetune_twice",
                              "none")
#: schedules that relay down (without fine-tuning first, except finetune_down)
DOWN_SCHEDULES = ("finetune_down", "down_only", "down_only_pure", "down_only_task")
#: schedules with worker overrides: pure data-free relay_down (no cross-entropy term on local labels), and
#: bidirectional without generator relay (``workers.generator_relay: false``)
SCHEDULE_WORKERS: dict[str, dict[str, Any]] = {
    "down_only_pure": {"relay_down_local_weight": 0.0},
    "bidirectional_nogen": {"generator_relay": False},
    "bidirectional_mixture": {"cloud_model": "mixture"},
    # task-oriented deployment: the cloud distils the edge's adapter for the reported domain and ships it
    "down_only_task": {"relay_down_variant": "ship_adapter"},
}
RESULTS = Path(__file__).resolve().parent / "results"
#: the seeds on which the worker and scenario defaults were tuned (the table flags any overlap)
TUNING_SEEDS: tuple[int, ...] = tuple(range(900, 910))
#: default episode seeds: never used in tuning
DEFAULT_SEEDS: tuple[str, ...] = ("1000-1009",)
#: worker settings of the knowledge operations, echoed in the table's header
KNOWLEDGE_FIELDS: tuple[str, ...] = (
    "relay_up_aggregation",
    "relay_down_local_weight",
    "relay_down_samples",
    "relay_down_epochs",
    "feedback_buffer",
    "edge_hidden",
    "lora_rank",
    "edge_base_share",
    "relay_down_min_confidence",
    "relay_down_relative",
)
#: paired comparisons reported under the table: (first, second, metric, what it measures[, metric of the
#: second schedule when it differs])
PAIRS: tuple[tuple[str, ...], ...] = (
    ("bidirectional", "finetune_twice", "mean_accuracy_edge", "cloud knowledge over equal local labels"),
    ("down_only_pure", "none", "mean_accuracy_edge", "pure data-free relay_down"),
    ("bidirectional", "finetune_down", "mean_accuracy_cloud_personal",
     "cloud accuracy on edge-only (personal) domains with and without relay_up"),
    ("bidirectional", "finetune_down", "mean_accuracy_edge", "what relay_up adds at the edges"),
    ("bidirectional", "none", "mean_accuracy_edge", "the whole knowledge flow"),
    ("bidirectional", "finetune_only", "mean_accuracy_edge", "relay ops over one finetune per cycle"),
    ("bidirectional", "bidirectional_nogen", "mean_quality_edge_generator",
     "edge generation quality with and without generator relay"),
    ("bidirectional", "bidirectional_nogen", "mean_quality_cloud_generator_personal",
     "cloud generation quality on personal domains with and without generator relay"),
    ("bidirectional", "bidirectional_nogen", "mean_accuracy_cloud_personal",
     "cloud accuracy on personal domains: relay_up with and without the edges' generators"),
    ("bidirectional", "bidirectional_nogen", "mean_accuracy_edge", "what generator relay adds to edge accuracy"),
    ("bidirectional_mixture", "bidirectional", "mean_accuracy_cloud", "mixture-of-experts vs dense cloud model"),
    ("bidirectional_mixture", "bidirectional", "mean_accuracy_cloud_personal",
     "mixture-of-experts vs dense cloud model, personal domains"),
    ("down_only_task", "down_only_task", "mean_accuracy_edge",
     "task-oriented adapter (edge) vs deploying the generic cloud model (cloud acc), same cells",
     "mean_accuracy_cloud"),
    ("down_only_task", "down_only_pure", "mean_accuracy_edge",
     "data-free relay_down: task adapter shipped vs synthetic samples shipped"),
)


def parse_seeds(tokens: list[str]) -> list[int]:
    """Seeds from tokens that are integers (``7``) or inclusive ranges (``1000-1009``), in order."""
    seeds: list[int] = []
    for tok in tokens:
        lo, sep, hi = str(tok).partition("-")
        try:
            a, b = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(f"--seeds: got {tok!r}; expected an integer >= 0 or a range A-B") from None
        if a < 0 or b < a:
            raise ValueError(f"--seeds: got {tok!r}; expected an integer >= 0 or a range A-B with A <= B")
        seeds.extend(range(a, b + 1))
    if len(seeds) != len(set(seeds)):
        raise ValueError(f"--seeds: got {tokens!r}; each seed may appear once")
    return seeds


def schedule_ops(schedule: str, epoch: int, n_edges: int, period: int, stagger: int = 1) -> np.ndarray:
    """Operation per edge at ``epoch`` for a fixed schedule (OPERATIONS indices); edge ``e``'s cycle
    starts at epoch ``e * stagger``."""
    ops = np.full(n_edges, OP_NONE, dtype=np.int64)
    for e in range(n_edges):
        phase = (epoch - e * stagger) % period
        bidirectional = schedule.startswith("bidirectional")
        if (bidirectional or schedule in ("finetune_down", "finetune_only", "finetune_twice")) and phase == 0:
            ops[e] = OP_FINETUNE
        elif bidirectional and phase == 2:
            ops[e] = OP_RELAY_UP
        elif (bidirectional or schedule in DOWN_SCHEDULES) and phase == 4:
            ops[e] = OP_RELAY_DOWN
        elif schedule == "finetune_twice" and phase == 4:
            ops[e] = OP_FINETUNE
    return ops


def run_episode(env: GaisNetEnv, schedule: str, seed: int, period: int, stagger: int = 1) -> dict[str, float]:
    """One episode of ``schedule``; returns its metrics (accuracy shares, bytes, joules)."""
    obs, info = env.reset(seed=seed)
    E = env.n_edges
    acc, acc_cloud, acc_cloud_personal = [], [], []
    q_edge, q_cloud, q_cloud_personal = [], [], []
    ops_started = ops_masked = 0
    epoch = 0
    while True:
        action = np.stack([np.full(E, ROUTE_EDGE), schedule_ops(schedule, epoch, E, period, stagger)], axis=1)
        class_mix, style_mix = env.true_domain(epoch)
        obs, reward, terminated, truncated, info = env.step(action.ravel())
        acc.append(info["accuracy_edge"])
        acc_cloud.append(info["accuracy_cloud"])
        personal = style_mix[:, _PERSONAL_COLS].sum(axis=1) > 0.5
        quality = generation_quality(env, class_mix, style_mix)  # (E, 2): edge, cloud generator
        q_edge.append(float(quality[:, 0].mean()))
        q_cloud.append(float(quality[:, 1].mean()))
        if personal.any():
            cloud = [env.workers.accuracy("cloud", int(e), class_mix[e], style_mix[e])
                     for e in np.flatnonzero(personal)]
            acc_cloud_personal.append(float(np.mean(cloud)))
            q_cloud_personal.append(float(quality[personal, 1].mean()))
        ops_started += info["ops_started"]
        ops_masked += info["actions_masked"]
        epoch += 1
        if terminated or truncated:
            break
    return {
        "mean_accuracy_edge": float(np.mean(acc)),
        "mean_accuracy_cloud": float(np.mean(acc_cloud)),
        # nan when no cell was ever in a personal domain
        "mean_accuracy_cloud_personal": float(np.mean(acc_cloud_personal)) if acc_cloud_personal else float("nan"),
        "mean_quality_edge_generator": float(np.mean(q_edge)),
        "mean_quality_cloud_generator": float(np.mean(q_cloud)),
        "mean_quality_cloud_generator_personal": float(np.mean(q_cloud_personal)) if q_cloud_personal
        else float("nan"),
        "final_accuracy_end": info["accuracy_end"],
        "final_accuracy_edge": info["accuracy_edge"],
        "final_accuracy_cloud": info["accuracy_cloud"],
        "bytes_moved": info["episode_bytes_up"] + info["episode_bytes_down"],
        "energy_j": info["episode_energy_j"],
        "ops_started": float(ops_started),
        "ops_masked": float(ops_masked),
    }


def generation_quality(env: GaisNetEnv, class_mix: np.ndarray, style_mix: np.ndarray) -> np.ndarray:
    """(E, 2) expected quality of each cell's edge generator and of the cloud generator on the cell's
    domain (``style_mix[e] @ table @ class_mix[e]``, tables of ``workers.generation_table``)."""
    w = env.workers
    cloud = w.generation_table("cloud", 0)
    return np.array([[style_mix[e] @ w.generation_table("edge", e) @ class_mix[e], style_mix[e] @ cloud @ class_mix[e]]
                     for e in range(env.n_edges)])


def mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% Student-t confidence interval."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


def run(
    scenario: str,
    seeds: list[int],
    period: int,
    horizon: int | None,
    overrides: dict[str, Any] | None = None,
    stagger: int = 1,
    schedules: tuple[str, ...] = SCHEDULES,
) -> dict[str, Any]:
    overrides = dict(overrides or {})
    if horizon:
        overrides["horizon"] = horizon
    env = GaisNetEnv(scenario, **overrides)
    envs = {}
    for schedule, workers in SCHEDULE_WORKERS.items():
        kw = dict(overrides)
        kw["workers"] = {**dict(overrides.get("workers") or {}), **workers}
        envs[schedule] = GaisNetEnv(scenario, **kw)
    per_schedule: dict[str, list[dict[str, float]]] = {s: [] for s in schedules}
    t0 = time.perf_counter()
    for seed in seeds:
        for schedule in schedules:
            per_schedule[schedule].append(run_episode(envs.get(schedule, env), schedule, seed, period, stagger))
    summary = {s: {k: mean_ci95([r[k] for r in runs if not math.isnan(r[k])]) for k in runs[0]}
               for s, runs in per_schedule.items()}
    return {
        "scenario": scenario,
        "horizon": env.scenario.horizon,
        "period_epochs": period,
        "stagger_epochs": stagger,
        "workers": dataclasses.asdict(env.scenario.workers),
        "label_rate": env.scenario.workload.label_rate,
        "seeds": seeds,
        "tuning_seeds": list(TUNING_SEEDS),
        "overrides": overrides,
        "wall_s": time.perf_counter() - t0,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "provenance": provenance_line(),
        "deployment_bytes": deployment_bytes(envs["down_only_task"]) if "down_only_task" in schedules else None,
        "summary": summary,
        "runs": per_schedule,
    }


def deployment_bytes(env: GaisNetEnv) -> dict[str, float]:
    """What task-oriented vs generic deployment moves and costs: the adapter relay_down ships each way,
    the dense cloud teacher (the generic model) and counted inference FLOPs per request of each."""
    w = env.workers
    return {"task_adapter_bytes_each_way": float(w.adapter_bytes), "generic_model_bytes": float(w.model_bytes("cloud")),
            "task_model_flops_per_request": w.inference_flops("edge"),
            "generic_model_flops_per_request": w.inference_flops("cloud")}


def _seed_ranges(seeds: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    out: list[str] = []
    for s in sorted(seeds):
        if out and s == int(out[-1].rpartition("-")[2]) + 1:
            out[-1] = f"{out[-1].partition('-')[0]}-{s}"
        else:
            out.append(str(s))
    return ", ".join(out) or "none"


def to_markdown(res: dict[str, Any]) -> str:
    cols = [
        ("mean_accuracy_edge", "mean edge acc", 3),
        ("mean_accuracy_cloud", "mean cloud acc", 3),
        ("mean_accuracy_cloud_personal", "cloud acc, personal domains", 3),
        ("mean_quality_edge_generator", "edge gen quality", 3),
        ("mean_quality_cloud_generator", "cloud gen quality", 3),
        ("mean_quality_cloud_generator_personal", "cloud gen quality, personal", 3),
        ("final_accuracy_end", "final end acc", 3),
        ("final_accuracy_edge", "final edge acc", 3),
        ("final_accuracy_cloud", "final cloud acc", 3),
        ("bytes_moved", "bytes moved", 0),
        ("energy_j", "energy J", 0),
        ("ops_started", "ops", 0),
        ("ops_masked", "ops masked", 0),
    ]
    lines = [
        f"# Knowledge flow on `{res['scenario']}` ({len(res['seeds'])} seeds, horizon {res['horizon']}, "
        f"period {res['period_epochs']} epochs, stagger {res.get('stagger_epochs', 1)})",
        "",
        f"Scenario overrides: `{res['overrides']}`" if res["overrides"] else "No scenario overrides.",
        "",
        f"Seeds: {_seed_ranges(res['seeds'])}; the defaults were tuned on seeds "
        f"{_seed_ranges(res.get('tuning_seeds', []))}"
        + (" (**overlap: these results are not held out**)." if set(res["seeds"]) & set(res.get("tuning_seeds", []))
           else " (no overlap)."),
        "",
    ]
    if res.get("workers"):
        settings = ", ".join(f"`{k}={v}`" for k, v in res["workers"].items() if k in KNOWLEDGE_FIELDS)
        lines += [f"Knowledge-operation settings: {settings}.", ""]
    if "label_rate" in res:
        lines += [f"Labels: `workload.label_rate={res['label_rate']}` of served classify requests return one.", ""]
    lines += [
        "Mean ± 95% CI half-width over seeds. Every request is served at the edge; accuracy is measured on "
        "held-out samples of each cell's current domain. Generated by `benchmarks/knowledge_flow.py`.",
        "",
        "| schedule | " + " | ".join(c[1] for c in cols) + " |",
        "| --- | " + " | ".join("---" for _ in cols) + " |",
    ]
    for s, row in res["summary"].items():
        cells = []
        for key, _, digits in cols:
            m, h = row[key]
            cells.append(f"{m:.{digits}f} ± {h:.{digits}f}" if digits else f"{m:,.0f} ± {h:,.0f}")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    if res.get("deployment_bytes"):
        d = res["deployment_bytes"]
        lines += ["", f"Task-oriented deployment (`down_only_task`): the cloud ships the edge adapter "
                  f"({d['task_adapter_bytes_each_way']:,.0f} bytes each way; "
                  f"{d['task_model_flops_per_request']:,.0f} FLOPs per request at the edge); the generic "
                  f"alternative deploys the dense cloud model ({d['generic_model_bytes']:,.0f} bytes; "
                  f"{d['generic_model_flops_per_request']:,.0f} FLOPs per request), whose accuracy on the "
                  "same cells is the cloud accuracy column."]
    pairs = [p for p in PAIRS if p[0] in res["runs"] and p[1] in res["runs"]]
    if pairs:
        lines += [
            "",
            "Paired differences (same seeds; mean ± 95% CI half-width of the per-seed differences; seeds where "
            "a metric is undefined are left out):",
            "",
            "| difference | metric | measures | paired diff | excludes 0 | per seed |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for a, b, metric, what, *other in pairs:
            metric_b = other[0] if other else metric
            d = [x[metric] - y[metric_b] for x, y in zip(res["runs"][a], res["runs"][b], strict=True)
                 if not (math.isnan(x[metric]) or math.isnan(y[metric_b]))]
            if other:
                metric = f"{metric} − {metric_b}"
            if not d:
                continue
            m, h = mean_ci95(d)
            verdict = "yes" if abs(m) > h else "no"
            lines.append(f"| {a} − {b} | {metric} | {what} | {m:+.3f} ± {h:.3f} | {verdict} | "
                         f"{' '.join(f'{v:+.3f}' for v in d)} |")
    lines.append("")
    lines.append(f"Wall time {res['wall_s']:.0f} s on {res['machine']['processor'] or res['machine']['platform']}.")
    if res.get("provenance"):
        lines.append(f"{res['provenance']}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="metro", help="built-in name or YAML path (default metro)")
    p.add_argument("--seeds", nargs="+", default=list(DEFAULT_SEEDS), metavar="SEED",
                   help="episode seeds: integers or inclusive ranges A-B (default %(default)s, never used "
                        "in tuning)")
    p.add_argument("--period", type=int, default=8, help="epochs between an edge's cycles (default 8)")
    p.add_argument("--stagger", type=int, default=1, help="epochs between edges' cycle starts (default 1)")
    p.add_argument("--horizon", type=int, default=None, help="override the scenario's horizon (epochs)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="scenario override with a dotted key, value parsed as YAML (repeatable)",
    )
    p.add_argument("--schedules", nargs="+", default=list(SCHEDULES), choices=SCHEDULES, metavar="SCHEDULE",
                   help="schedules to run (default all: %(default)s)")
    p.add_argument("--tag", default="", help="suffix of the output file names")
    p.add_argument("--out", type=Path, default=RESULTS, help="output folder (default benchmarks/results)")
    args = p.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        p.error(str(exc))
    tuned = sorted(set(seeds) & set(TUNING_SEEDS))
    if tuned:
        print(f"warning: seeds {tuned} were used to tune the defaults; the table says so", file=sys.stderr)
    res = run(args.scenario, seeds, args.period, args.horizon, overrides, args.stagger, tuple(args.schedules))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"knowledge_flow_{Path(args.scenario).stem}{'_' + args.tag if args.tag else ''}"
    (args.out / f"{stem}.json").write_text(json.dumps(res, indent=1))
    md = to_markdown(res)
    (args.out / f"{stem}.md").write_text(md)
    print(md)
    return res


if __name__ == "__main__":
    main()
