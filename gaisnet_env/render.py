"""Rendering of a :class:`~gaisnet_env.env.GaisNetEnv`: a text summary and a topology picture."""

from __future__ import annotations

from typing import Any

import numpy as np

from gaisnet_env.worker_config import OPERATIONS, TIERS

#: A :class:`~gaisnet_env.env.GaisNetEnv` (not imported here: the env imports this module).
GaisNetEnv = Any

_FIGURES: dict[int, Any] = {}


def ansi(env: GaisNetEnv) -> str:
    """One text block per epoch: the totals, then one line per edge (first 16 edges)."""
    st, info = env.state, env._last_info
    assert st is not None
    lines = [
        f"epoch {st.epoch}/{env.scenario.horizon}  t={st.epoch * env.scenario.epoch_s:.0f}s  "
        f"acc={info.get('accuracy', float('nan')):.3f}  p95={info.get('latency_p95_s', 0.0):.3f}s  "
        f"viol={info.get('sla_violation_share', 0.0):.3f}  E={info.get('energy_j', 0.0):.0f}J  "
        f"CO2={info.get('carbon_g', 0.0):.2f}g  cloud_backlog={st.cloud_backlog_s:.2f}s",
        f"{'edge':>4} {'route':>5} {'op':>12} {'acc end/edge/cloud':>20} {'backlog_s':>9} {'in flight':>12}",
    ]
    cm, sm = env._domain
    for e in range(min(env.n_edges, 16)):
        route, op = env._last_actions[e]
        accs = [env.workers.accuracy(t, e, cm[e], sm[e]) for t in TIERS]
        flight = OPERATIONS[int(st.op_kind[e])] if st.op_kind[e] else "-"
        lines.append(
            f"{e:>4} {TIERS[route]:>5} {OPERATIONS[op]:>12} "
            f"{'/'.join(f'{a:.2f}' for a in accs):>20} {st.edge_backlog_s[e]:>9.2f} {flight:>12}"
        )
    if env.n_edges > 16:
        lines.append(f"... {env.n_edges - 16} more edges")
    return "\n".join(lines) + "\n"


#: Node shape per topology tier in the ``rgb_array`` frame (its legend names them).
TIER_SHAPES: dict[str, tuple[str, str]] = {
    "cloud": ("s", "cloud"),
    "agg": ("D", "aggregation switch"),
    "edge": ("o", "edge server"),
    "end": ("^", "end devices"),
}


def _node_styles(env: GaisNetEnv) -> dict[str, tuple[list, list, list]]:
    """Per tier: its nodes, their colours (model accuracy in [0, 1]; switches none) and sizes (queue load)."""
    st = env.state
    assert st is not None
    cm, sm = env._domain
    out: dict[str, tuple[list, list, list]] = {t: ([], [], []) for t in TIER_SHAPES}
    for n, d in env.graph.nodes(data=True):
        tier = d.get("tier", "agg")
        if tier in ("edge", "end"):
            e = int(str(n).lstrip("edgn"))
            acc = env.workers.accuracy(tier, e, cm[e], sm[e])
            load = st.edge_backlog_s[e] / env.scenario.epoch_s if tier == "edge" else 0.0
        elif tier == "cloud":
            acc = env.workers.accuracy("cloud", 0, cm[0], sm[0])
            load = st.cloud_backlog_s / env.scenario.epoch_s
        else:
            tier, acc, load = "agg", None, 0.0
        nodes, colours, sizes = out[tier if tier in out else "agg"]
        nodes.append(n)
        colours.append(acc)
        sizes.append(_node_size(load))
    return out


def _node_size(load_epochs: float) -> float:
    """Marker area for a queue backlog of ``load_epochs`` epochs (saturating)."""
    return 120 + 600 * (1 - np.exp(-load_epochs))


def _legend(fig: Any) -> None:
    """Colour bar (model accuracy) and a key to the node shapes (tiers) and sizes (queue backlog)."""
    from matplotlib import cm, colors
    from matplotlib.lines import Line2D

    cax = fig.add_axes((0.86, 0.24, 0.025, 0.62))
    bar = fig.colorbar(cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap="RdYlGn"), cax=cax)
    bar.set_label("model accuracy (cell's domain)", fontsize=7)
    bar.ax.tick_params(labelsize=6)

    def dot(marker: str, size: float, colour: str = "0.75") -> Line2D:
        return Line2D([], [], ls="", marker=marker, markersize=np.sqrt(size) * 0.6, mfc=colour, mec="0.3")
    handles = [dot(m, 200) for m, _ in TIER_SHAPES.values()]
    labels = [name for _, name in TIER_SHAPES.values()]
    handles += [dot("o", _node_size(x)) for x in (0.0, 1.0)]
    labels += ["no queue", "1 epoch of backlog"]
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=6, frameon=False, borderpad=0.3,
               title="shape: tier; size: queue backlog; colour: model accuracy", title_fontsize=6, labelspacing=0.8)


def rgb_array(env: GaisNetEnv, size_px: int = 480) -> np.ndarray:
    """Topology picture, (H, W, 3) uint8: node colour = model accuracy, shape = tier, size = queue load.

    A colour bar and a key to the shapes and sizes are drawn in the frame."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import networkx as nx

    st = env.state
    assert st is not None
    fig = _FIGURES.get(id(env))
    if fig is None:
        fig = plt.figure(figsize=(size_px / 100, size_px / 100), dpi=100)
        _FIGURES[id(env)] = fig
    fig.clf()
    ax = fig.add_axes((0, 0.16, 0.84, 0.76))  # below: the key; right: the colour bar
    g = env.graph
    pos = {n: d.get("pos", (0.0, 0.0)) for n, d in g.nodes(data=True)}
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.4)
    for tier, (nodes, colours, sizes) in _node_styles(env).items():
        if not nodes:
            continue
        shape = TIER_SHAPES[tier][0]
        if tier == "agg":  # switches run no model: grey, outside the accuracy scale
            nx.draw_networkx_nodes(g, pos, nodelist=nodes, ax=ax, node_color="0.75", node_shape=shape,
                                   node_size=sizes, edgecolors="0.3")
        else:
            nx.draw_networkx_nodes(g, pos, nodelist=nodes, ax=ax, node_color=colours, cmap="RdYlGn", vmin=0,
                                   vmax=1, node_shape=shape, node_size=sizes, edgecolors="0.3")
    if g.number_of_nodes() <= 20:
        nx.draw_networkx_labels(g, pos, ax=ax, font_size=7)
    ax.set_axis_off()
    _legend(fig)
    info = env._last_info
    fig.suptitle(
        f"epoch {st.epoch}  acc {info.get('accuracy', 0.0):.2f}  p95 {info.get('latency_p95_s', 0.0):.2f}s",
        fontsize=9,
    )
    fig.canvas.draw()
    buf = np.asarray(fig.canvas.buffer_rgba())[:, :, :3]
    return buf.copy()


def close(env: GaisNetEnv) -> None:
    """Free the figure of ``env`` if one was made."""
    fig = _FIGURES.pop(id(env), None)
    if fig is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)
