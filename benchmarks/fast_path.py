"""The calibrated fast path against the real workers: fidelity, speed, and transfer of trained policies.

Three parts (each optional):

* ``--calibrate``: record real knowledge operations on ``metro`` (training seeds), fit the response
  model, measure it on operations of held-out seeds, write ``gaisnet_env/calibration/default.json``;
* fidelity per operation: the held-out errors stored in the calibration (always reported);
* episodes: every policy of ``--policies`` (heuristics and saved models, e.g. one trained with
  ``train.py train --fast-path``) on the same held-out seeds with the real workers and with the fast path:
  episode reward, accuracy, energy and wall time per episode on both, the rank agreement of the policies,
  and the paired real-minus-fast reward difference.

Usage::

    python benchmarks/fast_path.py --seeds 10 --policies cost-aware periodic threshold always-end random \
        runs/metro_ppo_mask_fast/best_model.zip --jobs 2
    python benchmarks/fast_path.py --calibrate          # refit the shipped calibration (~3 min)

Results: ``benchmarks/results/fast_path.json`` and ``fast_path.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_results  # noqa: E402


def _rank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x)
    r = np.empty(len(x))
    r[order] = np.arange(len(x))
    return r


def episodes(policies: list[str], scenario: str, n_seeds: int, jobs: int, progress: bool) -> dict[str, Any]:
    from gaisnet_env.agents.base import eval_seeds, summarise

    from gaisnet_env.evaluation import evaluate_specs  # noqa: I001 - it imports the agents first

    seeds = eval_seeds(n_seeds)
    out: dict[str, Any] = {"seeds": seeds, "policies": {}}
    for workers in ("real", "fast"):
        t0 = time.perf_counter()
        res = evaluate_specs(policies, scenario, seeds, 1, jobs, {"worker_system": workers}, progress)
        out[f"wall_s_{workers}"] = time.perf_counter() - t0
        for r in res:
            p = out["policies"].setdefault(r.policy, {})
            p.setdefault(workers, []).append({k: getattr(r, k) for k in
                                              ("seed", "reward", "accuracy", "energy_j", "ops_started", "wall_s")})
    for p in out["policies"].values():
        real = np.array([e["reward"] for e in sorted(p["real"], key=lambda e: e["seed"])])
        fast = np.array([e["reward"] for e in sorted(p["fast"], key=lambda e: e["seed"])])
        p["summary"] = {
            "reward_real": summarise(real), "reward_fast": summarise(fast),
            "paired_real_minus_fast": summarise(real - fast),
            "accuracy_real": summarise([e["accuracy"] for e in p["real"]]),
            "accuracy_fast": summarise([e["accuracy"] for e in p["fast"]]),
            "energy_real": summarise([e["energy_j"] for e in p["real"]]),
            "energy_fast": summarise([e["energy_j"] for e in p["fast"]]),
            "wall_s_real": float(np.median([e["wall_s"] for e in p["real"]])),
            "wall_s_fast": float(np.median([e["wall_s"] for e in p["fast"]])),
        }
    names = list(out["policies"])
    if len(names) >= 3:
        r = np.array([out["policies"][n]["summary"]["reward_real"][0] for n in names])
        f = np.array([out["policies"][n]["summary"]["reward_fast"][0] for n in names])
        out["spearman_reward"] = float(np.corrcoef(_rank(r), _rank(f))[0, 1])
    return out


def table(results: dict[str, Any]) -> str:
    cal = results["calibration"]
    meta = cal.get("meta", {})
    lines = [
        "# Calibrated fast path vs real workers",
        "",
        f"Calibration: `{cal['path']}`, recorded on `{meta.get('scenario')}` with policies "
        f"{', '.join(meta.get('policies', []))}: {meta.get('n_fit')} operations from training seeds "
        f"{meta.get('fit_seeds')}, tested on {meta.get('n_test')} operations of held-out seeds "
        f"{meta.get('test_seeds')}.",
        "",
        "## Per operation, held-out: accuracy of the changed model on the reported domain",
        "",
        "| operation | n | MAE fast path | MAE of 'no change' | R^2 of the change | mean change real "
        "| mean change fast |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for op, m in meta.get("held_out", {}).items():
        lines.append(f"| {op} | {m['n']} | {m['mae']:.3f} | {m['mae_no_change']:.3f} | {m['r2_change']:.2f} | "
                     f"{m['mean_change_real']:+.3f} | {m['mean_change_pred']:+.3f} |")
    ep = results.get("episodes")
    if ep:
        lines += ["", f"## Episodes: {len(ep['seeds'])} held-out seeds ({ep['seeds'][0]}..{ep['seeds'][-1]}), "
                  "same policy on both", "",
                  "| policy | reward real | reward fast | paired real - fast | accuracy real | accuracy fast | "
                  "s/episode real | s/episode fast |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, p in ep["policies"].items():
            s = p["summary"]

            def ci(x: tuple[float, float], nd: int = 2) -> str:
                return f"{x[0]:.{nd}f} ± {x[1]:.{nd}f}"

            lines.append(f"| {name} | {ci(s['reward_real'])} | {ci(s['reward_fast'])} | "
                         f"{ci(s['paired_real_minus_fast'])} | {ci(s['accuracy_real'], 3)} | "
                         f"{ci(s['accuracy_fast'], 3)} | {s['wall_s_real']:.2f} | {s['wall_s_fast']:.2f} |")
        if "spearman_reward" in ep:
            lines += ["", f"Rank correlation (Spearman) of the policies' mean reward, real vs fast: "
                      f"{ep['spearman_reward']:.2f}. Evaluation wall time: real {ep['wall_s_real']:.0f} s, "
                      f"fast {ep['wall_s_fast']:.0f} s."]
    lines += ["", "Mean ± half-width of the 95% t-confidence interval over seeds."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calibrate", action="store_true", help="refit and overwrite the shipped calibration first")
    p.add_argument("--scenario", default="metro")
    p.add_argument("--seeds", type=int, default=10, help="held-out evaluation seeds (10000..)")
    p.add_argument("--policies", nargs="*", default=["cost-aware", "periodic", "threshold", "always-end",
                                                     "always-edge", "random"])
    p.add_argument("--jobs", type=int, default=1, help="evaluation processes")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default=None, help="output folder (default benchmarks/results)")
    p.add_argument("--name", default="fast_path", help="file name stem of the results")
    args = p.parse_args(argv)

    from gaisnet_env import surrogate, surrogate_fit

    if args.calibrate:
        t0 = time.perf_counter()
        surrogate_fit.calibrate(args.scenario, out=surrogate.DEFAULT_CALIBRATION)
        print(f"[fast_path] calibrated in {time.perf_counter() - t0:.0f} s -> {surrogate.DEFAULT_CALIBRATION}")
    model = surrogate.ResponseModel.load(surrogate.DEFAULT_CALIBRATION)
    results: dict[str, Any] = {"machine": machine_info(), "args": vars(args),
                               "calibration": {"path": str(surrogate.DEFAULT_CALIBRATION.name), "meta": model.meta}}
    if args.policies and args.seeds > 0:
        results["episodes"] = episodes(args.policies, args.scenario, args.seeds, args.jobs, not args.no_progress)
    md = table(results)
    pj, pm = write_results(args.name, results, md, Path(args.out) if args.out else None)
    print(md)
    print(f"\nwrote {pj} and {pm}")
    return results


if __name__ == "__main__":
    main()
