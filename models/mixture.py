"""BAIM's bottom-up big model: a gated mixture of the cloud teacher and the relayed edge experts.

Experts: expert 0 is the cloud teacher (an :class:`~gaisnet_env.models.MLPClassifier`); expert ``k >= 1``
is edge ``k - 1``'s classifier as the cloud holds it: the shared edge base plus the merged deltas of that
edge's latest uploaded adapter (:func:`~gaisnet_env.models.merged_forward`). A small gate
``MLPClassifier([64, gate_hidden, 1 + n_edges])`` weighs them per sample; experts not (yet) relayed are
masked out. Output: log of the mixture of the experts' class probabilities, ``log sum_k g_k(x) p_k(y|x)``,
used as logits (argmax, softmax). Only the gate trains (:func:`train_gate`); the experts stay frozen.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from gaisnet_env.models.classifiers import MLPClassifier, merged_forward
from torch import nn


class MixtureClassifier(nn.Module):
    """Gated mixture of a teacher and edge experts; ``set_experts`` loads the relayed deltas."""

    def __init__(self, teacher: MLPClassifier, gate: MLPClassifier, edge_base: Sequence[torch.Tensor]) -> None:
        super().__init__()
        self.teacher, self.gate = teacher, gate
        self.edge_base = list(edge_base)
        self.n_experts = int(gate.sizes[-1])
        self._deltas: list[list[torch.Tensor] | None] = [None] * (self.n_experts - 1)

    def set_experts(self, deltas: Sequence[list[torch.Tensor] | None]) -> None:
        """Merged adapter deltas of each edge (None: that edge has not relayed up; its expert is masked)."""
        if len(deltas) != self.n_experts - 1:
            raise ValueError(f"set_experts: {len(deltas)} edges given, the gate has {self.n_experts - 1}")
        self._deltas = list(deltas)

    def expert_log_probs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probabilities (N, K, classes) of every expert, availability mask (K,) bool)."""
        outs = [torch.log_softmax(self.teacher(x), 1)]
        avail = [True]
        for d in self._deltas:
            avail.append(d is not None)
            outs.append(torch.log_softmax(merged_forward(x, self.edge_base, d), 1) if d is not None
                        else torch.zeros_like(outs[0]))
        return torch.stack(outs, 1), torch.tensor(avail)

    def mix(self, x: torch.Tensor, expert_lp: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        """Log mixture probabilities (N, classes) from precomputed expert log-probabilities."""
        g = self.gate(x).masked_fill(~avail, float("-inf"))
        return torch.logsumexp(torch.log_softmax(g, 1)[:, :, None] + expert_lp, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log mixture probabilities (N, classes) of inputs ``x`` (N, 64), pixels in [0, 1]."""
        lp, avail = self.expert_log_probs(x)
        return self.mix(x, lp, avail)


def train_gate(model: MixtureClassifier, x: torch.Tensor, target: torch.Tensor, *, epochs: int, lr: float,
               batch: int, gen: torch.Generator) -> bool:
    """Adam (``fused``) on the gate only: cross-entropy between the mixture and probability targets
    ``target`` (N, classes) over shuffled mini-batches of synthetic (and public) samples ``x``; the experts'
    outputs are computed once (they are frozen). One ``randperm`` per epoch from ``gen``. False (and stops)
    if the gate's weights became non-finite."""
    with torch.no_grad():
        lp, avail = model.expert_log_probs(x)
    params = list(model.gate.parameters())
    opt = torch.optim.Adam(params, lr=lr, fused=True)
    n = x.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            b = perm[i : i + batch]
            loss = -(target[b] * model.mix(x[b], lp[b], avail)).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if not all(bool(torch.isfinite(p).all()) for p in params):
            return False
    return True
