"""The benchmark's Pareto plot: served accuracy (x) against p95 latency (y), energy as colour.

A policy far slower than the rest (``always-cloud`` queueing at the cloud) stretches the axes so that
the good policies pile up in one corner; :func:`pareto_plot` then draws a second panel, *without
those outliers*, where every policy is labelled and policies on the same spot share one label.
Energy is coloured by *rank* (each distinct energy its own colour band, the bar labelled with the
energies), so one energy-hungry policy does not make the others look alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MARKERS = "osD^v<>pP*hXd8H"
#: A policy whose p95 latency exceeds this multiple of the median policy's is an outlier (left panel only).
OUTLIER_FACTOR: float = 3.0


def latency_outliers(rows: Sequence[dict[str, Any]], factor: float = OUTLIER_FACTOR) -> list[int]:
    """Indices of the rows whose p95 latency is above ``factor`` x the median row's."""
    lats = np.array([float(r["latency_p95_s_mean"]) for r in rows])
    if lats.size < 3:
        return []
    limit = factor * float(np.median(lats))
    return [i for i, lat in enumerate(lats) if lat > limit]


def energy_ranks(rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Dense rank of each row's mean energy (ties share a rank) and the distinct energies, ascending."""
    energies = np.array([float(r["energy_j_mean"]) for r in rows])
    levels = np.unique(energies)
    return np.searchsorted(levels, energies), levels


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (accuracy, latency) points no other point beats on both (higher accuracy, lower latency)."""
    front, best_lat = [], math.inf
    for a, lat in sorted(points, key=lambda p: (-p[0], p[1])):
        if lat < best_lat:
            front.append((a, lat))
            best_lat = lat
    return sorted(front)


def coincident_groups(xy: np.ndarray, tol: float = 0.01) -> list[list[int]]:
    """Groups of point indices that lie within ``tol`` of the axes' span of each other (one label each)."""
    span = np.ptp(xy, axis=0)
    span[span == 0] = 1.0
    groups: list[list[int]] = []
    for i, p in enumerate(xy):
        for g in groups:
            if np.all(np.abs(xy[g[0]] - p) <= tol * span):
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def _draw(ax: Any, rows: Sequence[dict[str, Any]], idx: Sequence[int], colours: list, label: bool) -> None:
    """Scatter the rows ``idx`` with their 95% CI bars and their Pareto front; ``label``: name the points."""
    for i in idx:
        r = rows[i]
        x, y = r["accuracy_mean"], r["latency_p95_s_mean"]
        xe = r["accuracy_ci95"] if math.isfinite(r["accuracy_ci95"]) else 0.0
        ye = r["latency_p95_s_ci95"] if math.isfinite(r["latency_p95_s_ci95"]) else 0.0
        ax.errorbar(x, y, xerr=xe, yerr=ye, fmt="none", ecolor="0.6", lw=0.8, zorder=1)
        ax.scatter([x], [y], marker=MARKERS[i % len(MARKERS)], s=90, color=colours[i], edgecolor="k", zorder=2,
                   label=f"{r['policy']} (R={r['reward_mean']:.1f})")
    front = pareto_front([(rows[i]["accuracy_mean"], rows[i]["latency_p95_s_mean"]) for i in idx])
    if len(front) > 1:
        fx, fy = zip(*front, strict=True)
        ax.plot(fx, fy, "--", color="0.4", lw=1, zorder=0, label="Pareto front")
    if label:
        xy = np.array([(rows[i]["accuracy_mean"], rows[i]["latency_p95_s_mean"]) for i in idx], dtype=float)
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        pad = np.maximum(0.12 * (hi - lo), 1e-3 * np.maximum(np.abs(hi), 1e-9))
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])  # the points, not their CI bars, set the zoom
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        groups = coincident_groups(xy)
        _place_labels(ax, [xy[g[0]] for g in groups], [" = ".join(str(rows[idx[j]]["policy"]) for j in g)
                                                        for g in groups])
    ax.set_xlabel("mean served accuracy (higher is better)")
    ax.grid(alpha=0.3)


#: Label offsets tried in turn (points): nearest first, then further out in eight directions.
_OFFSETS = [(r * dx, r * dy) for r in (10, 24, 40, 56, 72) for dx, dy in
            ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))]


def _place_labels(ax: Any, points: Sequence[np.ndarray], texts: Sequence[str]) -> None:
    """Label each point at the first offset whose box overlaps no earlier label and stays in the axes."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    marker_px = 9 * ax.figure.dpi / 72  # half a marker (s=90 is about 9.5 points across) plus a margin
    placed = [Bbox.from_bounds(px - marker_px, py - marker_px, 2 * marker_px, 2 * marker_px)
              for px, py in ax.transData.transform(np.asarray(points, dtype=float))]  # labels avoid the markers
    for (x, y), text in sorted(zip(points, texts, strict=True), key=lambda t: (-t[0][1], t[0][0])):
        for k, (dx, dy) in enumerate(_OFFSETS):
            ann = ax.annotate(
                text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7,
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "0.7", "alpha": 0.85},
                arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6, "shrinkA": 0, "shrinkB": 4},
            )
            ann.update_positions(renderer)
            box = Text.get_window_extent(ann, renderer)  # the text alone (an Annotation's adds its arrow)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if (inside and not any(box.overlaps(b) for b in placed)) or k == len(_OFFSETS) - 1:
                placed.append(box)
                break
            ann.remove()


def pareto_plot(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Write the Pareto plot of benchmark ``rows`` (one per policy) to ``path``; return the path.

    Left: every policy (log latency axis when latencies span over 30x). Right, when some policies are
    latency outliers (:func:`latency_outliers`): the others only, on a linear axis, each labelled.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colors

    ranks, levels = energy_ranks(rows)
    cmap = plt.get_cmap("viridis", max(len(levels), 2))
    norm = colors.BoundaryNorm(np.arange(-0.5, max(len(levels), 2) + 0.5), cmap.N)
    colours = [cmap(norm(k)) for k in ranks]
    out = latency_outliers(rows)
    zoom = [i for i in range(len(rows)) if i not in out]
    two = bool(out) and len(zoom) >= 2
    fig, axes = plt.subplots(1, 2 if two else 1, figsize=(14, 6) if two else (8.5, 5.5), dpi=120, squeeze=False)
    ax = axes[0, 0]
    _draw(ax, rows, range(len(rows)), colours, label=False)
    lats = [r["latency_p95_s_mean"] for r in rows if r["latency_p95_s_mean"] > 0]
    log_y = bool(lats) and max(lats) / min(lats) > 30
    if log_y:  # a few overloaded policies would squash the rest
        ax.set_yscale("log")
    ax.set_ylabel("p95 latency, s (lower is better)" + (", log scale" if log_y else ""))
    ax.set_title("all policies")
    ax.legend(fontsize=7, loc="best", framealpha=0.85)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(),
                       ticks=range(len(levels)), label="energy per episode (rank colours; values in kJ)")
    bar.ax.set_yticklabels([f"{e / 1e3:,.0f}" for e in levels], fontsize=7)
    if two:  # after the colour bar, so that the labels are placed in the final axes
        names = ", ".join(str(rows[i]["policy"]) for i in out)
        _draw(axes[0, 1], rows, zoom, colours, label=True)
        axes[0, 1].set_ylabel("p95 latency, s (lower is better)")
        axes[0, 1].set_title(f"without the latency outliers ({names})", fontsize=9)
    fig.suptitle(title or "accuracy vs p95 latency")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    plt.close(fig)
    return p
