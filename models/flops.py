"""FLOPs per sample, counted (not guessed) with ``torch.utils.flop_counter.FlopCounterMode``.

The counter sees the matrix products and convolutions that PyTorch really dispatches (2 FLOPs per
multiply-add); element-wise work (activations, losses, optimiser updates) is not counted. Results
are cached per architecture key, so every architecture is counted once per process.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import torch
import torch.nn.functional as F
from gaisnet_env.models.classifiers import LoRAClassifier, MLPClassifier
from gaisnet_env.models.vae import CVAE
from torch.utils.flop_counter import FlopCounterMode

#: Batch used for counting (FLOPs of these models are linear in the batch).
_COUNT_BATCH = 8
_CACHE: dict[Hashable, float] = {}


def count_flops(fn: Callable[[], object]) -> float:
    """Total FLOPs that ``fn()`` dispatches."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def _cached(key: Hashable, fn: Callable[[], float]) -> float:
    if key not in _CACHE:
        _CACHE[key] = fn()
    return _CACHE[key]


def _fresh(model: torch.nn.Module) -> torch.nn.Module:
    """A copy with independent parameters (counting must not touch live weights)."""
    import copy

    return copy.deepcopy(model)


def classifier_flops(model: MLPClassifier | LoRAClassifier) -> tuple[float, float]:
    """(forward FLOPs per sample, forward+backward FLOPs per training sample) of a classifier.

    Training counts what an optimiser step needs: for a LoRA model only the adapters get gradients.
    """
    key = (type(model).__name__, model.sizes, getattr(model, "rank", None))

    def fwd() -> float:
        x = torch.zeros(_COUNT_BATCH, model.sizes[0])
        with torch.no_grad():
            return count_flops(lambda: model(x)) / _COUNT_BATCH

    def train() -> float:
        m = _fresh(model)
        x = torch.zeros(_COUNT_BATCH, model.sizes[0])
        y = torch.zeros(_COUNT_BATCH, dtype=torch.long)

        def step() -> None:
            F.cross_entropy(m(x), y).backward()

        return count_flops(step) / _COUNT_BATCH

    return _cached(key + ("fwd",), fwd), _cached(key + ("train",), train)


def generator_flops(model: CVAE) -> tuple[float, float]:
    """(FLOPs to generate one sample = decoder forward, FLOPs per VAE training sample) of a CVAE (for a
    :class:`~gaisnet_env.models.vae.LoRACVAE` only the adapter gets gradients)."""
    key = (type(model).__name__, model.latent, model.hidden, model.input_dim, model.n_classes, model.n_styles,
           getattr(model, "rank", None))
    y = torch.zeros(_COUNT_BATCH, dtype=torch.long)

    def gen() -> float:
        g = torch.Generator().manual_seed(0)
        return count_flops(lambda: model.generate(y, y, g)) / _COUNT_BATCH

    def train() -> float:
        m = _fresh(model)
        x = torch.zeros(_COUNT_BATCH, model.input_dim)
        eps = torch.zeros(_COUNT_BATCH, model.latent)
        return count_flops(lambda: m.loss(x, y, y, eps).backward()) / _COUNT_BATCH

    return _cached(key + ("gen",), gen), _cached(key + ("train",), train)


def decoder_distil_flops(model: CVAE) -> float:
    """FLOPs per sample of data-free generator distillation (decoder forward + backward on a latent and a
    condition, :func:`~gaisnet_env.models.vae.distil_decoder`; LoRACVAE: adapter gradients only)."""
    key = (type(model).__name__, model.latent, model.hidden, model.input_dim, model.n_classes, model.n_styles,
           getattr(model, "rank", None), "distil")

    def step() -> float:
        m = _fresh(model)
        y = torch.zeros(_COUNT_BATCH, dtype=torch.long)
        z = torch.zeros(_COUNT_BATCH, model.latent)
        target = torch.zeros(_COUNT_BATCH, model.input_dim)

        def run() -> None:
            logits = m.decode_logits(z, m.condition(y, y))
            F.binary_cross_entropy_with_logits(logits, target, reduction="sum").backward()

        return count_flops(run) / _COUNT_BATCH

    return _cached(key, step)
