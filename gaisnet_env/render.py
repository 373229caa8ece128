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


def rgb_array(env: GaisNetEnv, size_px: int = 480) -> np.ndarray:
    """Topology picture: node colour = model accuracy (freshness), size = queue load; (H, W, 3) uint8."""
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
    ax = fig.add_axes((0, 0, 1, 0.92))
    g = env.graph
    pos = {n: d.get("pos", (0.0, 0.0)) for n, d in g.nodes(data=True)}
    cm, sm = env._domain
    colours, sizes = [], []
    for n, d in g.nodes(data=True):
        tier = d.get("tier", "")
        if tier == "edge" or tier == "end":
            e = int(str(n).lstrip("edgn"))
            colours.append(env.workers.accuracy(tier, e, cm[e], sm[e]))
            load = st.edge_backlog_s[e] / env.scenario.epoch_s if tier == "edge" else 0.0
        elif tier == "cloud":
            colours.append(env.workers.accuracy("cloud", 0, cm[0], sm[0]))
            load = st.cloud_backlog_s / env.scenario.epoch_s
        else:
            colours.append(0.5)
            load = 0.0
        sizes.append(120 + 600 * (1 - np.exp(-load)))
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.4)
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colours, cmap="RdYlGn", vmin=0, vmax=1, node_size=sizes)
    if g.number_of_nodes() <= 20:
        nx.draw_networkx_labels(g, pos, ax=ax, font_size=7)
    ax.set_axis_off()
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
