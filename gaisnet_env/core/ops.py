"""Knowledge-operation lifecycle bookkeeping: the cost of a started op, its start, its advance through
the epochs, its commit or abort. The training itself is the workers' (they know nothing of the env)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gaisnet_env import cost, op_costs, operator_view
from gaisnet_env.core.layout import OP_FINETUNE, OP_RELAY_DOWN
from gaisnet_env.worker_config import OPERATIONS


@dataclass(frozen=True)
class LinkPath:
    """The link an op transfers over, for one edge: bandwidths (bit/s, faults applied), round trip (s)
    and radio energy (J/bit) per direction."""

    up_bps: float
    down_bps: float
    rtt_s: float
    j_up: float
    j_down: float


def op_cost(name: str, res: Any, refs: Any, relay_down_variant: str, op_share: float, node_edge: Any,
            node_cloud: Any, cloud_capacity: float,
            link: LinkPath) -> tuple[float, float, float, float, float, float]:
    """Duration (s), edge and cloud energy (J, radio included), bytes up/down and cloud server-seconds
    (this edge's share) of a started op. Compute is charged part by part at the declared profiles
    (:mod:`gaisnet_env.op_costs`); a federated round's senders split its energy (``res.share``) but
    each waits for the whole round."""
    charged = op_costs.op_charge(res, refs)
    flops_edge, flops_cloud = charged["edge"], charged["cloud"]
    share = float(getattr(res, "share", 1.0))
    up, down = float(res.bytes_up), float(res.bytes_down)
    if name == "relay_down":
        if relay_down_variant == "ship_samples" and refs.edge and refs.edge.sample_bytes:
            down = float(res.samples * refs.edge.sample_bytes)
        elif relay_down_variant == "ship_adapter" and refs.edge and refs.edge.update_bytes:
            down = float(refs.edge.update_bytes)
    elif name == "relay_up" and refs.edge and refs.edge.update_bytes:
        up = float(refs.edge.update_bytes)
    elif name == "relay_to_end" and refs.end and refs.end.update_bytes:
        down = float(refs.end.update_bytes)
    t_edge = flops_edge / (node_edge.effective_flops * op_share)
    # an overloaded cloud gives the op a smaller share of its servers (energy is per FLOP)
    t_cloud = flops_cloud / (node_cloud.effective_flops * cloud_capacity)
    t_net = float(cost.transfer_time_s(up, link.up_bps, link.rtt_s)) if up else 0.0
    t_net += float(cost.transfer_time_s(down, link.down_bps, link.rtt_s)) if down else 0.0
    duration = t_edge + t_cloud + t_net
    # dynamic energy of the edge's busy time (its idle power is charged every epoch anyway)
    energy_edge = (node_edge.active_w - node_edge.idle_w) * flops_edge / node_edge.effective_flops
    energy_edge += float(cost.radio_energy_j(up, link.j_up) + cost.radio_energy_j(down, link.j_down))
    energy_cloud = share * node_cloud.active_w * flops_cloud / node_cloud.effective_flops * node_cloud.pue
    return float(duration), float(energy_edge), float(energy_cloud), up, down, share * float(t_cloud)


@dataclass
class Starts:
    """The ops started in one epoch, per edge: energy charged now (J), traffic (bytes) and counts."""

    energy_edge: np.ndarray  # (E,) J, per edge that started an op (radio included)
    energy_cloud: np.ndarray  # (E,) J, cloud energy of that edge's op
    bytes_up: float = 0.0
    bytes_down: float = 0.0
    started: int = 0
    failed: int = 0
    senders: list[int] = field(default_factory=list)  # edges of this epoch's relay_ups (a federated round)


def no_starts(n_edges: int) -> Starts:
    """An epoch in which no op starts."""
    return Starts(np.zeros(n_edges), np.zeros(n_edges))


def record_start(st: Any, starts: Starts, e: int, op: int, costs: tuple) -> None:
    """Book a started op of kind ``op`` at edge ``e`` with ``costs`` (:func:`op_cost`'s tuple) into the
    state's op arrays (``op_kind``, ``op_remaining_s``, ``op_total_s``, ``op_cloud_share``) and ``starts``."""
    dur, energy_e, energy_c, up, down, cloud_s = costs
    starts.started += 1
    if OPERATIONS[op] == "relay_up":
        starts.senders.append(e)
    st.op_kind[e] = op
    st.op_remaining_s[e] = st.op_total_s[e] = dur
    st.op_cloud_share[e] = cloud_s / dur if dur > 0 else 0.0
    starts.energy_edge[e] = energy_e
    starts.energy_cloud[e] = energy_c
    starts.bytes_up += up
    starts.bytes_down += down


def close_round(st: Any, senders: list[int]) -> None:
    """A federated round of relay_ups completes when its slowest upload and the distillation are done."""
    if len(senders) > 1:
        st.op_remaining_s[senders] = st.op_total_s[senders] = st.op_total_s[senders].max()


def abort(op_kind: np.ndarray, op_remaining_s: np.ndarray, lost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The op arrays with the ``lost`` ops ((..., E) bool) removed (their cost stays charged)."""
    return np.where(lost, 0, op_kind), np.where(lost, 0.0, op_remaining_s)


def advance(op_kind: np.ndarray, op_remaining_s: np.ndarray, since_op: np.ndarray,
            epoch_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch of the ops in flight: ``(op_remaining_s, since_op, due)`` with ``due`` the edges whose
    op completes this epoch (ascending)."""
    in_flight = op_kind > 0
    since_op = since_op + 1.0
    if not in_flight.any():
        return np.zeros(op_kind.shape[0]), since_op, np.zeros(0, dtype=np.intp)
    remaining = np.where(in_flight, op_remaining_s - epoch_s, 0.0)
    return remaining, since_op, np.flatnonzero(in_flight & (remaining <= 0))


def adapts(kind: int) -> bool:
    """Whether an op of ``kind`` adapts the edge's model to the cell's domain (relay_down, finetune)."""
    return kind in (OP_RELAY_DOWN, OP_FINETUNE)


def record_commit(st: Any, e: int, kind: int, class_mix: np.ndarray, style_mix: np.ndarray,
                  report: tuple | None, changed: np.ndarray | None) -> np.ndarray:
    """Book the committed op of ``kind`` at edge ``e``: since-op counter, adapted domain (and the edge's
    domain ``report`` when given) for adapting ops. Returns ``changed`` ((E, 3) tiers whose model changed)
    updated."""
    st.since_op[e, kind - 1] = 0.0
    changed = operator_view.tiers_changed(changed, st.op_kind.shape[0], e, OPERATIONS[kind])
    if adapts(kind):
        st.adapted_class_mix[e] = class_mix[e]
        st.adapted_style_mix[e] = style_mix[e]
        if report is not None:
            st.reported_class_mix[e], st.reported_style_mix[e] = report[0], report[1]
    return changed
