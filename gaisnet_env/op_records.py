"""What a knowledge operation returns when it starts (:class:`OpResult`: outcome and real cost) and
what it leaves pending until it commits (:class:`_Pending`: the new weights)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from gaisnet_env import op_costs
from gaisnet_env.worker_config import N_CLASSES, STYLES

#: Bytes of a domain report: class histogram (10 x float32) + style histogram (n_styles x float32)
#: + sample count (int64).
REPORT_BYTES: int = 4 * N_CLASSES + 4 * len(STYLES) + 8


@dataclass
class OpResult:
    """Outcome and real cost of starting a knowledge operation."""

    op: str  #: one of OPERATIONS[1:]
    edge: int
    ok: bool  #: False if the operation could not run (message says why); then nothing is pending
    message: str
    flops: dict[str, float] = field(default_factory=lambda: {"end": 0.0, "edge": 0.0, "cloud": 0.0})
    bytes_up: int = 0  #: payload bytes towards the cloud
    bytes_down: int = 0  #: payload bytes towards the end devices
    samples: int = 0  #: samples trained on / synthesised
    #: the parts of its compute (:class:`~gaisnet_env.op_costs.OpWork`), charged by the env at the
    #: declared profiles; ``flops`` is their counted sum per tier
    work: list[op_costs.OpWork] = field(default_factory=list)
    #: share of the compute energy charged to this edge: the senders of a federated round split the round's
    share: float = 1.0


@dataclass
class _Pending:
    """Weights computed by a started operation, made live by ``commit_op``."""

    op: str
    target: str  # "edge" (adapter of the edge), "end" (tiny model of the cell) or "cloud" (teacher)
    weights: list[torch.Tensor]
    store_entry: tuple | None = None  # relay_up: (deltas, weight, class_hist, style_hist, generator adapter)
    gen_weights: list[torch.Tensor] | None = None  # new generator weights (edge adapter / cloud generator)
    learned: np.ndarray | None = None  # relay_up: (n_styles,) bool, styles the cloud generator learnt
    round: tuple[int, tuple[int, ...]] | None = None  # relay_up: (round id, senders) of its federated round
    applied: bool = False  # relay_up: another sender of the round has already made its weights live
    table: np.ndarray | None = None  # fast path (gaisnet_env.surrogate): the predicted accuracy table


def _finite(tensors: list[torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def _pending_finite(p: _Pending) -> bool:
    """Whether every tensor a pending result would make live is finite."""
    parts = [p.weights, p.gen_weights or []]
    if p.store_entry is not None:
        parts += [t for t in p.store_entry if isinstance(t, list)]
    return all(_finite([t for t in ws if isinstance(t, torch.Tensor)]) for ws in parts)
