"""The generator workers: the cloud generator, the edges' generator adapters, the judge and quality tables.

* cloud: a class-and-style conditional :class:`~gaisnet_env.models.CVAE` pre-trained on the public pool in
  every public style; it can render the styles it *knows* (the public ones, plus the personalised styles
  that relay_up has taught it);
* edges: one shared frozen base (:class:`~gaisnet_env.models.LoRACVAE`, pre-trained on the edges' smaller
  clean subset) and one trainable adapter per edge (fine-tuned on the edge's labelled feedback, distilled
  from the cloud generator by relay_down, carried up by relay_up);
* the judge: a fixed classifier of the joint (style, class) label trained on the public pool in every
  style, stronger than the generators (a measuring instrument, not a tier).

Quality of a generator on (style ``s``, class ``c``) = the judge's mean probability of the requested
joint label on ``generate_eval_samples`` generated samples, times a diversity term (mean pairwise
distance of those samples over that of the real test samples of (s, c), clipped to [0, 1]). Tables are
(n_styles, 10) in [0, 1], computed once per weight version (deterministic: fixed sampling seed).

Weights are copy-on-write as in :mod:`gaisnet_env.workers` (``None`` = pre-trained).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from gaisnet_env.models import CVAE, LoRACVAE, MLPClassifier, distil_decoder, generator_flops, train_vae
from gaisnet_env.models.compute_device import resolve_device, run_on
from gaisnet_env.worker_config import N_CLASSES, PERSONAL_STYLES, STYLES, WorkerConfig

#: Styles the pre-trained cloud generator can render (the public styles).
PUBLIC_KNOWN: np.ndarray = np.array([s not in PERSONAL_STYLES for s in STYLES])
_N_STYLES = len(STYLES)
_REAL_DIST: dict[tuple, torch.Tensor] = {}
_PRE_QUALITY: dict[tuple, np.ndarray] = {}


def _finite(tensors: list[torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


class GeneratorSystem:
    """Cloud generator, per-edge generator adapters, the judge and their quality tables.

    ``next_uid`` draws weight tokens from the owning :class:`~gaisnet_env.workers.WorkerSystem`'s counter
    (unique within that system, the quality-table cache key).
    """

    def __init__(self, n_edges: int, config: WorkerConfig, seed: int, pre: dict[str, list[torch.Tensor]],
                 x_eval: torch.Tensor, y_eval: torch.Tensor, key: str, next_uid: Callable[[], int]) -> None:
        self.n_edges, self.config, self.seed = int(n_edges), config, int(seed)
        self.device = resolve_device(config.device)  # where the generators train (models.compute_device)
        self._next_uid = next_uid
        self.cloud = CVAE(config.generator_latent, config.generator_hidden)
        self.cloud.set_weights(pre["generator"])
        self.cloud.eval()
        self._pre_cloud = pre["generator"]
        self.edge = LoRACVAE(config.generator_latent, config.edge_generator_hidden, config.generator_lora_rank)
        self.edge.set_base(pre["edge_generator"])
        self.edge.reset_adapter(torch.Generator().manual_seed(self.seed * 1000 + 98))
        self.edge.eval()
        self._adapter0 = self.edge.get_adapter()
        self.judge = MLPClassifier([x_eval.shape[1], config.reference_hidden, N_CLASSES * _N_STYLES])
        self.judge.set_weights(pre["reference"])
        self.judge.eval()
        self.adapter_bytes = self.edge.adapter_bytes
        self.flops = {"cloud": generator_flops(self.cloud), "edge": generator_flops(self.edge)}
        self._key = (key, self.seed, config.generate_eval_samples)
        if self._key not in _REAL_DIST:
            _REAL_DIST[self._key] = _real_distances(x_eval, y_eval)
        self._real_dist = _REAL_DIST[self._key]
        self._cache: dict[tuple[str, int], np.ndarray] = {}
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Pre-trained generators, zero adapters, the cloud knowing the public styles only."""
        self._cloud_w: list[torch.Tensor] | None = None
        self._adapters: list[list[torch.Tensor] | None] = [None] * self.n_edges
        self.known = PUBLIC_KNOWN.copy()
        self._uid_cloud = 0
        self._uid_edge = [0] * self.n_edges

    def state_dict(self) -> dict:
        return copy.deepcopy({"cloud": self._cloud_w, "adapters": self._adapters, "known": self.known,
                              "uid_cloud": self._uid_cloud, "uid_edge": self._uid_edge})

    def load_state_dict(self, state: dict) -> None:
        s = copy.deepcopy(state)
        self._cloud_w, self._adapters, self.known = s["cloud"], s["adapters"], s["known"]
        self._uid_cloud, self._uid_edge = s["uid_cloud"], s["uid_edge"]

    def uids(self) -> tuple[int, ...]:
        """Weight tokens (cloud, edge 0, edge 1, ...): equal tokens mean equal quality tables."""
        return (self._uid_cloud, *self._uid_edge)

    def versions(self) -> dict[str, object]:
        return {"cloud": self._uid_cloud, "edge": list(self._uid_edge)}

    # ------------------------------------------------------------------ weights
    def adapter(self, edge: int) -> list[torch.Tensor]:
        a = self._adapters[edge]
        return a if a is not None else self._adapter0

    def load(self, where: str, edge: int = 0, adapter: list[torch.Tensor] | None = None) -> CVAE:
        """The working module of ``where`` ("cloud" or "edge") with its current weights (edge: ``edge``'s
        adapter, or ``adapter`` if given)."""
        if where == "cloud":
            self.cloud.set_weights(self._cloud_w if self._cloud_w is not None else self._pre_cloud)
            return self.cloud
        if where == "edge":
            self.edge.set_adapter(adapter if adapter is not None else self.adapter(edge))
            return self.edge
        raise ValueError(f"unknown generator site {where!r}; expected 'edge' or 'cloud'")

    def commit_edge(self, edge: int, adapter: list[torch.Tensor]) -> None:
        self._adapters[edge] = adapter
        self._uid_edge[edge] = self._next_uid()

    def commit_cloud(self, weights: list[torch.Tensor] | None, learned: np.ndarray) -> None:
        """New cloud generator weights (None: unchanged) and the styles it has now learnt to render."""
        if weights is not None:
            self._cloud_w = weights
            self._uid_cloud = self._next_uid()
        self.known = self.known | np.asarray(learned, dtype=bool)

    # ------------------------------------------------------------------ training
    def train_edge(self, edge: int, x: torch.Tensor, y: torch.Tensor, style: torch.Tensor, epochs: int,
                   gen: torch.Generator) -> list[torch.Tensor] | None:
        """``edge``'s generator adapter trained on (x, y, style) (its feedback or relayed samples);
        None if the guard tripped. The live adapter is unchanged (the result is pending)."""
        vae = self.load("edge", edge)
        cfg = self.config
        with run_on(self.device, vae) as to:
            ok = train_vae(vae, vae.adapter_parameters(), to(x), to(y), to(style), epochs=epochs,
                           lr=cfg.generator_lr, batch=cfg.generator_batch_size, gen=gen)
        new = vae.get_adapter()
        return new if ok and _finite(new) else None

    def distil(self, where: str, edge: int, z: torch.Tensor, y: torch.Tensor, style: torch.Tensor,
               target: torch.Tensor, gen: torch.Generator) -> list[torch.Tensor] | None:
        """The generator at ``where`` ("edge": ``edge``'s adapter; "cloud": all its weights) distilled onto
        a teacher's outputs ``target`` for latents ``z`` and conditions (y, style)
        (:func:`~gaisnet_env.models.distil_decoder`); None if the guard tripped. Live weights unchanged."""
        vae = self.load(where, edge)
        cfg = self.config
        with run_on(self.device, vae) as to:
            params = vae.adapter_parameters() if where == "edge" else list(vae.parameters())
            ok = distil_decoder(vae, params, to(z), to(y), to(style), to(target), epochs=cfg.generator_epochs,
                                lr=cfg.generator_lr, batch=cfg.generator_batch_size, gen=gen)
        new = vae.get_adapter() if where == "edge" else vae.get_weights()
        return new if ok and _finite(new) else None

    # ------------------------------------------------------------------ quality
    def quality_table(self, where: str, edge: int = 0) -> np.ndarray:
        """(n_styles, 10) read-only quality x diversity of the generator at ``where`` (edge: ``edge``'s)."""
        uid = self._uid_cloud if where == "cloud" else self._uid_edge[edge]
        if uid == 0:
            pre_key = (*self._key, where)
            if pre_key not in _PRE_QUALITY:
                _PRE_QUALITY[pre_key] = self._compute(self.load(where, edge))
            return _PRE_QUALITY[pre_key]
        key = (where, uid)
        if key not in self._cache:
            if len(self._cache) > 4 * (self.n_edges + 1):
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = self._compute(self.load(where, edge))
        return self._cache[key]

    def _compute(self, vae: CVAE) -> np.ndarray:
        n = self.config.generate_eval_samples
        style = torch.arange(_N_STYLES).repeat_interleave(N_CLASSES * n)
        y = torch.arange(N_CLASSES).repeat_interleave(n).repeat(_N_STYLES)
        x = vae.generate(y, style, torch.Generator().manual_seed(self.seed * 1000 + 7))
        with torch.no_grad():
            p = torch.softmax(self.judge(x), dim=1)
        score = p[torch.arange(x.shape[0]), style * N_CLASSES + y].reshape(_N_STYLES * N_CLASSES, n).mean(1)
        xg = x.reshape(_N_STYLES * N_CLASSES, n, -1)
        dg = torch.cdist(xg, xg).sum((1, 2)) / (n * (n - 1))
        diversity = torch.clamp(dg / self._real_dist, 0.0, 1.0)
        table = (score * diversity).reshape(_N_STYLES, N_CLASSES).double().numpy()
        table.setflags(write=False)
        return table


def _real_distances(x_eval: torch.Tensor, y_eval: torch.Tensor) -> torch.Tensor:
    """(n_styles * 10,) mean pairwise distance of the real test samples of each (style, class)."""
    n_test = x_eval.shape[0] // _N_STYLES
    out = torch.empty(_N_STYLES * N_CLASSES)
    for s in range(_N_STYLES):
        xs, ys = x_eval[s * n_test : (s + 1) * n_test], y_eval[s * n_test : (s + 1) * n_test]
        for c in range(N_CLASSES):
            xc = xs[ys == c]
            m = xc.shape[0]
            out[s * N_CLASSES + c] = torch.cdist(xc, xc).sum() / max(m * (m - 1), 1)
    return out.clamp_min(1e-6)


__all__ = ["PUBLIC_KNOWN", "GeneratorSystem"]
