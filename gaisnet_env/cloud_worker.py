"""The cloud worker's side of the knowledge operations: what it sees (the public pool, its own models,
domain reports, adapters) and how it synthesises and labels samples, plus the shared training step."""

from __future__ import annotations

import numpy as np
import torch

from gaisnet_env.data import PoolView
from gaisnet_env.generation import GeneratorSystem
from gaisnet_env.models import (
    MLPClassifier,
    train_classifier,
)
from gaisnet_env.models.classifiers import INPUT_CENTRE
from gaisnet_env.models.compute_device import CPU, run_on
from gaisnet_env.worker_config import PERSONAL_STYLES, STYLES, WorkerConfig

_PUBLIC_IDX = np.array([k for k, s in enumerate(STYLES) if s not in PERSONAL_STYLES], dtype=np.int64)


def _train(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, *, soft: bool, epochs: int, lr: float,
           batch: int, temperature: float, gen: torch.Generator,
           anchor: tuple[torch.Tensor, torch.Tensor, float] | None = None, device: torch.device = CPU) -> bool:
    """Adam on shuffled mini-batches (:func:`~gaisnet_env.models.train_classifier`) on ``device`` (the model
    comes back to the CPU; :mod:`~gaisnet_env.models.compute_device`); False if the trained tensors became
    non-finite. The models are left in eval mode (they have no train-only layers)."""
    with run_on(device, model) as to:
        if anchor is not None:
            anchor = (to(anchor[0]), to(anchor[1]), anchor[2])
        return train_classifier(model, to(x), to(target), soft=soft, epochs=epochs, lr=lr, batch=batch,
                                temperature=temperature, gen=gen, centre=INPUT_CENTRE, anchor=anchor)


def _sample_categorical(probs: np.ndarray, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` draws (int64) from the probabilities ``probs`` with a torch generator."""
    p = torch.as_tensor(np.asarray(probs, dtype=np.float64), dtype=torch.float64)
    if float(p.sum()) <= 0:
        p = torch.ones_like(p)
    return torch.multinomial(p, n, replacement=True, generator=gen)


class _Cloud:
    """The cloud worker. It sees the public pool, its own models, domain reports and adapters only."""

    def __init__(
        self,
        config: WorkerConfig,
        public: PoolView,
        teacher: MLPClassifier,
        gens: GeneratorSystem,
        edge_base: list[torch.Tensor],
    ) -> None:
        self.config = config
        self.public = public
        self.teacher = teacher
        self.gens = gens
        self.edge_base = edge_base  # the cloud pre-trained the edges' base, so it knows it

    def known_share(self, style_hist: np.ndarray) -> float:
        """Share of a reported style histogram in styles the cloud generator can render."""
        h = np.asarray(style_hist, dtype=np.float64)
        return float(h[self.gens.known].sum() / h.sum()) if h.sum() > 0 else 0.0

    def synthesise(
        self, class_hist: np.ndarray, style_hist: np.ndarray, n: int, gen: torch.Generator,
        edge_adapter: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` synthetic samples for a reported domain: classes drawn from ``class_hist`` and styles from
        ``style_hist`` (styles are sensor metadata, not raw data), rendered by the cloud generator:
        (x (n, 64), classes (n,), styles (n,), latents (n, latent)). Without ``edge_adapter`` the cloud renders
        only the styles it knows (``style_hist`` restricted to them; all clean if it has no mass there). With an edge's
        uploaded generator adapter (relay_up), styles the cloud does not know are rendered by that edge's
        generator instead (the bottom-up direction)."""
        h = np.asarray(style_hist, dtype=np.float64)
        known = self.gens.known
        if edge_adapter is None:
            h = np.where(known, h, 0.0)
        y = _sample_categorical(class_hist, n, gen)
        styles = _sample_categorical(h, n, gen) if h.sum() > 0 else torch.zeros(n, dtype=torch.int64)
        z, x = self.gens.load("cloud").sample(y, styles, gen)
        if edge_adapter is not None:
            unknown = torch.from_numpy(~known)[styles]
            if bool(unknown.any()):
                x[unknown] = self.gens.load("edge", adapter=edge_adapter).sample(
                    y[unknown], styles[unknown], gen, z=z[unknown])[1]
        return x, y, styles, z

    def soft_labels(self, logits: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """Probabilities at ``temperature`` (default ``distill_temperature``)."""
        t = self.config.distill_temperature if temperature is None else temperature
        return torch.softmax(logits / t, dim=1)

    def selective_targets(self, cloud_logits: torch.Tensor, expert_logits: torch.Tensor,
                          temperature: float | None = None) -> torch.Tensor:
        """Distillation targets for the cloud model on samples where it output ``cloud_logits``: the edge
        experts' soft labels where the expert is surer (top-class probability at T=1) than the cloud model,
        else the cloud's own, so the cloud learns what the edges know better and keeps what it knows better."""
        surer = torch.softmax(expert_logits, 1).amax(1) > torch.softmax(cloud_logits, 1).amax(1)
        return torch.where(surer[:, None], self.soft_labels(expert_logits, temperature),
                           self.soft_labels(cloud_logits, temperature))

    def public_samples(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` public samples (x, classes, styles) drawn with replacement, each in a uniformly drawn public
        style (the cloud's own pre-training data, which it replays so that distillation does not erase it)."""
        pos = torch.randint(len(self.public), (n,), generator=gen).numpy()
        style = _PUBLIC_IDX[torch.randint(_PUBLIC_IDX.size, (n,), generator=gen).numpy()]
        x, y = self.public.get(self.public.indices[pos], style)
        return x, y, torch.from_numpy(style)
