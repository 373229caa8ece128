"""Actions: parsing and range checks, the feasibility mask, and the fallback for masked choices."""

from __future__ import annotations

from typing import Any

import numpy as np

from gaisnet_env.core import layout
from gaisnet_env.worker_config import OPERATIONS, TIERS

#: Exclusive upper bounds of the two action columns (route, operation), as uint64.
ACTION_HI = np.array([len(TIERS), len(OPERATIONS)], dtype=np.uint64)
_FALLBACK = {
    layout.ROUTE_END: (layout.ROUTE_EDGE, layout.ROUTE_CLOUD),
    layout.ROUTE_EDGE: (layout.ROUTE_CLOUD, layout.ROUTE_END),
    layout.ROUTE_CLOUD: (layout.ROUTE_EDGE, layout.ROUTE_END),
}


def parse(action: Any, n_edges: int) -> np.ndarray:
    """Return the action as a fresh (E, 2) int64 array (route, op) or raise ValueError naming the offending
    index. Accepted: shape (2E,) or (E, 2), integers or integral floats."""
    E = n_edges
    try:
        arr = np.asarray(action)
    except Exception as e:  # pragma: no cover - numpy accepts nearly anything
        raise ValueError(f"action: cannot convert {type(action).__name__} to an array: {e}") from None
    if arr.dtype.kind not in "iub":
        # integral floats only (and small enough to cast: 1e300 is not an index); compared in float64,
        # so that float16 does not overflow on the bound
        wide = arr.astype(np.float64) if arr.dtype.kind == "f" else None
        if wide is not None and np.all(np.abs(wide) < 2**31) and np.all(wide == np.round(wide)):
            arr = wide.astype(np.int64)
        else:
            raise ValueError(f"action: expected integers, got dtype {arr.dtype} (values {arr.ravel()[:8]})")
    if arr.shape not in ((2 * E,), (E, 2)):
        raise ValueError(f"action: expected shape ({2 * E},) or ({E}, 2) for {E} edges, got {arr.shape}")
    given = arr.reshape(E, 2)
    arr = given.astype(np.int64)
    if (arr.view(np.uint64) < ACTION_HI).all() and (given.dtype.kind != "u" or given.max() < 2**63):
        return arr  # (negative values wrap to huge unsigned ones; uint64 beyond int64 to negative ones)
    for col, (name, n) in enumerate((("route", len(TIERS)), ("operation", len(OPERATIONS)))):
        bad = np.flatnonzero((given[:, col] < 0) | (given[:, col] >= n))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"action[{2 * i + col}] (edge {i} {name}) = {given[i, col]} is out of range; allowed 0..{n - 1}"
            )
    return arr


def mask(f: dict[str, Any], battery_j: np.ndarray, op_kind: np.ndarray) -> np.ndarray:
    """(..., E, 8) feasibility, routes (end, edge, cloud) then ops (none, relay_down, finetune, relay_up,
    relay_to_end), given the fault multipliers ``f``, the batteries (J) and the ops in flight, (..., E)
    each (any leading axes: env copies)."""
    n_routes = len(TIERS)
    m = np.ones((*op_kind.shape, n_routes + len(OPERATIONS)), dtype=bool)  # routes then ops
    battery_ok = battery_j > 0
    idle = op_kind == 0
    relay_up_busy = (op_kind == layout.OP_RELAY_UP).any(axis=-1, keepdims=True)
    if np.any(f["active"]):
        access_up = f["access"] > 0
        backhaul_up = f["backhaul"] > 0
        edge_up = f["edge_up"] > 0
        via_edge = access_up & edge_up
        via_cloud = access_up & backhaul_up
        # at least one route stays selectable; requests with no path fail (SLA violations)
        m[..., layout.ROUTE_END] = battery_ok | ~(via_edge | via_cloud)
        m[..., layout.ROUTE_EDGE] = via_edge
        m[..., layout.ROUTE_CLOUD] = via_cloud
        idle &= edge_up
        m[..., n_routes + layout.OP_RELAY_DOWN] = idle & backhaul_up
        m[..., n_routes + layout.OP_FINETUNE] = idle
        m[..., n_routes + layout.OP_RELAY_UP] = m[..., n_routes + layout.OP_RELAY_DOWN]
        m[..., n_routes + layout.OP_RELAY_TO_END] = idle & access_up
    else:  # no fault in force: every edge and link is up, every op feasible on an idle edge
        m[..., layout.ROUTE_END] = battery_ok
        m[..., n_routes + layout.OP_RELAY_DOWN :] = idle[..., None]
    # no second relay_up while one is in flight
    m[..., n_routes + layout.OP_RELAY_UP] &= ~relay_up_busy
    return m


def fallback_route(route: np.ndarray, routes_ok: np.ndarray) -> np.ndarray:
    """Nearest feasible tier: cloud -> edge -> end, edge -> cloud -> end, end -> edge -> cloud."""
    out = route.copy()
    for e, r in enumerate(route):
        if not routes_ok[e, r]:
            out[e] = next((c for c in _FALLBACK[int(r)] if routes_ok[e, c]), layout.ROUTE_END)
    return out


def apply_mask(act: np.ndarray, routes_ok: np.ndarray, ops_ok: np.ndarray,
               raise_on_masked: bool) -> tuple[np.ndarray, int, np.ndarray | None]:
    """The action carried out: ``(actions (E, 2), masked choices, rerouted)``; ``actions`` is ``act``
    itself when nothing is masked.

    A masked route falls back to the nearest feasible tier and a masked op to none (or ValueError with
    ``raise_on_masked``); ``rerouted`` is the (E,) bool of the routes changed, None when none was."""
    rows = np.arange(act.shape[0])
    route, op = act[:, 0], act[:, 1]
    route_ok = routes_ok[rows, route]
    op_ok = ops_ok[rows, op]
    if route_ok.all() and op_ok.all():
        return act, 0, None
    if raise_on_masked:
        bad = int(np.flatnonzero(~(route_ok & op_ok))[0])
        raise ValueError(
            f"action[{bad}] = (route {TIERS[route[bad]]}, op {OPERATIONS[op[bad]]}) is masked "
            f"(route feasible: {routes_ok[bad].tolist()}, op feasible: {ops_ok[bad].tolist()})"
        )
    masked = int((~route_ok).sum() + (~op_ok).sum())
    route = np.where(route_ok, route, fallback_route(route, routes_ok))
    op = np.where(op_ok, op, layout.OP_NONE)
    return np.stack([route, op], axis=1), masked, route != act[:, 0]
