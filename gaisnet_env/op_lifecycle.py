"""The life of a knowledge operation in :class:`~gaisnet_env.workers.WorkerSystem`: checks before it
starts, one federated round for the epoch's relay_ups, the pending weights, commit (refusing non-finite
ones) and abort. A mixin: the pending results and models are the system's."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np

from gaisnet_env.op_batching import run_phases
from gaisnet_env.op_records import OpResult, _Pending, _pending_finite
from gaisnet_env.worker_config import OPERATIONS


class OpLifecycle:
    """Start, commit and abort knowledge operations; the training itself is in :class:`OpRunners`."""

    def has_pending(self, edge: int) -> bool:
        return self._pending[edge] is not None

    def pending_op(self, edge: int) -> str | None:
        """Name of the pending operation of ``edge`` (None if none)."""
        p = self._pending[edge]
        return None if p is None else p.op

    def start_op(self, op: str, edge: int) -> OpResult:
        """Run knowledge operation ``op`` for ``edge`` for real and keep the new weights pending.

        Returns what it cost. ``ok=False`` (nothing pending) when the edge already has a pending
        operation, its feedback buffer is empty, or a NaN/inf guard tripped.
        """
        refused = self._refusal(op, edge)
        if refused is not None:
            return refused
        res, pending = self._run_op(op, edge)
        if res.ok:
            self._pending[edge] = pending
        return res

    def start_ops(self, ops: list[tuple[str, int]]) -> list[OpResult]:
        """Start the operations ``ops`` = [(op, edge), ...] of one epoch (at most one per edge), as
        :meth:`start_op` would one by one, except that the relay_ups form **one federated round**
        (:meth:`_run_round`): every sender's upload is aggregated and distilled once, so no sender's
        distillation overwrites another's. With ``batched_ops`` the classifier training of the other ops
        is batched per kind (:mod:`gaisnet_env.op_batching`; the same draws, weights to float rounding).
        Results are in the order of ``ops``."""
        return run_phases(self.start_ops_phased(ops), self.train_jobs)

    def start_ops_phased(self, ops: list[tuple[str, int]],
                         defer: bool = False) -> Generator[list[Any], bool, list[OpResult]]:
        """:meth:`start_ops` as a generator: where the engine defers training it yields the recorded jobs
        and takes back whether they all trained (their ``result`` filled), so that a caller can train the
        jobs of several systems as one batch (:func:`~gaisnet_env.op_batching.train_jobs_together`).
        ``defer``: defer even a batched kind that occurs once (the caller batches across systems). Returns
        the results in the order of ``ops``."""
        edges = [edge for _, edge in ops]
        if len(set(edges)) != len(edges):
            raise ValueError(f"start_ops: at most one operation per edge, got edges {edges}")
        out: dict[int, OpResult] = {}
        senders, plain = [], []
        for op, edge in ops:
            refused = self._refusal(op, edge)
            if refused is not None:
                out[edge] = refused
            elif op == "relay_up":
                senders.append(edge)
            else:
                plain.append((op, edge))
        # across copies (``defer``) the round's distillation into the dense cloud model is deferred as well
        round_too = defer and bool(senders) and self.config.batched_ops and self._mixture is None
        if round_too or self._batches_worth_it(plain, defer):  # the training of each kind as one batch
            out.update((yield from self._start_batched(plain, senders if round_too else None)))
        else:
            for op, edge in plain:
                out[edge] = self.start_op(op, edge)
        if not round_too:
            out.update(self._start_round(senders))
        return [out[edge] for _, edge in ops]

    def _start_round(self, senders: list[int]) -> dict[int, OpResult]:
        """Start the relay_ups of ``senders`` (checks done) as one federated round; results by edge."""
        if len(senders) <= 1:
            return {e: self.start_op("relay_up", e) for e in senders}
        out = {}
        for edge, (res, pending) in self._run_round(senders).items():
            out[edge] = res
            if res.ok:
                self._pending[edge] = pending
        return out

    def _refusal(self, op: str, edge: int) -> OpResult | None:
        """Why ``op`` cannot start at ``edge`` (an unstarted result), or None if it can; raises on a bad
        op name or edge index."""
        if op not in OPERATIONS[1:]:
            raise ValueError(f"unknown operation {op!r}; expected one of {OPERATIONS[1:]}")
        if not 0 <= edge < self.n_edges:
            raise IndexError(f"edge {edge} out of range")
        if self._pending[edge] is not None:
            return OpResult(op, edge, False, f"edge busy: {self._pending[edge].op} is pending")
        if self._fb_count[edge] == 0:
            return OpResult(op, edge, False, "no feedback yet")
        return None

    def _run_op(self, op: str, edge: int) -> tuple[OpResult, _Pending | None]:
        """Run ``op`` for ``edge`` (checks done): its cost and the pending result (None if it failed)."""
        return getattr(self, "_op_" + op)(edge)

    def pending_table(self, edge: int) -> tuple[str, np.ndarray] | None:
        """(tier, accuracy table) that ``edge``'s pending operation will make live on commit, or None if
        nothing is pending (used to calibrate the fast path, :mod:`gaisnet_env.surrogate`)."""
        p = self._pending[edge]
        if p is None:
            return None
        if p.target == "edge":
            self._edge.set_adapter(p.weights)
            return "edge", self._table_of(self._edge)
        if p.target == "cloud" and self._mixture is not None:
            raise ValueError("pending_table: the fast path is calibrated for cloud_model 'dense' only")
        model = self._end if p.target == "end" else self._teacher
        model.set_weights(p.weights)  # working modules are reloaded before every use
        return p.target, self._table_of(model)

    def commit_op(self, edge: int) -> bool:
        """Make the pending weights of ``edge``'s operation live (new version). No-op if none.

        Returns False, dropping the pending result and keeping the previous weights, if any of its new
        weights is NaN or infinite (e.g. from a plug-in op runner); True otherwise."""
        p = self._pending[edge]
        if p is None:
            return True
        self._pending[edge] = None
        if not _pending_finite(p):
            return False
        if p.target == "edge":
            self._adapters[edge] = p.weights
            self._uid_edge[edge] = self._next_uid()
            self._ver_edge[edge] += 1
            if p.gen_weights is not None:
                self.gens.commit_edge(edge, p.gen_weights)
        elif p.target == "end":
            self._ends[edge] = p.weights
            self._uid_end[edge] = self._next_uid()
            self._ver_end[edge] += 1
        elif not p.applied:
            self._commit_round(edge, p)
        return True

    def _commit_round(self, edge: int, p: _Pending) -> None:
        """Make a relay_up's round live: the teacher (and cloud generator), and the store entry of every
        sender of the round whose upload is still pending; their own commits then change nothing."""
        members = {edge: p}
        if p.round is not None:
            for e in p.round[1]:
                q = self._pending[e]
                if q is not None and q.round == p.round:
                    q.applied = True
                    members[e] = q
        if self._mixture is not None:
            self._gate_w = p.weights
        else:
            self._teacher_w = p.weights
        if p.learned is not None:
            self.gens.commit_cloud(p.gen_weights, p.learned)
        for e, q in members.items():
            if q.store_entry is not None:
                self._store[e] = q.store_entry
                # the uploaded samples are accounted for; later ones count next time
                self._fb_new[e] = max(0, self._fb_new[e] - int(q.store_entry[1]))
        self._uid_cloud = self._next_uid()
        self._ver_cloud += 1

    def abort_op(self, edge: int) -> None:
        """Drop the pending weights of ``edge``'s operation."""
        self._pending[edge] = None

    def _nan(self, res: OpResult) -> tuple[OpResult, None]:
        res.ok = False
        res.message = "numerical guard: NaN/inf in new weights or outputs; weights unchanged"
        return res, None
