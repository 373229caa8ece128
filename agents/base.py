"""The policy interface shared by heuristics, the oracle and learned agents, and its evaluator.

Every policy implements :class:`Policy`: ``reset(seed)`` at the start of an episode and
``act(observation, info) -> action`` each epoch, where ``info`` is the *unwrapped* env's
info dict (it carries ``action_mask``) and the action is the env's MultiDiscrete action
``[route_0, op_0, route_1, op_1, ...]``. :func:`evaluate` runs any policy on fresh envs and
returns per-episode metrics in physical units, so every policy is scored by the same code.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from gaisnet_env.masks import flat_mask

if TYPE_CHECKING:
    from gaisnet_env.env import GaisNetEnv

#: Evaluation seeds start here; training uses seeds below it (held-out evaluation).
EVAL_SEED_BASE: int = 10_000
#: Validation seeds (best-model selection during training) start here: disjoint from the training
#: seeds and from the evaluation seeds the benchmark reports, so the reported agent is not selected on
#: the episodes it is scored on.
VALIDATION_SEED_BASE: int = 20_000
N_ROUTES: int = 3
N_OPS: int = 5


@runtime_checkable
class Policy(Protocol):
    """A scheduling policy: one MultiDiscrete action per decision epoch."""

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode (clear any memory; seed any randomness)."""

    def act(self, observation: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """Action ``[route_0, op_0, ...]`` (int64, length 2 x edges) for this epoch."""


def eval_seeds(n: int, base: int = EVAL_SEED_BASE) -> list[int]:
    """``n`` held-out evaluation seeds ``base, base+1, ...``."""
    return list(range(base, base + int(n)))


# ----------------------------------------------------------------------------------------
# reading observations and masks


def n_edges_of(info: dict[str, Any] | None = None, observation: np.ndarray | None = None) -> int:
    """Number of edges, from the action mask (8 entries per edge) or the observation length."""
    if info is not None and "action_mask" in info:
        return flat_mask(info["action_mask"]).size // (N_ROUTES + N_OPS)
    if observation is None:
        raise ValueError("n_edges_of: need info with 'action_mask' or an observation")
    from gaisnet_env.env import EDGE_FEATURES, GLOBAL_FEATURES

    return (len(observation) - len(GLOBAL_FEATURES)) // len(EDGE_FEATURES)


def split_mask(info: dict[str, Any], n_edges: int) -> tuple[np.ndarray, np.ndarray]:
    """Route (E, 3) and op (E, 5) feasibility from ``info['action_mask']`` (all True if absent).

    Takes Gymnasium's tuple (the env's ``info``) or the flat layout (``env.action_masks()``)."""
    if "action_mask" not in info:
        return np.ones((n_edges, N_ROUTES), bool), np.ones((n_edges, N_OPS), bool)
    m = flat_mask(info["action_mask"]).reshape(n_edges, N_ROUTES + N_OPS)
    return m[:, :N_ROUTES], m[:, N_ROUTES:]


class ObsView:
    """Named access to an observation: ``v.edge('drift')`` -> (E,), ``v.glob('cloud_backlog')``."""

    def __init__(self, observation: np.ndarray) -> None:
        from gaisnet_env.env import EDGE_FEATURES, GLOBAL_FEATURES

        obs = np.asarray(observation, dtype=np.float64).ravel()
        nf, ng = len(EDGE_FEATURES), len(GLOBAL_FEATURES)
        self.n_edges = (obs.size - ng) // nf
        self._edge = obs[: self.n_edges * nf].reshape(self.n_edges, nf)
        self._glob = obs[self.n_edges * nf :]
        self._ei = {k: i for i, k in enumerate(EDGE_FEATURES)}
        self._gi = {k: i for i, k in enumerate(GLOBAL_FEATURES)}

    def edge(self, name: str) -> np.ndarray:
        """Per-edge feature ``name`` (see ``EDGE_FEATURES``), shape (E,), normalised units."""
        return self._edge[:, self._ei[name]]

    def glob(self, name: str) -> float:
        """Global feature ``name`` (see ``GLOBAL_FEATURES``), normalised units."""
        return float(self._glob[self._gi[name]])

    @property
    def accuracy(self) -> np.ndarray:
        """(E, 3) observed accuracy of the end, edge and cloud classifiers on each cell."""
        return self._edge[:, [self._ei["accuracy_end"], self._ei["accuracy_edge"], self._ei["accuracy_cloud"]]]


def masked_route(preferred: np.ndarray, routes_ok: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Per edge, ``preferred`` if feasible, else the best feasible route by ``order`` (E, 3 scores)."""
    E = routes_ok.shape[0]
    out = np.asarray(preferred, dtype=np.int64).copy()
    for e in range(E):
        if not routes_ok[e, out[e]]:
            scores = order[e] if order is not None else -np.abs(np.arange(N_ROUTES) - out[e])
            cand = np.where(routes_ok[e], scores, -np.inf)
            out[e] = int(np.argmax(cand)) if np.isfinite(cand).any() else 0
    return out


def compose(route: np.ndarray, op: np.ndarray, ops_ok: np.ndarray | None = None) -> np.ndarray:
    """Interleave per-edge routes and ops into ``[r0, o0, r1, o1, ...]``; masked ops become none."""
    op = np.asarray(op, dtype=np.int64).copy()
    if ops_ok is not None:
        op = np.where(ops_ok[np.arange(len(op)), op], op, 0)
    return np.stack([np.asarray(route, dtype=np.int64), op], axis=1).ravel()


# ----------------------------------------------------------------------------------------
# evaluation


@dataclass
class EpisodeMetrics:
    """One evaluated episode. Units: reward unitless, accuracy in [0, 1], latency s, energy J,
    carbon g, violations = requests, bytes = bytes, wall time s."""

    policy: str
    seed: int
    episode: int
    reward: float
    accuracy: float
    latency_p95_s: float
    energy_j: float
    carbon_g: float
    sla_violations: float
    bytes_moved: float
    epochs: int
    ops_started: int
    wall_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Metric columns of :class:`EpisodeMetrics` that benchmarks aggregate, with display labels.
METRICS: dict[str, str] = {
    "reward": "episode reward",
    "accuracy": "accuracy",
    "latency_p95_s": "p95 latency (s)",
    "energy_j": "energy (J)",
    "carbon_g": "carbon (g)",
    "sla_violations": "SLA violations",
    "bytes_moved": "bytes moved",
}


def run_episode(
    policy: Policy, env: GaisNetEnv | Any, seed: int | None, name: str = "", episode: int = 0
) -> EpisodeMetrics:
    """Play one episode of ``policy`` on ``env`` (reset with ``seed``) and sum up its metrics."""
    t0 = time.perf_counter()
    policy.reset(seed)
    obs, info = env.reset(seed=seed)
    total = acc = p95 = energy = carbon = viol = moved = 0.0
    n = ops = 0
    while True:
        action = policy.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        acc += float(info["accuracy"])
        p95 += float(info["latency_p95_s"])
        energy += float(info["energy_j"])
        carbon += float(info["carbon_g"])
        viol += float(info["sla_violations"])
        moved += float(info["bytes_up"]) + float(info["bytes_down"])
        ops += int(info.get("ops_started", 0))
        n += 1
        if terminated or truncated:
            break
    return EpisodeMetrics(
        policy=name or type(policy).__name__,
        seed=-1 if seed is None else int(seed),
        episode=episode,
        reward=total,
        accuracy=acc / max(n, 1),
        latency_p95_s=p95 / max(n, 1),
        energy_j=energy,
        carbon_g=carbon,
        sla_violations=viol,
        bytes_moved=moved,
        epochs=n,
        ops_started=ops,
        wall_s=time.perf_counter() - t0,
    )


def evaluate(
    policy: Policy,
    env_factory: Callable[[], Any],
    seeds: Iterable[int] | int = 5,
    episodes: int = 1,
    name: str = "",
    progress: bool = False,
) -> list[EpisodeMetrics]:
    """Evaluate ``policy`` on ``episodes`` episodes per seed of fresh envs from ``env_factory``.

    Args:
        policy: any :class:`Policy`.
        env_factory: builds the (unwrapped) env; called once and reused across episodes.
        seeds: explicit seeds, or a count ``n`` meaning the held-out seeds ``eval_seeds(n)``.
        episodes: episodes per seed (the first resets with the seed, later ones continue its RNG
            stream through ``seed + 100_000 * k``).
        name: label stored in the metrics (default: the policy's class name).
        progress: show a tqdm progress bar.
    """
    seed_list = eval_seeds(seeds) if isinstance(seeds, int) else [int(s) for s in seeds]
    env = env_factory()
    jobs = [(s, k) for s in seed_list for k in range(int(episodes))]
    it: Sequence[tuple[int, int]] | Any = jobs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(jobs, desc=f"eval {name or type(policy).__name__}", unit="ep", leave=False)
    out = []
    try:
        for s, k in it:
            out.append(run_episode(policy, env, s + 100_000 * k, name=name, episode=k))
    finally:
        env.close()
    return out


def summarise(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its two-sided t-distribution confidence interval."""
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, half
