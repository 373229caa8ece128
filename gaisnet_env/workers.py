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
from dataclasses import dataclass, field

import numpy as np
import torch

from gaisnet_env import op_costs
from gaisnet_env.data import DigitsData, PoolView
from gaisnet_env.generation import GeneratorSystem
from gaisnet_env.model_cache import build_models, cache_key, pretrained_weights
from gaisnet_env.models import (
    LoRAClassifier,
    MixtureClassifier,
    MLPClassifier,
    classifier_flops,
    decoder_distil_flops,
    merged_forward,
    train_classifier,
    train_gate,
)
from gaisnet_env.models.classifiers import INPUT_CENTRE
from gaisnet_env.worker_config import INPUT_DIM, N_CLASSES, OPERATIONS, PERSONAL_STYLES, STYLES, WorkerConfig

CLASSIFIER_TIERS: tuple[str, ...] = ("end", "edge", "cloud")
GENERATOR_SITES: tuple[str, ...] = ("edge", "cloud")
#: Bytes of a domain report: class histogram (10 x float32) + style histogram (n_styles x float32)
#: + sample count (int64).
REPORT_BYTES: int = 4 * N_CLASSES + 4 * len(STYLES) + 8
_ACC_CACHE_SIZE = 4096
_PUBLIC_IDX = np.array([k for k, s in enumerate(STYLES) if s not in PERSONAL_STYLES], dtype=np.int64)
# pre-trained accuracy tables and generation scores, shared by systems of one process
_PRE_TABLES: dict[tuple[str, int], dict[str, np.ndarray]] = {}


@dataclass
class OpResult:
    """Outcome and real cost of starting a knowledge operation."""

    op: str  #: one of OPERATIONS[1:]
    edge: int
    ok: bool  #: False if the operation could not run (message says why); then nothing is pending
    message: str
    flops: dict[str, float] = field(default_factory=lambda: {"end": 0.0, "edge": 0.0, "cloud": 0.0})
    bytes_up: int = 0  #: payload bytes towards the cloud
    bytes_down: int = 0  #: payload bytes towards the end devices
    samples: int = 0  #: samples trained on / synthesised
    #: the parts of its compute (:class:`~gaisnet_env.op_costs.OpWork`), charged by the env at the
    #: declared profiles; ``flops`` is their counted sum per tier
    work: list[op_costs.OpWork] = field(default_factory=list)
    #: share of the compute energy charged to this edge: the senders of a federated round split the round's
    share: float = 1.0


@dataclass
class _Pending:
    """Weights computed by a started operation, made live by ``commit_op``."""

    op: str
    target: str  # "edge" (adapter of the edge), "end" (tiny model of the cell) or "cloud" (teacher)
    weights: list[torch.Tensor]
    store_entry: tuple | None = None  # relay_up: (deltas, weight, class_hist, style_hist, generator adapter)
    gen_weights: list[torch.Tensor] | None = None  # new generator weights (edge adapter / cloud generator)
    learned: np.ndarray | None = None  # relay_up: (n_styles,) bool, styles the cloud generator learnt
    round: tuple[int, tuple[int, ...]] | None = None  # relay_up: (round id, senders) of its federated round
    applied: bool = False  # relay_up: another sender of the round has already made its weights live
    table: np.ndarray | None = None  # fast path (gaisnet_env.surrogate): the predicted accuracy table


def _finite(tensors: list[torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def _pending_finite(p: _Pending) -> bool:
    """Whether every tensor a pending result would make live is finite."""
    parts = [p.weights, p.gen_weights or []]
    if p.store_entry is not None:
        parts += [t for t in p.store_entry if isinstance(t, list)]
    return all(_finite([t for t in ws if isinstance(t, torch.Tensor)]) for ws in parts)


def _train(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, *, soft: bool, epochs: int, lr: float,
           batch: int, temperature: float, gen: torch.Generator,
           anchor: tuple[torch.Tensor, torch.Tensor, float] | None = None) -> bool:
    """Adam on shuffled mini-batches (:func:`~gaisnet_env.models.train_classifier`); False if the trained
    tensors became non-finite. The models are left in eval mode (they have no train-only layers)."""
    return train_classifier(model, x, target, soft=soft, epochs=epochs, lr=lr, batch=batch,
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


class WorkerSystem:
    """The real model workers of one cloud, ``n_edges`` edges and their cells' end devices.

    ``seed`` fixes the data split and the pre-trained weights (pre-trained once per process and
    cached on disk under ``cache_dir``); ``reset(seed)`` reseeds the training randomness only.
    """

    def __init__(self, n_edges: int, config: WorkerConfig, seed: int, cache_dir: str | None = None) -> None:
        self.n_edges = int(n_edges)
        self.config = config
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
        cap = config.feedback_buffer
        self._fb_idx = [np.zeros(cap, dtype=np.int64) for _ in range(self.n_edges)]
        self._fb_style = [np.zeros(cap, dtype=np.int64) for _ in range(self.n_edges)]
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
        self._fb_ptr = [0] * self.n_edges
        self._fb_count = [0] * self.n_edges
        self._fb_new = [0] * self.n_edges  # labelled samples received since the last upload (uncapped)
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
            "fb_idx": [a.copy() for a in self._fb_idx],
            "fb_style": [a.copy() for a in self._fb_style],
            "fb_ptr": list(self._fb_ptr),
            "fb_count": list(self._fb_count),
            "fb_new": list(self._fb_new),
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
        self._fb_idx = s["fb_idx"]
        self._fb_style = s["fb_style"]
        self._fb_ptr = s["fb_ptr"]
        self._fb_count = s["fb_count"]
        self._fb_new = s.get("fb_new", [0] * self.n_edges)
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

    # ----------------------------------------------------------- measurement
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
        return correct @ self._class_avg

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
        return float(np.asarray(style_mix) @ table @ np.asarray(class_mix))

    def accuracy_all(self, class_mix: np.ndarray, style_mix: np.ndarray) -> np.ndarray:
        """(E, 3) expected accuracy of the end, edge and cloud classifiers (``CLASSIFIER_TIERS`` order) of
        every edge on its domain: row ``e`` is :meth:`accuracy` of each tier at ``e`` with ``class_mix[e]``
        (E, 10) and ``style_mix[e]`` (E, n_styles), in two batched matmuls over a stacked table that is
        rebuilt only for the weights that changed (equal up to floating-point summation order)."""
        tables = self._stacked_tables()  # (E, 3, S, 10)
        sm = np.asarray(style_mix, dtype=np.float64)[:, None, None, :]
        cm = np.asarray(class_mix, dtype=np.float64)[:, None, :, None]
        return np.matmul(np.matmul(sm, tables), cm)[:, :, 0, 0]

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

    # ----------------------------------------------------------- feedback
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
        Returns float64 counts (whole numbers here; the fast path returns expected counts)."""
        out = np.zeros(len(CLASSIFIER_TIERS))
        idx, style = self._newest_feedback(edge, n)
        if idx.size == 0:
            return out
        x, y = self._views[edge].get(idx, style)
        with torch.no_grad():
            for j, tier in enumerate(CLASSIFIER_TIERS):
                out[j] = int((self._classifier(tier, edge)(x).argmax(1) == y).sum())
        return out

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

    # ----------------------------------------------------------- operations
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
        distillation overwrites another's. Results are in the order of ``ops``."""
        edges = [edge for _, edge in ops]
        if len(set(edges)) != len(edges):
            raise ValueError(f"start_ops: at most one operation per edge, got edges {edges}")
        out: dict[int, OpResult] = {}
        senders = []
        for op, edge in ops:
            refused = self._refusal(op, edge)
            if refused is not None:
                out[edge] = refused
            elif op == "relay_up":
                senders.append(edge)
            else:
                out[edge] = self.start_op(op, edge)
        if len(senders) == 1:
            out[senders[0]] = self.start_op("relay_up", senders[0])
        elif senders:
            for edge, (res, pending) in self._run_round(senders).items():
                out[edge] = res
                if res.ok:
                    self._pending[edge] = pending
        return [out[edge] for _, edge in ops]

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

    def _train_adapter(self, edge: int, x: torch.Tensor, target: torch.Tensor, soft: bool,
                       epochs: int, lr: float,
                       anchor: tuple[torch.Tensor, torch.Tensor, float] | None = None) -> list[torch.Tensor] | None:
        self._load_edge(edge)
        ok = _train(self._edge, x, target, soft=soft, epochs=epochs, lr=lr, batch=self.config.batch_size,
                    temperature=self.config.distill_temperature, gen=self._gen, anchor=anchor)
        new = self._edge.get_adapter()
        return new if ok and _finite(new) else None

    def op_result(self, op: str, edge: int, n_feedback: int, n_shipped: int | None = None,
                  n_kd: int | None = None, *, n_replay: int | None = None, n_edge_rendered: int | None = None,
                  n_entries: int | None = None, round_size: int = 1) -> OpResult:
        """The cost of ``op`` at ``edge`` (its compute parts, counted FLOPs per tier, payload bytes, samples)
        with ``n_feedback`` samples in the edge's buffer. relay_down: ``n_shipped`` / ``n_kd`` samples left
        after the confidence filter / after both (default: all ``relay_down_samples``), ``n_replay`` edge
        generator replays (default: from the edge's domain report). relay_up: ``n_edge_rendered`` samples
        rendered by edge generators and ``n_entries`` stored uploads (default: from this edge's report and
        the store), ``round_size`` senders sharing the round. Used by the real operations and by the fast
        path (:mod:`gaisnet_env.surrogate`), so both charge the same."""
        cfg = self.config
        gen_adapter = self.gens.adapter_bytes if cfg.generator_relay else 0
        if op == "finetune":
            work = op_costs.finetune_work(cfg, self._part, n_feedback)
            return self._result(op, edge, f"adapter fine-tuned on {n_feedback} feedback samples", work,
                                samples=n_feedback)
        if op == "relay_down":
            n = cfg.relay_down_samples
            n_shipped = n if n_shipped is None else n_shipped
            n_kd = n_shipped if n_kd is None else n_kd
            n_replay = self._replay_count(self.domain_report(edge)[1]) if n_replay is None else n_replay
            work = op_costs.relay_down_work(cfg, self._part, self._cloud_label, n_shipped, n_kd, n_replay)
            if cfg.relay_down_variant == "ship_adapter":
                # the edge sends its current adapters with the report; the cloud trains them and ships them back
                return self._result(op, edge, "cloud distilled the edge adapter and shipped it", work,
                                    REPORT_BYTES + self.adapter_bytes + gen_adapter, self.adapter_bytes + gen_adapter,
                                    samples=n)
            # float32 samples (n, 64) and soft labels (n, 10); the generator distillation needs every
            # sample's latent too (and the pixels of those the confidence filter dropped)
            f32 = self._x_eval.element_size()
            shipped = n_shipped * (INPUT_DIM + N_CLASSES) * f32
            if cfg.generator_relay:
                shipped += n * self.gens.cloud.latent * f32 + (n - n_shipped) * INPUT_DIM * f32
            return self._result(op, edge, "cloud shipped synthetic samples and soft labels", work,
                                REPORT_BYTES, shipped, samples=n_shipped)
        if op == "relay_up":
            if n_edge_rendered is None:
                unknown = self._replay_count(self.domain_report(edge)[1], cfg.relay_up_samples)
                n_edge_rendered = unknown if cfg.relay_up_aggregation == "experts" and cfg.generator_relay else 0
            n_entries = len({*self._store, edge}) if n_entries is None else n_entries
            work = op_costs.relay_up_work(cfg, self._part, self._cloud_label, self._cloud_train, n_edge_rendered,
                                          n_edge_rendered > 0, n_entries, self.adapter_bytes // 4)
            res = self._result(op, edge, f"cloud aggregated edge adapters ({cfg.relay_up_aggregation}) and "
                               "distilled them into the cloud model", work, self.adapter_bytes + REPORT_BYTES
                               + gen_adapter, 0, samples=cfg.relay_up_samples
                               + int(round(cfg.relay_up_public_share * cfg.relay_up_samples)))
            res.share = 1.0 / round_size
            return res
        if op == "relay_to_end":
            work = op_costs.relay_to_end_work(cfg, self._part)
            return self._result(op, edge, "edge distilled its model into the end devices' model", work,
                                0, self._end.n_bytes, samples=cfg.relay_to_end_samples)
        raise ValueError(f"unknown operation {op!r}; expected one of {OPERATIONS[1:]}")

    @staticmethod
    def _result(op: str, edge: int, message: str, work: list[op_costs.OpWork], bytes_up: int = 0,
                bytes_down: int = 0, *, samples: int) -> OpResult:
        return OpResult(op, edge, True, message, flops=op_costs.counted_by_tier(work), bytes_up=int(bytes_up),
                        bytes_down=int(bytes_down), samples=int(samples), work=work)

    def _part(self, part: str, tier: str, model: str, kind: str, samples: float) -> op_costs.OpWork:
        """An op part with its counted FLOPs (samples x our worker's counted FLOPs per sample)."""
        site = model.split("_")[0]
        if model.endswith("classifier"):
            per = self._flops[{"cloud": "teacher"}.get(site, site)][0 if kind == "infer" else 1]
        elif model.endswith("generator"):
            per = self._flops["gen_" + site + "_distil"] if kind == "generator_distil" else (
                self._flops["gen_" + site][0 if kind == "generate" else 1])
        else:  # the mixture's gate
            per = self._flops[model][0 if kind == "infer" else 1]
        return op_costs.OpWork(part, tier, model, kind, float(samples), float(samples) * per)

    def _cloud_label(self, part: str, n: float) -> list[op_costs.OpWork]:
        """The cloud model's forward pass on ``n`` samples: the teacher, and for the mixture its gate and
        every edge's expert (as once all edges have relayed up)."""
        work = [self._part(part, "cloud", "cloud_classifier", "infer", n)]
        if self._mixture is not None:
            work += [self._part(part, "cloud", "gate", "infer", n),
                     self._part(part, "cloud", "edge_classifier", "infer", n * self.n_edges)]
        return work

    def _cloud_train(self, n: float) -> list[op_costs.OpWork]:
        """Training the cloud model on ``n`` samples: the dense teacher for ``distill_epochs``, or the
        mixture's gate for ``gate_epochs`` over the experts' outputs computed once."""
        cfg = self.config
        if self._mixture is None:
            return [self._part("train", "cloud", "cloud_classifier", "train", cfg.distill_epochs * n)]
        return [self._part("experts", "cloud", "cloud_classifier", "infer", n),
                self._part("experts", "cloud", "edge_classifier", "infer", n * self.n_edges),
                self._part("train_gate", "cloud", "gate", "train", cfg.gate_epochs * n)]

    def _replay_count(self, style_hist: np.ndarray, n: int | None = None) -> int:
        """Samples out of ``n`` (default ``relay_down_samples``) of the reported styles the cloud generator
        cannot render: what the edge's generator renders itself."""
        n = self.config.relay_down_samples if n is None else n
        h = np.where(self.gens.known, 0.0, np.asarray(style_hist, dtype=np.float64))
        return int(round(n * h.sum() / max(float(np.sum(style_hist)), 1e-12)))

    def _op_relay_down(self, edge: int) -> tuple[OpResult, _Pending | None]:
        cfg = self.config
        ch, sh, _ = self.domain_report(edge)
        n = cfg.relay_down_samples
        if self._cloud.known_share(sh) == 0.0:
            res = OpResult("relay_down", edge, False, "the cloud knows none of the reported styles: nothing to relay")
            return res, None
        # cloud: synthesise for the reported domain, label with the teacher's own knowledge
        x, y_syn, s_syn, z_syn = self._cloud.synthesise(ch, sh, n, self._gen)
        gen_batch = (z_syn, y_syn, s_syn, x)  # the edge generator distils the cloud's on all of them
        with torch.no_grad():
            logits = self._cloud_model()(x)
        soft = self._cloud.soft_labels(logits)
        t_conf = torch.softmax(logits, dim=1).amax(1)  # teacher's top-class probability at T=1
        if cfg.relay_down_min_confidence > 0.0:
            # only pseudo-labels the teacher is confident about are shipped and distilled
            keep = t_conf >= cfg.relay_down_min_confidence
            x, soft, t_conf = x[keep], soft[keep], t_conf[keep]
        n_shipped = int(x.shape[0])
        if cfg.relay_down_relative:
            # selective distillation: keep the samples the teacher is surer of than the edge model
            self._load_edge(edge)
            with torch.no_grad():
                keep = t_conf > torch.softmax(self._edge(x), dim=1).amax(1)
            x, soft = x[keep], soft[keep]
        n_kd = int(x.shape[0])
        anchor = None
        if cfg.relay_down_local_weight > 0.0 and cfg.relay_down_variant == "ship_samples":
            # local anchoring: CE on the edge's own feedback, one local batch per distillation batch
            idx, style = self._feedback(edge)
            x_loc, y_loc = self._views[edge].get(idx, style)
            anchor = (x_loc, y_loc, float(cfg.relay_down_local_weight))
        res = self.op_result("relay_down", edge, self._fb_count[edge], n_shipped, n_kd)
        if not (_finite([x, soft])):
            return self._nan(res)
        if n_kd < n:
            res.message += f" ({n_kd} of {n} samples kept by the confidence filters)"
        new = self._train_adapter(edge, x, soft, True, cfg.relay_down_epochs, cfg.distill_lr, anchor)
        gen_new = None
        if cfg.generator_relay:
            gen_new = self._distil_edge_generator(edge, ch, sh, gen_batch)
        if new is None or (cfg.generator_relay and gen_new is None):
            return self._nan(res)
        return res, _Pending("relay_down", "edge", new, gen_weights=gen_new)

    def _distil_edge_generator(self, edge: int, class_hist: np.ndarray, style_hist: np.ndarray,
                               relayed: tuple[torch.Tensor, ...]) -> list[torch.Tensor] | None:
        """relay_down's generator part: ``edge``'s generator adapter distilled onto the cloud generator's
        outputs ``relayed`` = (z, y, style, x), plus replay of its own current outputs for the reported
        styles the cloud cannot render (so it keeps what it learnt of them). Data-free."""
        h = np.where(self.gens.known, 0.0, np.asarray(style_hist, dtype=np.float64))
        n_rep = self._replay_count(style_hist)
        z, y, s, x = relayed
        if n_rep:
            y_r = _sample_categorical(class_hist, n_rep, self._gen)
            s_r = _sample_categorical(h, n_rep, self._gen)
            z_r, x_r = self.gens.load("edge", edge).sample(y_r, s_r, self._gen)
            z, y, s, x = torch.cat([z, z_r]), torch.cat([y, y_r]), torch.cat([s, s_r]), torch.cat([x, x_r])
        return self.gens.distil("edge", edge, z, y, s, x, self._gen)

    def _op_finetune(self, edge: int) -> tuple[OpResult, _Pending | None]:
        cfg = self.config
        idx, style = self._feedback(edge)
        x, y = self._views[edge].get(idx, style)
        res = self.op_result("finetune", edge, int(x.shape[0]))
        new = self._train_adapter(edge, x, y, False, cfg.finetune_epochs, cfg.finetune_lr)
        # the edge generator adapter learns the edge's own domain (personal styles included)
        gen_new = self.gens.train_edge(edge, x, y, torch.from_numpy(style), cfg.generator_epochs, self._gen)
        if new is None or gen_new is None:
            return self._nan(res)
        return res, _Pending("finetune", "edge", new, gen_weights=gen_new)

    def _op_relay_up(self, edge: int) -> tuple[OpResult, _Pending | None]:
        return self._run_round([edge])[edge]

    def _upload(self, edge: int) -> tuple:
        """What ``edge`` sends up in relay_up (never raw samples): its classifier adapter's merged deltas,
        its FedAvg weight (the labelled samples it received since its last upload, not capped by the
        feedback buffer, so an edge that learnt from more data weighs more), its domain report (class and
        style histograms) and its generator adapter."""
        ch, sh, _ = self.domain_report(edge)
        deltas = self._edge.adapter_deltas(self._adapter(edge))
        gen_adapter = self.gens.adapter(edge) if self.config.generator_relay else None
        return (deltas, float(self._fb_new[edge]), ch, sh, gen_adapter)

    def _run_round(self, senders: list[int]) -> dict[int, tuple[OpResult, _Pending | None]]:
        """One federated round: the uploads of every edge of ``senders`` (checks done) join the cloud's
        store of each edge's latest upload, are aggregated once (``relay_up_aggregation``) and distilled
        once into the cloud model (the dense teacher, or the gate of the ``mixture``); styles that only the
        senders' generators can render are taught to the cloud generator. Every sender gets its cost and a
        pending result that shares the round's weights (the first commit makes them live, :meth:`commit_op`)."""
        cfg, cloud = self.config, self._cloud
        entries_new = {e: self._upload(e) for e in senders}
        store = {**self._store, **entries_new}
        x_syn, y_syn, s_syn, z_syn, logits_syn = self._round_samples(list(store.values()))
        x_pub, y_pub, s_pub = cloud.public_samples(int(round(cfg.relay_up_public_share * cfg.relay_up_samples)),
                                                   self._gen)
        x = torch.cat([x_syn, x_pub])
        with torch.no_grad():
            own = self._cloud_model()(x)
        n_syn = x_syn.shape[0]
        t = 1.0 if self._mixture is not None else None  # the gate fits the mixture's own probabilities at T = 1
        soft = torch.cat([cloud.selective_targets(own[:n_syn], logits_syn, t), cloud.soft_labels(own[n_syn:], t)])
        new = self._train_cloud_model(x, soft, store) if _finite([x, soft]) else None
        # the cloud generator learns the styles it could not render from the edges' generators (their outputs
        # in x_syn), replaying its own outputs (the rest of x_syn, and public classes and styles)
        unknown = torch.from_numpy(~self.gens.known)[s_syn]
        n_unknown = int(unknown.sum()) if cfg.relay_up_aggregation == "experts" and cfg.generator_relay else 0
        results = {}
        for e in senders:
            res = self.op_result("relay_up", e, self._fb_count[e], n_edge_rendered=n_unknown, n_entries=len(store),
                                 round_size=len(senders))
            res.message = (f"cloud aggregated {len(store)} edge upload(s) ({cfg.relay_up_aggregation}) in a round of "
                           f"{len(senders)} sender(s) and distilled them into the {cfg.cloud_model} cloud model")
            results[e] = res
        learned = np.zeros(len(STYLES), dtype=bool)
        gen_new = None
        if new is not None and n_unknown:  # only edge generators can teach the cloud's an unknown style
            learned[np.unique(s_syn[unknown].numpy())] = True
            z_pub, x_own = self.gens.load("cloud").sample(y_pub, s_pub, self._gen)
            gen_new = self.gens.distil("cloud", 0, torch.cat([z_syn, z_pub]), torch.cat([y_syn, y_pub]),
                                       torch.cat([s_syn, s_pub]), torch.cat([x_syn, x_own]), self._gen)
        if new is None or (n_unknown and gen_new is None):
            return {e: self._nan(r) for e, r in results.items()}
        round_id = self._next_uid()
        return {e: (results[e], _Pending("relay_up", "cloud", new, entries_new[e], gen_new, learned,
                                         round=(round_id, tuple(senders)))) for e in senders}

    def _round_samples(self, entries: list[tuple]) -> tuple[torch.Tensor, ...]:
        """relay_up's synthetic samples (x, classes, styles, latents) and the edge experts' logits on them.
        ``experts``: each stored upload's adapter labels samples of its own reported domain (its share of
        the samples drawn by FedAvg weight), rendered by the cloud generator where it knows the style and by
        that edge's generator where it does not; ``fedavg``: the weighted average of the adapter deltas
        labels samples of the weighted union domain."""
        cfg, cloud = self.config, self._cloud
        w = np.array([e[1] for e in entries], dtype=np.float64)
        w = w / w.sum() if w.sum() > 0 else np.full(w.size, 1.0 / w.size)
        n_syn = cfg.relay_up_samples
        if cfg.relay_up_aggregation == "experts":
            expert = _sample_categorical(w, n_syn, self._gen)
            parts = []
            for k, e in enumerate(entries):
                m = int((expert == k).sum())
                if m:
                    xk, yk, sk, zk = cloud.synthesise(e[2], e[3], m, self._gen, edge_adapter=e[4])
                    with torch.no_grad():
                        parts.append((xk, yk, sk, zk, merged_forward(xk, cloud.edge_base, e[0])))
            return tuple(torch.cat(t) for t in zip(*parts, strict=True))
        agg = [sum(float(wk) * e[0][j] for wk, e in zip(w, entries, strict=True)) for j in range(len(entries[0][0]))]
        union_c = sum(wk * e[2].astype(np.float64) for wk, e in zip(w, entries, strict=True))
        union_s = sum(wk * e[3].astype(np.float64) for wk, e in zip(w, entries, strict=True))
        x, y, s, z = cloud.synthesise(union_c, union_s, n_syn, self._gen, edge_adapter=None)
        with torch.no_grad():
            return x, y, s, z, merged_forward(x, cloud.edge_base, agg)

    def _train_cloud_model(self, x: torch.Tensor, soft: torch.Tensor, store: dict[int, tuple]) -> list | None:
        """New weights of the cloud model distilled on (x, soft): the dense teacher's, or the mixture's
        gate (over the experts of ``store``); None if the guard tripped."""
        cfg = self.config
        if self._mixture is not None:
            model = self._cloud_model(store=store)
            ok = train_gate(model, x, soft, epochs=cfg.gate_epochs, lr=cfg.gate_lr, batch=cfg.cloud_batch_size,
                            gen=self._gen)
            new = model.gate.get_weights()
        else:
            self._load_teacher()
            ok = _train(self._teacher, x, soft, soft=True, epochs=cfg.distill_epochs, lr=cfg.cloud_lr,
                        batch=cfg.cloud_batch_size, temperature=cfg.distill_temperature, gen=self._gen)
            new = self._teacher.get_weights()
        return new if ok and _finite(new) else None

    def _op_relay_to_end(self, edge: int) -> tuple[OpResult, _Pending | None]:
        cfg = self.config
        idx, style = self._feedback(edge)
        n = cfg.relay_to_end_samples
        pos = torch.randint(idx.shape[0], (n,), generator=self._gen).numpy()
        x, _ = self._views[edge].get(idx[pos], style[pos])
        self._load_edge(edge)
        with torch.no_grad():
            soft = torch.softmax(self._edge(x) / cfg.distill_temperature, dim=1)
        res = self.op_result("relay_to_end", edge, idx.shape[0])
        if not _finite([soft]):
            return self._nan(res)
        self._load_end(edge)
        ok = _train(self._end, x, soft, soft=True, epochs=cfg.distill_epochs, lr=cfg.distill_lr,
                    batch=cfg.batch_size, temperature=cfg.distill_temperature, gen=self._gen)
        new = self._end.get_weights()
        if not (ok and _finite(new)):
            return self._nan(res)
        return res, _Pending("relay_to_end", "end", new)


__all__ = ["CLASSIFIER_TIERS", "GENERATOR_SITES", "REPORT_BYTES", "OpResult", "WorkerSystem"]
