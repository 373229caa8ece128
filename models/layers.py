"""Dense layers with explicit, generator-driven initialisation (no global RNG is touched)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SizedModule(nn.Module):
    """A module that reports its size: parameters, bytes, and clones of its weights."""

    @property
    def n_params(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())

    @property
    def n_bytes(self) -> int:
        """Bytes of all parameters (numel * element_size)."""
        return sum(p.numel() * p.element_size() for p in self.parameters())

    def get_weights(self) -> list[torch.Tensor]:
        """Detached clones of all parameters, in ``parameters()`` order."""
        return [p.detach().clone() for p in self.parameters()]

    @torch.no_grad()
    def set_weights(self, weights: list[torch.Tensor]) -> None:
        """Copy ``weights`` (as from :meth:`get_weights`) into the parameters."""
        for p, w in zip(self.parameters(), weights, strict=True):
            p.copy_(w)


def mlp_forward(layers: nn.ModuleList, x: torch.Tensor, centre: float) -> torch.Tensor:
    """Run ``x - centre`` through ``layers`` with ReLU between them (none after the last)."""
    x = x - centre
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        x = layer(x)
        if i < last:
            x = torch.relu(x)
    return x


class Dense(nn.Module):
    """Fully connected layer ``y = x W^T + b`` (W: (n_out, n_in), float32)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.weight = nn.Parameter(torch.zeros(self.n_out, self.n_in))
        self.bias = nn.Parameter(torch.zeros(self.n_out))

    @torch.no_grad()
    def reset_parameters(self, gen: torch.Generator) -> None:
        """Uniform(-1/sqrt(n_in), 1/sqrt(n_in)) for weight and bias (PyTorch's default), from ``gen``."""
        bound = 1.0 / math.sqrt(self.n_in)
        self.weight.uniform_(-bound, bound, generator=gen)
        self.bias.uniform_(-bound, bound, generator=gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class LoRADense(nn.Module):
    """Dense layer with a frozen base (W, b) and a trainable adapter.

    * low-rank layer (``full=False``): ``y = x (W + B A)^T + (b + db)`` with ``lora_a`` (rank, n_in),
      ``lora_b`` (n_out, rank) and the bias delta ``lora_db`` (n_out,);
    * full-delta layer (``full=True``, used for the small classification head, like PEFT's
      ``modules_to_save``): ``y = x (W + dW)^T + (b + db)`` with ``lora_dw`` (n_out, n_in).

    With B = 0 (resp. dW = 0) and db = 0 the adapter delta is zero and the layer equals its base.
    """

    def __init__(self, n_in: int, n_out: int, rank: int, full: bool = False) -> None:
        super().__init__()
        self.n_in, self.n_out, self.rank, self.full = int(n_in), int(n_out), int(rank), bool(full)
        self.weight = nn.Parameter(torch.zeros(self.n_out, self.n_in), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(self.n_out), requires_grad=False)
        if self.full:
            self.lora_dw = nn.Parameter(torch.zeros(self.n_out, self.n_in))
        else:
            self.lora_a = nn.Parameter(torch.zeros(self.rank, self.n_in))
            self.lora_b = nn.Parameter(torch.zeros(self.n_out, self.rank))
        self.lora_db = nn.Parameter(torch.zeros(self.n_out))

    def adapter_parameters(self) -> list[nn.Parameter]:
        """Trainable tensors: [A, B, db] (low-rank) or [dW, db] (full)."""
        if self.full:
            return [self.lora_dw, self.lora_db]
        return [self.lora_a, self.lora_b, self.lora_db]

    @torch.no_grad()
    def reset_adapter(self, gen: torch.Generator) -> None:
        """Zero delta: A ~ Uniform(-1/sqrt(n_in), 1/sqrt(n_in)) from ``gen``, B = 0, dW = 0, db = 0."""
        if not self.full:
            bound = 1.0 / math.sqrt(self.n_in)
            self.lora_a.uniform_(-bound, bound, generator=gen)
            self.lora_b.zero_()
        else:
            self.lora_dw.zero_()
        self.lora_db.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.full:
            return F.linear(x, self.weight + self.lora_dw, self.bias + self.lora_db)
        return F.linear(x, self.weight, self.bias + self.lora_db) + F.linear(F.linear(x, self.lora_a), self.lora_b)
