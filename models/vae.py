"""Class-conditional variational auto-encoder (CVAE) that synthesises 8x8 digits of a requested class.

Encoder: [x (64), onehot(y) (10)] -> hidden -> (mu, logvar) (latent each).
Decoder: [z (latent), onehot(y) (10)] -> hidden -> 64 pixels in [0, 1] (sigmoid).
The cloud generator and the (smaller) edge generator are both instances with different sizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from gaisnet_env.models.layers import Dense, SizedModule

from gaisnet_env.worker_config import INPUT_DIM, N_CLASSES


class CVAE(SizedModule):
    """Class-conditional VAE with one hidden layer in encoder and decoder."""

    def __init__(
        self, latent: int, hidden: int, input_dim: int = INPUT_DIM, n_classes: int = N_CLASSES
    ) -> None:
        super().__init__()
        self.latent, self.hidden = int(latent), int(hidden)
        self.input_dim, self.n_classes = int(input_dim), int(n_classes)
        self.enc = Dense(self.input_dim + self.n_classes, self.hidden)
        self.enc_mu = Dense(self.hidden, self.latent)
        self.enc_logvar = Dense(self.hidden, self.latent)
        self.dec = Dense(self.latent + self.n_classes, self.hidden)
        self.dec_out = Dense(self.hidden, self.input_dim)

    def reset_parameters(self, gen: torch.Generator) -> None:
        for m in (self.enc, self.enc_mu, self.enc_logvar, self.dec, self.dec_out):
            m.reset_parameters(gen)

    def onehot(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y, self.n_classes).to(torch.float32)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.enc(torch.cat([x, self.onehot(y)], dim=1)))
        return self.enc_mu(h), self.enc_logvar(h)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Pixels (N, 64) in [0, 1] for latents ``z`` (N, latent) and classes ``y`` (N,) int64."""
        h = torch.relu(self.dec(torch.cat([z, self.onehot(y)], dim=1)))
        return torch.sigmoid(self.dec_out(h))

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction logits (N, 64), mu, logvar); ``eps`` ~ N(0, 1) of shape (N, latent)."""
        mu, logvar = self.encode(x, y)
        z = mu + eps * torch.exp(0.5 * logvar)
        h = torch.relu(self.dec(torch.cat([z, self.onehot(y)], dim=1)))
        return self.dec_out(h), mu, logvar

    def loss(self, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Negative ELBO per sample (Bernoulli pixel likelihood + KL), averaged over the batch."""
        logits, mu, logvar = self(x, y, eps)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp())
        return (rec + kl) / x.shape[0]

    @torch.no_grad()
    def generate(self, y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Synthesise one sample per requested class in ``y`` (N,) int64: pixels (N, 64) in [0, 1]."""
        z = torch.randn((y.shape[0], self.latent), generator=gen)
        return self.decode(z, y)
