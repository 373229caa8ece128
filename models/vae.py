"""Conditional variational auto-encoder (CVAE) that synthesises 8x8 digits of a requested class *and style*.

Condition ``c = [onehot(class) (10), onehot(style) (n_styles)]``.
Encoder: [x (64), c] -> hidden -> (mu, logvar) (latent each).
Decoder: [z (latent), c] -> hidden -> 64 pixels in [0, 1] (sigmoid).

The cloud generator is a :class:`CVAE` (all weights train). The edge generator is a smaller
:class:`LoRACVAE`: a frozen base plus a trainable adapter (LoRA of rank ``rank`` on every layer but the
output layer, which carries a full delta, like the classifier head of
:class:`~gaisnet_env.models.LoRAClassifier`). The adapter is what an edge fine-tunes on its own data,
what relay_down distils from the cloud generator and what relay_up carries up.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from gaisnet_env.models.layers import Dense, LoRADense, SizedModule
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


def train_vae(vae: CVAE, params: list[nn.Parameter], x: torch.Tensor, y: torch.Tensor, style: torch.Tensor, *,
              epochs: int, lr: float, batch: int, gen: torch.Generator) -> bool:
    """Adam (``fused``) on the negative ELBO over shuffled mini-batches of (``x`` (N, 64), classes ``y``,
    styles ``style``), training ``params``; draws one ``randperm`` per epoch and one ``randn`` per step from
    ``gen``. Returns False (and stops) if the trained tensors became non-finite. Leaves the model in eval mode."""
    opt = torch.optim.Adam(params, lr=lr, fused=True)
    n = x.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            b = perm[i : i + batch]
            loss = vae.loss(x[b], y[b], style[b], torch.randn((b.shape[0], vae.latent), generator=gen))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if not all(bool(torch.isfinite(p).all()) for p in params):
            return False
    vae.eval()
    return True


def distil_decoder(vae: CVAE, params: list[nn.Parameter], z: torch.Tensor, y: torch.Tensor, style: torch.Tensor,
                   target: torch.Tensor, *, epochs: int, lr: float, batch: int, gen: torch.Generator) -> bool:
    """Data-free generator distillation: Adam (``fused``) on the pixel cross-entropy between the decoder's
    output for latents ``z`` (N, latent) and conditions (``y``, ``style``) and a teacher decoder's output
    ``target`` (N, 64) in [0, 1] for the same latents, so the student learns the teacher's whole mapping
    from noise to images (its diversity too), not a re-fit of its mean samples. One ``randperm`` per epoch
    from ``gen``. Returns False (and stops) if the trained tensors became non-finite."""
    opt = torch.optim.Adam(params, lr=lr, fused=True)
    cond = vae.condition(y, style)
    n = z.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            b = perm[i : i + batch]
            logits = vae.decode_logits(z[b], cond[b])
            loss = F.binary_cross_entropy_with_logits(logits, target[b], reduction="sum") / b.shape[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if not all(bool(torch.isfinite(p).all()) for p in params):
            return False
    vae.eval()
    return True
