"""Classifiers of the three tiers: MLPs on flat 8x8 digit images (64 inputs, 10 logits).

* cloud teacher: ``MLPClassifier([64, H, H, 10])`` (the biggest model);
* end devices' tiny classifier and the fixed reference classifier: ``MLPClassifier([64, h, 10])``;
* edge classifier: ``LoRAClassifier([64, h, 10], rank)``: frozen base; trainable adapter = LoRA
  (rank ``rank``) plus bias deltas on the hidden layers and a full delta of the small output head.

Every classifier centres its input first (``x - 0.5``, pixels in [0, 1]), so a contrast inversion is a
sign flip rather than a large offset that would saturate the hidden units.

Weights move in and out as lists of tensors (``get_weights`` / ``set_weights``), which is what the
workers store per edge and ship between tiers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from gaisnet_env.models.layers import Dense, LoRADense, SizedModule, mlp_forward
from torch import nn

#: Subtracted from every pixel before the first layer (pixels in [0, 1]).
INPUT_CENTRE: float = 0.5


class MLPClassifier(SizedModule):
    """MLP with ReLU hidden layers; ``sizes`` = [inputs, hidden..., classes]."""

    def __init__(self, sizes: Sequence[int]) -> None:
        super().__init__()
        self.sizes = tuple(int(s) for s in sizes)
        self.layers = nn.ModuleList(Dense(a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))

    def reset_parameters(self, gen: torch.Generator) -> None:
        for layer in self.layers:
            layer.reset_parameters(gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes) of inputs ``x`` (N, 64), pixels in [0, 1]."""
        return mlp_forward(self.layers, x, INPUT_CENTRE)


class LoRAClassifier(SizedModule):
    """MLP of :class:`LoRADense` layers: the base is frozen, only the adapter trains.

    Hidden layers carry low-rank adapters (A, B) and bias deltas; the output head (n_hidden x 10,
    small) carries a full weight delta and a bias delta.
    """

    def __init__(self, sizes: Sequence[int], rank: int) -> None:
        super().__init__()
        self.sizes = tuple(int(s) for s in sizes)
        self.rank = int(rank)
        self.layers = nn.ModuleList(
            LoRADense(a, b, self.rank, full=(i == len(self.sizes) - 2))
            for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes) of inputs ``x`` (N, 64), pixels in [0, 1]."""
        return mlp_forward(self.layers, x, INPUT_CENTRE)

    # base (frozen) -------------------------------------------------------------
    def get_base(self) -> list[torch.Tensor]:
        """Clones of the base weights [W0, b0, W1, b1, ...]."""
        out: list[torch.Tensor] = []
        for layer in self.layers:
            out += [layer.weight.detach().clone(), layer.bias.detach().clone()]
        return out

    @torch.no_grad()
    def set_base(self, base: Sequence[torch.Tensor]) -> None:
        """Load base weights, e.g. from a trained ``MLPClassifier`` of the same sizes."""
        it = iter(base)
        for layer in self.layers:
            layer.weight.copy_(next(it))
            layer.bias.copy_(next(it))

    # adapter (trainable) --------------------------------------------------------
    def adapter_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters, layer by layer: [A, B, db] per hidden layer, [dW, db] for the head."""
        out: list[nn.Parameter] = []
        for layer in self.layers:
            out += layer.adapter_parameters()
        return out

    def get_adapter(self) -> list[torch.Tensor]:
        """Clones of the adapter tensors (``adapter_parameters`` order): what an edge serialises and ships."""
        return [p.detach().clone() for p in self.adapter_parameters()]

    @torch.no_grad()
    def set_adapter(self, adapter: Sequence[torch.Tensor]) -> None:
        for p, w in zip(self.adapter_parameters(), adapter, strict=True):
            p.copy_(w)

    def reset_adapter(self, gen: torch.Generator) -> None:
        """Fresh adapter with zero delta (A random from ``gen``, B = dW = db = 0)."""
        for layer in self.layers:
            layer.reset_adapter(gen)

    @property
    def adapter_bytes(self) -> int:
        """Bytes of the adapter tensors (numel * element_size): the relay_up payload."""
        return sum(p.numel() * p.element_size() for p in self.adapter_parameters())

    def adapter_deltas(self, adapter: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Merged per-layer deltas [dW0, db0, dW1, db1, ...] of an adapter (``get_adapter`` layout):
        dW = B A for low-rank layers, dW itself for the head."""
        out: list[torch.Tensor] = []
        it = iter(adapter)
        for layer in self.layers:
            if layer.full:
                out += [next(it), next(it)]
            else:
                a, b, db = next(it), next(it), next(it)
                out += [b @ a, db]
        return out


def mlp_logits(x: torch.Tensor, weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Logits of an :class:`MLPClassifier` holding ``weights`` ([W0, b0, W1, b1, ...], ``get_weights``
    order) on inputs ``x`` (N, 64): the same operations as its forward, without copying the weights in."""
    n = len(weights) // 2
    x = x - INPUT_CENTRE
    for i in range(n):
        x = torch.nn.functional.linear(x, weights[2 * i], weights[2 * i + 1])
        if i < n - 1:
            x = torch.relu(x)
    return x


def lora_logits(model: LoRAClassifier, x: torch.Tensor, adapter: Sequence[torch.Tensor]) -> torch.Tensor:
    """Logits of ``model`` (its frozen base) with ``adapter`` (``get_adapter`` order) on inputs ``x``
    (N, 64): the same operations as its forward with the adapter loaded, without copying it in."""
    F = torch.nn.functional  # noqa: N806
    it = iter(adapter)
    x = x - INPUT_CENTRE
    last = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        if layer.full:
            dw, db = next(it), next(it)
            x = F.linear(x, layer.weight + dw, layer.bias + db)
        else:
            a, b, db = next(it), next(it), next(it)
            x = F.linear(x, layer.weight, layer.bias + db) + F.linear(F.linear(x, a), b)
        if i < last:
            x = torch.relu(x)
    return x


def merged_forward(
    x: torch.Tensor, base: Sequence[torch.Tensor], deltas: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Logits of an MLP with weights ``base`` [W0, b0, ...] plus merged deltas [dW0, db0, ...]."""
    n = len(base) // 2
    x = x - INPUT_CENTRE
    for i in range(n):
        x = torch.nn.functional.linear(x, base[2 * i] + deltas[2 * i], base[2 * i + 1] + deltas[2 * i + 1])
        if i < n - 1:
            x = torch.relu(x)
    return x
