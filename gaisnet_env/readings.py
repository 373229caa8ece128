"""Memoised reads of the workload and the model workers for :class:`~gaisnet_env.env.GaisNetEnv`.

The env reads the same figures many times per step (the domains, the tiers' accuracy and generator
quality on them, the drift, the carbon intensity, the request legs); :class:`EnvReadings` keeps each one
memoised on everything it depends on, so that a value is recomputed exactly when its inputs change. It is
a mixin of the env: it reads ``self.workers``, ``self.workload``, ``self.state`` and ``self.scenario``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaisnet_env import operator_view, profiles
from gaisnet_env.core import exact_sums, latency
from gaisnet_env.worker_config import STYLES, TIERS
from gaisnet_env.workers import WorkerSystem
from gaisnet_env.workload import Workload

#: Methods the env calls on its workers object (see docs/workers.md); checked at construction and reset.
WORKER_METHODS: tuple[str, ...] = (
    "reset",
    "accuracy",
    "generation_table",
    "version",
    "inference_flops",
    "generation_flops",
    "add_feedback",
    "start_op",
    "commit_op",
    "abort_op",
    "state_dict",
    "load_state_dict",
)


class EnvReadings:
    """Memoised reads of the env's workload and workers (a mixin of :class:`~gaisnet_env.env.GaisNetEnv`)."""

    workers: Any
    workload: Workload
    state: Any
    scenario: Any
    n_edges: int

    def _clear_memos(self) -> None:
        """Drop the memos of values derived from the workload and the workers (on reset and restore; each
        memo also checks its own key, see where it is used)."""
        self._figures_memo: dict[int, _EpochFigures] = {}  # epoch -> workload figures (_figures)
        self._figures_of: Workload | None = None  # the workload they come from
        self._acc_memo: tuple | None = None  # (workers, weights key, class_mix, style_mix, accuracy)
        self._acc_mean_memo: tuple | None = None  # (accuracy, its per-tier means over edges)
        self._gen_memo: tuple | None = None  # (class_mix, style_mix, generator weight tokens, quality)
        self._drift_memo: tuple | None = None  # (class_mix, style_mix, adapted mixes' bytes, drift)
        self._mask_memo: tuple | None = None  # (key, (E, 8) mask, its routes and ops views); see _mask_arrays
        self._gym_mask_memo: tuple | None = None  # ((E, 8) mask of _mask_memo, its gym_action_mask tuple)
        self._stock_of: tuple | None = None  # (workers, whether _stock_workers holds for them)

    def _stock_workers(self) -> bool:
        """Whether the workers are a :class:`WorkerSystem` (or a subclass) with its own ``accuracy_all``,
        ``_stacked_tables``, ``_uid`` and ``version``: their accuracy is then a function of the domain and of
        the weight tokens (``_uid_*``, new on every weight change), and their versions are ``_ver_*``."""
        w = self.workers
        memo = self._stock_of
        if memo is None or memo[0] is not w:
            names = ("accuracy_all", "_stacked_tables", "_uid", "version")
            ok = isinstance(w, WorkerSystem) and all(
                getattr(type(w), n) is getattr(WorkerSystem, n) and n not in vars(w) for n in names
            )
            memo = self._stock_of = (w, ok)
        return memo[1]

    def _check_label_hits(self) -> None:
        """The estimated accuracy view needs ``workers.label_hits``: raise TypeError if it is missing."""
        for name in ("label_hits", "domain_report"):
            if self.accuracy_view == "estimated" and not callable(getattr(self.workers, name, None)):
                raise TypeError(
                    f"workers: {type(self.workers).__name__} has no method {name!r}, which "
                    f"accuracy_view='estimated' (the default) needs; implement it (see WorkerSystem.{name}) "
                    "or pass accuracy_view=\"exact\""
                )

    def _tier_accuracy(self, class_mix: np.ndarray, style_mix: np.ndarray) -> np.ndarray:
        """(E, 3) accuracy of each tier's classifier on each cell's current domain.

        Memoised for stock workers (see :meth:`_stock_workers`) on read-only domain arrays (those of
        :meth:`_domains_at`, which never change) and the weight tokens: a new domain or any weight change
        (an op committed, reset, restore) recomputes. The result is then read-only."""
        w = self.workers
        key = None
        if self._stock_workers() and not (class_mix.flags.writeable or style_mix.flags.writeable):
            key = (w._uid_cloud, *w._uid_edge, *w._uid_end)
            memo = self._acc_memo
            if memo is not None and memo[0] is w and memo[2] is class_mix and memo[3] is style_mix and memo[1] == key:
                return memo[4]
        acc_all = getattr(w, "accuracy_all", None)
        if acc_all is not None:  # batched over edges from cached tables
            out = np.clip(np.array(acc_all(class_mix, style_mix), dtype=np.float64), 0.0, 1.0)
        else:
            E = self.n_edges
            out = np.empty((E, 3))
            for e in range(E):
                for j, tier in enumerate(TIERS):
                    out[e, j] = w.accuracy(tier, e, class_mix[e], style_mix[e])
            # domain mixes sum to 1 up to rounding: a share may come out as 1.0000000000000004
            out = np.clip(out, 0.0, 1.0)
        if key is not None:
            out.setflags(write=False)
            self._acc_memo = (w, key, class_mix, style_mix, out)
        return out

    def _generation_quality(self, class_mix: np.ndarray, style_mix: np.ndarray) -> np.ndarray:
        """(E, 2) expected quality of the edge's and the cloud's generator on each cell's current domain:
        ``style_mix[e] @ table @ class_mix[e]`` with the tables of ``workers.generation_table``. Memoised for
        stock workers on read-only domain arrays and the generator weight tokens (see :meth:`_tier_accuracy`)."""
        w = self.workers
        key = None
        if self._stock_workers() and not (class_mix.flags.writeable or style_mix.flags.writeable):
            key = w.gens.uids()
            memo = self._gen_memo
            if memo is not None and memo[0] is class_mix and memo[1] is style_mix and memo[2] == key:
                return memo[3]
        E = self.n_edges
        tables = np.empty((E, 2, len(STYLES), 10))
        cloud = np.asarray(w.generation_table("cloud", 0), dtype=np.float64)
        for e in range(E):
            tables[e, 0] = w.generation_table("edge", e)
            tables[e, 1] = cloud
        sm = np.asarray(style_mix, dtype=np.float64)[:, None, :]
        cm = np.asarray(class_mix, dtype=np.float64)[:, None, :]
        out = np.clip(exact_sums.domain_mean(tables, sm, cm), 0.0, 1.0)  # no BLAS: the same bits everywhere
        if key is not None:
            out.setflags(write=False)
            self._gen_memo = (class_mix, style_mix, key, out)
        return out

    def _figures(self, epoch: int) -> _EpochFigures:
        """Workload figures of ``epoch`` (hour, rates; domains via :meth:`_domains_at`), memoised: they are
        pure functions of the workload (a new object on reset and restore, which drops the memo) and of the
        epoch. A step reads its epoch and the next one; the last few epochs are kept."""
        wl = self.workload
        memo = self._figures_memo
        if self._figures_of is not wl:
            memo.clear()
            self._figures_of = wl
        fig = memo.get(epoch)
        if fig is None:
            if len(memo) >= 4:
                del memo[next(iter(memo))]
            fig = memo[epoch] = _EpochFigures(wl.hour(epoch), _read_only(wl.rates(epoch)))
        return fig

    def _domains_at(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``workload.domains(epoch)`` as read-only arrays, memoised with :meth:`_figures`."""
        fig = self._figures(epoch)
        if fig.domains is None:
            # cells keep a domain for many epochs: when nothing changed since the epoch before, share its
            # (bit-identical) arrays, so that the memos keyed on them hold (accuracy, quality, drift)
            prev = self._figures_memo.get(epoch - 1)
            fig.domain_key = self.workload.domain_key(epoch)
            if prev is not None and prev.domains is not None and fig.domain_key is not None \
                    and prev.domain_key == fig.domain_key:  # the same domain indices: the same mixes
                fig.domains = prev.domains
                return fig.domains
            class_mix, style_mix = self.workload.domains(epoch)
            if (
                prev is not None
                and prev.domains is not None
                and prev.domains[0].tobytes() == class_mix.tobytes()
                and prev.domains[1].tobytes() == style_mix.tobytes()
            ):
                fig.domains = prev.domains
            else:
                fig.domains = (_read_only(class_mix), _read_only(style_mix))
        return fig.domains

    def true_domain(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth for analysis and benchmarks, not an observation: every cell's (class mix (E, 10),
        style mix (E, n_styles)) at ``epoch`` (read-only arrays). An operator does not know it."""
        if self.state is None:
            raise RuntimeError("call reset() before true_domain()")
        return self._domains_at(int(epoch))

    def _carbon_intensity(self, fig: _EpochFigures) -> tuple[float, float]:
        """Grid carbon intensity (g/kWh) at the edge and cloud sites in the hour of ``fig``, memoised in it
        (keyed on the regions and the trace)."""
        en = self.scenario.energy
        key = (en.edge_region, en.cloud_region, en.carbon_trace)
        if fig.carbon is None or fig.carbon[0] != key:
            fig.carbon = (key, _grid_intensity(en.edge_region, fig.hour, en.carbon_trace),
                          _grid_intensity(en.cloud_region, fig.hour, en.carbon_trace))
        return fig.carbon[1], fig.carbon[2]

    def _drift(self, class_mix: np.ndarray, style_mix: np.ndarray) -> np.ndarray:
        """(E,) distance in [0, 1] between the current domain and the one last adapted to."""
        st = self.state
        assert st is not None
        # memo on read-only domain arrays (see _tier_accuracy) and the adapted mixes' bytes (a commit
        # writes them in place)
        key = None
        if not (class_mix.flags.writeable or style_mix.flags.writeable):
            key = (st.adapted_class_mix.tobytes(), st.adapted_style_mix.tobytes())
            memo = self._drift_memo
            if memo is not None and memo[0] is class_mix and memo[1] is style_mix and memo[2] == key:
                return memo[3]
        out = operator_view.domain_drift(class_mix, style_mix, st.adapted_class_mix, st.adapted_style_mix)
        if key is not None:
            self._drift_memo = (class_mix, style_mix, key, _read_only(out))
        return out

    def _versions(self) -> dict[str, Any]:
        """Model versions: how many times each model's weights changed (process-wide counters)."""
        E = self.n_edges
        w = self.workers
        if self._stock_workers():  # version() reads these counters
            return {
                "model_version_cloud": w._ver_cloud,
                "model_version_edge": np.array(w._ver_edge, dtype=np.int64),
                "model_version_end": np.array(w._ver_end, dtype=np.int64),
            }
        return {
            "model_version_cloud": self.workers.version("cloud", 0),
            "model_version_edge": np.array([self.workers.version("edge", e) for e in range(E)], dtype=np.int64),
            "model_version_end": np.array([self.workers.version("end", e) for e in range(E)], dtype=np.int64),
        }

    def _deadlines(self) -> np.ndarray:
        """The deadlines (classify, generate) as a (2, E) array, memoised on their values."""
        key = self.deadline.tobytes()
        memo = self._deadline_memo
        if memo is None or memo[0] != key:
            rows = np.repeat(self.deadline.astype(np.float64)[:, None], self.n_edges, axis=1)
            memo = self._deadline_memo = (key, _read_only(rows))
        return memo[1]

    def _legs(self, faults: dict[str, Any], no_fault: bool, in_b: tuple, out_b: tuple) -> tuple:
        """Network plus compute latency of a request at the edge and at the cloud, (2, E) each (row 0
        classify, row 1 generate), and the request + response bytes (2, 1). They change only with the link
        factors (faults), the payloads and the compute times: memoised on those."""
        comp = (self.t_classify["edge"], self.t_generate["edge"], self.t_classify["cloud"], self.t_generate["cloud"])
        # no fault in force: the link factors are all 1
        links = None if no_fault else (faults["access"].tobytes(), faults["backhaul"].tobytes())
        key = (links, in_b, out_b, comp)
        memo = self._legs_memo
        if memo is not None and memo[0] == key:
            return memo[1]
        out = latency.legs((self.access_up_bps, self.access_down_bps, self.access_rtt_s),
                           (self.backhaul_up_bps, self.backhaul_down_bps, self.backhaul_rtt_s),
                           faults["access"], faults["backhaul"], in_b, out_b, comp)
        self._legs_memo = (key, out)
        return out


def check_workers(workers: Any) -> None:
    """Raise TypeError naming the first method of :data:`WORKER_METHODS` that ``workers`` lacks."""
    for name in WORKER_METHODS:
        if not callable(getattr(workers, name, None)):
            raise TypeError(
                f"workers: {type(workers).__name__} has no method {name!r}; a workers object needs "
                f"{', '.join(WORKER_METHODS)} (see docs/workers.md)"
            )


_INTENSITY: dict[tuple[str, float, str], float] = {}  # (region, hour, trace) -> g/kWh


def _grid_intensity(region: str, hour: float, trace: str) -> float:
    """``profiles.carbon_intensity`` as a float, memoised (a pure function of its arguments; the env's
    copies share it)."""
    key = (region, hour, trace)
    value = _INTENSITY.get(key)
    if value is None:
        if len(_INTENSITY) > 100_000:
            _INTENSITY.clear()
        value = _INTENSITY[key] = float(profiles.carbon_intensity(region, hour, trace))
    return value


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


class _EpochFigures:
    """Workload figures of one epoch (see :meth:`GaisNetEnv._figures`)."""

    __slots__ = ("hour", "rates", "domains", "domain_key", "carbon")

    def __init__(self, hour: float, rates: np.ndarray) -> None:
        self.hour = hour
        self.rates = rates
        self.domains: tuple[np.ndarray, np.ndarray] | None = None
        self.domain_key: bytes | None = None  # the workload's domain_key of the epoch (once domains are read)
        self.carbon: tuple | None = None  # (regions and trace, edge, cloud g/kWh)
