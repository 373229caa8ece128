"""Paired comparisons on common seeds: the differences between policies' episode rewards seed by seed
(common random numbers), their 95% t-CIs, and the normalised score

    score = mean(agent - best heuristic) / mean(oracle - best heuristic)

over the seeds all three ran, with a percentile bootstrap CI over seeds (0: no better than the best
heuristic; 1: as good as the oracle; negative: worse than the heuristic). See issue 16 and the README's
"Benchmarks" section."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gaisnet_env.agents.base import EpisodeMetrics, summarise

#: Bootstrap resamples of the normalised score's CI, and the fixed seed that makes the CI reproducible.
BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Paired:
    """``a - b`` episode reward over the ``n`` (seed, episode) pairs both ran: mean and 95% t-CI half-width."""

    a: str
    b: str
    mean: float
    ci95: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.n >= 2 and math.isfinite(self.ci95) and abs(self.mean) > self.ci95

    def sentence(self) -> str:
        sig = "excludes 0" if self.excludes_zero else "includes 0"
        ci = f"{self.ci95:.2f}" if math.isfinite(self.ci95) else "n/a"
        return f"{self.a} - {self.b} = {self.mean:+.2f} ± {ci} (paired, {self.n} seeds, 95% t-CI {sig})"


@dataclass(frozen=True)
class NormalisedScore:
    """(agent - heuristic) / (oracle - heuristic) on ``n`` common seeds; ``lo``/``hi``: the 95% percentile
    bootstrap CI over seeds (nan when undefined: fewer than 2 seeds, or the oracle not above the heuristic)."""

    agent: str
    heuristic: str
    oracle: str
    score: float
    lo: float
    hi: float
    n: int

    def text(self) -> str:
        if not math.isfinite(self.score):
            return "n/a"
        ci = f" [{self.lo:.2f}, {self.hi:.2f}]" if math.isfinite(self.lo) else ""
        return f"{self.score:.2f}{ci}"


def _by_pair(results: Sequence[EpisodeMetrics], policy: str) -> dict[tuple[int, int], float]:
    return {(r.seed, r.episode): float(r.reward) for r in results if r.policy == policy}


def paired(results: Sequence[EpisodeMetrics], a: str, b: str) -> Paired:
    """reward(a) - reward(b) over the (seed, episode) pairs both ran."""
    ra, rb = _by_pair(results, a), _by_pair(results, b)
    common = sorted(set(ra) & set(rb))
    mean, half = summarise([ra[k] - rb[k] for k in common]) if common else (math.nan, math.nan)
    return Paired(a, b, float(mean), float(half), len(common))


def normalised_score(results: Sequence[EpisodeMetrics], agent: str, heuristic: str, oracle: str,
                     samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> NormalisedScore:
    """The normalised score of ``agent`` between ``heuristic`` (0) and ``oracle`` (1) on the pairs all three
    ran, with a percentile bootstrap 95% CI (``samples`` resamples of the seeds, generator ``seed``).
    Resamples whose oracle gain is not positive are left out of the CI; if the whole sample's is not
    positive the score is nan (the oracle does not lead the heuristic: nothing to normalise by)."""
    ra, rh, ro = (_by_pair(results, p) for p in (agent, heuristic, oracle))
    common = sorted(set(ra) & set(rh) & set(ro))
    gain = np.array([ra[k] - rh[k] for k in common], dtype=np.float64)
    room = np.array([ro[k] - rh[k] for k in common], dtype=np.float64)
    nan = NormalisedScore(agent, heuristic, oracle, math.nan, math.nan, math.nan, len(common))
    if not common or room.mean() <= 0.0:
        return nan
    score = float(gain.mean() / room.mean())
    if len(common) < 2:
        return NormalisedScore(agent, heuristic, oracle, score, math.nan, math.nan, 1)
    idx = np.random.default_rng(seed).integers(0, len(common), (samples, len(common)))
    g, r = gain[idx].mean(1), room[idx].mean(1)
    ok = r > 0.0
    lo, hi = np.percentile(g[ok] / r[ok], [2.5, 97.5])
    return NormalisedScore(agent, heuristic, oracle, score, float(lo), float(hi), len(common))


__all__ = ["BOOTSTRAP_SAMPLES", "NormalisedScore", "Paired", "normalised_score", "paired"]
