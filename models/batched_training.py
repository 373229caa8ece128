"""Batched training: K independent classifiers of one architecture trained at once, each ending where
:func:`~gaisnet_env.models.training.train_classifier` ends on its own data and generator.

The K models live in a :class:`~gaisnet_env.models.classifier_stack.ClassifierStack` (trainable tensors
stacked along a leading K axis in one flat buffer; forward and backward as ``torch.bmm`` / ``baddbmm``)
and one fused Adam call (``torch._fused_adam_``, the kernel of the serial path) updates all of them per step.
Scratch tensors (data bank, schedules, Adam moments, activations) come from
:data:`~gaisnet_env.models.classifier_stack.WORKSPACE`, kept between calls (``WORKSPACE.clear()`` frees it).

Exactness against K serial calls:

* every model's mini-batch schedule is drawn up front from its own generator in the serial order (per
  epoch one ``randperm(n_k)``, then with an anchor one ``randint(n_local_k, (batch,))`` per step, drawn
  as one (steps per epoch, batch) ``randint``, the same stream);
* models may hold different numbers of samples n_k (and epochs): a step's mini-batch is padded to ``batch``
  rows (``2 * batch`` with anchors) with a zero row whose gradient weight is 0, the real rows of a ragged
  last batch weighted ``T / nb`` as in the serial call; a model whose schedule has ended (or that failed)
  sits out Adam (its parameters, moments and step count stay), so every active model is at step s + 1;
* the non-finite guard checks each model at the end of each of its epochs; a model that fails stops there
  (``ok[k] = False``, its tensors as they are) and its generator is rewound and replayed to where the
  serial call stops drawing. Where several models share a generator (serial calls one after another on it),
  a failure makes the whole call rerun model by model, so every draw stays in the serial order;
* the arithmetic is the serial call's, product for product (the softmax over the last dim with the same
  kernel, the head as ``a W^T``), so K = 1 is bit-identical and K > 1 differs only by the batched
  products' rounding (about 1e-7). A faster softmax layout (over dim 1 of (K, classes, R)) changes the last
  bits of every probability, and Adam amplifies such noise where gradients are near zero: it left weights
  up to 1.7e-3 apart at K = 64 on relay_down's settings, so it is not used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from gaisnet_env.models.classifier_stack import WORKSPACE, ClassifierStack
from torch import nn

Anchor = tuple[torch.Tensor, torch.Tensor, float]


@dataclass
class _Plan:
    """Everything the step loop needs, built up front: a data bank and per-step row indices into it."""

    x: torch.Tensor  # (rows + 1, features): every model's centred samples (then its local ones), a zero row
    p: torch.Tensor  # (rows + 1, classes): target probabilities (one-hot for hard and local labels), zeros
    idx: torch.Tensor  # (S, K * R) long: row of the bank of each model's mini-batch row at step s
    scale: torch.Tensor  # (S, K, R, 1): gradient weight of each row (T / nb, lambda / batch, 0 on padding)
    inv_t: torch.Tensor | None  # (1, R, 1): per-row 1 / T with anchors ([1/T] * batch + [1] * batch)
    steps: list[int]  # optimiser steps of model k (epochs_k * ceil(n_k / batch))
    spe: list[int]  # steps per epoch of model k
    rows: int  # R


def draw_schedule(gen: torch.Generator, n: int, n_loc: int | None, epochs: int, batch: int,
                  ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """A model's random draws in :func:`train_classifier`'s order: per epoch ``randperm(n)`` and, with an
    anchor (``n_loc`` not None), the ``spe`` draws ``randint(n_loc, (batch,))`` as one (spe, batch) draw
    (the CPU generator fills a randint element by element, so one draw of spe x batch is the spe draws
    one after another; the tests check the generator states and weights against the serial calls).
    Returns (the permutations, the local draws (steps per epoch, batch) per epoch)."""
    spe = math.ceil(n / batch)
    perms, locs = [], []
    for _ in range(epochs):
        perms.append(torch.randperm(n, generator=gen))
        if n_loc is not None and spe:
            locs.append(torch.randint(n_loc, (spe, batch), generator=gen))
    return perms, locs


def _bank(xs: Sequence[torch.Tensor], probs: Sequence[torch.Tensor], anchors: Sequence[Anchor | None],
          n_classes: int, centre: float) -> tuple[torch.Tensor, torch.Tensor, list[int], list[int]]:
    """Data bank (x centred, target probabilities) of all models, a zero row last; each model's first row
    and its local samples' first row (-1 without an anchor)."""
    xp, pp, off, loc_off = [], [], [], []
    row = 0
    for x, p, anchor in zip(xs, probs, anchors, strict=True):
        off.append(row)
        xp.append(x)
        pp.append(p)
        row += x.shape[0]
        loc_off.append(-1 if anchor is None else row)
        if anchor is not None:
            xp.append(anchor[0])
            pp.append(F.one_hot(anchor[1], n_classes).to(x.dtype))
            row += anchor[0].shape[0]
    dtype, device = xs[0].dtype, xs[0].device
    x_bank = WORKSPACE.get("bank.x", (row + 1, xs[0].shape[1]), dtype, device)
    p_bank = WORKSPACE.get("bank.p", (row + 1, n_classes), dtype, device)
    torch.cat(xp, out=x_bank[:row]).sub_(centre)  # the serial call's ``x - centre``, in place
    torch.cat([p.to(dtype) for p in pp], out=p_bank[:row])
    x_bank[row].zero_()
    p_bank[row].zero_()
    return x_bank, p_bank, off, loc_off


def _plan(xs: Sequence[torch.Tensor], probs: Sequence[torch.Tensor], anchors: Sequence[Anchor | None],
          epochs: Sequence[int], batch: int, t: float, gens: Sequence[torch.Generator], n_classes: int,
          centre: float) -> _Plan:
    """Draw every model's schedule (in order k = 0..K-1) and lay out the padded per-step mini-batches."""
    k_models = len(xs)
    anchored = any(a is not None for a in anchors)
    r = 2 * batch if anchored else batch
    x_bank, p_bank, off, loc_off = _bank(xs, probs, anchors, n_classes, centre)
    zero = x_bank.shape[0] - 1
    ns = [int(x.shape[0]) for x in xs]
    spe = [math.ceil(n / batch) for n in ns]
    steps = [e * s for e, s in zip(epochs, spe, strict=True)]
    n_steps = max(steps, default=0)
    cpu = torch.device("cpu")
    idx = WORKSPACE.get("plan.idx", (n_steps, k_models, r), torch.long, cpu).fill_(zero)
    lam = torch.zeros(k_models)
    for k in range(k_models):
        n_loc = None if anchors[k] is None else int(anchors[k][0].shape[0])
        perms, locs = draw_schedule(gens[k], ns[k], n_loc, epochs[k], batch)
        if not steps[k]:
            continue
        pe = F.pad(torch.stack(perms) + off[k], (0, spe[k] * batch - ns[k]), value=zero)
        idx[: steps[k], k, :batch] = pe.view(-1, batch)
        if n_loc is not None:
            idx[: steps[k], k, batch:] = torch.cat(locs) + loc_off[k]
            lam[k] = float(anchors[k][2])
    valid = idx[:, :, :batch] != zero
    per_row = (t / valid.sum(-1, keepdim=True).clamp(min=1).to(torch.float64)).to(x_bank.dtype)  # (S, K, 1)
    scale = WORKSPACE.get("plan.scale", (n_steps, k_models, r, 1), x_bank.dtype, cpu).zero_()  # then moved
    torch.mul(valid, per_row, out=scale[:, :, :batch, 0])  # T / nb on real rows, 0 on padding
    inv_t = None
    if anchored:
        live = (torch.arange(n_steps)[:, None] < torch.tensor(steps)[None, :]).to(torch.float64)  # (S, K)
        scale[:, :, batch:, 0] = (live * (lam.to(torch.float64) / batch)[None, :]).to(x_bank.dtype)[:, :, None]
        inv_t = torch.cat([torch.full((batch,), 1.0 / t), torch.ones(batch)]).to(x_bank.dtype).view(1, -1, 1)
    dev = x_bank.device
    inv_t = None if inv_t is None else inv_t.to(dev)
    return _Plan(x_bank, p_bank, idx.view(n_steps, -1).to(dev), scale.to(dev), inv_t, steps, spe, r)


class StackedAdam:
    """Fused Adam state of the stacked tensors (zero moments); models that sit out a step keep theirs."""

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = params
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(betas[0]), float(betas[1]), float(eps)
        self.exp_avg = [WORKSPACE.get(f"adam.m{j}", tuple(p.shape), p.dtype, p.device).zero_()
                        for j, p in enumerate(params)]
        self.exp_avg_sq = [WORKSPACE.get(f"adam.v{j}", tuple(p.shape), p.dtype, p.device).zero_()
                           for j, p in enumerate(params)]

    def _fused(self, p: list, g: list, m: list, v: list, step: int) -> None:
        steps = [torch.tensor(float(step), dtype=torch.float32, device=p[0].device)] * len(p)
        torch._fused_adam_(p, g, m, v, [], steps, amsgrad=False, lr=self.lr, beta1=self.beta1, beta2=self.beta2,
                           weight_decay=0.0, eps=self.eps, maximize=False, grad_scale=None, found_inf=None)

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor], step: int, rows: torch.Tensor | None) -> None:
        """Adam step number ``step`` (1-based) of the models ``rows`` (all when None) with ``grads``."""
        if rows is None:
            self._fused(self.params, grads, self.exp_avg, self.exp_avg_sq, step)
            return
        groups = (self.params, self.exp_avg, self.exp_avg_sq)
        p, m, v = ([t.index_select(0, rows) for t in ts] for ts in groups)
        self._fused(p, [g.index_select(0, rows) for g in grads], m, v, step)
        for ts, subs in zip(groups, (p, m, v), strict=True):
            for t, sub in zip(ts, subs, strict=True):
                t.index_copy_(0, rows, sub)


def _epoch_ends(plan: _Plan, epochs: Sequence[int]) -> dict[int, list[int]]:
    """Step index -> the models whose epoch ends after it."""
    ends: dict[int, list[int]] = {}
    for k, (e, s) in enumerate(zip(epochs, plan.spe, strict=True)):
        for i in range(e if s else 0):
            ends.setdefault((i + 1) * s - 1, []).append(k)
    return ends


def _run(stack: ClassifierStack, plan: _Plan, epochs: Sequence[int], lr: float, t: float,
         ) -> tuple[list[bool], dict[int, int]]:
    """The step loop. Returns per-model ok flags and, for each failed model, the epochs it ran."""
    k_models = stack.k
    adam = StackedAdam(stack.params, lr)
    ok = [True] * k_models
    failed: dict[int, int] = {}
    done = [s == 0 for s in plan.steps]
    idle = [k for k in range(k_models) if done[k] and epochs[k] > 0]  # no steps: the guard still looks once
    fin0 = stack.finite() if idle else []
    for k in idle:
        if not fin0[k]:
            ok[k], failed[k] = False, 1
    ends = _epoch_ends(plan, epochs)
    n_feat, n_cls = plan.x.shape[1], plan.p.shape[1]
    for s in range(plan.idx.shape[0]):
        active = [k for k in range(k_models) if not done[k]]
        if not active:
            break
        rows = plan.idx[s]
        x = torch.index_select(plan.x, 0, rows, out=stack.buf("x", rows.shape[0], n_feat))
        z, inputs, low, weff = stack.forward(x.view(k_models, plan.rows, n_feat))
        tgt = torch.index_select(plan.p, 0, rows, out=stack.buf("p", rows.shape[0], n_cls))
        tgt = tgt.view(k_models, plan.rows, n_cls)
        sm = torch.softmax(z * plan.inv_t if plan.inv_t is not None else z / t, 2)
        g = sm.sub_(tgt).mul_(plan.scale[s])
        sub = None if len(active) == k_models else torch.tensor(active, dtype=torch.long, device=rows.device)
        adam.step(stack.backward(inputs, low, weff, g), s + 1, sub)
        check = [k for k in ends.get(s, ()) if not done[k]]
        if check:
            fin = stack.finite()
            for k in check:
                if not fin[k]:
                    ok[k], done[k], failed[k] = False, True, (s + 1) // plan.spe[k]
        for k in active:
            done[k] = done[k] or plan.steps[k] == s + 1
    return ok, failed


def _as_list(v: int | Sequence[int], k: int, name: str) -> list[int]:
    out = [int(v)] * k if isinstance(v, int) else [int(e) for e in v]
    if len(out) != k:
        raise ValueError(f"train_stack: {len(out)} {name} for {k} models")
    return out


@torch.no_grad()
def train_stack(stack: ClassifierStack, xs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], *, soft: bool,
                epochs: int | Sequence[int], lr: float, batch: int, temperature: float,
                gens: Sequence[torch.Generator], centre: float,
                anchors: Sequence[Anchor | None] | None = None) -> list[bool]:
    """Train the K models of ``stack`` in place, model k as ``train_classifier`` would on ``xs[k]``
    (n_k, features) and ``targets[k]`` (class indices (n_k,) with ``soft=False``, probabilities (n_k,
    classes) with ``soft=True``), drawing from ``gens[k]``, with ``epochs`` (one or per model), one ``lr``,
    ``batch``, ``temperature`` and input shift ``centre``; ``anchors[k]`` = (x_local, y_local, lambda) or
    None. Returns per-model ok flags (False: its tensors became non-finite and it stopped)."""
    k_models = stack.k
    anchors = [None] * k_models if anchors is None else list(anchors)
    if not (len(xs) == len(targets) == len(gens) == len(anchors) == k_models):
        raise ValueError(f"train_stack: {k_models} models need as many xs, targets, gens and anchors")
    for x, y in zip(xs, targets, strict=True):
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"train_stack: {x.shape[0]} samples but {y.shape[0]} targets")
    ep = _as_list(epochs, k_models, "epochs")
    t = float(temperature) if soft else 1.0
    n_cls = stack.n_classes
    probs = [y if soft else F.one_hot(y, n_cls).to(x.dtype) for x, y in zip(xs, targets, strict=True)]
    shared = len({id(g) for g in gens}) < k_models
    start = {id(g): (g, g.get_state()) for g in gens}
    before = [stack.tensors(k) for k in range(k_models)] if shared else None
    plan = _plan(xs, probs, anchors, ep, int(batch), t, gens, n_cls, centre)
    ok, failed = _run(stack, plan, ep, lr, t)
    if not failed:
        return ok
    if shared:  # rerun model by model from the start, so every draw is in the serial order
        for g, state in start.values():
            g.set_state(state)
        out = []
        for k in range(k_models):
            one = stack.subset([k])
            one.assign(0, before[k])
            out += train_stack(one, [xs[k]], [targets[k]], soft=soft, epochs=ep[k], lr=lr, batch=batch,
                               temperature=temperature, gens=[gens[k]], centre=centre, anchors=[anchors[k]])
            stack.assign(k, one.tensors(0))
        return out
    for k, e in failed.items():  # rewind: draw only what the serial call draws before it stops
        gens[k].set_state(start[id(gens[k])][1])
        n_loc = None if anchors[k] is None else int(anchors[k][0].shape[0])
        draw_schedule(gens[k], int(xs[k].shape[0]), n_loc, e, int(batch))
    return ok


@torch.no_grad()
def train_classifiers_batched(models: Sequence[nn.Module], xs: Sequence[torch.Tensor],
                              targets: Sequence[torch.Tensor], *, soft: bool, epochs: int | Sequence[int], lr: float,
                              batch: int, temperature: float, gens: Sequence[torch.Generator], centre: float,
                              anchors: Sequence[Anchor | None] | None = None, write_back: bool = True,
                              ) -> tuple[list[bool], ClassifierStack]:
    """:func:`train_stack` on K module instances of one architecture (see :class:`ClassifierStack`); with
    ``write_back`` the trained tensors are copied into ``models[k]``'s parameters, as K serial
    ``train_classifier`` calls would leave them. Returns the ok flags and the stack (``stack.tensors(k)``:
    model k's new trainable tensors)."""
    stack = ClassifierStack.from_models(models)
    ok = train_stack(stack, xs, targets, soft=soft, epochs=epochs, lr=lr, batch=batch, temperature=temperature,
                     gens=gens, centre=centre, anchors=anchors)
    if write_back:
        stack.write_back(models)
    return ok, stack


__all__ = ["ClassifierStack", "StackedAdam", "draw_schedule", "train_classifiers_batched", "train_stack"]
