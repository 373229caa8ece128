"""Batched generator training: the adapters of K edge generators (:class:`~gaisnet_env.models.LoRACVAE`
of one shared base) trained at once, each ending where :func:`~gaisnet_env.models.train_vae` or
:func:`~gaisnet_env.models.distil_decoder` ends on its own data and generator.

The adapters are stacked along a leading K axis; each layer's forward and backward are
``torch.baddbmm`` / ``bmm`` over the stack (the shared frozen base broadcast over it), and one fused Adam
call updates all models per step (:class:`~gaisnet_env.models.batched_training.StackedAdam`, models whose
schedule has ended sit out). The gradients are :func:`~gaisnet_env.models.vae._elbo_grads` /
``_distil_grads`` term for term, with each row weighted by its model's ``1 / nb`` (0 on the padding rows of
a shorter mini-batch, so padding adds nothing).

Exactness: every model's draws are made up front from its own generator in the serial order
(:func:`vae_draw_schedule`: per epoch one ``randperm(n)``, then for the ELBO one ``randn((nb, latent))`` per
step, each drawn as the serial call draws it), so the models see the serial mini-batches and noise; the
batched products round differently (weights within about 1e-6 of the serial calls'). The non-finite guard
looks once, at the end: a caller that needs the serial stopping point reruns serially (the training
engine does, :mod:`gaisnet_env.op_batching`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from gaisnet_env.models.batched_training import StackedAdam
from gaisnet_env.models.layers import LoRADense
from gaisnet_env.models.training import relu_backward
from gaisnet_env.models.vae import _LAYERS, LoRACVAE, _inv


def vae_draw_schedule(gen: torch.Generator, n: int, epochs: int, batch: int, latent: int | None,
                      ) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
    """A model's draws in :func:`~gaisnet_env.models.train_vae`'s order (``latent`` given: per epoch
    ``randperm(n)`` then one ``randn((nb, latent))`` per step) or :func:`~gaisnet_env.models.distil_decoder`'s
    (``latent`` None: one ``randperm(n)`` per epoch). Returns per epoch (the permutation, the noises)."""
    out = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        noise = [] if latent is None else [torch.randn((min(batch, n - i), latent), generator=gen)
                                           for i in range(0, n, batch)]
        out.append((perm, noise))
    return out


class _Stack:
    """The K adapters of one :class:`LoRACVAE` architecture, layer by layer, and the batched layer maths."""

    def __init__(self, template: LoRACVAE, starts: Sequence[Sequence[torch.Tensor]]) -> None:
        self.template, self.k = template, len(starts)
        self.layers: list[LoRADense] = [getattr(template, name) for name in _LAYERS]
        n = len(starts[0])
        self.params = [torch.stack([s[j].detach() for s in starts]).contiguous() for j in range(n)]
        self.views: list[list[torch.Tensor]] = []  # per layer its stacked adapter tensors
        j = 0
        for layer in self.layers:
            m = 2 if layer.full else 3
            self.views.append(self.params[j : j + m])
            j += m

    def forward(self, i: int, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Layer ``i`` on ``a`` (K, M, n_in): its output (K, M, n_out) before activation and the bottleneck
        ``a A^T`` (None for the full-delta layer)."""
        layer, p = self.layers[i], self.views[i]
        bias = (layer.bias + p[-1]).unsqueeze(1)  # (K, 1, n_out)
        if layer.full:
            return torch.baddbmm(bias, a, (layer.weight + p[0]).transpose(1, 2)), None
        u = torch.bmm(a, p[0].transpose(1, 2))
        base = torch.baddbmm(bias, a, layer.weight.t().expand(self.k, -1, -1))
        return base.baddbmm_(u, p[1].transpose(1, 2)), u

    def backward(self, i: int, a: torch.Tensor, u: torch.Tensor | None, g: torch.Tensor,
                 input_grad: bool) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Gradients of layer ``i``'s stacked adapter from ``g`` = dLoss/d(output) (K, M, n_out), and
        dLoss/d(input) (K, M, n_in) if ``input_grad``."""
        layer, p = self.layers[i], self.views[i]
        gt = g.transpose(1, 2)
        if layer.full:
            w = layer.weight + p[0]
            return [torch.bmm(gt, a), g.sum(1)], (torch.bmm(g, w) if input_grad else None)
        du = torch.bmm(g, p[1])
        grads = [torch.bmm(du.transpose(1, 2), a), torch.bmm(gt, u), g.sum(1)]
        if not input_grad:
            return grads, None
        return grads, torch.bmm(g, layer.weight.expand(self.k, -1, -1)).baddbmm_(du, p[0])

    def split(self) -> list[list[torch.Tensor]]:
        """Model k's trained adapter tensors (``adapter_parameters`` order), as clones."""
        return [[t[k].clone() for t in self.params] for k in range(self.k)]


def _elbo_grads(st: _Stack, xin: torch.Tensor, eps: torch.Tensor, r: torch.Tensor) -> list[torch.Tensor]:
    """Stacked :func:`~gaisnet_env.models.vae._elbo_grads` on ``xin`` (K, M, 64 + n_cond), noise ``eps``
    (K, M, latent) and per-row weights ``r`` (K, M, 1)."""
    d, latent = st.template.input_dim, st.template.latent
    x, cond = xin[..., :d], xin[..., d:]
    pre, u_enc = st.forward(0, xin)
    h = torch.relu(pre)
    mu, u_mu = st.forward(1, h)
    logvar, u_lv = st.forward(2, h)
    std = torch.exp(0.5 * logvar)
    zin = torch.cat([mu + eps * std, cond], dim=2)
    pre_d, u_dec = st.forward(3, zin)
    hd = torch.relu(pre_d)
    logits, _ = st.forward(4, hd)
    g_out, dhd = st.backward(4, hd, None, (torch.sigmoid(logits) - x).mul_(r), True)
    g_dec, dzin = st.backward(3, zin, u_dec, relu_backward(dhd, hd), True)
    dz = dzin[..., :latent]
    dmu = dz + mu * r
    dlv = logvar.exp().mul_(0.5 * r).sub_(0.5 * r).add_(dz * eps * std * 0.5)
    g_lv, dh = st.backward(2, h, u_lv, dlv, True)
    g_mu, dh_mu = st.backward(1, h, u_mu, dmu, True)
    g_enc, _ = st.backward(0, xin, u_enc, relu_backward(dh.add_(dh_mu), h), False)
    return g_enc + g_mu + g_lv + g_dec + g_out


def _distil_grads(st: _Stack, zin: torch.Tensor, target: torch.Tensor, r: torch.Tensor) -> list[torch.Tensor]:
    """Stacked decoder-distillation gradients (``dec``, ``dec_out`` adapters) on ``zin`` (K, M, latent +
    n_cond) against ``target`` (K, M, 64), rows weighted by ``r`` (K, M, 1)."""
    pre, u_dec = st.forward(3, zin)
    hd = torch.relu(pre)
    logits, _ = st.forward(4, hd)
    g_out, dhd = st.backward(4, hd, None, (torch.sigmoid(logits) - target).mul_(r), True)
    g_dec, _ = st.backward(3, zin, u_dec, relu_backward(dhd, hd), False)
    return g_dec + g_out


@dataclass
class _Plan:
    """The padded per-step mini-batches of all K models, laid out up front."""

    bank: torch.Tensor  # (rows + 1, width): every model's inputs ([x or z, condition]), a zero row last
    targets: torch.Tensor | None  # (rows + 1, 64): distillation targets, a zero row last
    idx: torch.Tensor  # (S, K * batch) long: the bank row of each model's mini-batch row at step s
    weight: torch.Tensor  # (S, K, batch, 1): 1 / nb on a model's real rows, 0 on padding
    noise: torch.Tensor | None  # (S, K, batch, latent): the ELBO's noise, 0 on padding
    steps: list[int]  # Adam steps of model k


def _plan(inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor] | None, schedules: Sequence[list],
          batch: int, latent: int | None) -> _Plan:
    """Lay out every model's schedule (drawn in the serial order) as padded per-step mini-batches."""
    k_models, dev = len(inputs), inputs[0].device
    ns = [int(x.shape[0]) for x in inputs]
    offsets = [0]
    for n in ns:
        offsets.append(offsets[-1] + n)
    zero = offsets[-1]
    bank = torch.cat([*inputs, inputs[0].new_zeros(1, inputs[0].shape[1])])
    tbank = None if targets is None else torch.cat([*targets, targets[0].new_zeros(1, targets[0].shape[1])])
    spe = [-(-n // batch) for n in ns]
    steps = [len(sched) * s for sched, s in zip(schedules, spe, strict=True)]
    n_steps = max(steps)
    idx = torch.full((n_steps, k_models, batch), zero, dtype=torch.long)
    weight = torch.zeros(n_steps, k_models, batch, 1)
    noise = None if latent is None else torch.zeros(n_steps, k_models, batch, latent)
    for k, (sched, n) in enumerate(zip(schedules, ns, strict=True)):
        if not steps[k]:
            continue
        pad = spe[k] * batch - n
        perms = F.pad(torch.stack([p for p, _ in sched]) + offsets[k], (0, pad), value=zero)
        idx[: steps[k], k] = perms.view(-1, batch)
        nb = torch.full((spe[k],), float(batch))
        nb[-1] = n - (spe[k] - 1) * batch
        per_step = torch.tensor([_inv(int(b)) for b in nb.tolist()]).repeat(len(sched))
        weight[: steps[k], k] = (idx[: steps[k], k] != zero).unsqueeze(-1) * per_step.view(-1, 1, 1)
        if noise is not None:
            eps = torch.stack([F.pad(torch.cat(e), (0, 0, 0, pad)) for _, e in sched])  # (epochs, spe * batch, L)
            noise[: steps[k], k] = eps.view(-1, batch, latent)
    return _Plan(bank, tbank, idx.view(n_steps, -1).to(dev), weight.to(dev),
                 None if noise is None else noise.to(dev), steps)


@torch.no_grad()
def train_vae_stack(template: LoRACVAE, starts: Sequence[Sequence[torch.Tensor]],
                    data: Sequence[tuple[torch.Tensor, ...]], *, distil: bool, epochs: int, lr: float, batch: int,
                    gens: Sequence[torch.Generator]) -> tuple[list[bool], list[list[torch.Tensor]]]:
    """Train K adapters of ``template``'s architecture and base (``starts[k]``: model k's adapter) at once.
    ``distil=False``: model k as ``train_vae`` on ``data[k]`` = (x (n_k, 64), y, style); ``distil=True``: as
    ``distil_decoder`` on (z (n_k, latent), y, style, target (n_k, 64)). Draws from ``gens[k]``. Returns
    per-model ok flags (False: non-finite at the end) and the trained adapters (on the template's device)."""
    st = _Stack(template, starts)
    inputs = [torch.cat([d[0], template.condition(d[1], d[2])], dim=1) for d in data]
    latent = None if distil else template.latent
    schedules = [vae_draw_schedule(g, int(x.shape[0]), epochs, batch, latent) for g, x in zip(gens, inputs,
                                                                                              strict=True)]
    plan = _plan(inputs, [d[3] for d in data] if distil else None, schedules, batch, latent)
    first_dec = sum(len(v) for v in st.views[:3])  # distillation trains the decoder's part only
    adam = StackedAdam(st.params[first_dec:] if distil else st.params, lr)
    shape = (st.k, batch, -1)
    for s in range(plan.idx.shape[0]):
        rows = plan.idx[s]
        a = plan.bank.index_select(0, rows).view(shape)
        if distil:
            grads = _distil_grads(st, a, plan.targets.index_select(0, rows).view(shape), plan.weight[s])
        else:
            grads = _elbo_grads(st, a, plan.noise[s], plan.weight[s])
        active = [k for k in range(st.k) if plan.steps[k] > s]
        sub = None if len(active) == st.k else torch.tensor(active, dtype=torch.long, device=rows.device)
        adam.step(grads, s + 1, sub)  # the gradients of the trained tensors, in their order
    flat = torch.cat([p.reshape(st.k, -1) for p in st.params], dim=1)
    return torch.isfinite(flat).all(1).tolist(), st.split()


__all__ = ["train_vae_stack", "vae_draw_schedule"]
