"""The labelled feedback of N env copies' stock workers as arrays over the copies.

Each copy's :class:`~gaisnet_env.workers.WorkerSystem` keeps its feedback rings ((E, cap) sample indices
and styles, (E,) pointers, counts, uploads) and its label-scoring tables ((3, E, n_styles, pool) answers
right, (3, E, n_styles) rows filled) as arrays it writes in place only. :class:`CopyFeedback` makes them
rows of ``(N, ...)`` arrays, so that the native vector env adds the copies' feedback, scores their labels
and reads their domain reports in one call each, the same numbers as each copy's own methods
(:mod:`gaisnet_env.worker_feedback`): the samples come from the uniforms each copy draws from its own
generator, in its own order. A copy whose arrays were replaced since (a new workers object) is installed
again on the next call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gaisnet_env.worker_config import N_CLASSES, STYLES
from gaisnet_env.worker_feedback import evicted, newest_in_rings, ring_samples, write_rings
from gaisnet_env.workers import WorkerSystem

_RING_NAMES = ("_fb_idx", "_fb_style", "_fb_ptr", "_fb_count", "_fb_new")


def shares_feedback(workers: Sequence[Any]) -> bool:
    """Whether :class:`CopyFeedback` can hold these workers: each exactly a :class:`WorkerSystem` (a
    subclass may change how feedback is kept), all of the same data split and feedback buffer."""
    w0 = workers[0]
    if type(w0) is not WorkerSystem:
        return False
    key = (w0.n_edges, w0.data.seed, w0.config.feedback_buffer)
    return all(type(w) is WorkerSystem and (w.n_edges, w.data.seed, w.config.feedback_buffer) == key
               for w in workers)


class CopyFeedback:
    """Feedback rings and label-scoring tables of N copies' workers as rows of ``(N, ...)`` arrays."""

    def __init__(self, workers: Sequence[WorkerSystem]) -> None:
        w0 = workers[0]
        n, E, cap = len(workers), w0.n_edges, w0.config.feedback_buffer
        self.n_edges = E
        self.capacity = cap  # samples a ring keeps
        self.data = w0.data  # the copies share its split (shares_feedback)
        self.owner, self.pool_pos = w0._pool_index
        self.rings = (np.zeros((n, E, cap), np.int64), np.zeros((n, E, cap), np.int64),
                      np.zeros((n, E), np.int64), np.zeros((n, E), np.int64), np.zeros((n, E), np.int64))
        self.flat = tuple(a.reshape(n * E, *a.shape[2:]) for a in self.rings)  # (copy, edge) rows
        correct, filled = w0._correct_tables()
        self.correct = np.zeros((n, *correct.shape), dtype=bool)
        self.filled = np.zeros((n, *filled.shape), dtype=bool)
        # each ring's class and style counts (n * E, 10 / S), kept as the rings are written; a copy's rows are
        # counted afresh where its workers wrote their rings themselves (``_fb_writes`` moved since)
        self.class_counts = np.zeros((n * E, N_CLASSES), np.int64)
        self.style_counts = np.zeros((n * E, len(STYLES)), np.int64)
        self._writes: list[int | None] = [None] * n  # each copy's ``_fb_writes`` its counts were made at
        self.workers: list[Any] = [None] * n
        self._views: list[tuple | None] = [None] * n  # each copy's ring rows as installed
        self._tables: list[tuple] = [(None, None)] * n  # each copy's table rows as installed
        self._uids: list[Any] = [None] * n  # the weight tokens its tables were made current for

    def sync(self, workers: Sequence[WorkerSystem]) -> None:
        """Make every copy's rings and tables rows of the shared arrays (installing a copy the first time, or
        when its workers or arrays were replaced), its tables current for its weights."""
        for i, w in enumerate(workers):
            views = self._views[i]
            if views is None or w is not self.workers[i] or not (
                w._fb_idx is views[0] and w._fb_style is views[1] and w._fb_ptr is views[2]
                and w._fb_count is views[3] and w._fb_new is views[4]  # (the order of _RING_NAMES)
            ):
                views = self._views[i] = tuple(shared[i] for shared in self.rings)
                for name, shared, v in zip(_RING_NAMES, self.rings, views, strict=True):
                    shared[i] = getattr(w, name)
                    setattr(w, name, v)
                self.workers[i], self._uids[i], self._writes[i] = w, None, None
            key = (w._uid_cloud, *w._uid_edge, *w._uid_end)
            memo = w._correct_memo
            if self._uids[i] != key or memo.get("correct") is not self._tables[i][0]:
                correct, filled = w._correct_tables()  # marks the rows of changed weights unfilled
                if correct is not self._tables[i][0]:
                    self._tables[i] = (self.correct[i], self.filled[i])
                    self.correct[i], self.filled[i] = correct, filled
                    memo["correct"], memo["filled"] = self._tables[i]
                self._uids[i] = key

    def add(self, rows: np.ndarray, class_mix: np.ndarray, style_mix: np.ndarray, n: np.ndarray,
            u: np.ndarray) -> None:
        """Add ``n[k]`` labelled samples to ring ``rows[k]`` (copy * E + edge), drawn from that edge's private
        pool with the domain mixes of the row and the uniforms ``u`` (the copies' draws concatenated in the
        order of ``rows``; :meth:`DigitsData.pick_private`). Returns the samples the rings keep, each ring's
        oldest first, as :func:`newest_in_rings` reads them back: (k of each, global indices, styles)."""
        idx, style, _ = self.data.pick_private(rows % self.n_edges, class_mix, style_mix, n, u)
        self._count(*evicted(self.flat, rows, n), -1)
        write_rings(self.flat, rows, n, idx, style)
        kept = np.minimum(n, self.flat[0].shape[1])
        new = np.arange(idx.size) >= np.repeat(np.cumsum(n) - kept, n)  # each row's last ``kept`` draws
        k = np.repeat(np.arange(rows.size), n)[new]
        self._count(rows[k], idx[new], style[new], 1)
        return k, idx[new], style[new]

    def _count(self, rows: np.ndarray, idx: np.ndarray, style: np.ndarray, sign: int) -> None:
        """Add (``sign`` 1) or remove (-1) samples ``idx`` of styles ``style`` to the counts of rings ``rows``."""
        if rows.size:
            R = self.class_counts.shape[0]  # noqa: N806
            self.class_counts += sign * np.bincount(rows * N_CLASSES + self.data.y[idx],
                                                    minlength=R * N_CLASSES).reshape(R, N_CLASSES)
            self.style_counts += sign * np.bincount(rows * len(STYLES) + style,
                                                    minlength=R * len(STYLES)).reshape(R, len(STYLES))

    def label_hits(self, rows: np.ndarray, n: np.ndarray, newest: tuple | None = None) -> np.ndarray:
        """Correct answers (k, 3) of the end, edge and cloud classifiers of each ring's copy and edge on its
        ``n[k]`` newest samples (:meth:`WorkerSystem.label_hits_batch`, copy by copy); ``newest``: those
        samples where known (what :meth:`add` of ``n`` samples to ``rows`` returned)."""
        out = np.zeros((rows.size, 3))
        k, idx, style = newest if newest is not None else newest_in_rings(*self.flat[:2], self.flat[2],
                                                                           self.flat[3], rows, n)
        if idx.size == 0:
            return out
        copy, edge = np.divmod(rows[k], self.n_edges)
        self._check_own_pool(idx, edge)
        pos = self.pool_pos[idx]
        for t in range(3):
            missing = ~self.filled[copy, t, edge, style]
            if missing.any():
                for c, e, s in set(zip(copy[missing].tolist(), edge[missing].tolist(), style[missing].tolist(),
                                       strict=True)):
                    self.workers[c]._fill_correct(t, e, s)  # writes the shared row
            out[:, t] = np.bincount(k, weights=self.correct[copy, t, edge, style, pos], minlength=rows.size)
        return out

    def domain_reports(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every copy's :meth:`WorkerSystem.domain_reports`, float64: class (N, E, 10) and style (N, E, S)
        histograms and whether each edge has feedback (N, E) bool."""
        n, E = self.rings[2].shape
        self._recount()
        count = self.flat[3]
        per = np.maximum(count, 1)[:, None]  # as ring_histograms divides
        ch, sh = (self.class_counts / per).astype(np.float32), (self.style_counts / per).astype(np.float32)
        return (ch.astype(np.float64).reshape(n, E, -1), sh.astype(np.float64).reshape(n, E, -1),
                (count > 0).reshape(n, E))

    def _recount(self) -> None:
        """Count afresh the rings of the copies whose workers wrote them since their counts were made (a
        step one by one, a reset, a restore) or that were installed since."""
        stale = [i for i, w in enumerate(self.workers) if w is not None and w._fb_writes != self._writes[i]]
        if not stale:
            return
        E = self.n_edges
        rows = (np.asarray(stale, dtype=np.int64)[:, None] * E + np.arange(E)).ravel()
        ring, idx, style = ring_samples(self.flat[0][rows], self.flat[1][rows], self.flat[3][rows])
        self._check_own_pool(idx, rows[ring] % E)
        self.class_counts[rows], self.style_counts[rows] = 0, 0
        self._count(rows[ring], idx, style, 1)
        for i in stale:
            self._writes[i] = self.workers[i]._fb_writes

    def _check_own_pool(self, idx: np.ndarray, edges: np.ndarray) -> None:
        if not np.array_equal(self.owner[idx], edges):
            raise PermissionError("copy feedback: a feedback buffer holds samples outside its edge's pool")

