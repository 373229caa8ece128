"""The cost model: pure, vectorised functions (numpy arrays or scalars in, arrays out).

Units: seconds, bytes, bit/s, FLOP, FLOP/s, W, J, g CO2e, g/kWh. Every function broadcasts
over its arguments so the env can evaluate all edges of an epoch in one call.
"""

from __future__ import annotations

import numpy as np

ArrayLike = np.ndarray | float | int

#: Joules per kilowatt-hour.
J_PER_KWH: float = 3.6e6


def _broadcast(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """``np.broadcast_arrays`` (which returns arrays of the common shape as they are), without its cost
    when the shapes already agree."""
    shape = arrays[0].shape
    if all(a.shape == shape for a in arrays[1:]):
        return arrays
    return tuple(np.broadcast_arrays(*arrays))


def transfer_time_s(n_bytes: ArrayLike, bandwidth_bps: ArrayLike, rtt_s: ArrayLike) -> np.ndarray:
    """Time of one leg of a request/response exchange, s: ``8*n_bytes/bandwidth + rtt/2``.

    A bandwidth of 0 (an outage) gives ``inf``.
    """
    bits, bw = np.broadcast_arrays(8.0 * np.asarray(n_bytes, dtype=float), np.asarray(bandwidth_bps, dtype=float))
    up = bw > 0.0
    t = np.divide(bits, bw, out=np.full(bw.shape, np.inf), where=up)
    return t + 0.5 * np.asarray(rtt_s, dtype=float)


def compute_time_s(flops: ArrayLike, effective_flops: ArrayLike) -> np.ndarray:
    """Compute time, s: ``flops / effective_flops`` (0 work takes 0 s; no capacity -> inf)."""
    work, speed = np.broadcast_arrays(np.asarray(flops, dtype=float), np.asarray(effective_flops, dtype=float))
    out = np.where(work > 0.0, np.inf, 0.0)
    return np.divide(work, speed, out=out, where=speed > 0.0)


def fluid_queue(
    backlog_s: ArrayLike,
    work_s: ArrayLike,
    capacity_s: ArrayLike,
    period_s: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of a fluid queue; returns ``(new_backlog_s, mean_wait_s)``.

    A server offers ``c = capacity_s`` seconds of service during the epoch, ``w = work_s``
    seconds of work arrive uniformly over it, and ``b = backlog_s`` seconds of work are carried
    in. With ``tau`` in [0, 1] the share of the epoch elapsed, the backlog is
    ``B(tau) = max(0, b + (w - c) * tau)`` (piecewise linear), so

    * ``new_backlog = max(0, b + w - c)``;
    * mean backlog ``m`` = time average of ``B`` over the epoch:
        - ``w >= c`` (never drains): ``m = b + (w - c) / 2``;
        - ``w < c`` and ``b >= c - w`` (still queued at the end): ``m = b - (c - w) / 2``;
        - ``w < c`` and ``b < c - w`` (empties at ``tau* = b / (c - w)``, then stays empty
          because arrivals are served as fast as they come): ``m = b * tau* / 2 = b**2 / (2 (c - w))``.

    Work arriving at ``tau`` waits ``B(tau)`` divided by the drain rate, so with uniform
    arrivals the mean wait is ``m / rate``. Without ``period_s`` the rate is 1 (a server
    that drains one second of work per second, as when ``capacity_s`` equals the epoch), and
    ``mean_wait_s = m``. With ``period_s`` (the epoch length, s) the rate is
    ``capacity_s / period_s`` (e.g. 8 servers: rate 8; half an edge: rate 0.5); a server with
    no capacity and a non-empty queue then waits ``inf``.
    """
    b, c = _broadcast(np.asarray(backlog_s, dtype=float), np.asarray(capacity_s, dtype=float))
    slack = c - np.asarray(work_s, dtype=float)
    if b.shape != slack.shape:
        b = np.broadcast_to(b, slack.shape)
    new_backlog = np.maximum(0.0, b - slack)
    # queued all epoch: b - slack/2; empties mid-epoch (0 <= b < slack): b^2 / (2 slack)
    mean_backlog = np.array(b - 0.5 * slack, dtype=float)
    empties = b < slack
    np.divide(b * b, 2.0 * slack, out=mean_backlog, where=empties)
    if period_s is None:
        return new_backlog, mean_backlog
    rate = c / np.asarray(period_s, dtype=float)
    wait = np.where(mean_backlog > 0.0, np.inf, 0.0)
    np.divide(mean_backlog, rate, out=wait, where=(rate > 0.0) & (mean_backlog > 0.0))
    return new_backlog, wait


def compute_energy_j(
    idle_w: ArrayLike,
    active_w: ArrayLike,
    busy_s: ArrayLike,
    period_s: ArrayLike,
    pue: ArrayLike = 1.0,
) -> np.ndarray:
    """Site energy of a node over a period, J: ``(idle*T + (active-idle)*min(busy, T)) * pue``."""
    busy = np.minimum(np.asarray(busy_s, dtype=float), period_s)
    idle = np.asarray(idle_w, dtype=float)
    return (idle * period_s + (np.asarray(active_w, dtype=float) - idle) * busy) * pue


def radio_energy_j(n_bytes: ArrayLike, j_per_bit: ArrayLike) -> np.ndarray:
    """Transfer energy, J: ``8 * n_bytes * j_per_bit``."""
    return 8.0 * np.asarray(n_bytes, dtype=float) * np.asarray(j_per_bit, dtype=float)


def carbon_g(energy_j: ArrayLike, g_per_kwh: ArrayLike) -> np.ndarray:
    """Emissions, g CO2e: ``energy_j / 3.6e6 * g_per_kwh``."""
    return np.asarray(energy_j, dtype=float) / J_PER_KWH * np.asarray(g_per_kwh, dtype=float)


def violation_share(lat_start_s: ArrayLike, lat_end_s: ArrayLike, deadline_s: ArrayLike) -> np.ndarray:
    """Share in [0, 1] of requests with latency > deadline, s.

    Latency grows linearly across the epoch from ``lat_start_s`` to ``lat_end_s`` and requests
    arrive uniformly, so the share is the length of ``{tau in [0,1]: L(tau) > d}``: with
    ``tau* = (d - L0) / (L1 - L0)`` it is ``1 - tau*`` when latency rises and ``tau*`` when it
    falls (clipped to [0, 1]); a constant latency gives 0 or 1. An infinite end (an outage)
    counts every request after the start as late.
    """
    l0, l1, d = _broadcast(
        np.asarray(lat_start_s, dtype=float), np.asarray(lat_end_s, dtype=float), np.asarray(deadline_s, dtype=float)
    )
    finite = np.isfinite(l0) & np.isfinite(l1)
    span = np.subtract(l1, l0, out=np.zeros(l0.shape), where=finite)
    # constant latency: all late or none; an infinite end: L is infinite on (0, 1), all late
    out = np.where(finite, (l0 > d).astype(float), 1.0)
    moving = span != 0.0
    tau = np.divide(d - l0, span, out=np.zeros(l0.shape), where=moving)
    np.clip(np.where(span > 0.0, 1.0 - tau, tau), 0.0, 1.0, out=tau)
    return np.where(moving, tau, out)


def weighted_quantile(values: ArrayLike, weights: ArrayLike, q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` weighted by ``weights`` (inverse weighted CDF).

    Returns the smallest value whose cumulative weight reaches ``q`` of the total; zero-weight
    values are ignored; ``nan`` when the total weight is 0.
    """
    v = np.asarray(values, dtype=float).ravel()
    wt = np.asarray(weights, dtype=float).ravel()
    if v.shape != wt.shape:
        raise ValueError(f"weights: got shape {wt.shape}; must match values {v.shape}")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q: got {q}; must be in [0, 1]")
    keep = wt > 0.0
    v, wt = v[keep], wt[keep]
    if v.size == 0:
        return float("nan")
    order = np.argsort(v, kind="stable")
    v, cw = v[order], np.cumsum(wt[order])
    idx = int(np.searchsorted(cw, q * cw[-1], side="left"))
    return float(v[min(idx, v.size - 1)])
