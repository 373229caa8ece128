"""The labelled feedback each edge keeps (a ring buffer of sample indices and styles per edge), what
the operator can score on it, and the domain report an edge sends. A mixin of
:class:`~gaisnet_env.workers.WorkerSystem`."""

from __future__ import annotations

import numpy as np
import torch

from gaisnet_env.models import lora_logits, mlp_logits
from gaisnet_env.worker_config import N_CLASSES, STYLES
from gaisnet_env.worker_measure import CLASSIFIER_TIERS


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
        self._fb_new[edge] += n
        cap = self.config.feedback_buffer
        if n > cap:
            idx, style, n = idx[-cap:], style[-cap:], cap
        pos = (self._fb_ptr[edge] + np.arange(n)) % cap
        self._fb_idx[edge][pos] = idx
        self._fb_style[edge][pos] = style
        self._fb_ptr[edge] = int((self._fb_ptr[edge] + n) % cap)
        self._fb_count[edge] = min(self._fb_count[edge] + n, cap)

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
        cap = self.config.feedback_buffer
        end = np.cumsum(n)
        for e, k, stop in zip(edges.tolist(), n.tolist(), end.tolist(), strict=True):
            lo = stop - min(k, cap)
            m = stop - lo
            ptr = self._fb_ptr[e]
            if ptr + m <= cap:
                self._fb_idx[e][ptr : ptr + m] = idx[lo:stop]
                self._fb_style[e][ptr : ptr + m] = style[lo:stop]
            else:
                pos = (ptr + np.arange(m)) % cap
                self._fb_idx[e][pos] = idx[lo:stop]
                self._fb_style[e][pos] = style[lo:stop]
            self._fb_ptr[e] = (ptr + m) % cap
            self._fb_count[e] = min(self._fb_count[e] + m, cap)
            self._fb_new[e] += k

    def feedback_count(self, edge: int) -> int:
        """Samples in the edge's feedback buffer."""
        return self._fb_count[edge]

    def label_hits(self, edge: int, n: int) -> np.ndarray:
        """Correct predictions (3,) of the end, edge and cloud classifiers (``CLASSIFIER_TIERS`` order) of
        ``edge`` (current weights) on its ``n`` newest feedback samples: real private samples with their
        real labels, never the test pool. ``n`` is clipped to the samples in the buffer; no RNG is used.
        Returns float64 counts (whole numbers here; the fast path returns expected counts).

        Each sample is scored by a table of the live model's predictions on the edge's whole private pool
        in the sample's style (:meth:`_correct_table`), computed once per weight token: the same count as a
        forward pass on the samples themselves, up to logits within float rounding of a tie."""
        out = np.zeros(len(CLASSIFIER_TIERS))
        idx, style = self._newest_feedback(edge, n)
        if idx.size == 0:
            return out
        pos = np.searchsorted(self._views[edge].indices, idx)
        for j, tier in enumerate(CLASSIFIER_TIERS):
            out[j] = np.count_nonzero(self._correct_table(tier, edge, style)[style, pos])
        return out

    def _correct_table(self, tier: str, edge: int, styles: np.ndarray) -> np.ndarray:
        """(n_styles, pool size) bool: does ``tier``'s live classifier at ``edge`` label each sample of the
        edge's private pool right, in each style? Rows of ``styles`` are filled on demand, one forward pass
        over the whole pool per (weight token, style), so a row's values never depend on which samples
        were asked for or when (a restored or fresh instance computes the same bits)."""
        memo = self._correct_memo
        uid = self._uid(tier, edge)
        entry = memo.get((tier, edge))
        if entry is None or entry[0] != uid:
            view = self._views[edge]
            entry = memo[(tier, edge)] = (uid, np.zeros((len(STYLES), len(view)), dtype=bool),
                                          np.zeros(len(STYLES), dtype=bool))
        _, table, done = entry
        if not done[styles].all():
            view = self._views[edge]
            for s in np.unique(styles[~done[styles]]).tolist():
                x, y = view.get(view.indices, np.full(len(view), s))
                with torch.no_grad():
                    table[s] = (self._live_logits(tier, edge, x).argmax(1) == y).numpy()
                done[s] = True
        return table

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
        n = min(int(n), self._fb_count[edge])
        if n <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pos = (self._fb_ptr[edge] - n + np.arange(n)) % self.config.feedback_buffer
        return self._fb_idx[edge][pos], self._fb_style[edge][pos]

    def _feedback(self, edge: int) -> tuple[np.ndarray, np.ndarray]:
        n = self._fb_count[edge]
        return self._fb_idx[edge][:n], self._fb_style[edge][:n]

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
