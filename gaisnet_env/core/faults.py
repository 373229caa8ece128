"""Faults: the multipliers in force in an epoch and what they do at its start.

The multipliers are a dict (shared, read-only by convention): ``access`` and ``backhaul`` (E,) link
bandwidth factors (0 = outage), ``edge_up`` (E,) 0 or 1, ``cloud_capacity`` (share of the cloud's
servers) and ``active`` (how many faults are in force; 0 means every multiplier is 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaisnet_env.core.layout import OP_FINETUNE, OP_RELAY_TO_END


def multipliers(faults: Any, n_edges: int, epoch: int) -> dict[str, Any]:
    """Multipliers in force at ``epoch`` from a :class:`~gaisnet_env.scenario.FaultConfig`'s lists."""
    E = n_edges
    access = np.ones(E)
    backhaul = np.ones(E)
    edge_up = np.ones(E)
    cloud = 1.0
    active = 0
    for lf in faults.links:
        if lf.start_epoch <= epoch < lf.start_epoch + lf.duration_epochs:
            target = access if lf.link == "access" else backhaul
            target[lf.edge] = min(target[lf.edge], lf.bandwidth_factor)
            active += 1
    for ed in faults.edges_down:
        if ed.start_epoch <= epoch < ed.start_epoch + ed.duration_epochs:
            edge_up[ed.edge] = 0.0
            active += 1
    for co in faults.cloud_overload:
        if co.start_epoch <= epoch < co.start_epoch + co.duration_epochs:
            cloud = min(cloud, co.capacity_factor)
            active += 1
    return {"access": access, "backhaul": backhaul, "edge_up": edge_up, "cloud_capacity": cloud, "active": active}


def active_at(faults: Any, epoch: int, until: int | None = None) -> bool:
    """Whether any fault of a :class:`~gaisnet_env.scenario.FaultConfig` is in force at ``epoch`` (the
    ``active`` of :func:`multipliers`, without building its arrays), or at any epoch up to ``until``."""
    last = epoch if until is None else until
    return any(f.start_epoch <= last and epoch < f.start_epoch + f.duration_epochs
               for f in (*faults.links, *faults.edges_down, *faults.cloud_overload))


def lost_ops(f: dict[str, Any], op_kind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(edge_down, lost)``, (E,) bool each: the edges that are down, and the ops in flight that are lost
    (their edge is down, or the link they transfer over is out; a finetune needs no link)."""
    edge_down = f["edge_up"] == 0
    link_out = np.where(op_kind == OP_RELAY_TO_END, f["access"] == 0, f["backhaul"] == 0)
    lost = (op_kind > 0) & (edge_down | (link_out & (op_kind != OP_FINETUNE)))
    return edge_down, lost


def drop_queues(edge_down: np.ndarray, edge_backlog_s: np.ndarray,
                work_per_request_s: float) -> tuple[float, np.ndarray]:
    """A down edge's queue is dropped: ``(requests dropped, new (E,) backlog in s)``, the requests counted
    at ``work_per_request_s`` seconds of edge work each."""
    dropped_s = np.where(edge_down, edge_backlog_s, 0.0)
    requests_dropped = float(dropped_s.sum() / max(work_per_request_s, 1e-12))
    return requests_dropped, np.where(edge_down, 0.0, edge_backlog_s)
