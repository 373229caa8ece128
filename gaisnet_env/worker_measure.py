"""What :class:`~gaisnet_env.workers.WorkerSystem` measures of its models: versions, accuracy tables on
the held-out test pool (cached per weight token), generation quality, FLOPs and bytes per model. A
mixin: the models and caches are the system's."""

from __future__ import annotations

import numpy as np
import torch

from gaisnet_env.core import exact_sums
from gaisnet_env.models import (
    classifier_flops,
)
from gaisnet_env.worker_config import N_CLASSES, STYLES

CLASSIFIER_TIERS: tuple[str, ...] = ("end", "edge", "cloud")
GENERATOR_SITES: tuple[str, ...] = ("edge", "cloud")
#: accuracy tables kept per system (least recently used dropped)
_ACC_CACHE_SIZE = 4096



class Measurements:
    """Accuracy and generation tables, versions, FLOPs and sizes of the system's models."""

    def version(self, tier: str, edge: int) -> int:
        """Version of ``tier``'s classifier at ``edge`` (cloud: one teacher for all): the number of weight
        changes committed since ``reset`` (0 = pre-trained); restored by ``load_state_dict``."""
        if tier == "cloud":
            return self._ver_cloud
        if tier == "edge":
            return self._ver_edge[edge]
        if tier == "end":
            return self._ver_end[edge]
        raise ValueError(f"unknown tier {tier!r}")

    def _uid(self, tier: str, edge: int) -> int:
        """Token of the current weights, unique within this system (0 = pre-trained): the cache key."""
        if tier == "cloud":
            return self._uid_cloud
        if tier == "edge":
            return self._uid_edge[edge]
        if tier == "end":
            return self._uid_end[edge]
        raise ValueError(f"unknown tier {tier!r}")

    def _compute_table(self, tier: str, edge: int) -> np.ndarray:
        return self._table_of(self._classifier(tier, edge))

    def _table_of(self, model: torch.nn.Module) -> np.ndarray:
        """(n_styles, 10) accuracy of ``model`` as loaded, per (style, class) of the held-out test pool."""
        with torch.no_grad():
            pred = model(self._x_eval).argmax(1)
        correct = (pred == self._y_eval).numpy().reshape(len(STYLES), self._n_test).astype(np.float64)
        return exact_sums.matmul(correct, self._class_avg)  # the same bits on every machine (no BLAS)

    def accuracy_table(self, tier: str, edge: int, use_cache: bool = True) -> np.ndarray:
        """(n_styles, 10) accuracy per (style, class) on the held-out test pool, of ``tier``'s current
        classifier at ``edge``. Cached per weight version: no forward pass while weights are unchanged.
        ``use_cache=False`` forces a forward pass (for checks). Do not modify the returned array."""
        ver = self._uid(tier, edge)
        if use_cache:
            if ver == 0:
                return self._pre_tables[tier]
            key = (tier, ver)
            table = self._acc_cache.get(key)
            if table is not None:
                self._acc_cache.move_to_end(key)
                return table
        table = self._compute_table(tier, edge)
        table.setflags(write=False)
        if use_cache:
            self._acc_cache[(tier, ver)] = table
            if len(self._acc_cache) > _ACC_CACHE_SIZE:
                self._acc_cache.popitem(last=False)
        return table

    def accuracy(self, tier: str, edge: int, class_mix: np.ndarray, style_mix: np.ndarray) -> float:
        """Expected accuracy on a domain: ``sum_s style_mix[s] * sum_c class_mix[c] * table[s, c]``."""
        table = self.accuracy_table(tier, edge)
        return float(exact_sums.domain_mean(table, style_mix, class_mix))

    def accuracy_all(self, class_mix: np.ndarray, style_mix: np.ndarray) -> np.ndarray:
        """(E, 3) expected accuracy of the end, edge and cloud classifiers (``CLASSIFIER_TIERS`` order) of
        every edge on its domain: row ``e`` is :meth:`accuracy` of each tier at ``e`` with ``class_mix[e]``
        (E, 10) and ``style_mix[e]`` (E, n_styles), over a stacked table that is rebuilt only for the weights
        that changed (the same sums as :meth:`accuracy`, :func:`~gaisnet_env.core.exact_sums.domain_mean`)."""
        tables = self._stacked_tables()  # (E, 3, S, 10)
        sm = np.asarray(style_mix, dtype=np.float64)[:, None, :]
        cm = np.asarray(class_mix, dtype=np.float64)[:, None, :]
        return exact_sums.domain_mean(tables, sm, cm)

    def _stacked_tables(self) -> np.ndarray:
        """The accuracy tables of every (edge, tier), (E, 3, S, 10), kept in sync with the weight tokens."""
        uids = np.array([*self._uid_end, *self._uid_edge, *[self._uid_cloud] * self.n_edges], dtype=np.int64)
        cached = getattr(self, "_stack_cache", None)
        if cached is None:
            stack = np.empty((self.n_edges, len(CLASSIFIER_TIERS), len(STYLES), N_CLASSES))
            old = np.full(uids.shape, -1, dtype=np.int64)
        else:
            old, stack = cached
            if np.array_equal(old, uids):
                return stack
            stack = stack.copy()  # the previous array may still be referenced
        changed = np.flatnonzero(old != uids)
        for k in changed:
            j, e = divmod(int(k), self.n_edges)
            stack[e, j] = self.accuracy_table(CLASSIFIER_TIERS[j], e)
        stack.setflags(write=False)
        self._stack_cache = (uids, stack)
        return stack

    def generation_table(self, where: str, edge: int = 0) -> np.ndarray:
        """(n_styles, 10) quality in [0, 1] of the generator at ``where`` ("edge": ``edge``'s adapter, or
        "cloud") per requested (style, class): the judge's mean probability of the requested joint label
        on generated samples times their diversity (:mod:`gaisnet_env.generation`). Cached per weight
        version. Do not modify the returned array."""
        if where not in GENERATOR_SITES:
            raise ValueError(f"unknown generator site {where!r}; expected one of {GENERATOR_SITES}")
        return self.gens.quality_table(where, edge)

    def inference_flops(self, tier: str) -> float:
        """Counted forward FLOPs per sample of ``tier``'s classifier (cloud ``mixture``: the teacher, the gate
        and every edge's expert, as once all edges have relayed up)."""
        name = {"cloud": "teacher", "edge": "edge", "end": "end"}[tier]
        if tier == "cloud" and self._mixture is not None:
            return self._flops["teacher"][0] + classifier_flops(self._mixture.gate)[0] + self.n_edges * (
                self._flops["edge"][0])
        return self._flops[name][0]

    def training_flops(self, tier: str) -> float:
        """Counted forward+backward FLOPs per training sample (edge: adapter only)."""
        name = {"cloud": "teacher", "edge": "edge", "end": "end"}[tier]
        return self._flops[name][1]

    def generation_flops(self, where: str) -> float:
        """Counted FLOPs to generate one sample at ``where`` ("edge" or "cloud")."""
        return self._flops["gen_" + where][0]

    def model_bytes(self, tier: str) -> int:
        """Parameter bytes of ``tier``'s classifier (edge: frozen base plus adapter)."""
        return {"cloud": self._teacher.n_bytes, "edge": self._edge.n_bytes, "end": self._end.n_bytes}[tier]

    def generator_bytes(self, where: str) -> int:
        """Parameter bytes of the generator at ``where`` ("edge": frozen base plus adapter, or "cloud")."""
        return (self.gens.edge if where == "edge" else self.gens.cloud).n_bytes
