"""Real PyTorch model workers of the cloud, the edges and the end devices, and the knowledge operations.

A :class:`WorkerSystem` holds, for one system of ``n_edges`` cells:

* the cloud: teacher classifier, class-conditional generator (CVAE), the public pool view and the
  aggregation store of edge adapter deltas (:class:`_Cloud`; it only ever receives domain reports
  and adapters, never raw private samples);
* per edge: a LoRA adapter on a shared frozen base classifier, a ring buffer of labelled feedback
  (indices into its own private pool, read through its own :class:`~gaisnet_env.data.PoolView`)
  and the pending result of a knowledge operation;
* per cell: the end devices' tiny classifier (one pooled model per cell);
* fixed models: the edge generator (serves generate requests at the edge) and the reference
  classifier (judges generated samples).

Units: FLOPs are counted floating-point operations (``FlopCounterMode``, 2 per multiply-add);
bytes are real tensor payloads (``numel * element_size``); accuracies are shares in [0, 1].

Weights are stored copy-on-write: ``None`` means "the pre-trained weights", and stored tensors are
never modified in place (training works on the shared working modules and stores clones), so
:meth:`WorkerSystem.reset` only drops references.

Versions: ``version(tier, edge)`` counts the weight changes committed since ``reset`` (0 = pre-trained).
Internally every committed change also draws a token from a per-system counter that only grows, so a
token identifies weights uniquely within one system, also across ``reset`` and ``load_state_dict``;
accuracy tables are cached by that token. A state from another system (another instance, a copy, another
process) has its tokens renumbered from this system's counter on load, so caches never go stale.
"""

from __future__ import annotations

import copy
import uuid
from collections import OrderedDict

import numpy as np
import torch

from gaisnet_env.cloud_worker import _Cloud
from gaisnet_env.data import DigitsData
from gaisnet_env.generation import GeneratorSystem
from gaisnet_env.model_cache import build_models, cache_key, pretrained_weights
from gaisnet_env.models import (
    LoRAClassifier,
    MixtureClassifier,
    MLPClassifier,
    classifier_flops,
    decoder_distil_flops,
)
from gaisnet_env.models.compute_device import resolve_device
from gaisnet_env.op_batching import BatchedStarts
from gaisnet_env.op_lifecycle import OpLifecycle
from gaisnet_env.op_records import REPORT_BYTES as REPORT_BYTES
from gaisnet_env.op_records import OpResult as OpResult
from gaisnet_env.op_records import _Pending
from gaisnet_env.op_runners import OpRunners
from gaisnet_env.worker_config import INPUT_DIM, N_CLASSES, STYLES, WorkerConfig
from gaisnet_env.worker_feedback import FeedbackBuffers
from gaisnet_env.worker_measure import _ACC_CACHE_SIZE as _ACC_CACHE_SIZE
from gaisnet_env.worker_measure import CLASSIFIER_TIERS as CLASSIFIER_TIERS
from gaisnet_env.worker_measure import GENERATOR_SITES as GENERATOR_SITES
from gaisnet_env.worker_measure import Measurements

# pre-trained accuracy tables and generation scores, shared by systems of one process
_PRE_TABLES: dict[tuple[str, int], dict[str, np.ndarray]] = {}


class WorkerSystem(Measurements, FeedbackBuffers, OpLifecycle, OpRunners, BatchedStarts):
    """The real model workers of one cloud, ``n_edges`` edges and their cells' end devices.

    ``seed`` fixes the data split and the pre-trained weights (pre-trained once per process and
    cached on disk under ``cache_dir``); ``reset(seed)`` reseeds the training randomness only.
    """

    def __init__(self, n_edges: int, config: WorkerConfig, seed: int, cache_dir: str | None = None) -> None:
        self.n_edges = int(n_edges)
        self.config = config
        #: where the training kernels run (``workers.device``; :mod:`gaisnet_env.models.compute_device`)
        self.device = resolve_device(config.device)
        self.seed = int(seed)
        self.data = DigitsData(self.n_edges, self.seed)
        self._pre = pretrained_weights(config, self.seed, cache_dir)
        self._key = cache_key(config, self.seed)
        models = build_models(config)
        for name, module in models.items():
            module.set_weights(self._pre[name])  # type: ignore[operator]
            module.eval()
        self._teacher: MLPClassifier = models["teacher"]  # type: ignore[assignment]
        self._end: MLPClassifier = models["end"]  # type: ignore[assignment]
        base_mlp: MLPClassifier = models["edge_base"]  # type: ignore[assignment]
        self._edge = LoRAClassifier(base_mlp.sizes, config.lora_rank)
        self._edge.set_base(self._pre["edge_base"])
        self._edge.reset_adapter(torch.Generator().manual_seed(self.seed * 1000 + 99))
        self._edge.eval()
        self._adapter0 = self._edge.get_adapter()  # fresh adapter: zero delta
        self._views = [self.data.private_view(e) for e in range(self.n_edges)]
        self._test = self.data.test_view()
        # measurement tensors: every style of every test sample, (n_styles * n_test, 64)
        n_test = len(self._test)
        s_idx = np.repeat(np.arange(len(STYLES)), n_test)
        self._x_eval, y_test = self._test.get(np.tile(self._test.indices, len(STYLES)), s_idx)
        self._x_eval = self._x_eval.contiguous()
        y_np = y_test[:n_test].numpy()
        counts = np.bincount(y_np, minlength=N_CLASSES).astype(np.float64)
        onehot = np.zeros((n_test, N_CLASSES))
        onehot[np.arange(n_test), y_np] = 1.0
        self._class_avg = onehot / np.maximum(counts, 1.0)  # (n_test, 10): per-class mean
        self._y_eval = y_test
        self._n_test = n_test
        self._counter = 0
        self._system_id = uuid.uuid4().hex  # whose tokens a state_dict carries (see load_state_dict)
        self.gens = GeneratorSystem(self.n_edges, config, self.seed, self._pre, self._x_eval, y_test, self._key,
                                    self._next_uid)
        self._cloud = _Cloud(config, self.data.public_view(), self._teacher, self.gens, self._edge.get_base())
        self._mixture: MixtureClassifier | None = None
        if config.cloud_model == "mixture":
            gate = MLPClassifier([INPUT_DIM, config.gate_hidden, 1 + self.n_edges])
            gate.reset_parameters(torch.Generator().manual_seed(self.seed * 1000 + 97))
            self._gate0 = gate.get_weights()
            self._mixture = MixtureClassifier(self._teacher, gate, self._edge.get_base())
        # counted FLOPs per sample
        self._flops = {
            "teacher": classifier_flops(self._teacher),
            "edge": classifier_flops(self._edge),
            "end": classifier_flops(self._end),
            "gen_cloud": self.gens.flops["cloud"],
            "gen_edge": self.gens.flops["edge"],
            "gen_cloud_distil": decoder_distil_flops(self.gens.cloud),
            "gen_edge_distil": decoder_distil_flops(self.gens.edge),
        }
        if self._mixture is not None:
            self._flops["gate"] = classifier_flops(self._mixture.gate)
        self.adapter_bytes = self._edge.adapter_bytes
        # mutable state
        self._gen = torch.Generator()
        self._acc_cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        #: label scoring's tables (``_correct_tables``): "correct", "filled" and the weight tokens "uids"
        self._correct_memo: dict[str, np.ndarray] = {}
        cap = config.feedback_buffer
        # feedback rings (E, cap) and their pointers, counts and uploads (E,): written in place only, so
        # that the native vector env may hold them as rows of its copies' arrays (gaisnet_env.copy_feedback)
        self._fb_idx = np.zeros((self.n_edges, cap), dtype=np.int64)
        self._fb_style = np.zeros((self.n_edges, cap), dtype=np.int64)
        self._fb_ptr = np.zeros(self.n_edges, dtype=np.int64)
        self._fb_count = np.zeros(self.n_edges, dtype=np.int64)
        self._fb_new = np.zeros(self.n_edges, dtype=np.int64)  # labelled samples since the last upload (uncapped)
        self._fb_writes = 0  # how many times the rings were written (the vector env's counts follow it)
        pre_key = (self._key, self.seed)
        if pre_key not in _PRE_TABLES:
            _PRE_TABLES[pre_key] = {tier: self._compute_table(tier, -1) for tier in CLASSIFIER_TIERS}
        self._pre_tables = _PRE_TABLES[pre_key]
        self.reset(self.seed)

    # ------------------------------------------------------------------ state
    def reset(self, seed: int) -> None:
        """Back to the pre-trained weights (adapters zero, end models pre-trained), feedback cleared,
        pending operations and the cloud's aggregation store dropped, training RNG reseeded."""
        self._gen.manual_seed(int(seed))
        self._teacher_w: list[torch.Tensor] | None = None
        self._gate_w: list[torch.Tensor] | None = None  # cloud_model "mixture": the gate (None: initial)
        self._store: dict[int, tuple] = {}
        self._adapters: list[list[torch.Tensor] | None] = [None] * self.n_edges
        self._ends: list[list[torch.Tensor] | None] = [None] * self.n_edges
        self._uid_cloud = 0
        self._uid_edge = [0] * self.n_edges
        self._uid_end = [0] * self.n_edges
        self._ver_cloud = 0
        self._ver_edge = [0] * self.n_edges
        self._ver_end = [0] * self.n_edges
        for ring in (self._fb_ptr, self._fb_count, self._fb_new):
            ring[:] = 0
        self._fb_writes += 1
        self._pending: list[_Pending | None] = [None] * self.n_edges
        self.gens.reset()

    def state_dict(self) -> dict:
        """Deep copy of all mutable state (for env snapshot / restore; bit-exact)."""
        def cl(ws: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
            return None if ws is None else [w.clone() for w in ws]

        return {
            "teacher": cl(self._teacher_w),
            "gate": cl(self._gate_w),
            "store": copy.deepcopy(self._store),
            "adapters": [cl(a) for a in self._adapters],
            "ends": [cl(a) for a in self._ends],
            "ver_cloud": self._ver_cloud,
            "ver_edge": list(self._ver_edge),
            "ver_end": list(self._ver_end),
            "uid_cloud": self._uid_cloud,
            "uid_edge": list(self._uid_edge),
            "uid_end": list(self._uid_end),
            "fb_idx": self._fb_idx.copy(),
            "fb_style": self._fb_style.copy(),
            "fb_ptr": self._fb_ptr.copy(),
            "fb_count": self._fb_count.copy(),
            "fb_new": self._fb_new.copy(),
            "pending": copy.deepcopy(self._pending),
            "gen_state": self._gen.get_state().clone(),
            "generators": self.gens.state_dict(),
            "system": self._system_id,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (deep-copied, so the snapshot stays reusable)."""
        s = copy.deepcopy(state)
        if s.get("system") != self._system_id:
            self._renumber_tokens(s)
        self._teacher_w = s["teacher"]
        self._gate_w = s.get("gate")
        self._store = s["store"]
        self._adapters = s["adapters"]
        self._ends = s["ends"]
        self._ver_cloud = s["ver_cloud"]
        self._ver_edge = s["ver_edge"]
        self._ver_end = s["ver_end"]
        self._uid_cloud = s["uid_cloud"]
        self._uid_edge = s["uid_edge"]
        self._uid_end = s["uid_end"]
        # in place (see __init__); a snapshot of an older release holds lists
        self._fb_idx[...] = np.asarray(s["fb_idx"], dtype=np.int64)
        self._fb_style[...] = np.asarray(s["fb_style"], dtype=np.int64)
        self._fb_ptr[...] = np.asarray(s["fb_ptr"], dtype=np.int64)
        self._fb_count[...] = np.asarray(s["fb_count"], dtype=np.int64)
        self._fb_new[...] = np.asarray(s.get("fb_new", 0), dtype=np.int64)
        self._fb_writes += 1
        self._pending = s["pending"]
        self._gen.set_state(s["gen_state"])
        self.gens.load_state_dict(s["generators"])
        self._counter = max(self._counter, self._uid_cloud, *self._uid_edge, *self._uid_end, *self.gens.uids())

    def _renumber_tokens(self, s: dict) -> None:
        """Give the weight tokens of a foreign state (another system's numbering) fresh tokens of this
        system, in place; equal tokens stay equal and 0 (pre-trained) stays 0."""
        fresh: dict[int, int] = {0: 0}

        def new(token: int) -> int:
            if token not in fresh:
                fresh[token] = self._next_uid()
            return fresh[token]

        s["uid_cloud"] = new(s["uid_cloud"])
        s["uid_edge"] = [new(t) for t in s["uid_edge"]]
        s["uid_end"] = [new(t) for t in s["uid_end"]]
        g = s["generators"]
        g["uid_cloud"], g["uid_edge"] = new(g["uid_cloud"]), [new(t) for t in g["uid_edge"]]
        for p in s["pending"]:
            if p is not None and p.round is not None:
                p.round = (new(p.round[0]), p.round[1])

    def __setstate__(self, state: dict) -> None:
        """Unpickled or deep-copied (``copy.deepcopy`` goes through here): another system, with its own
        identity, so states swapped between the two are renumbered on load."""
        self.__dict__.update(state)
        self._system_id = uuid.uuid4().hex

    def _next_uid(self) -> int:
        self._counter += 1
        return self._counter

    # ----------------------------------------------------------- load weights
    def _load_teacher(self) -> None:
        self._teacher.set_weights(self._teacher_w if self._teacher_w is not None else self._pre["teacher"])

    def _cloud_model(self, gate: list[torch.Tensor] | None = None,
                     store: dict[int, tuple] | None = None) -> torch.nn.Module:
        """The cloud classifier with its current weights: the dense teacher, or (``cloud_model:
        mixture``) the gated mixture of the teacher and the relayed edge experts of ``store`` (default:
        the cloud's store) with gate weights ``gate`` (default: the live gate)."""
        self._load_teacher()
        if self._mixture is None:
            return self._teacher
        g = gate if gate is not None else self._gate_w
        self._mixture.gate.set_weights(g if g is not None else self._gate0)
        st = self._store if store is None else store
        self._mixture.set_experts([st[e][0] if e in st else None for e in range(self.n_edges)])
        return self._mixture

    def _adapter(self, edge: int) -> list[torch.Tensor]:
        a = self._adapters[edge]
        return a if a is not None else self._adapter0

    def _load_edge(self, edge: int) -> None:
        self._edge.set_adapter(self._adapter(edge))

    def _load_end(self, edge: int) -> None:
        w = self._ends[edge]
        self._end.set_weights(w if w is not None else self._pre["end"])

    def _classifier(self, tier: str, edge: int) -> torch.nn.Module:
        """The working module of ``tier`` loaded with ``edge``'s current weights (edge -1: pre-trained)."""
        if tier == "cloud":
            if edge < 0:  # pre-trained: the teacher alone (a mixture without relayed experts equals it)
                self._teacher.set_weights(self._pre["teacher"])
                return self._teacher
            return self._cloud_model()
        if tier == "edge":
            self._edge.set_adapter(self._adapter0 if edge < 0 else self._adapter(edge))
            return self._edge
        if tier == "end":
            if edge < 0:
                self._end.set_weights(self._pre["end"])
            else:
                self._load_end(edge)
            return self._end
        raise ValueError(f"unknown tier {tier!r}; expected one of {CLASSIFIER_TIERS}")


__all__ = ["CLASSIFIER_TIERS", "GENERATOR_SITES", "REPORT_BYTES", "OpResult", "WorkerSystem"]
