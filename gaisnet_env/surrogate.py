"""Calibrated fast path: model workers whose knowledge operations are *predicted*, not trained.

The real workers (:class:`~gaisnet_env.workers.WorkerSystem`) train PyTorch models for every knowledge
operation (2-25 ms each on one core). :class:`SurrogateWorkerSystem` replaces only that training with a
**response model fitted on recorded real runs**: given the accuracy tables (style x class, held-out test
pool) of the cell's end, edge and cloud classifiers and the domain report of the edge's feedback, it
predicts the accuracy table the operation would produce. Everything else is the real system: the same
data, feedback buffers, domain reports, pre-trained accuracy tables, generator scores, counted FLOPs and
bytes (so the same costs, durations and energy).

The real workers stay the default. Use the fast path to prototype or pre-train agents quickly, then
evaluate (and ideally fine-tune) on the real workers: ``benchmarks/fast_path.py`` measures how well the
response model predicts held-out real operations and how a policy trained on the fast path scores on the
real workers.

Response model (one per operation): a small ReLU network regressing the new per-cell logit accuracy
of the operation's target (edge classifier for relay_down / finetune, cloud teacher for relay_up, end model for
relay_to_end) on per-cell features (:func:`cell_features`). It is deterministic: the surrogate predicts
the mean outcome, where real training also has seed-to-seed noise.

Calibration files (JSON, under ``gaisnet_env/calibration/``) hold the network weights, the worker
settings they were fitted for, and the fit's held-out errors. The shipped one is fitted for the default
:class:`~gaisnet_env.worker_config.WorkerConfig` on ``metro``; for other worker settings run
:func:`gaisnet_env.surrogate_fit.calibrate` (``python benchmarks/fast_path.py --calibrate``) and pass
``calibration=PATH``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from gaisnet_env.core import exact_sums
from gaisnet_env.worker_config import ENGINE_FIELDS, N_CLASSES, STYLES, WorkerConfig
from gaisnet_env.workers import CLASSIFIER_TIERS, OpResult, WorkerSystem, _Pending

#: The shipped calibration (default worker settings, recorded on ``metro``).
DEFAULT_CALIBRATION: Path = Path(__file__).parent / "calibration" / "default.json"
#: Tier whose classifier each operation changes.
OP_TARGET: dict[str, str] = {"relay_down": "edge", "finetune": "edge", "relay_up": "cloud", "relay_to_end": "end"}
#: Version of the feature layout of :func:`cell_features` (stored in calibration files).
FEATURE_VERSION: int = 1
_CLIP = 0.02  # accuracies are clipped to [_CLIP, 1 - _CLIP] before the logit


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _CLIP, 1.0 - _CLIP)
    return np.log(p / (1.0 - p))


def cell_features(tables: np.ndarray, class_hist: np.ndarray, style_hist: np.ndarray, fill: float) -> np.ndarray:
    """Features (S*10, F) of every (style, class) cell for one operation.

    Args:
        tables: (3, S, 10) accuracy tables of the cell's end, edge and cloud classifiers before the op.
        class_hist, style_hist: the edge's domain report (shares of its feedback buffer).
        fill: feedback samples / buffer capacity, in [0, 1].

    Per cell: 1, the three logit accuracies, the style share, the class share, their product, the
    fill, the style share times each logit accuracy, and per-style intercepts and style-share slopes.
    """
    n_s = tables.shape[1]
    n = n_s * N_CLASSES
    out = np.empty((n, 11 + 2 * n_s))  # filled column by column (no per-call stacking of small arrays)
    lg = _logit(tables).reshape(3, n).T  # (S*10, 3)
    sh = np.repeat(np.asarray(style_hist, dtype=np.float64), N_CLASSES)
    ch = np.tile(np.asarray(class_hist, dtype=np.float64), n_s)
    onehot = _style_onehot(n_s)
    out[:, 0] = 1.0
    out[:, 1:4] = lg
    out[:, 4] = sh
    out[:, 5] = ch
    out[:, 6] = sh * ch
    out[:, 7] = fill
    np.multiply(lg, sh[:, None], out=out[:, 8:11])
    out[:, 11 : 11 + n_s] = onehot
    np.multiply(onehot, sh[:, None], out=out[:, 11 + n_s :])
    return out


_ONEHOT: dict[int, np.ndarray] = {}


def _style_onehot(n_s: int) -> np.ndarray:
    """(S*10, S) one-hot style of every cell (cached)."""
    if n_s not in _ONEHOT:
        _ONEHOT[n_s] = np.repeat(np.eye(n_s), N_CLASSES, axis=0)
        _ONEHOT[n_s].setflags(write=False)
    return _ONEHOT[n_s]


def _rounded(a: np.ndarray) -> list:
    """Nested lists of 6 significant digits (float32 precision) for the JSON file."""
    return np.vectorize(lambda v: float(f"{v:.6g}"), otypes=[float])(a).tolist()


def _fit_net(rows: list[dict[str, Any]], hidden: tuple[int, ...], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """An ``MLPRegressor`` from the rows' cell features to their new logit accuracy, as (W, b) layers."""
    from sklearn.neural_network import MLPRegressor

    x = np.concatenate([cell_features(t["before"], t["class_hist"], t["style_hist"], t["fill"]) for t in rows])
    y = np.concatenate([_logit(t["after"]).ravel() for t in rows])
    net = MLPRegressor(hidden_layer_sizes=hidden, max_iter=300, early_stopping=True, random_state=seed)
    net.fit(x, y)
    return list(zip(net.coefs_, net.intercepts_, strict=True))


#: a network is kept only if its validation error is below this share of "no change"'s
_KEEP_MARGIN = 0.9


class ResponseModel:
    """Per-operation regressions from :func:`cell_features` to the target's new logit accuracy: small
    ReLU networks (fitted with scikit-learn's ``MLPRegressor``), evaluated here in numpy. An operation
    whose network does not beat "no change" on a validation split of the fit data has no network
    (``layers[op] is None``) and is predicted to leave its target's table unchanged."""

    def __init__(self, layers: dict[str, list[tuple[np.ndarray, np.ndarray]] | None],
                 meta: dict[str, Any] | None = None) -> None:
        self.layers = {op: None if ls is None else
                       [(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)) for w, b in ls]
                       for op, ls in layers.items()}
        self.meta = dict(meta or {})

    def logits(self, op: str, features: np.ndarray) -> np.ndarray:
        """Predicted new logit accuracy per row of ``features``."""
        h = features
        last = len(self.layers[op]) - 1
        for i, (w, b) in enumerate(self.layers[op]):
            h = exact_sums.matmul(h, w) + b  # no BLAS: the same bits on every machine
            if i < last:
                h = np.maximum(h, 0.0)
        return h[:, 0]

    def predict(self, op: str, tables: np.ndarray, class_hist: np.ndarray, style_hist: np.ndarray,
                fill: float) -> np.ndarray:
        """Predicted (S, 10) accuracy table of ``op``'s target after the operation."""
        if self.layers[op] is None:  # no network beat "no change" for this op
            return np.clip(np.array(tables[CLASSIFIER_TIERS.index(OP_TARGET[op])], dtype=np.float64), 0.0, 1.0)
        z = self.logits(op, cell_features(tables, class_hist, style_hist, fill))
        return (1.0 / (1.0 + np.exp(-z))).reshape(tables.shape[1], N_CLASSES)

    @classmethod
    def fit(cls, transitions: list[dict[str, Any]], hidden: tuple[int, ...] = (64, 64), seed: int = 0
            ) -> ResponseModel:
        """One ``MLPRegressor`` per operation (Adam, early stopping on a 10% validation split), kept only if
        it predicts the held-back fifth of the op's transitions materially better than "no change" (below
        ``_KEEP_MARGIN`` of its error: a marginal win there did not survive held-out seeds); then refitted on
        all of them. ``meta["kept"]`` says which ops have a network."""
        layers: dict[str, list[tuple[np.ndarray, np.ndarray]] | None] = {}
        kept = {}
        for op in OP_TARGET:
            rows = [t for t in transitions if t["op"] == op]
            if not rows:
                raise ValueError(f"fit: no recorded {op} transitions; record with a policy that starts every op")
            n_val = len(rows) // 5
            fit_rows, val_rows = rows[: len(rows) - n_val], rows[len(rows) - n_val:]
            trial = cls({op: _fit_net(fit_rows, hidden, seed)})
            val = evaluate_fit(trial, val_rows).get(op) if val_rows else None
            kept[op] = val is None or val["mae"] < _KEEP_MARGIN * val["mae_no_change"]
            layers[op] = _fit_net(rows, hidden, seed) if kept[op] else None
        return cls(layers, {"kept": kept})

    def save(self, path: str | Path, config: WorkerConfig) -> None:
        """Write JSON: network weights, the worker settings they are valid for, and ``meta``."""
        out = {"feature_version": FEATURE_VERSION, "styles": list(STYLES), "worker_config": asdict(config),
               "layers": {op: None if ls is None else [[_rounded(w), _rounded(b)] for w, b in ls]
                          for op, ls in self.layers.items()},
               "meta": self.meta}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(out, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: str | Path, config: WorkerConfig | None = None) -> ResponseModel:
        """Read a calibration file; with ``config``, raise ValueError naming the worker settings that
        differ from those it was fitted for."""
        data = json.loads(Path(path).read_text())
        if data.get("feature_version") != FEATURE_VERSION or data.get("styles") != list(STYLES):
            raise ValueError(f"calibration {path}: written for another feature layout; recalibrate with "
                             "gaisnet_env.surrogate_fit.calibrate")
        if config is not None:
            fitted = data["worker_config"]
            diff = [k for k, v in asdict(config).items() if fitted.get(k) != v and k not in ENGINE_FIELDS]
            if diff:
                shown = ", ".join(f"{k}={getattr(config, k)!r} (fitted: {fitted.get(k)!r})" for k in diff[:6])
                raise ValueError(f"calibration {path} was fitted for other worker settings: {shown}. Run "
                                 "gaisnet_env.surrogate_fit.calibrate(scenario) (or benchmarks/fast_path.py "
                                 "--calibrate) and pass calibration=<the new file>")
        return cls(data["layers"], data.get("meta"))


def domain_accuracy(table: np.ndarray, class_hist: np.ndarray, style_hist: np.ndarray) -> float:
    """Expected accuracy of a table on a domain (the env's accuracy of a tier on a cell)."""
    return float(exact_sums.domain_mean(table, style_hist, class_hist))


def evaluate_fit(model: ResponseModel, transitions: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per op, on ``transitions``: mean absolute error of the predicted accuracy on the reported domain,
    the same for "no change" (the target's accuracy before the op), R^2 of the change, and the count."""
    out = {}
    for op, tier in OP_TARGET.items():
        rows = [t for t in transitions if t["op"] == op]
        if not rows:
            continue
        j = CLASSIFIER_TIERS.index(tier)
        real, pred, before = [], [], []
        for t in rows:
            dom = (t["class_hist"], t["style_hist"])
            real.append(domain_accuracy(t["after"], *dom))
            pred.append(domain_accuracy(model.predict(op, t["before"], *dom, t["fill"]), *dom))
            before.append(domain_accuracy(t["before"][j], *dom))
        real_a, pred_a, before_a = np.array(real), np.array(pred), np.array(before)
        d_real, d_pred = real_a - before_a, pred_a - before_a
        ss = float(((d_real - d_real.mean()) ** 2).sum())
        out[op] = {"n": len(rows), "mae": float(np.abs(pred_a - real_a).mean()),
                   "mae_no_change": float(np.abs(before_a - real_a).mean()),
                   "r2_change": 1.0 - float(((d_real - d_pred) ** 2).sum()) / ss if ss > 0 else float("nan"),
                   "mean_change_real": float(d_real.mean()), "mean_change_pred": float(d_pred.mean())}
    return out


class SurrogateWorkerSystem(WorkerSystem):
    """:class:`~gaisnet_env.workers.WorkerSystem` with knowledge operations predicted by a calibrated
    :class:`ResponseModel` instead of trained (see the module docstring). Give it to the env as
    ``GaisNetEnv(..., worker_system="fast")`` (the shipped calibration) or, with your own calibration
    file, ``GaisNetEnv(..., worker_system=fast_path_factory(path))``.

    Costs (FLOPs, bytes, samples) are those of the real operation; the weights never change, only the
    accuracy tables that the env reads. The generators are not predicted: their quality tables stay the
    pre-trained ones on the fast path.
    """

    def label_hits(self, edge: int, n: int) -> np.ndarray:
        """Expected correct predictions (3,) on the edge's ``n`` newest feedback samples: the weights never
        change here, so each sample counts ``table[style, label]`` of the tier's (predicted) accuracy table."""
        out = np.zeros(len(CLASSIFIER_TIERS))
        idx, style = self._newest_feedback(edge, n)
        if idx.size:
            labels = self._views[edge].labels_of(idx)
            for j, tier in enumerate(CLASSIFIER_TIERS):
                out[j] = float(self.accuracy_table(tier, edge)[style, labels].sum())
        return out

    def label_hits_batch(self, edges: np.ndarray, n: np.ndarray) -> np.ndarray:
        """:meth:`label_hits` (the expected counts) of several edges: ``(k, 3)``."""
        rows = [self.label_hits(int(e), int(k)) for e, k in zip(np.asarray(edges), np.asarray(n), strict=True)]
        return np.array(rows, dtype=np.float64).reshape(-1, len(CLASSIFIER_TIERS))

    def __init__(self, n_edges: int, config: WorkerConfig, seed: int, cache_dir: str | None = None,
                 calibration: str | Path | None = None) -> None:
        if config.cloud_model != "dense":
            raise ValueError(f"SurrogateWorkerSystem: workers.cloud_model={config.cloud_model!r}; the fast path is "
                             "calibrated for 'dense' only; use the real WorkerSystem for the mixture")
        if config.relay_down_min_confidence > 0.0 or config.relay_down_relative:
            raise ValueError("SurrogateWorkerSystem: workers.relay_down_min_confidence > 0 and "
                             "workers.relay_down_relative filter samples by the models' outputs, which the fast "
                             "path does not run; use the real WorkerSystem for these settings")
        super().__init__(n_edges, config, seed, cache_dir)
        self.calibration = Path(calibration) if calibration is not None else DEFAULT_CALIBRATION
        self.response = ResponseModel.load(self.calibration, config)

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self._live: dict[tuple[str, int], np.ndarray] = {}  # (tier, edge) -> predicted table (cloud: edge 0)

    def _slot(self, tier: str, edge: int) -> tuple[str, int]:
        return (tier, 0 if tier == "cloud" else edge)

    def accuracy_table(self, tier: str, edge: int, use_cache: bool = True) -> np.ndarray:
        """The live table: pre-trained, or the last committed prediction for this tier and edge."""
        if edge < 0 or self._uid(tier, edge) == 0:
            return self._pre_tables[tier]
        return self._live[self._slot(tier, edge)]

    def _run_op(self, op: str, edge: int) -> tuple[OpResult, _Pending]:
        """Predict ``op``'s outcome (checks done by ``start_op``): the real cost and a pending table."""
        ch, sh, n_fb = self.domain_report(edge)
        before = np.stack([self.accuracy_table(t, edge) for t in CLASSIFIER_TIERS])
        table = self.response.predict(op, before, ch, sh, n_fb / self.config.feedback_buffer)
        table.setflags(write=False)
        res = self.op_result(op, edge, n_fb)
        res.message = "fast path: predicted by the calibrated response model"
        entry = (None, float(n_fb), ch, sh, None) if op == "relay_up" else None
        return res, _Pending(op, OP_TARGET[op], [], entry, table=table)

    def _run_round(self, senders: list[int]) -> dict[int, tuple[OpResult, _Pending]]:
        """A federated round, predicted sender by sender: each sender's commit makes its own predicted
        teacher table live (the response model was fitted on single relay_ups)."""
        out = {e: self._run_op("relay_up", e) for e in senders}
        for res, _ in out.values():
            res.share = 1.0 / len(senders)  # the senders split the round's compute
        return out

    def commit_op(self, edge: int) -> bool:
        p = self._pending[edge]
        if p is None:
            return True
        if not super().commit_op(edge):
            return False
        self._live[self._slot(p.target, edge)] = p.table
        return True

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["live_tables"] = dict(self._live)  # tables are read-only: sharing them is safe
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._live = dict(state["live_tables"])


def fast_path_factory(calibration: str | Path | None = None) -> Any:
    """``worker_system=`` argument for :class:`~gaisnet_env.env.GaisNetEnv` that builds the fast path."""

    def make(n_edges: int, config: WorkerConfig, seed: int, cache_dir: str | None = None) -> SurrogateWorkerSystem:
        return SurrogateWorkerSystem(n_edges, config, seed=seed, cache_dir=cache_dir, calibration=calibration)

    return make


__all__ = ["DEFAULT_CALIBRATION", "OP_TARGET", "ResponseModel", "SurrogateWorkerSystem", "cell_features",
           "domain_accuracy", "evaluate_fit", "fast_path_factory"]
