"""The simulation state of one env (arrays over its E edges) and its value at reset."""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from gaisnet_env import operator_view
from gaisnet_env.core.layout import NEVER

#: Keys of :attr:`SimState.cum` (episode totals).
CUM_KEYS: tuple[str, ...] = ("energy_j", "carbon_g", "bytes_up", "bytes_down", "requests", "violations")


@dataclass
class SimState:
    """Everything that changes during an episode except the workers' weights and the RNG."""

    epoch: int
    edge_backlog_s: np.ndarray  # (E,) seconds of queued work at each edge
    cloud_backlog_s: float  # seconds of queued work per cloud server
    op_kind: np.ndarray  # (E,) int, OPERATIONS index of the op in flight (0 = none)
    op_remaining_s: np.ndarray  # (E,) simulated seconds until the op in flight completes
    op_total_s: np.ndarray  # (E,) the op's whole duration, seconds
    op_cloud_share: np.ndarray  # (E,) share of the op's duration in which it computes on a cloud server
    since_op: np.ndarray  # (E, 4) epochs since each operation last completed
    adapted_class_mix: np.ndarray  # (E, 10) domain each edge's model was last adapted to
    adapted_style_mix: np.ndarray  # (E, S)
    battery_j: np.ndarray  # (E,) end-device battery energy per cell, J (inf without batteries)
    last_violation: np.ndarray  # (E,) share of SLA violations last epoch
    last_latency_ratio: np.ndarray  # (E,) mean latency / deadline last epoch
    cum: dict[str, float]  # episode totals
    # operator view of tier accuracy (gaisnet_env.operator_view), (E, 3) end/edge/cloud; None in older snapshots
    label_hits: np.ndarray | None = None  # decayed correct predictions on returned labels, samples
    label_seen: np.ndarray | None = None  # decayed returned labels scored, samples
    label_prior: np.ndarray | None = None  # accuracy carried over from the tier's previous model, share
    # operator view of drift: each edge's domain report when its model was last adapted, (E, 10) / (E, S)
    reported_class_mix: np.ndarray | None = None
    reported_style_mix: np.ndarray | None = None

    def copy(self) -> SimState:
        return SimState(**{f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)})


def initial_state(n_edges: int, n_styles: int, battery_j: float | None) -> SimState:
    """The state at reset: empty queues, no op in flight or ever run, models adapted to the uniform class
    mix and the first style, full batteries of ``battery_j`` J (inf without batteries)."""
    E, S = n_edges, n_styles
    st = SimState(
        epoch=0,
        edge_backlog_s=np.zeros(E),
        cloud_backlog_s=0.0,
        op_kind=np.zeros(E, dtype=np.int64),
        op_remaining_s=np.zeros(E),
        op_total_s=np.zeros(E),
        op_cloud_share=np.zeros(E),
        since_op=np.full((E, 4), NEVER),
        adapted_class_mix=np.full((E, 10), 0.1),
        adapted_style_mix=np.eye(S)[np.zeros(E, dtype=np.int64)],
        battery_j=np.full(E, float(battery_j) if battery_j else np.inf),
        last_violation=np.zeros(E),
        last_latency_ratio=np.zeros(E),
        cum={k: 0.0 for k in CUM_KEYS},
    )
    fill_operator_view(st)
    return st


def fill_operator_view(st: SimState) -> None:
    """Give a state without the operator-view fields (reset, or a snapshot from before them) their initial
    values: no labels seen, reports equal to the adapted domains."""
    E = st.edge_backlog_s.shape[0]
    if st.label_hits is None:
        st.label_hits, st.label_seen, st.label_prior = operator_view.initial(E, 3)
    if st.reported_class_mix is None:
        st.reported_class_mix, st.reported_style_mix = st.adapted_class_mix.copy(), st.adapted_style_mix.copy()


def add_totals(cum: dict[str, float], en: Any, traffic: tuple[float, float], m: Any) -> None:
    """Add an epoch to the episode totals ``cum``: energy ``en`` (:class:`~gaisnet_env.core.energy.Energy`,
    J and g), ``traffic`` (bytes up, down) and the requests and violations of metrics ``m``."""
    cum["energy_j"] += en.total
    cum["carbon_g"] += en.carbon_g
    cum["bytes_up"] += traffic[0]
    cum["bytes_down"] += traffic[1]
    cum["requests"] += m.requests
    cum["violations"] += m.violations
