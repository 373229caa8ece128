"""K classifiers of one architecture stacked along a leading K axis, for batched training.

A :class:`ClassifierStack` holds the trainable tensors of K MLPs of :class:`~gaisnet_env.models.layers.Dense`
/ :class:`~gaisnet_env.models.layers.LoRADense` layers (the same sizes, ranks and head variant) in one flat
float32 buffer, tensor by tensor: trainable tensor j of every model is the contiguous view
``params[j]`` of shape (K, *shape). Frozen LoRA bases are shared (one (n_out, n_in) matrix, the K models
folded into the rows of one product) when every model has the same base, else stacked (K, n_out, n_in).
Its forward and backward pass are those of :func:`~gaisnet_env.models.training.train_classifier` with
``torch.bmm`` / ``baddbmm`` over the K axis: activations are (K, rows, features).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from gaisnet_env.models.layers import Dense
from gaisnet_env.models.training import _layers, trainable_parameters
from torch import nn


class LayerSpec(NamedTuple):
    """One layer's kind ("dense": W, b train; "full": frozen base + full delta dW, db; "lora": frozen base +
    low-rank A (rank, n_in), B (n_out, rank) and db) and its sizes."""

    kind: str
    n_in: int
    n_out: int
    rank: int


def layer_spec(layer: nn.Module) -> LayerSpec:
    """The :class:`LayerSpec` of a ``Dense`` or ``LoRADense`` layer."""
    if isinstance(layer, Dense):
        return LayerSpec("dense", layer.n_in, layer.n_out, 0)
    return LayerSpec("full" if layer.full else "lora", layer.n_in, layer.n_out, 0 if layer.full else layer.rank)


class Workspace:
    """Scratch memory that grows and is kept between calls. On this kind of machine a fresh large tensor
    costs a page fault per 4 KiB page every time (the allocator maps and unmaps blocks over 128 KiB), which
    at K = 64 cost more than the products; the batched engine takes its data bank, schedules, Adam moments
    and activations from here instead. Not thread-safe: one batched training at a time per process."""

    def __init__(self) -> None:
        self._mem: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """A tensor of ``shape`` on the block ``name`` (contents undefined)."""
        n = math.prod(shape)
        key = (name, dtype, torch.device(device))
        block = self._mem.get(key)
        if block is None or block.numel() < n:
            block = self._mem[key] = torch.empty(n, dtype=dtype, device=device)
        return block[:n].view(shape)

    def clear(self) -> None:
        """Free every block."""
        self._mem.clear()

    @property
    def n_bytes(self) -> int:
        """Bytes held."""
        return sum(t.numel() * t.element_size() for t in self._mem.values())


#: The engine's scratch memory (``WORKSPACE.clear()`` frees it).
WORKSPACE = Workspace()


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal tensors (the same memory is checked first)."""
    if a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride():
        return True
    return torch.equal(a, b)


def _frozen_of(layer_lists: Sequence[Sequence[nn.Module]], i: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Frozen (W, b) of layer ``i`` across models: shared (n_out, n_in), (n_out,) when all are equal, else
    stacked (K, n_out, n_in), (K, n_out); None for a Dense layer (all of it trains)."""
    first = layer_lists[0][i]
    if isinstance(first, Dense):
        return None
    ws = [layers[i].weight.detach() for layers in layer_lists]
    bs = [layers[i].bias.detach() for layers in layer_lists]
    if all(_same(w, ws[0]) for w in ws) and all(_same(b, bs[0]) for b in bs):
        return ws[0].clone(), bs[0].clone()
    return torch.stack(ws), torch.stack(bs)


def _mm_t(a: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``a`` (K, R, n_in) times ``w``^T into ``out``: ``w`` shared (n_out, n_in) (one product over K*R rows)
    or (K, n_out, n_in)."""
    if w.dim() == 2:
        return torch.mm(a.reshape(-1, a.shape[2]), w.t(), out=out.view(-1, w.shape[0])).view(out.shape)
    return torch.bmm(a, w.transpose(1, 2), out=out)


def _mm(g: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``g`` (K, R, n_out) times ``w`` (shared (n_out, n_in) or (K, n_out, n_in)) into ``out`` (K, R, n_in)."""
    if w.dim() == 2:
        return torch.mm(g.reshape(-1, g.shape[2]), w, out=out.view(-1, w.shape[1])).view(out.shape)
    return torch.bmm(g, w, out=out)


def _relu_back(da: torch.Tensor, a: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``da * (a > 0)`` (``a`` the ReLU output of the layer below) into ``out``, non-finite ``da``
    propagating as there, via ``threshold_backward`` (the comparison to a bool mask is many times slower)."""
    return torch.ops.aten.threshold_backward.grad_input(da, a, 0.0, grad_input=out).add_(da, alpha=0.0)


class ClassifierStack:
    """Trainable tensors of K same-architecture classifiers in one flat buffer (see the module docstring)."""

    def __init__(self, specs: Sequence[LayerSpec], frozen: Sequence[tuple[torch.Tensor, torch.Tensor] | None],
                 trainables: Sequence[Sequence[torch.Tensor]]) -> None:
        """``trainables[k]``: model k's trainable tensors in :func:`trainable_parameters` order."""
        if not trainables:
            raise ValueError("ClassifierStack: no models")
        self.specs, self.frozen = list(specs), list(frozen)
        self.k = len(trainables)
        shapes = [tuple(t.shape) for t in trainables[0]]
        for ts in trainables:
            if [tuple(t.shape) for t in ts] != shapes:
                raise ValueError("ClassifierStack: the models' trainable tensors differ in shape")
        sizes = [self.k * torch.Size(s).numel() for s in shapes]
        self.flat = torch.empty(sum(sizes), dtype=trainables[0][0].dtype, device=trainables[0][0].device)
        self.params: list[torch.Tensor] = []
        off = 0
        for j, (shape, size) in enumerate(zip(shapes, sizes, strict=True)):
            view = self.flat[off : off + size].view(self.k, *shape)
            torch.stack([ts[j].detach() for ts in trainables], out=view)
            self.params.append(view)
            off += size
        self.slots: list[list[int]] = []
        j = 0
        for spec in self.specs:
            n = 3 if spec.kind == "lora" else 2
            self.slots.append(list(range(j, j + n)))
            j += n
        if j != len(shapes):
            raise ValueError(f"ClassifierStack: {len(shapes)} trainable tensors for layers needing {j}")
        self._views: dict[str, torch.Tensor] = {}

    def buf(self, name: str, *shape: int) -> torch.Tensor:
        """A work tensor of :data:`WORKSPACE` (contents undefined; the view is kept per name)."""
        v = self._views.get(name)
        if v is None or v.shape != shape:
            v = self._views[name] = WORKSPACE.get("stack." + name, shape, self.flat.dtype, self.flat.device)
        return v

    @classmethod
    def from_models(cls, models: Sequence[nn.Module]) -> ClassifierStack:
        """Stack K module instances (distinct objects or not) of one architecture."""
        layer_lists = [_layers(m) for m in models]
        specs = [layer_spec(layer) for layer in layer_lists[0]]
        for layers in layer_lists[1:]:
            if [layer_spec(layer) for layer in layers] != specs:
                raise ValueError("ClassifierStack: the models differ in architecture")
        frozen = [_frozen_of(layer_lists, i) for i in range(len(specs))]
        return cls(specs, frozen, [trainable_parameters(m) for m in models])

    @classmethod
    def from_template(cls, template: nn.Module, trainables: Sequence[Sequence[torch.Tensor]]) -> ClassifierStack:
        """K models that share ``template``'s architecture and frozen base, model k with the trainable tensors
        ``trainables[k]`` (:func:`trainable_parameters` order, e.g. an edge's ``get_adapter()``)."""
        layers = _layers(template)
        return cls([layer_spec(layer) for layer in layers], [_frozen_of([layers], i) for i in range(len(layers))],
                   trainables)

    @property
    def n_classes(self) -> int:
        """Logits per sample (the last layer's n_out)."""
        return self.specs[-1].n_out

    def tensors(self, k: int) -> list[torch.Tensor]:
        """Clones of model ``k``'s trainable tensors (:func:`trainable_parameters` order)."""
        return [p[k].clone() for p in self.params]

    def subset(self, ks: Sequence[int]) -> ClassifierStack:
        """A new stack of models ``ks`` (copies of their trainable tensors; frozen bases shared or indexed)."""
        idx = torch.as_tensor(list(ks), dtype=torch.long, device=self.flat.device)
        frozen = [None if f is None else f if f[0].dim() == 2 else (f[0][idx], f[1][idx]) for f in self.frozen]
        return ClassifierStack(self.specs, frozen, [self.tensors(k) for k in ks])

    @torch.no_grad()
    def assign(self, k: int, tensors: Sequence[torch.Tensor]) -> None:
        """Set model ``k``'s trainable tensors."""
        for p, t in zip(self.params, tensors, strict=True):
            p[k].copy_(t)

    @torch.no_grad()
    def write_back(self, models: Sequence[nn.Module]) -> None:
        """Copy model k's trainable tensors into ``models[k]``'s parameters (a module repeated in ``models``
        ends with the last of its models)."""
        if len(models) != self.k:
            raise ValueError(f"write_back: {len(models)} models for a stack of {self.k}")
        dst = [p for model in models for p in trainable_parameters(model)]
        per_model = list(zip(*(p.unbind(0) for p in self.params), strict=True))
        torch._foreach_copy_(dst, [t for ts in per_model for t in ts])

    def split(self) -> list[list[torch.Tensor]]:
        """Every model's trainable tensors (``split()[k]`` = :meth:`tensors` (k)), as views of one copy of
        the flat buffer (one copy instead of one per tensor)."""
        flat = self.flat.clone()
        views, off = [], 0
        for p in self.params:
            views.append(flat[off : off + p.numel()].view(p.shape).unbind(0))
            off += p.numel()
        return [list(ts) for ts in zip(*views, strict=True)]

    def finite(self) -> list[bool]:
        """Per model: whether all its trainable tensors are finite."""
        fin = torch.mul(self.flat, 0.0, out=self.buf("finite", self.flat.numel()))
        fin.eq_(0.0)  # x * 0 is NaN for inf and NaN: one pass over all models (1.0 where finite)
        per, off = [], 0
        for p in self.params:
            per.append(fin[off : off + p.numel()].view(self.k, -1).all(1))
            off += p.numel()
        return torch.stack(per).all(0).tolist()

    def forward(self, a: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list, list[torch.Tensor]]:
        """Logits (K, R, classes) of inputs ``a`` (K, R, n_in) (already centred); the input of every layer,
        the LoRA bottleneck activations ``a A^T`` (None elsewhere) and the weights ``g`` flows back through.
        The results live in work tensors (:meth:`buf`) until the next call."""
        inputs: list[torch.Tensor] = []
        low: list[torch.Tensor | None] = []
        weff: list[torch.Tensor] = []
        last = len(self.specs) - 1
        k, r = a.shape[0], a.shape[1]
        for i, spec in enumerate(self.specs):
            inputs.append(a)
            p = [self.params[j] for j in self.slots[i]]
            z_buf = self.buf(f"z{i}", k, r, spec.n_out)
            u = None
            if spec.kind == "lora":
                w, b0 = self.frozen[i]
                u = torch.bmm(a, p[0].transpose(1, 2), out=self.buf(f"u{i}", k, r, spec.rank))
                z = _mm_t(a, w, z_buf).add_((b0 + p[2]).unsqueeze(1)).baddbmm_(u, p[1].transpose(1, 2))
            else:
                w, b = p
                if spec.kind == "full":
                    w, b = torch.add(self.frozen[i][0], w, out=self.buf(f"w{i}", *w.shape)), self.frozen[i][1] + b
                z = torch.baddbmm(b.unsqueeze(1), a, w.transpose(1, 2), out=z_buf)
            low.append(u)
            weff.append(w)
            a = z.relu_() if i < last else z
        return a, inputs, low, weff

    def backward(self, inputs: list[torch.Tensor], low: list, weff: list[torch.Tensor],
                 g: torch.Tensor) -> list[torch.Tensor]:
        """Gradients, stacked (K, *shape) in ``params`` order (work tensors, valid until the next call),
        from ``g`` = dLoss/dlogits (K, R, classes)."""
        grads: list[torch.Tensor] = []
        for i in range(len(self.specs) - 1, -1, -1):
            a, slots = inputs[i], self.slots[i]
            out = [self.buf(f"grad{j}", *self.params[j].shape) for j in slots]
            if i:
                da = self.buf(f"da{i}", *a.shape)
            if self.specs[i].kind != "lora":
                grads[:0] = [torch.bmm(g.transpose(1, 2), a, out=out[0]), torch.sum(g, 1, out=out[1])]
                if i:
                    da = _mm(g, weff[i], da)
            else:
                la, lb = self.params[slots[0]], self.params[slots[1]]
                du = torch.bmm(g, lb, out=self.buf(f"du{i}", g.shape[0], g.shape[1], lb.shape[2]))
                grads[:0] = [torch.bmm(du.transpose(1, 2), a, out=out[0]),
                             torch.bmm(g.transpose(1, 2), low[i], out=out[1]), torch.sum(g, 1, out=out[2])]
                if i:
                    da = _mm(g, weff[i], da).baddbmm_(du, la)
            if i:
                g = _relu_back(da, a, self.buf(f"g{i - 1}", *a.shape))
        return grads


__all__ = ["WORKSPACE", "ClassifierStack", "LayerSpec", "Workspace", "layer_spec"]
