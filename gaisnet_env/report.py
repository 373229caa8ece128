"""Benchmark reports: per-policy means and 95% CIs, paired differences, the verdict lines, the
markdown / CSV tables and the printed table; reading back a benchmark's episodes."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gaisnet_env.agents.base import METRICS, EpisodeMetrics, summarise
from gaisnet_env.paired import normalised_score, paired
from gaisnet_env.specs import parse_spec

# ----------------------------------------------------------------------------------------
# tables and plots


def aggregate(results: Sequence[EpisodeMetrics]) -> list[dict[str, Any]]:
    """Per policy: n, and mean / 95% t-CI half-width of every metric in :data:`METRICS`."""
    by: dict[str, list[EpisodeMetrics]] = {}
    for r in results:
        by.setdefault(r.policy, []).append(r)
    rows = []
    for name, rs in by.items():
        row: dict[str, Any] = {"policy": name, "n": len(rs)}
        for k in METRICS:
            mean, ci = summarise([getattr(r, k) for r in rs])
            row[f"{k}_mean"], row[f"{k}_ci95"] = mean, ci
        row["wall_s_per_episode"] = sum(r.wall_s for r in rs) / len(rs)
        rows.append(row)
    return rows


def _fmt(mean: float, ci: float, k: str) -> str:
    if k in ("accuracy",):
        f = "{:.4f}"
    elif k in ("latency_p95_s",):
        f = "{:.3f}"
    elif abs(mean) >= 1e4:
        f = "{:.3g}"
    else:
        f = "{:.2f}"
    ci_s = "n/a" if not math.isfinite(ci) else f.format(ci)
    return f"{f.format(mean)} ± {ci_s}"


def paired_difference(results: Sequence[EpisodeMetrics], a: str, b: str) -> tuple[float, float, int]:
    """Mean and 95% t-CI half-width of reward(a) - reward(b) over the seeds both ran (paired)."""
    d = paired(results, a, b)
    return d.mean, d.ci95, d.n


def policy_kind(name: str) -> str:
    """``"heuristic"``, ``"oracle"`` or ``"learned"`` (a model path or an algorithm) for a policy label."""
    from gaisnet_env.agents.heuristics import HEURISTICS

    if parse_spec(name)[0] in HEURISTICS:
        return "heuristic"
    return "oracle" if name.startswith("oracle") else "learned"


def best_by_kind(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """The row of highest mean reward of each kind (``heuristic``, ``learned``, ``oracle``; None if absent)."""
    out: dict[str, dict[str, Any] | None] = {}
    for k in ("heuristic", "learned", "oracle"):
        cands = [r for r in rows if policy_kind(r["policy"]) == k]
        out[k] = max(cands, key=lambda r: r["reward_mean"]) if cands else None
    return out


def verdict(rows: Sequence[dict[str, Any]], results: Sequence[EpisodeMetrics] = ()) -> list[str]:
    """Sentences comparing the best learned agent, the best heuristic and the oracle, paired on common seeds
    (:mod:`gaisnet_env.paired`): learned - heuristic, oracle - heuristic, oracle - learned, and the
    normalised score. Without per-episode ``results`` only the means are compared."""
    best = best_by_kind(rows)
    h, lrn, o = best["heuristic"], best["learned"], best["oracle"]
    lines = []
    if h:
        hr = _fmt(h["reward_mean"], h["reward_ci95"], "r")
        lines.append(f"Best heuristic: **{h['policy']}**, episode reward {hr}.")
    if lrn:
        lines.append(f"Best learned agent: **{lrn['policy']}**, {_fmt(lrn['reward_mean'], lrn['reward_ci95'], 'r')}"
                     + (f" (difference of the means {lrn['reward_mean'] - h['reward_mean']:+.2f})." if h else "."))
    if o:
        lines.append(f"Oracle (look-ahead on env copies that sees the true future: an upper reference, not "
                     f"deployable): {_fmt(o['reward_mean'], o['reward_ci95'], 'r')} over {o['n']} episodes.")
    pairs = [(x, y) for x, y in ((lrn, h), (o, h), (o, lrn)) if x and y]
    for x, y in pairs if results else []:
        d = paired(results, x["policy"], y["policy"])
        if d.n >= 2:
            lines.append(f"Paired: {d.sentence()}.")
    if results and h and lrn and o:
        s = normalised_score(results, lrn["policy"], h["policy"], o["policy"])
        lines.append(f"Normalised score of {lrn['policy']} (0: the best heuristic, 1: the oracle): {s.text()} "
                     f"({s.n} common seeds, 95% bootstrap CI over seeds).")
    return lines


def write_tables(
    rows: Sequence[dict[str, Any]],
    results: Sequence[EpisodeMetrics],
    out_dir: str | Path,
    stem: str,
    header: str = "",
) -> dict[str, Path]:
    """Write ``<stem>.md`` (mean ± 95% CI), ``<stem>.csv`` (means, CIs) and ``<stem>_episodes.csv``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{stem}.md"
    cs = out / f"{stem}.csv"
    ep = out / f"{stem}_episodes.csv"
    cols = list(METRICS)
    lines = [header.rstrip(), ""] if header else []
    lines.append("| policy | n | " + " | ".join(METRICS[k] for k in cols) + " | s/episode |")
    lines.append("|---|---:|" + "---:|" * len(cols) + "---:|")
    for r in sorted(rows, key=lambda r: -r["reward_mean"]):
        cells = [_fmt(r[f"{k}_mean"], r[f"{k}_ci95"], k) for k in cols]
        lines.append(f"| {r['policy']} | {r['n']} | " + " | ".join(cells) + f" | {r['wall_s_per_episode']:.1f} |")
    lines.append("")
    lines.append("Mean ± half-width of the two-sided 95% confidence interval (t-distribution, n-1 dof) over "
                 "held-out evaluation seeds. Reward: sum over the episode; accuracy: mean served accuracy / "
                 "generation quality; p95 latency: mean over epochs of the per-epoch p95; energy, carbon, "
                 "SLA violations (requests) and bytes moved: episode totals.")
    lines.append("")
    lines.extend(verdict(rows, results))
    md.write_text("\n".join(lines) + "\n")
    with cs.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["policy"])
        w.writeheader()
        for r in rows:
            w.writerow(r)
    with ep.open("w", newline="") as f:
        if results:
            w = csv.DictWriter(f, fieldnames=list(results[0].as_dict().keys()))
            w.writeheader()
            for m in results:
                w.writerow(m.as_dict())
    return {"md": md, "csv": cs, "episodes_csv": ep}


def print_table(rows: Sequence[dict[str, Any]], title: str = "", results: Sequence[EpisodeMetrics] = ()) -> None:
    """Print the benchmark table (rich if available)."""
    cols = list(METRICS)
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title or None, show_lines=False)
        t.add_column("policy")
        t.add_column("n", justify="right")
        for k in cols:
            t.add_column(METRICS[k], justify="right")
        for r in sorted(rows, key=lambda r: -r["reward_mean"]):
            t.add_row(r["policy"], str(r["n"]), *[_fmt(r[f"{k}_mean"], r[f"{k}_ci95"], k) for k in cols])
        Console(width=220).print(t)
    except ImportError:  # pragma: no cover
        print(title)
        for r in sorted(rows, key=lambda r: -r["reward_mean"]):
            print(r["policy"], r["n"], *[_fmt(r[f"{k}_mean"], r[f"{k}_ci95"], k) for k in cols])
    for line in verdict(rows, results):
        print(line.replace("**", ""))


def load_episodes(path: str | Path) -> list[EpisodeMetrics]:
    """Episodes from a ``<stem>_episodes.csv`` written by an earlier benchmark."""
    from dataclasses import fields

    types = {f.name: f.type for f in fields(EpisodeMetrics)}
    out = []
    with Path(path).open() as f:
        for row in csv.DictReader(f):
            kw = {}
            for k, v in row.items():
                t = str(types.get(k, "str"))
                kw[k] = int(v) if t == "int" else float(v) if t == "float" else v
            out.append(EpisodeMetrics(**kw))
    return out
