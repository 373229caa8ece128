"""The batched training engine of :class:`~gaisnet_env.workers.WorkerSystem`: the ops started in one epoch
(finetune, relay_down, relay_to_end) have their classifier training grouped by model kind and trained as
one batch (:func:`~gaisnet_env.models.batched_training.train_stack`), and their edge-generator training
(finetune's ELBO training, relay_down's decoder distillation) grouped by kind and trained as one batch
(:func:`~gaisnet_env.models.vae_stack.train_vae_stack`); relay_up (one federated round) as before.

How the serial order of random draws is kept: every op still runs one after another, drawing from the
system's one generator; where it would train its classifier or its generator, the job is recorded with
the generator's state at that point and the generator is advanced by exactly the draws the training makes
(:func:`~gaisnet_env.models.batched_training.draw_schedule`,
:func:`~gaisnet_env.models.vae_stack.vae_draw_schedule`); the op then goes on. After the last op, each
group is trained at once, job k drawing from a copy of its recorded state: the same mini-batches and noise
as the serial run. A classifier group of one is bit-identical to the serial call, a generator group of
one is the serial call; larger groups differ only by the batched products' rounding (about 1e-7 to 1e-6
in the weights). If a job's weights become non-finite, the generator is rewound and the epoch's ops rerun
serially, so a failure draws exactly what the serial run draws. A mixin: the models, generator and
pending results are the system's.

Across systems: :meth:`~gaisnet_env.op_lifecycle.OpLifecycle.start_ops_phased` yields an epoch's recorded
jobs instead of training them, so that a caller holding several systems of one scenario (the native vector
env's copies, :mod:`gaisnet_env.copy_steps`) trains all their jobs as one batch per kind
(:func:`train_jobs_together`); each job still draws from its own recorded state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gaisnet_env.cloud_worker import _train
from gaisnet_env.models import INPUT_CENTRE, ClassifierStack, draw_schedule, train_stack
from gaisnet_env.models.compute_device import run_on, to_cpu
from gaisnet_env.models.vae_stack import train_vae_stack, vae_draw_schedule
from gaisnet_env.op_records import OpResult, _finite, _Pending

#: Ops whose classifier training the engine batches (relay_up trains the shared cloud model: one round).
BATCHED_OPS: frozenset[str] = frozenset({"finetune", "relay_down", "relay_to_end"})


@dataclass
class TrainingJob:
    """One deferred classifier training: ``target`` "edge" (an edge's LoRA adapter), "end" (an end device's
    MLP) or "cloud" (the dense cloud teacher, a relay_up round's distillation), from the trainable tensors
    ``start``, on ``x`` (n, 64) and ``y`` (labels or probabilities with ``soft``) in mini-batches of
    ``batch``, drawing from a generator in the recorded ``gen_state``. ``result``: the trained tensors
    (None until trained, or when training failed)."""

    target: str
    start: list[torch.Tensor]
    x: torch.Tensor
    y: torch.Tensor
    soft: bool
    epochs: int
    lr: float
    anchor: tuple[torch.Tensor, torch.Tensor, float] | None
    gen_state: torch.Tensor
    batch: int
    result: list[torch.Tensor] | None = None


@dataclass
class GeneratorJob:
    """One deferred generator training of an edge's adapter: ``distil`` False (finetune's ELBO training on
    ``data`` = (x, y, style)) or True (relay_down's decoder distillation on (z, y, style, target)), from the
    adapter ``start``, drawing from a generator in the recorded ``gen_state``."""

    edge: int
    distil: bool
    start: list[torch.Tensor]
    data: tuple[torch.Tensor, ...]
    epochs: int
    gen_state: torch.Tensor
    result: list[torch.Tensor] | None = None


class BatchedStarts:
    """Deferred classifier training and the batched start of an epoch's ops (a mixin of the system)."""

    _deferred: list[TrainingJob | GeneratorJob] | None = None

    def _train_classifier(self, target: str, edge: int, x: torch.Tensor, y: torch.Tensor, soft: bool,
                          epochs: int, lr: float,
                          anchor: tuple[torch.Tensor, torch.Tensor, float] | None = None,
                          ) -> list[torch.Tensor] | TrainingJob | None:
        """Train ``target``'s classifier at ``edge`` (from its live weights) now and return the new trainable
        tensors (None: non-finite), or, while the engine defers (inside :meth:`_start_batched`), record the
        job, advance the generator past its draws and return the job (its ``result`` filled later)."""
        model = self._edge if target == "edge" else self._end
        if target == "edge":
            self._load_edge(edge)
        else:
            self._load_end(edge)
        cfg = self.config
        if self._deferred is None:
            ok = _train(model, x, y, soft=soft, epochs=epochs, lr=lr, batch=cfg.batch_size,
                        temperature=cfg.distill_temperature, gen=self._gen, anchor=anchor, device=self.device)
            new = model.get_adapter() if target == "edge" else model.get_weights()
            return new if ok and _finite(new) else None
        start = model.get_adapter() if target == "edge" else model.get_weights()
        return self._defer_training(target, start, x, y, soft, epochs, lr, anchor, cfg.batch_size)

    def _defer_training(self, target: str, start: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, soft: bool,
                        epochs: int, lr: float, anchor: tuple[torch.Tensor, torch.Tensor, float] | None,
                        batch: int) -> TrainingJob:
        """Record a classifier training (see :class:`TrainingJob`) and advance the generator past its draws."""
        job = TrainingJob(target, start, x, y, soft, int(epochs), float(lr), anchor, self._gen.get_state(), int(batch))
        n_loc = None if anchor is None else int(anchor[0].shape[0])
        draw_schedule(self._gen, int(x.shape[0]), n_loc, int(epochs), int(batch))
        self._deferred.append(job)
        return job

    def _train_generator(self, edge: int, distil: bool,
                         *data: torch.Tensor) -> list[torch.Tensor] | GeneratorJob | None:
        """``edge``'s generator adapter trained now (``distil``: decoder distillation on (z, y, style,
        target), else ELBO training on (x, y, style); None: non-finite), or, while the engine defers, the
        recorded job with the generator advanced past its draws."""
        cfg, gens = self.config, self.gens
        if self._deferred is None:
            if distil:
                return gens.distil("edge", edge, *data, self._gen)
            return gens.train_edge(edge, *data, cfg.generator_epochs, self._gen)
        job = GeneratorJob(edge, distil, gens.adapter(edge), data, cfg.generator_epochs, self._gen.get_state())
        vae_draw_schedule(self._gen, int(data[0].shape[0]), job.epochs, cfg.generator_batch_size,
                          None if distil else cfg.generator_latent)
        self._deferred.append(job)
        return job

    def _batches_worth_it(self, ops: list[tuple[str, int]], defer: bool = False) -> bool:
        """Whether some batched kind occurs twice among ``ops`` (with one of each, serial is the same); with
        ``defer`` (a caller batching across systems) whether one occurs at all."""
        if not self.config.batched_ops:
            return False
        counts = Counter(op for op, _ in ops if op in BATCHED_OPS)
        return any(n > (0 if defer else 1) for n in counts.values())

    def _start_batched(self, ops: list[tuple[str, int]],
                       senders: list[int] | None = None) -> Generator[list[Job], bool, dict[int, OpResult]]:
        """Start ``ops`` (no relay_up; all pass :meth:`_refusal`), then the federated round of ``senders`` if
        any, with their training deferred: yields the recorded jobs, to be trained by the caller
        (:func:`train_jobs_together`), and takes back whether all trained; then sets the pending results as
        :meth:`start_op` sets them. Results by edge."""
        state = self._gen.get_state()
        self._deferred = []
        try:
            runs = [(edge, *self._run_op(op, edge)) for op, edge in ops]
            if senders:  # the round's distillation into the dense cloud model is deferred too
                runs += [(edge, *run) for edge, run in self._run_round(senders).items()]
            jobs = self._deferred
        finally:
            self._deferred = None
        if not (yield jobs):  # a non-finite job: rerun serially from the same draws
            self._gen.set_state(state)
            out = {edge: self.start_op(op, edge) for op, edge in ops}
            return {**out, **self._start_round(senders or [])}
        out: dict[int, OpResult] = {}
        for edge, res, pending in runs:
            if res.ok:
                self._pending[edge] = _filled(pending)
            out[edge] = res
        return out

    def train_jobs(self, jobs: list[Job]) -> bool:
        """Train this system's deferred ``jobs`` (one batch per group, see :func:`train_jobs_together`);
        False if any failed."""
        return train_jobs_together([(self, jobs)])[0]


Job = TrainingJob | GeneratorJob


def run_phases(phases: Generator[list[Job], bool, Any], train: Callable[[list[Job]], bool]) -> Any:
    """Drive a generator of phases (:meth:`~gaisnet_env.op_lifecycle.OpLifecycle.start_ops_phased`, the
    env's ``step_phases``) to its return value, answering each list of jobs it yields with ``train(jobs)``."""
    try:
        jobs = next(phases)
        while True:
            jobs = phases.send(train(jobs))
    except StopIteration as stop:
        return stop.value


def train_jobs_together(batches: Sequence[tuple[Any, list[Job]]]) -> list[bool]:
    """Train the deferred jobs of several systems ``[(system, jobs), ...]`` of one scenario as one batch per
    group: classifier jobs per (target, soft, lr, batch, anchored), generator jobs per kind, and per model
    architecture and base (systems of the same type, seed and config share them). Each job draws from its
    own recorded generator state (a group of one trains bit for bit as the serial call). Returns per system
    whether all of its jobs trained (finite weights); once a job of a system fails, its later groups are
    skipped (the system reruns its ops serially)."""
    ok = [True] * len(batches)
    groups: dict[tuple[Any, ...], list[tuple[int, Job]]] = {}
    for i, (system, jobs) in enumerate(batches):
        base = (type(system), system.seed, repr(system.config))
        for job in jobs:
            if isinstance(job, GeneratorJob):
                key = (*base, "generator", job.distil)
            else:
                key = (*base, job.target, job.soft, job.lr, job.batch, job.anchor is not None)
            groups.setdefault(key, []).append((i, job))
    for key, group in groups.items():
        members = [(i, job) for i, job in group if ok[i]]  # a system with a failed job reruns serially
        if not members:
            continue
        systems = [batches[i][0] for i, _ in members]
        jobs = [job for _, job in members]
        train = _train_generator_group if key[3] == "generator" else _train_classifier_group
        for (i, _), flag in zip(members, train(systems, jobs), strict=True):
            ok[i] = ok[i] and flag
    return ok


def _train_classifier_group(systems: list[Any], group: list[TrainingJob]) -> list[bool]:
    """One stack of classifier jobs of one (target, soft, lr, batch, anchored) group; per job whether it
    trained."""
    lead, job0 = systems[0], group[0]
    cfg = lead.config
    template = {"edge": lead._edge, "end": lead._end, "cloud": lead._teacher}[job0.target]
    gens = [torch.Generator().set_state(job.gen_state) for job in group]
    with run_on(lead.device, template) as to:  # the stack lives where its template does
        stack = ClassifierStack.from_template(template, [[to(t) for t in job.start] for job in group])
        anchors = [None if j.anchor is None else (to(j.anchor[0]), to(j.anchor[1]), j.anchor[2]) for j in group]
        ok = train_stack(stack, [to(j.x) for j in group], [to(j.y) for j in group], soft=job0.soft,
                         epochs=[j.epochs for j in group], lr=job0.lr, batch=job0.batch,
                         temperature=cfg.distill_temperature, gens=gens, centre=INPUT_CENTRE, anchors=anchors)
        for job, tensors, flag in zip(group, stack.split(), ok, strict=True):
            job.result = to_cpu(tensors) if flag else None
    return list(ok)


def _train_generator_group(systems: list[Any], group: list[GeneratorJob]) -> list[bool]:
    """Generator jobs of one kind: one alone as its system's serial call (bit for bit), more as one
    :func:`~gaisnet_env.models.vae_stack.train_vae_stack`; per job whether it trained."""
    lead = systems[0]
    cfg = lead.config
    gens = [torch.Generator().set_state(job.gen_state) for job in group]
    if len(group) == 1:
        job = group[0]
        if job.distil:
            job.result = lead.gens.distil("edge", job.edge, *job.data, gens[0])
        else:
            job.result = lead.gens.train_edge(job.edge, *job.data, job.epochs, gens[0])
        return [job.result is not None]
    template = lead.gens.edge
    with run_on(lead.device, template) as to:
        ok, trained = train_vae_stack(template, [[to(t) for t in job.start] for job in group],
                                      [tuple(to(t) for t in job.data) for job in group], distil=group[0].distil,
                                      epochs=group[0].epochs, lr=cfg.generator_lr,
                                      batch=cfg.generator_batch_size, gens=gens)
    for job, tensors, flag in zip(group, trained, ok, strict=True):
        job.result = to_cpu(tensors) if flag else None
    return list(ok)


def _filled(pending: _Pending) -> _Pending:
    """``pending`` with its deferred jobs' trained tensors in place of the jobs."""
    if isinstance(pending.weights, TrainingJob):
        pending.weights = pending.weights.result
    if isinstance(pending.gen_weights, GeneratorJob):
        pending.gen_weights = pending.gen_weights.result
    return pending


__all__ = ["BATCHED_OPS", "BatchedStarts", "GeneratorJob", "Job", "TrainingJob", "run_phases", "train_jobs_together"]
