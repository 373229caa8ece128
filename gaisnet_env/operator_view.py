"""The operator's view of per-edge tier accuracy: estimates from the labelled feedback that returned.

A real operator never sees a tier's accuracy on a cell's true domain; it sees the labels that users
send back. For every (edge, tier) the env keeps exponentially decayed counts of correct predictions
(``hits``) and of labelled samples they were scored on (``seen``), plus a ``prior`` accuracy carried
over from before the tier's model last changed. The estimate is the Beta-smoothed share

    ``(hits + PRIOR_WEIGHT * prior) / (seen + PRIOR_WEIGHT)``

so an (edge, tier) with no labels yet reads its prior. Arrays are ``(E, 3)``, tiers in
``CLASSIFIER_TIERS`` order (end, edge, cloud); counts are in samples (decayed, so not integers),
accuracies are shares in [0, 1]. The functions are pure: they return new arrays.
"""

from __future__ import annotations

import numpy as np

#: Per-epoch decay of ``hits`` and ``seen``: a label returned k epochs ago weighs 0.9**k (an effective
#: memory of about 1 / (1 - 0.9) = 10 epochs), so the estimate follows a drifting domain.
DECAY = 0.9
#: Pseudo-samples of the prior in the estimate (a Beta(2 prior, 2 (1 - prior)) prior).
PRIOR_WEIGHT = 2.0
#: Prior accuracy of every tier at reset (share correct): uninformative.
INITIAL_PRIOR = 0.5


def initial(n_edges: int, n_tiers: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hits, seen, prior)`` at reset, each ``(n_edges, n_tiers)`` float64: no samples, prior 0.5."""
    shape = (int(n_edges), int(n_tiers))
    return np.zeros(shape), np.zeros(shape), np.full(shape, INITIAL_PRIOR)


def estimate(hits: np.ndarray, seen: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Estimated accuracy (share correct, in [0, 1]) per (edge, tier): ``(hits + 2 prior) / (seen + 2)``.

    Args:
        hits: decayed count of correct predictions on returned labels (samples).
        seen: decayed count of returned labels scored (samples), ``>= hits``.
        prior: accuracy carried over from the tier's previous model (share).
    """
    return (hits + PRIOR_WEIGHT * prior) / (seen + PRIOR_WEIGHT)


def observe(
    hits: np.ndarray, seen: np.ndarray, new_hits: np.ndarray, new_seen: np.ndarray, observed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One epoch: decay every count by :data:`DECAY`, then add this epoch's labels where observed.

    Args:
        hits, seen: the decayed counts so far, ``(E, T)`` (samples).
        new_hits: correct predictions on this epoch's returned labels, ``(E, T)`` (samples).
        new_seen: labels returned this epoch, ``(E, T)`` (samples).
        observed: ``(E, T)`` bool, whether the operator learns that tier's answers this epoch (the
            cloud's only when the edge routed to it); unobserved entries only decay.

    Returns:
        The new ``(hits, seen)``.
    """
    obs = np.asarray(observed, dtype=bool)
    hits = DECAY * hits + np.where(obs, new_hits, 0.0)
    seen = DECAY * seen + np.where(obs, new_seen, 0.0)
    return hits, seen


def model_changed(
    hits: np.ndarray, seen: np.ndarray, prior: np.ndarray, changed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tier's model changed (an op committed): its current estimate becomes the prior, counts restart.

    Args:
        hits, seen, prior: as in :func:`estimate`, ``(E, T)``.
        changed: ``(E, T)`` bool, the (edge, tier) whose model changed.

    Returns:
        The new ``(hits, seen, prior)``.
    """
    ch = np.asarray(changed, dtype=bool)
    prior = np.where(ch, estimate(hits, seen, prior), prior)
    return np.where(ch, 0.0, hits), np.where(ch, 0.0, seen), prior


__all__ = ["DECAY", "INITIAL_PRIOR", "PRIOR_WEIGHT", "estimate", "initial", "model_changed", "observe"]


def tiers_changed(changed: np.ndarray | None, n_edges: int, edge: int, op: str) -> np.ndarray:
    """Mark in ``changed`` ((E, 3) bool, end/edge/cloud; allocated when None) the tiers whose model the
    committed operation ``op`` (a name of ``worker_config.OPERATIONS``) of ``edge`` changed: relay_down and
    finetune that edge's edge tier, relay_to_end its end tier, relay_up the cloud tier of every edge."""
    if changed is None:
        changed = np.zeros((int(n_edges), 3), dtype=bool)
    if op in ("relay_down", "finetune"):
        changed[edge, 1] = True
    elif op == "relay_to_end":
        changed[edge, 0] = True
    elif op == "relay_up":
        changed[:, 2] = True
    return changed


def domain_drift(class_mix: np.ndarray, style_mix: np.ndarray, adapted_class: np.ndarray,
                 adapted_style: np.ndarray) -> np.ndarray:
    """Drift indicator in [0, 1] per edge: the mean of the total-variation distances between the class
    mixes and between the style mixes, ``0.5 * (TV(class) + TV(style))``, of a domain and of the domain an
    edge's model was last adapted to. Arrays ``(..., E, 10)`` and ``(..., E, n_styles)`` of shares; the operator's
    view passes the edges' domain reports (histograms of their labelled feedback), the oracle view the
    true domains."""
    tv_class = 0.5 * np.abs(class_mix - adapted_class).sum(axis=-1)
    tv_style = 0.5 * np.abs(style_mix - adapted_style).sum(axis=-1)
    return np.clip(0.5 * (tv_class + tv_style), 0.0, 1.0)


def reports(workers: object, n_edges: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every edge's domain report from ``workers.domain_report``: class histograms ``(E, 10)``, style
    histograms ``(E, n_styles)`` (float64 shares of the edge's feedback buffer) and whether the edge has
    any feedback ``(E,)`` bool."""
    batch = getattr(workers, "domain_reports", None)
    if batch is not None:  # all edges at once (the same numbers)
        ch, sh, n = batch()
        return ch.astype(np.float64), sh.astype(np.float64), n > 0
    rows = [workers.domain_report(e) for e in range(int(n_edges))]  # type: ignore[attr-defined]
    return (np.array([r[0] for r in rows], dtype=np.float64), np.array([r[1] for r in rows], dtype=np.float64),
            np.array([r[2] > 0 for r in rows]))
