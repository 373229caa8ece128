"""Request arrivals and domain drift of every cell, vectorised over edges.

Everything random is drawn once, in :class:`Workload`'s constructor, from the generator it
is given, so the same seed gives the same episode; the per-epoch queries are pure array
arithmetic (no Python loops over edges).

* **Rates** (arrivals/s): ``base_i * diurnal(hour) * flash(epoch, i)`` with
  ``base_i = rate_per_s * U(1 - spread, 1 + spread)``,
  ``diurnal(h) = 1 + amplitude * cos(2 pi (h - peak_hour) / 24)`` and flash crowds
  multiplying the rate of their edges during their window.
* **Domains**: each cell has a sequence of domains; a domain is a class mix
  (``Dirichlet(alpha)`` over the 10 classes) and a style (one of ``drift.styles``, as a
  one-hot mix over all of ``worker_config.STYLES``; a cell's
  first style is ``"clean"`` with probability 1/2 when allowed, and each later style differs
  from the one before it when there is a choice). Cell ``i``'s domain index at epoch ``t`` is
  ``k = (t + offset_i) // every_epochs`` with ``offset_i ~ U{0..every-1}`` when ``stagger``
  (else 0), so cells change at different epochs.

  - ``none``: domain 0 forever;
  - ``sudden``: domain ``k``;
  - ``gradual``: a linear blend from domain ``k`` to ``k + 1`` across the ``every_epochs``;
  - ``recurring``: domain ``k % 2`` (two domains take turns).
"""

from __future__ import annotations

import numpy as np

from gaisnet_env.scenario import Scenario
from gaisnet_env.worker_config import N_CLASSES, STYLES

#: Probability that a cell starts in the "clean" style (when the scenario allows it).
P_CLEAN_FIRST: float = 0.5


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance ``0.5 * sum |p - q|`` over the last axis, in [0, 1]."""
    return 0.5 * np.abs(np.asarray(p, dtype=float) - np.asarray(q, dtype=float)).sum(axis=-1)


def domain_shift(class_a: np.ndarray, style_a: np.ndarray, class_b: np.ndarray, style_b: np.ndarray) -> np.ndarray:
    """Shift between two domains (class mix x style mix), in [0, 1], per leading index.

    ``1 - (1 - tv_class) * (1 - tv_style)``: the coupling bound on the total-variation
    distance between the two joint (class, style) distributions.
    """
    return 1.0 - (1.0 - total_variation(class_a, class_b)) * (1.0 - total_variation(style_a, style_b))


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
        self._allowed_cols = np.array([STYLES.index(st) for st in d.styles], dtype=np.int64)

        # base rates, arrivals/s
        self.base_rates = w.rate_per_s * rng.uniform(1.0 - w.rate_spread, 1.0 + w.rate_spread, size=n)

        # flash crowds: (start, stop, multiplier per edge)
        self._flash: list[tuple[int, int, np.ndarray]] = []
        for fc in w.flash_crowds:
            mult = np.ones(n)
            mult[fc.edges if fc.edges is not None else slice(None)] = fc.multiplier
            self._flash.append((fc.start_epoch, fc.start_epoch + fc.duration_epochs, mult))

        # domains: enough for the horizon and the stagger (+1 so gradual can blend into the next)
        if d.kind == "none":
            n_dom = 1
        elif d.kind == "recurring":
            n_dom = 2
        else:
            n_dom = sc.horizon // d.every_epochs + 3
        self.n_domains = n_dom
        self.offsets = (
            rng.integers(0, d.every_epochs, size=n) if d.stagger and d.kind != "none" else np.zeros(n, np.int64)
        )
        self.class_mix = rng.dirichlet(np.full(N_CLASSES, d.dirichlet_alpha), size=(n, n_dom))  # (E, D, 10)
        self.style_index = self._draw_styles(rng, n, n_dom)  # (E, D), columns of STYLES
        self.style_mix = np.eye(len(STYLES))[self.style_index]  # (E, D, n_styles)
        self._rows = np.arange(n)

    def _draw_styles(self, rng: np.random.Generator, n: int, n_dom: int) -> np.ndarray:
        s = len(self.allowed_styles)
        idx = np.empty((n, n_dom), dtype=np.int64)  # positions in allowed_styles
        first = rng.integers(0, s, size=n)
        if "clean" in self.allowed_styles:
            clean = self.allowed_styles.index("clean")
            first = np.where(rng.random(n) < P_CLEAN_FIRST, clean, first)
        idx[:, 0] = first
        for k in range(1, n_dom):
            if s == 1:
                idx[:, k] = 0
            else:  # a different style than the previous domain's
                idx[:, k] = (idx[:, k - 1] + rng.integers(1, s, size=n)) % s
        return self._allowed_cols[idx]

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

    def domains(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Current (class mix (E, 10), style mix (E, 6)) per cell; rows sum to 1.

        Style columns follow ``worker_config.STYLES`` (:attr:`styles`); only the scenario's
        ``drift.styles`` (:attr:`allowed_styles`) get non-zero weight.
        """
        k = self.domain_index(epoch)
        if self.kind == "recurring":
            k = k % 2
        elif self.kind in ("sudden", "gradual"):
            k = np.minimum(k, self.n_domains - 1)  # past the horizon: stay on the last domain
        if self.kind != "gradual":
            return self.class_mix[self._rows, k], self.style_mix[self._rows, k]
        frac = (((epoch + self.offsets) % self.every) / self.every)[:, None]
        k1 = np.minimum(k + 1, self.n_domains - 1)
        cls = (1.0 - frac) * self.class_mix[self._rows, k] + frac * self.class_mix[self._rows, k1]
        sty = (1.0 - frac) * self.style_mix[self._rows, k] + frac * self.style_mix[self._rows, k1]
        return cls, sty

    def drift(self, epoch_from: int, epoch_to: int) -> np.ndarray:
        """Per-cell domain shift between two epochs, in [0, 1] (see :func:`domain_shift`)."""
        ca, sa = self.domains(epoch_from)
        cb, sb = self.domains(epoch_to)
        return domain_shift(ca, sa, cb, sb)
