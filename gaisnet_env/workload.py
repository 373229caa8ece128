"""Request arrivals and domain drift of every cell, vectorised over edges.

Rates and stagger offsets are drawn in :class:`Workload`'s constructor from the generator it is
given, with one seed for the domains; the domains are drawn lazily, in blocks of
:data:`DOMAIN_BLOCK` domains per cell, each block from its own generator seeded with
``(seed, 1, block)``. So the same seed gives the same episode, a domain does not depend on the horizon
or on the order of queries, and reset time and memory do not grow with the horizon (at most
:data:`BLOCKS_KEPT` blocks are held).

* **Rates** (arrivals/s): ``base_i * diurnal(hour) * flash(epoch, i)`` with
  ``base_i = rate_per_s * U(1 - spread, 1 + spread)``,
  ``diurnal(h) = 1 + amplitude * cos(2 pi (h - peak_hour) / 24)`` and flash crowds
  multiplying the rate of their edges during their window.
* **Domains**: each cell has a sequence of domains; a domain is a class mix
  (``Dirichlet(alpha)`` over the 10 classes) and a style (one of ``drift.styles``, as a
  one-hot mix over all of ``worker_config.STYLES``; a cell's
  first style is ``"clean"`` with probability 1/2 when allowed, and each later style differs
  from the one before it when there is a choice: within a block each style is drawn from the next
  one's, backwards from the block's last, so that a block needs only its own and the previous
  block's generator). Cell ``i``'s domain index at epoch ``t`` is
  ``k = (t + offset_i) // every_epochs`` with ``offset_i ~ U{0..every-1}`` when ``stagger``
  (else 0), so cells change at different epochs.

  - ``none``: domain 0 forever;
  - ``sudden``: domain ``k``;
  - ``gradual``: a linear blend from domain ``k`` to ``k + 1`` across the ``every_epochs``;
  - ``recurring``: domain ``k % 2`` (two domains take turns).
"""

from __future__ import annotations

import copy

import numpy as np

from gaisnet_env.scenario import Scenario
from gaisnet_env.worker_config import N_CLASSES, STYLES

#: Probability that a cell starts in the "clean" style (when the scenario allows it).
P_CLEAN_FIRST: float = 0.5
#: Domains per cell drawn together (one generator per block).
DOMAIN_BLOCK: int = 64
#: Blocks held in memory (least recently used dropped; a dropped block is drawn again when needed).
BLOCKS_KEPT: int = 4


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance ``0.5 * sum |p - q|`` over the last axis, in [0, 1]."""
    return 0.5 * np.abs(np.asarray(p, dtype=float) - np.asarray(q, dtype=float)).sum(axis=-1)


def domain_shift(class_a: np.ndarray, style_a: np.ndarray, class_b: np.ndarray, style_b: np.ndarray) -> np.ndarray:
    """Shift between two domains (class mix x style mix), in [0, 1], per leading index.

    ``1 - (1 - tv_class) * (1 - tv_style)``: the coupling bound on the total-variation
    distance between the two joint (class, style) distributions.
    """
    return 1.0 - (1.0 - total_variation(class_a, class_b)) * (1.0 - total_variation(style_a, style_b))


class DomainSequence:
    """The domains of every cell: domain ``k`` of cell ``i`` is a class mix and a style, drawn lazily
    in blocks of :data:`DOMAIN_BLOCK` (see the module docstring)."""

    def __init__(self, n_edges: int, alpha: float, allowed_cols: np.ndarray, clean_col: int | None,
                 seed: int) -> None:
        self.n_edges = n_edges
        self.alpha = alpha
        self.allowed_cols = allowed_cols
        self.clean = None if clean_col is None else int(np.flatnonzero(allowed_cols == clean_col)[0])
        self.seed = seed
        self._blocks: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _draw(self, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(class mixes (E, B, 10), positions in the allowed styles (E, B), own last style (E,)) of
        ``block``, before its first style is fixed against the previous block's last."""
        rng = np.random.default_rng([self.seed, 1, block])  # tagged: SeedSequence pads short entropy
        n, b, s = self.n_edges, DOMAIN_BLOCK, len(self.allowed_cols)
        cls = rng.dirichlet(np.full(N_CLASSES, self.alpha), size=(n, b))
        idx = np.zeros((n, b), dtype=np.int64)
        if s == 2:  # two styles: they alternate, from the first cell's draw of block 0
            first = self._draw_first(np.random.default_rng([self.seed, 2, 0]), n)
            idx[:] = (first[:, None] + block * b + np.arange(b)) % 2
        elif s > 2 and block == 0:
            idx[:, 0] = self._draw_first(rng, n)
            for k in range(1, b):
                idx[:, k] = (idx[:, k - 1] + rng.integers(1, s, size=n)) % s
        elif s > 2:
            idx[:, -1] = rng.integers(0, s, size=n)
            for k in range(b - 2, -1, -1):
                idx[:, k] = (idx[:, k + 1] + rng.integers(1, s, size=n)) % s
            fix = rng.integers(1, s - 1, size=n)  # used if the first style meets the previous block's
            return cls, idx, fix
        return cls, idx, np.zeros(n, dtype=np.int64)

    def _draw_first(self, rng: np.random.Generator, n: int) -> np.ndarray:
        first = rng.integers(0, len(self.allowed_cols), size=n)
        if self.clean is not None:
            first = np.where(rng.random(n) < P_CLEAN_FIRST, self.clean, first)
        return first

    def block(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        """(class mixes (E, B, 10), style columns of ``worker_config.STYLES`` (E, B)) of ``block``."""
        got = self._blocks.pop(block, None)
        if got is None:
            cls, idx, fix = self._draw(block)
            if block > 0 and len(self.allowed_cols) > 2:
                prev = self._draw(block - 1)[1][:, -1]
                idx[:, 0] = _differ_from_both(idx[:, 0], prev, idx[:, 1], fix, len(self.allowed_cols))
            got = (_read_only(cls), _read_only(self.allowed_cols[idx]), fix)
            if len(self._blocks) >= BLOCKS_KEPT:
                del self._blocks[next(iter(self._blocks))]
        self._blocks[block] = got  # most recently used last
        return got[0], got[1]

    def __deepcopy__(self, memo: dict) -> DomainSequence:
        """Copies share the drawn blocks: they are read-only and a pure function of (seed, block)."""
        new = copy.copy(self)
        new._blocks = dict(self._blocks)
        return new

    def at(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class mix (E, 10), style column (E,)) of domain ``k[i]`` of each cell ``i``."""
        k = np.asarray(k, dtype=np.int64)
        cls = np.empty((self.n_edges, N_CLASSES))
        sty = np.empty(self.n_edges, dtype=np.int64)
        blocks, pos = np.divmod(k, DOMAIN_BLOCK)
        for b in np.unique(blocks):
            rows = np.flatnonzero(blocks == b)
            c, st = self.block(int(b))
            cls[rows], sty[rows] = c[rows, pos[rows]], st[rows, pos[rows]]
        return cls, sty


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _differ_from_both(first: np.ndarray, prev: np.ndarray, second: np.ndarray, fix: np.ndarray,
                      s: int) -> np.ndarray:
    """``first`` where it differs from ``prev``; else the ``fix``-th (1..s-2) position other than
    ``prev``, skipping ``second`` (``first`` already differs from ``second``)."""
    out = first.copy()
    clash = first == prev
    for i in np.flatnonzero(clash):
        others = [j for j in range(s) if j != prev[i] and j != second[i]]
        out[i] = others[(int(fix[i]) - 1) % len(others)]
    return out


class Workload:
    """Arrival rates and domains of the ``E`` cells of a scenario."""

    def __init__(self, sc: Scenario, rng: np.random.Generator) -> None:
        w, d = sc.workload, sc.drift
        self.n_edges = n = sc.topology.n_edges
        self.epoch_s = sc.epoch_s
        self.start_hour = w.start_hour
        self.peak_hour = w.peak_hour
        self.amplitude = w.diurnal_amplitude
        self.kind = d.kind
        self.every = d.every_epochs
        #: columns of the style mixes: all of worker_config.STYLES, so the workers can use them
        self.styles: tuple[str, ...] = STYLES
        #: the styles this scenario's domains may take (drift.styles)
        self.allowed_styles: tuple[str, ...] = tuple(d.styles)
        allowed_cols = np.array([STYLES.index(st) for st in d.styles], dtype=np.int64)

        # base rates, arrivals/s
        self.base_rates = w.rate_per_s * rng.uniform(1.0 - w.rate_spread, 1.0 + w.rate_spread, size=n)

        # flash crowds: (start, stop, multiplier per edge)
        self._flash: list[tuple[int, int, np.ndarray]] = []
        for fc in w.flash_crowds:
            mult = np.ones(n)
            mult[fc.edges if fc.edges is not None else slice(None)] = fc.multiplier
            self._flash.append((fc.start_epoch, fc.start_epoch + fc.duration_epochs, mult))

        self.offsets = (
            rng.integers(0, d.every_epochs, size=n) if d.stagger and d.kind != "none" else np.zeros(n, np.int64)
        )
        clean = STYLES.index("clean") if "clean" in d.styles else None
        #: the cells' domains, drawn lazily
        self.sequence = DomainSequence(n, d.dirichlet_alpha, allowed_cols, clean, int(rng.integers(2**63 - 1)))
        self._eye = np.eye(len(STYLES))

    def style_indices(self, n_domains: int) -> np.ndarray:
        """(E, n_domains) style column (of ``worker_config.STYLES``) of each cell's first domains."""
        return np.concatenate([self.sequence.block(b)[1] for b in range(-(-n_domains // DOMAIN_BLOCK))],
                              axis=1)[:, :n_domains]

    def hour(self, epoch: int) -> float:
        """Time of day at the start of ``epoch``, hours in [0, 24)."""
        return (self.start_hour + epoch * self.epoch_s / 3600.0) % 24.0

    def diurnal(self, epoch: int) -> float:
        """Daily rate factor ``1 + amplitude * cos(2 pi (hour - peak) / 24)`` (>= 0)."""
        return 1.0 + self.amplitude * np.cos(2.0 * np.pi * (self.hour(epoch) - self.peak_hour) / 24.0)

    def flash(self, epoch: int) -> np.ndarray:
        """Flash-crowd rate multiplier per edge at ``epoch``, shape (E,)."""
        mult = np.ones(self.n_edges)
        for start, stop, m in self._flash:
            if start <= epoch < stop:
                mult = mult * m
        return mult

    def rates(self, epoch: int) -> np.ndarray:
        """Mean arrivals/s per cell at ``epoch``, shape (E,)."""
        return self.base_rates * self.diurnal(epoch) * self.flash(epoch)

    def domain_index(self, epoch: int) -> np.ndarray:
        """Index of each cell's current domain (before the ``recurring`` fold), shape (E,)."""
        if self.kind == "none":
            return np.zeros(self.n_edges, dtype=np.int64)
        return (epoch + self.offsets) // self.every

    def domain_key(self, epoch: int) -> bytes | None:
        """What :meth:`domains` of ``epoch`` is a function of, when not of the epoch itself: the cells' domain
        indices (None for ``gradual`` drift, whose mixes move every epoch)."""
        if self.kind == "gradual":
            return None
        k = self.domain_index(epoch)
        return (k % 2 if self.kind == "recurring" else k).tobytes()

    def domains(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Current (class mix (E, 10), style mix (E, 6)) per cell; rows sum to 1.

        Style columns follow ``worker_config.STYLES`` (:attr:`styles`); only the scenario's
        ``drift.styles`` (:attr:`allowed_styles`) get non-zero weight.
        """
        k = self.domain_index(epoch)
        if self.kind == "recurring":
            k = k % 2
        cls, sty = self.sequence.at(k)
        if self.kind != "gradual":
            return cls, self._eye[sty]
        frac = (((epoch + self.offsets) % self.every) / self.every)[:, None]
        cls1, sty1 = self.sequence.at(k + 1)
        return (1.0 - frac) * cls + frac * cls1, (1.0 - frac) * self._eye[sty] + frac * self._eye[sty1]

    def steady_at(self, epoch: int) -> bool:
        """Whether ``epoch``'s domains are those of ``epoch - 1`` and its rates ``base_rates`` times the
        diurnal factor alone: drift not gradual, no cell's domain index changes at ``epoch`` (it does where
        ``(epoch + offset) % every == 0``) and no flash crowd in force."""
        steady = self.__dict__.get("_steady")
        if steady is None:  # (the workload's figures never change once built)
            moves = frozenset() if self.kind == "none" else frozenset(((-self.offsets) % self.every).tolist())
            steady = self._steady = (self.kind != "gradual", moves, tuple((a, b) for a, b, _ in self._flash))
        smooth, moves, flash = steady
        return smooth and epoch % self.every not in moves and not any(a <= epoch < b for a, b in flash)

    def timing_key(self) -> tuple:
        """What :meth:`hour` and :meth:`diurnal` are functions of, besides the epoch."""
        return self.start_hour, self.epoch_s, self.amplitude, self.peak_hour, self.n_edges

    def drift(self, epoch_from: int, epoch_to: int) -> np.ndarray:
        """Per-cell domain shift between two epochs, in [0, 1] (see :func:`domain_shift`)."""
        ca, sa = self.domains(epoch_from)
        cb, sb = self.domains(epoch_to)
        return domain_shift(ca, sa, cb, sb)
