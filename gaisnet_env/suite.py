"""The benchmark suite: the same benchmark on every built-in scenario, one results file per scenario and
a summary table like a leaderboard (scenario | best heuristic | oracle | best learned | paired
differences | normalised score). ``train.py benchmark --suite``."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gaisnet_env.agents.base import EpisodeMetrics
from gaisnet_env.paired import normalised_score, paired
from gaisnet_env.provenance import provenance_line
from gaisnet_env.report import _fmt, best_by_kind

#: Placeholder in a suite's policy specs replaced by each scenario's name (e.g. a model path per scenario).
SCENARIO_PLACEHOLDER = "{scenario}"


def scenario_policies(policies: Sequence[str], scenario: str) -> list[str]:
    """``policies`` with ``{scenario}`` replaced by ``scenario`` (``runs/{scenario}_ppo_s0/best_model.zip``)."""
    return [p.replace(SCENARIO_PLACEHOLDER, scenario) for p in policies]


def leaderboard_row(scenario: str, rows: Sequence[dict[str, Any]], results: Sequence[EpisodeMetrics]) -> dict[str, Any]:
    """One scenario's summary: the best policy of each kind (mean ± 95% CI), the paired differences on
    common seeds (learned - heuristic, oracle - heuristic, oracle - learned; mean and CI half-width) and
    the normalised score with its bootstrap CI. Missing kinds give empty cells."""
    best = best_by_kind(rows)
    out: dict[str, Any] = {"scenario": scenario}
    for kind in ("heuristic", "oracle", "learned"):
        r = best[kind]
        out[kind] = r["policy"] if r else ""
        out[f"{kind}_reward"] = _fmt(r["reward_mean"], r["reward_ci95"], "r") if r else ""
    h, o, lrn = best["heuristic"], best["oracle"], best["learned"]
    for name, a, b in (("learned_minus_heuristic", lrn, h), ("oracle_minus_heuristic", o, h),
                       ("oracle_minus_learned", o, lrn)):
        d = paired(results, a["policy"], b["policy"]) if a and b else None
        out[name] = "" if d is None or d.n < 2 else f"{d.mean:+.2f} ± {d.ci95:.2f}"
    s = normalised_score(results, lrn["policy"], h["policy"], o["policy"]) if h and o and lrn else None
    out["normalised_score"] = s.text() if s else ""
    out["seeds"] = s.n if s else (paired(results, o["policy"], h["policy"]).n if h and o else 0)
    return out


_COLUMNS = (("scenario", "scenario"), ("heuristic", "best heuristic"), ("heuristic_reward", "its reward"),
            ("oracle", "oracle"), ("oracle_reward", "its reward"), ("learned", "best learned"),
            ("learned_reward", "its reward"), ("learned_minus_heuristic", "learned - heuristic (paired)"),
            ("oracle_minus_heuristic", "oracle - heuristic (paired)"),
            ("oracle_minus_learned", "oracle - learned (paired)"), ("normalised_score", "normalised score [95% CI]"),
            ("seeds", "common seeds"))


def write_summary(board: Sequence[dict[str, Any]], out: str | Path, stem: str = "suite_summary",
                  header: str = "") -> tuple[Path, Path]:
    """Write the leaderboard as ``<stem>.md`` and ``<stem>.csv`` under ``out``; returns both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [header.rstrip(), ""] if header else []
    lines.append("| " + " | ".join(label for _, label in _COLUMNS) + " |")
    lines.append("|" + "---|" * len(_COLUMNS))
    lines += ["| " + " | ".join(str(r[k]) for k, _ in _COLUMNS) + " |" for r in board]
    lines += ["", "Rewards: mean ± 95% t-CI half-width over held-out seeds. Paired differences: mean ± 95% t-CI "
              "of the per-seed differences on the seeds both ran. Normalised score = mean(learned - heuristic) / "
              "mean(oracle - heuristic) on the common seeds (0: the best heuristic, 1: the oracle), with a 95% "
              "percentile bootstrap CI over seeds."]
    md, cs = out / f"{stem}.md", out / f"{stem}.csv"
    md.write_text("\n".join(lines) + "\n")
    with cs.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[k for k, _ in _COLUMNS])
        w.writeheader()
        w.writerows(board)
    return md, cs


def run_suite(scenarios: Sequence[str], policies: Sequence[str], out: str | Path,
              benchmark: Callable[..., tuple[list[dict[str, Any]], list[EpisodeMetrics]]],
              **kwargs: Any) -> list[dict[str, Any]]:
    """Run ``benchmark(scenario, policies=..., out=..., stem=<scenario>_suite, **kwargs)`` (the CLI's
    :func:`~gaisnet_env.cli.run_benchmark`) on every scenario in turn, then write the summary; returns
    the leaderboard rows."""
    board = []
    for name in scenarios:
        print(f"suite: {name}", flush=True)
        rows, res = benchmark(name, policies=scenario_policies(policies, name), out=out, stem=f"{name}_suite",
                              **kwargs)
        board.append(leaderboard_row(name, rows, res))
    md, cs = write_summary(board, out, header=f"# Benchmark suite: {', '.join(scenarios)}\n\n{provenance_line()}\n")
    print(f"wrote {md}, {cs}")
    return board


def summary_from_files(scenarios: Sequence[str], out: str | Path, note: str = "") -> list[dict[str, Any]]:
    """Rebuild the summary from the per-scenario episode files a suite wrote earlier
    (``<out>/<scenario>_suite_episodes.csv``, from one run or several), with ``note`` under its title; a
    missing file is a FileNotFoundError naming it. Returns the leaderboard rows."""
    from gaisnet_env.report import aggregate, load_episodes

    board = []
    for name in scenarios:
        path = Path(out) / f"{name}_suite_episodes.csv"
        if not path.exists():
            raise FileNotFoundError(f"--summary-only: no {path}; run the suite on {name!r} first (or its "
                                    f"benchmark with --stem {name}_suite)")
        res = load_episodes(path)
        board.append(leaderboard_row(name, aggregate(res), res))
    header = f"# Benchmark suite: {', '.join(scenarios)}\n\n{provenance_line()}\n" + (f"\n{note}\n" if note else "")
    md, cs = write_summary(board, out, header=header)
    print(f"wrote {md}, {cs}")
    return board


__all__ = ["SCENARIO_PLACEHOLDER", "leaderboard_row", "run_suite", "scenario_policies", "summary_from_files",
           "write_summary"]
