"""Conditional variational auto-encoder (CVAE) that synthesises 8x8 digits of a requested class *and style*.

Condition ``c = [onehot(class) (10), onehot(style) (n_styles)]``.
Encoder: [x (64), c] -> hidden -> (mu, logvar) (latent each).
Decoder: [z (latent), c] -> hidden -> 64 pixels in [0, 1] (sigmoid).

The cloud generator is a :class:`CVAE` (all weights train). The edge generator is a smaller
:class:`LoRACVAE`: a frozen base plus a trainable adapter (LoRA of rank ``rank`` on every layer but the
output layer, which carries a full delta, like the classifier head of
:class:`~gaisnet_env.models.LoRAClassifier`). The adapter is what an edge fine-tunes on its own data,
what relay_down distils from the cloud generator and what relay_up carries up.

:func:`train_vae` and :func:`distil_decoder` train with hand-written gradients (a few matrix products
per layer, the patterns of :mod:`~gaisnet_env.models.training`) and :class:`~gaisnet_env.models.FusedAdam`
instead of autograd and ``torch.optim.Adam(fused=True)``, about 2x less time per call: the same losses,
the same random draws, and the gradients computed with autograd's kernels in autograd's order, so the
trained weights come out as the autograd loops' to the bit (measured at 1 and 2 threads; the tests check
them against autograd to float32 rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from gaisnet_env.models.layers import Dense, LoRADense, SizedModule
from gaisnet_env.models.training import (
    FusedAdam,
    _backward,
    _forward,
    layer_backward,
    layer_forward,
    layer_parameters,
    relu_backward,
)
from torch import nn

from gaisnet_env.worker_config import INPUT_DIM, N_CLASSES, STYLES

_LAYERS = ("enc", "enc_mu", "enc_logvar", "dec", "dec_out")


class CVAE(SizedModule):
    """Class- and style-conditional VAE with one hidden layer in encoder and decoder."""

    def __init__(self, latent: int, hidden: int, input_dim: int = INPUT_DIM, n_classes: int = N_CLASSES,
                 n_styles: int = len(STYLES)) -> None:
        super().__init__()
        self.latent, self.hidden = int(latent), int(hidden)
        self.input_dim, self.n_classes, self.n_styles = int(input_dim), int(n_classes), int(n_styles)
        n_cond = self.n_classes + self.n_styles
        shapes = {
            "enc": (self.input_dim + n_cond, self.hidden),
            "enc_mu": (self.hidden, self.latent),
            "enc_logvar": (self.hidden, self.latent),
            "dec": (self.latent + n_cond, self.hidden),
            "dec_out": (self.hidden, self.input_dim),
        }
        for name in _LAYERS:
            setattr(self, name, self._layer(name, *shapes[name]))

    def _layer(self, name: str, n_in: int, n_out: int) -> nn.Module:
        return Dense(n_in, n_out)

    def reset_parameters(self, gen: torch.Generator) -> None:
        for name in _LAYERS:
            getattr(self, name).reset_parameters(gen)

    def condition(self, y: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """(N, 10 + n_styles) float32 condition of classes ``y`` and styles ``style`` (both (N,) int64)."""
        return torch.cat([F.one_hot(y, self.n_classes), F.one_hot(style, self.n_styles)], dim=1).to(torch.float32)

    def encode(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.enc(torch.cat([x, cond], dim=1)))
        return self.enc_mu(h), self.enc_logvar(h)

    def decode_logits(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.dec(torch.cat([z, cond], dim=1)))
        return self.dec_out(h)

    def loss(self, x: torch.Tensor, y: torch.Tensor, style: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Negative ELBO per sample (Bernoulli pixel likelihood + KL), averaged over the batch;
        ``eps`` ~ N(0, 1) of shape (N, latent)."""
        cond = self.condition(y, style)
        mu, logvar = self.encode(x, cond)
        logits = self.decode_logits(mu + eps * torch.exp(0.5 * logvar), cond)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp())
        return (rec + kl) / x.shape[0]

    @torch.no_grad()
    def generate(self, y: torch.Tensor, style: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One sample per requested (class ``y``, style ``style``), both (N,) int64: pixels (N, 64) in [0, 1]."""
        return self.sample(y, style, gen)[1]

    @torch.no_grad()
    def sample(self, y: torch.Tensor, style: torch.Tensor, gen: torch.Generator,
               z: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(latents z (N, latent), pixels (N, 64) in [0, 1]) for (class ``y``, style ``style``); ``z`` is
        drawn from N(0, 1) with ``gen`` unless given."""
        if z is None:
            z = torch.randn((y.shape[0], self.latent), generator=gen)
        return z, torch.sigmoid(self.decode_logits(z, self.condition(y, style)))


class LoRACVAE(CVAE):
    """:class:`CVAE` of :class:`~gaisnet_env.models.layers.LoRADense` layers: the base is frozen, only
    the adapter (``adapter_parameters``) trains."""

    def __init__(self, latent: int, hidden: int, rank: int, **kwargs: int) -> None:
        self.rank = int(rank)
        super().__init__(latent, hidden, **kwargs)

    def _layer(self, name: str, n_in: int, n_out: int) -> nn.Module:
        return LoRADense(n_in, n_out, self.rank, full=(name == "dec_out"))

    def _lora_layers(self) -> list[LoRADense]:
        return [getattr(self, name) for name in _LAYERS]

    def adapter_parameters(self) -> list[nn.Parameter]:
        out: list[nn.Parameter] = []
        for layer in self._lora_layers():
            out += layer.adapter_parameters()
        return out

    def get_adapter(self) -> list[torch.Tensor]:
        """Clones of the adapter tensors (``adapter_parameters`` order)."""
        return [p.detach().clone() for p in self.adapter_parameters()]

    @torch.no_grad()
    def set_adapter(self, adapter: Sequence[torch.Tensor]) -> None:
        for p, w in zip(self.adapter_parameters(), adapter, strict=True):
            p.copy_(w)

    def reset_adapter(self, gen: torch.Generator) -> None:
        """Zero delta (A random from ``gen``, B = dW = db = 0)."""
        for layer in self._lora_layers():
            layer.reset_adapter(gen)

    @torch.no_grad()
    def set_base(self, base: Sequence[torch.Tensor]) -> None:
        """Load base weights [W, b] per layer (``_LAYERS`` order), e.g. a trained :class:`CVAE`'s."""
        it = iter(base)
        for layer in self._lora_layers():
            layer.weight.copy_(next(it))
            layer.bias.copy_(next(it))

    @property
    def adapter_bytes(self) -> int:
        """Bytes of the adapter tensors (numel * element_size)."""
        return sum(p.numel() * p.element_size() for p in self.adapter_parameters())


def vae_trainable_parameters(vae: CVAE) -> list[nn.Parameter]:
    """What :func:`train_vae` and :func:`distil_decoder` train, in gradient order: all parameters of a
    :class:`CVAE` ([W, b] per layer, ``parameters()`` order), the adapter of a :class:`LoRACVAE`
    (``adapter_parameters()`` order)."""
    out: list[nn.Parameter] = []
    for layer in _vae_layers(vae):
        out += layer_parameters(layer)
    return out


def _vae_layers(vae: CVAE) -> list[nn.Module]:
    layers = [getattr(vae, name) for name in _LAYERS]
    kind = LoRADense if isinstance(vae, LoRACVAE) else Dense
    if not all(type(layer) is kind for layer in layers):
        raise TypeError(f"{type(vae).__name__}: hand-written gradients need {kind.__name__} layers")
    return layers


def _checked(vae: CVAE, params: Sequence[nn.Parameter], fn: str) -> list[nn.Parameter]:
    """``params`` if they are what the hand-written gradients cover (:func:`vae_trainable_parameters`, the
    same tensors in the same order); raise ValueError otherwise."""
    want = vae_trainable_parameters(vae)
    if len(params) != len(want) or any(p is not q for p, q in zip(params, want, strict=False)):
        what = "vae.adapter_parameters()" if isinstance(vae, LoRACVAE) else "list(vae.parameters())"
        raise ValueError(f"{fn}: params must be {what} of the {type(vae).__name__} (its trainable tensors, in "
                         f"that order); got {len(params)} other tensor(s)")
    return want


def _finite(params: Sequence[torch.Tensor]) -> bool:
    """Whether every element of ``params`` is finite (one check over their concatenation)."""
    return bool(torch.isfinite(torch.cat([p.reshape(-1) for p in params])).all())


@lru_cache(maxsize=64)
def _inv(n: int) -> float:
    """1 / n correctly rounded to float32, as autograd's ``grad / n`` (a Python float holding it exactly)."""
    return float(np.float32(1.0) / np.float32(n))


def _elbo_grads(vae: CVAE, xin: torch.Tensor, eps: torch.Tensor) -> list[torch.Tensor]:
    """Gradients (:func:`vae_trainable_parameters` order) of :meth:`CVAE.loss` on ``xin`` = [pixels x,
    condition] (N, 64 + n_cond) and noise ``eps`` (N, latent)."""
    enc, enc_mu, enc_lv, dec, dec_out = _vae_layers(vae)
    x, cond = xin[:, : vae.input_dim], xin[:, vae.input_dim :]
    pre, u_enc = layer_forward(enc, xin, exact=True)
    h = torch.relu(pre)
    mu, u_mu = layer_forward(enc_mu, h, exact=True)
    logvar, u_lv = layer_forward(enc_lv, h, exact=True)
    std = torch.exp(0.5 * logvar)
    logits, inputs, low = _forward([dec, dec_out], torch.cat([mu + eps * std, cond], dim=1), exact=True)
    r = _inv(x.shape[0])  # d loss / d (rec + kl)
    # rec = BCE-with-logits summed: d rec / d logits = sigmoid(logits) - x
    g_dec, dzin = _backward([dec, dec_out], inputs, low, (torch.sigmoid(logits) - x).mul_(r), True, exact=True)
    dz = dzin[:, : vae.latent]
    # kl = -0.5 sum(1 + logvar - mu^2 - exp(logvar)); z = mu + eps exp(0.5 logvar). Summed in autograd's
    # order: the KL terms first, then the path through z
    dmu = dz + mu * r
    dlv = logvar.exp().mul_(0.5 * r).sub_(0.5 * r).add_(dz * eps * std * 0.5)
    g_lv, dh = layer_backward(enc_lv, h, u_lv, dlv, True, exact=True)
    g_mu, dh = layer_backward(enc_mu, h, u_mu, dmu, True, acc=dh)  # h's gradient: logvar head, then mu head
    g_enc, _ = layer_backward(enc, xin, u_enc, relu_backward(dh, h), False)
    return g_enc + g_mu + g_lv + g_dec


def _distil_grads(vae: CVAE, zin: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
    """Gradients (decoder part of :func:`vae_trainable_parameters`) of the summed pixel BCE with logits of
    the decoder on ``zin`` = [z, cond] (N, latent + n_cond) against ``target`` (N, 64) in [0, 1], / N."""
    layers = [vae.dec, vae.dec_out]
    logits, inputs, low = _forward(layers, zin, exact=True)
    g = (torch.sigmoid(logits) - target).mul_(_inv(target.shape[0]))
    return _backward(layers, inputs, low, g, exact=True)[0]


@torch.no_grad()
def elbo_gradients(vae: CVAE, x: torch.Tensor, y: torch.Tensor, style: torch.Tensor,
                   eps: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of :meth:`CVAE.loss` (``x`` (N, 64), classes and styles (N,), ``eps`` (N, latent)) with
    respect to :func:`vae_trainable_parameters` (for checks and tests)."""
    return _elbo_grads(vae, torch.cat([x, vae.condition(y, style)], dim=1), eps)


@torch.no_grad()
def distil_gradients(vae: CVAE, z: torch.Tensor, y: torch.Tensor, style: torch.Tensor,
                     target: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of :func:`distil_decoder`'s loss on latents ``z`` (N, latent), classes and styles (N,) and
    teacher pixels ``target`` (N, 64) with respect to the decoder's trainable tensors (``dec``, ``dec_out``
    part of :func:`vae_trainable_parameters`)."""
    _vae_layers(vae)
    return _distil_grads(vae, torch.cat([z, vae.condition(y, style)], dim=1), target)


@torch.no_grad()
def train_vae(vae: CVAE, params: list[nn.Parameter], x: torch.Tensor, y: torch.Tensor, style: torch.Tensor, *,
              epochs: int, lr: float, batch: int, gen: torch.Generator) -> bool:
    """Adam on the negative ELBO over shuffled mini-batches of (``x`` (N, 64), classes ``y``, styles
    ``style``), training ``params`` (:func:`vae_trainable_parameters`: all of a CVAE's, a LoRACVAE's
    adapter; anything else raises ValueError); draws one ``randperm`` per epoch and one ``randn`` per step
    from ``gen``. Returns False (and stops) after an epoch that left ``params`` non-finite; else True, with
    the model in eval mode."""
    opt = FusedAdam(_checked(vae, params, "train_vae"), lr=lr)
    xin = torch.cat([x, vae.condition(y, style)], dim=1)
    n = x.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(xin.device)  # CPU draws, on the data's device
        for i in range(0, n, batch):
            b = perm[i : i + batch]
            eps = torch.randn((b.shape[0], vae.latent), generator=gen).to(xin.device)
            opt.step(_elbo_grads(vae, xin[b], eps))
        if not _finite(params):
            return False
    vae.eval()
    return True


@torch.no_grad()
def distil_decoder(vae: CVAE, params: list[nn.Parameter], z: torch.Tensor, y: torch.Tensor, style: torch.Tensor,
                   target: torch.Tensor, *, epochs: int, lr: float, batch: int, gen: torch.Generator) -> bool:
    """Data-free generator distillation: Adam on the pixel cross-entropy (summed, / batch) between the
    decoder's output for latents ``z`` (N, latent) and conditions (``y``, ``style``) and a teacher decoder's
    output ``target`` (N, 64) in [0, 1] for the same latents, so the student learns the teacher's whole
    mapping from noise to images (its diversity too), not a re-fit of its mean samples. ``params`` as for
    :func:`train_vae` (only the decoder's part trains). One ``randperm`` per epoch from ``gen``. Returns
    False (and stops) after an epoch that left ``params`` non-finite; else True, with the model in eval
    mode."""
    _checked(vae, params, "distil_decoder")
    opt = FusedAdam(layer_parameters(vae.dec) + layer_parameters(vae.dec_out), lr=lr)
    zin = torch.cat([z, vae.condition(y, style)], dim=1)
    n = z.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(zin.device)
        for i in range(0, n, batch):
            b = perm[i : i + batch]
            opt.step(_distil_grads(vae, zin[b], target[b]))
        if not _finite(params):
            return False
    vae.eval()
    return True
