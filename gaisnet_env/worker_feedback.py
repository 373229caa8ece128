"""The labelled feedback each edge keeps (a ring buffer of sample indices and styles per edge), what
the operator can score on it, and the domain report an edge sends. A mixin of
:class:`~gaisnet_env.workers.WorkerSystem`."""

from __future__ import annotations

import numpy as np
import torch

from gaisnet_env.models import lora_logits, mlp_logits
from gaisnet_env.worker_config import N_CLASSES, STYLES
from gaisnet_env.worker_measure import CLASSIFIER_TIERS

#: Label-scoring rows of the pre-trained weights (weight token 0), shared by every workers object of the
#: process with the same models, seed and data split: (cache key, seed, edges, tier, edge, style) -> row.
_PRE_CORRECT: dict[tuple, np.ndarray] = {}


class FeedbackBuffers:
    """Feedback rings per edge: adding labelled samples, reading the newest, scoring them."""

    def add_feedback(
        self, edge: int, class_mix: np.ndarray, style_mix: np.ndarray, n: int, rng: np.random.Generator
    ) -> None:
        """Append ``n`` labelled samples of the edge's requests (drawn from its private pool with
        ``data.sample_private``) to its ring buffer of the ``feedback_buffer`` most recent samples."""
        n = int(n)
        if n <= 0:
            return
        idx, style = self.data.sample_private(edge, class_mix, style_mix, n, rng)
        write_rings((self._fb_idx, self._fb_style, self._fb_ptr, self._fb_count, self._fb_new),
                    np.array([edge], dtype=np.int64), np.array([n], dtype=np.int64), idx, style)
        self._fb_writes += 1

    def add_feedback_batch(
        self, edges: np.ndarray, class_mix: np.ndarray, style_mix: np.ndarray, n: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """:meth:`add_feedback` for several edges (``class_mix`` (k, 10), ``style_mix`` (k, S) and ``n`` (k,)
        per edge of ``edges``) in one draw; the same samples and ``rng`` state as calling it edge by edge."""
        edges = np.asarray(edges, dtype=np.int64)
        n = np.asarray(n, dtype=np.int64)
        keep = n > 0
        if not keep.all():
            edges, class_mix, style_mix, n = edges[keep], class_mix[keep], style_mix[keep], n[keep]
        if edges.size == 0:
            return
        idx, style, _ = self.data.sample_private_batch(edges, class_mix, style_mix, n, rng)
        write_rings((self._fb_idx, self._fb_style, self._fb_ptr, self._fb_count, self._fb_new), edges, n, idx, style)
        self._fb_writes += 1

    def feedback_count(self, edge: int) -> int:
        """Samples in the edge's feedback buffer."""
        return int(self._fb_count[edge])

    def label_hits(self, edge: int, n: int) -> np.ndarray:
        """Correct predictions (3,) of the end, edge and cloud classifiers (``CLASSIFIER_TIERS`` order) of
        ``edge`` (current weights) on its ``n`` newest feedback samples: real private samples with their
        real labels, never the test pool. ``n`` is clipped to the samples in the buffer; no RNG is used.
        Returns float64 counts (whole numbers here; the fast path returns expected counts).

        Each sample is scored by a table of the live model's predictions on the edge's whole private pool
        in the sample's style (:meth:`_fill_correct`), computed once per weight token: the same count as a
        forward pass on the samples themselves, up to logits within float rounding of a tie."""
        return self.label_hits_batch(np.array([edge]), np.array([n]))[0]

    def label_hits_batch(self, edges: np.ndarray, n: np.ndarray) -> np.ndarray:
        """:meth:`label_hits` of several edges at once: ``(k, 3)`` for ``edges`` (k,) and ``n`` (k,)."""
        edges = np.asarray(edges, dtype=np.int64)
        out = np.zeros((edges.size, len(CLASSIFIER_TIERS)))
        row, idx, style = self._newest_batch(edges, np.asarray(n, dtype=np.int64))
        if idx.size == 0:
            return out
        e_s = edges[row]
        self._check_own_pool(idx, e_s, "label_hits")
        table, done = self._correct_tables()
        pos = self._pool_index[1][idx]
        for t in range(len(CLASSIFIER_TIERS)):
            missing = ~done[t, e_s, style]
            if missing.any():
                for e, st in set(zip(e_s[missing].tolist(), style[missing].tolist(), strict=True)):
                    self._fill_correct(t, e, st)
            out[:, t] = np.bincount(row, weights=table[t, e_s, style, pos], minlength=edges.size)
        return out

    def _correct_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The label-scoring tables: ``correct`` (3, E, n_styles, largest pool) bool, whether each tier's
        live classifier at each edge labels each sample of the edge's private pool right in each style, and
        ``filled`` (3, E, n_styles) bool, which rows are computed for the current weight tokens (rows of
        weights that changed since are marked unfilled here)."""
        memo = self._correct_memo
        uids = np.array([self._uid_end, self._uid_edge, [self._uid_cloud] * self.n_edges], dtype=np.int64)
        if "uids" not in memo:
            largest = max(len(v) for v in self._views)
            memo["correct"] = np.zeros((len(CLASSIFIER_TIERS), self.n_edges, len(STYLES), largest), dtype=bool)
            memo["filled"] = np.zeros((len(CLASSIFIER_TIERS), self.n_edges, len(STYLES)), dtype=bool)
            memo["uids"] = np.full_like(uids, -1)
        changed = memo["uids"] != uids
        if changed.any():
            memo["filled"][changed] = False
            memo["uids"] = uids
        return memo["correct"], memo["filled"]

    def _fill_correct(self, t: int, edge: int, style: int) -> None:
        """Row (tier ``t``, ``edge``, ``style``) of the label-scoring table: one forward pass of the live
        classifier over the edge's whole private pool in that style, so a row's values never depend on
        which samples were asked for or when (a restored or fresh instance computes the same bits)."""
        view = self._views[edge]
        tier = CLASSIFIER_TIERS[t]
        uid = self._uid_cloud if tier == "cloud" else (self._uid_edge if tier == "edge" else self._uid_end)[edge]
        key = (self._key, self.seed, self.n_edges, t, edge, style)
        right = _PRE_CORRECT.get(key) if uid == 0 else None  # token 0: the pre-trained weights
        if right is None:
            x, y = view.get(view.indices, np.full(len(view), style))
            with torch.no_grad():
                right = (self._live_logits(tier, edge, x).argmax(1) == y).numpy()
            if uid == 0:
                right.setflags(write=False)
                _PRE_CORRECT[key] = right
        self._correct_memo["correct"][t, edge, style, : len(view)] = right
        self._correct_memo["filled"][t, edge, style] = True

    @property
    def _pool_index(self) -> tuple[np.ndarray, np.ndarray]:
        """For every global sample index: the edge whose private pool holds it and its position there
        (both -1 where no private pool holds it)."""
        memo = self.__dict__.get("_pool_index_memo")
        if memo is None:
            owner = np.full(self.data.y.shape[0], -1, dtype=np.int64)
            pos = np.full(self.data.y.shape[0], -1, dtype=np.int64)
            for e, v in enumerate(self._views):
                owner[v.indices] = e
                pos[v.indices] = np.arange(len(v))
            memo = self._pool_index_memo = (owner, pos)
        return memo

    def _check_own_pool(self, idx: np.ndarray, edges: np.ndarray, caller: str) -> None:
        """Raise PermissionError unless sample ``idx[k]`` lies in the private pool of ``edges[k]``."""
        if not np.array_equal(self._pool_index[0][idx], edges):
            raise PermissionError(f"{caller}: a feedback buffer holds samples outside its edge's pool")

    def _newest_batch(self, edges: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``n[r]`` newest feedback samples of each ``edges[r]`` (at most its buffer), edge by edge in
        the order of ``edges``, each oldest first: (row r of each sample, global indices, styles)."""
        return newest_in_rings(self._fb_idx, self._fb_style, self._fb_ptr, self._fb_count, edges, n)

    def _live_logits(self, tier: str, edge: int, x: torch.Tensor) -> torch.Tensor:
        """Logits of ``tier``'s live classifier at ``edge`` on ``x`` (N, 64), straight from the stored weights
        (no copy into the working modules; the same numbers as ``_classifier(tier, edge)(x)``)."""
        if tier == "end":
            w = self._ends[edge]
            return mlp_logits(x, w if w is not None else self._pre["end"])
        if tier == "edge":
            return lora_logits(self._edge, x, self._adapter(edge))
        if self._mixture is None:
            return mlp_logits(x, self._teacher_w if self._teacher_w is not None else self._pre["teacher"])
        return self._classifier(tier, edge)(x)

    def _newest_feedback(self, edge: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(global indices, styles) of the edge's ``n`` newest feedback samples (at most the buffer's)."""
        _, idx, style = self._newest_batch(np.array([edge]), np.array([n]))
        return idx, style

    def _feedback(self, edge: int) -> tuple[np.ndarray, np.ndarray]:
        n = self._fb_count[edge]
        return self._fb_idx[edge][:n], self._fb_style[edge][:n]

    def domain_reports(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`domain_report` of every edge at once: class histograms (E, 10) and style histograms
        (E, n_styles), float32 shares of each feedback buffer, and the samples in it (E,) int64."""
        owner, idx, style = ring_samples(self._fb_idx, self._fb_style, self._fb_count)
        self._check_own_pool(idx, owner, "domain_reports")
        return ring_histograms(owner, self.data.y[idx], style, self._fb_count)

    def domain_report(self, edge: int) -> tuple[np.ndarray, np.ndarray, int]:
        """What the edge may tell the cloud about its domain: class histogram (10,) and style histogram
        (n_styles,) as float32 shares of its feedback buffer, and the number of samples in it."""
        idx, style = self._feedback(edge)
        n = int(idx.shape[0])
        if n == 0:
            return np.zeros(N_CLASSES, np.float32), np.zeros(len(STYLES), np.float32), 0
        labels = self._views[edge].labels_of(idx)
        ch = (np.bincount(labels, minlength=N_CLASSES) / n).astype(np.float32)
        sh = (np.bincount(style, minlength=len(STYLES)) / n).astype(np.float32)
        return ch, sh, n


def write_rings(rings: tuple[np.ndarray, ...], rows: np.ndarray, n: np.ndarray, idx: np.ndarray,
                style: np.ndarray) -> None:
    """Append ``n[k]`` drawn samples (global indices ``idx``, styles ``style``, row by row in the order of
    ``rows``) to ring ``rows[k]`` of ``rings`` = (indices (R, cap), styles (R, cap), pointers, counts,
    uploads (R,)), in place; a ring keeps its ``cap`` newest. ``rows`` are distinct (one edge's ring, or
    one (copy, edge) ring of the native vector env)."""
    ring_idx, ring_style, ptr, count, new = rings
    cap = ring_idx.shape[-1]
    kept = np.minimum(n, cap)
    draw_row = np.repeat(np.arange(rows.size), n)
    skip = (n - kept)[draw_row]
    j = np.arange(idx.size) - (np.cumsum(n) - n)[draw_row] - skip  # position among the kept, < 0: dropped
    keep = j >= 0
    r = rows[draw_row[keep]]
    pos = (ptr[r] + j[keep]) % cap
    ring_idx[r, pos] = idx[keep]
    ring_style[r, pos] = style[keep]
    ptr[rows] = (ptr[rows] + kept) % cap
    count[rows] = np.minimum(count[rows] + kept, cap)
    new[rows] += n


def evicted(rings: tuple[np.ndarray, ...], rows: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                    np.ndarray]:
    """The samples that :func:`write_rings` of ``n[k]`` samples to ring ``rows[k]`` (distinct rows) will
    overwrite: (ring of each, global indices, styles). A ring of ``count`` samples at pointer ``ptr`` holds
    positions ``ptr - count .. ptr - 1``; its ``j``-th kept write lands on ``(ptr + j) % cap``, which holds a
    sample when ``j >= cap - count``."""
    ring_idx, ring_style, ptr, count = rings[:4]
    cap = ring_idx.shape[-1]
    first = cap - count[rows]
    n_ev = np.maximum(np.minimum(n, cap) - first, 0)
    r = np.repeat(rows, n_ev)
    j = np.arange(r.size) - np.repeat(np.cumsum(n_ev) - n_ev - first, n_ev)
    pos = (ptr[r] + j) % cap
    return r, ring_idx[r, pos], ring_style[r, pos]


def newest_in_rings(ring_idx: np.ndarray, ring_style: np.ndarray, ptr: np.ndarray, count: np.ndarray,
                    rows: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``n[k]`` newest samples of ring ``rows[k]`` (at most its count), ring by ring in the order of
    ``rows``, each oldest first: (k of each sample, global indices, styles)."""
    cnt = np.maximum(np.minimum(n, count[rows]), 0)
    if not cnt.any():
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    cap = ring_idx.shape[-1]
    j = np.arange(int(cnt.max()))
    valid = j[None, :] < cnt[:, None]
    ring_pos = (ptr[rows][:, None] - cnt[:, None] + j[None, :]) % cap
    k = np.broadcast_to(np.arange(rows.size)[:, None], valid.shape)
    r = np.broadcast_to(rows[:, None], valid.shape)
    return k[valid], ring_idx[r, ring_pos][valid], ring_style[r, ring_pos][valid]


def ring_samples(ring_idx: np.ndarray, ring_style: np.ndarray,
                 count: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every sample held in rings (R, cap) of ``count`` (R,) samples: (ring of each, global indices, styles)."""
    valid = np.arange(ring_idx.shape[-1])[None, :] < count[:, None]
    return np.repeat(np.arange(count.shape[0]), count), ring_idx[valid], ring_style[valid]


def ring_histograms(owner: np.ndarray, labels: np.ndarray, style: np.ndarray,
                    count: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Domain reports of R rings from their samples (ring ``owner``, ``labels`` and ``style`` of each):
    class (R, 10) and style (R, n_styles) float32 shares of each ring, and its samples ``count`` (R,)."""
    R = count.shape[0]  # noqa: N806
    ch = np.bincount(owner * N_CLASSES + labels, minlength=R * N_CLASSES).reshape(R, N_CLASSES)
    sh = np.bincount(owner * len(STYLES) + style, minlength=R * len(STYLES)).reshape(R, len(STYLES))
    n = np.maximum(count, 1)[:, None]
    return (ch / n).astype(np.float32), (sh / n).astype(np.float32), count.astype(np.int64)
