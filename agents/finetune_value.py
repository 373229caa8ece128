"""A learned finetune scheduler (issue 16): a small network predicts, from what an operator sees of an edge, how
much a finetune started now will change the edge model's accuracy, and the policy finetunes where the prediction
clears a threshold.

* **What it sees:** each edge's row of :func:`~gaisnet_env.agents.augment.edge_rows` (the edge's 19 observation
  features, the 3 memory features of :class:`~gaisnet_env.agents.augment.AugmentObservation` and the 6 global
  ones): estimated accuracies from returned labels, epochs since each op, the drift indicator and so on. Never
  the true accuracy, the true domain or the future.
* **How it learns:** :func:`exploration_episode` plays the ``periodic`` heuristic without its finetunes
  (``j=0``: its routes, and relay_to_end whenever the edge is idle) and starts a finetune on each idle edge with
  probability ``finetune_prob`` per epoch. The label of each finetune is the change of the edge classifier's
  *true* accuracy on its cell's current domain from the epoch it started to the epoch after it committed
  (``info["edge_accuracy"]``, measurement only); finetunes whose cell's domain changed in between, or that did
  not commit within their epoch, are left out. The true accuracy is used as a training label in simulation
  only: the policy acts on the observation alone ("learning from privileged labels").
* **How it acts:** :class:`FinetuneValuePolicy` plays ``periodic:j=0`` and replaces an edge's op by a finetune
  where the edge is idle, a finetune is feasible and the predicted change exceeds ``tau``.

Build one with ``python -m gaisnet_env.agents.finetune_value --scenario metro --out DIR`` (see :func:`main`);
evaluate it as the policy spec ``finetune-value:model=DIR/model.npz,tau=0.08`` (the threshold that scored best on
metro's and drift-storm's validation seeds: ``benchmarks/results/*_finetune_value_sweep.md``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from gaisnet_env.agents.augment import ObsAugmenter, edge_row_dim, edge_rows
from gaisnet_env.agents.base import split_mask

from gaisnet_env.env import EDGE_FEATURES, OP_FINETUNE

#: Exploration and training seeds start here: apart from the evaluation (10,000+), validation (20,000+) and
#: warm-start teacher (50,000+) seeds.
TRAIN_SEED_BASE = 60_000
_IDLE, _SINCE_FT = EDGE_FEATURES.index("op_in_flight"), EDGE_FEATURES.index("since_finetune")


class GainModel:
    """A tanh MLP ``rows (k, 28) -> predicted change of the true edge accuracy (k,)`` (accuracy in [0, 1]),
    with the inputs standardised by the training set's mean and scale. Inference in float64 numpy."""

    def __init__(self, weights: list[np.ndarray], mean: np.ndarray, scale: np.ndarray,
                 meta: dict[str, Any] | None = None) -> None:
        if len(weights) % 2 or not weights:
            raise ValueError(f"GainModel: weights must be (W, b) pairs; got {len(weights)} arrays")
        if weights[0].shape[0] != edge_row_dim():
            raise ValueError(f"GainModel: input width {weights[0].shape[0]}; an edge row has {edge_row_dim()}")
        self.weights = [np.asarray(w, np.float64) for w in weights]
        self.mean, self.scale = np.asarray(mean, np.float64), np.asarray(scale, np.float64)
        self.meta = dict(meta or {})

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Predicted accuracy change of a finetune started now, one per row."""
        h = (np.asarray(rows, np.float64) - self.mean) / self.scale
        pairs = list(zip(self.weights[::2], self.weights[1::2], strict=True))
        for i, (w, b) in enumerate(pairs):
            h = h @ w + b
            if i < len(pairs) - 1:
                h = np.tanh(h)
        return h[:, 0]

    def save(self, path: str | Path) -> None:
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)}
        np.savez(path, mean=self.mean, scale=self.scale, meta=np.array(json.dumps(self.meta)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> GainModel:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"finetune-value: model={str(path)!r} is not a file (build one with "
                                    "python -m gaisnet_env.agents.finetune_value)")
        with np.load(p, allow_pickle=False) as z:
            n = sum(1 for k in z.files if k.startswith("w"))
            return cls([z[f"w{i}"] for i in range(n)], z["mean"], z["scale"], json.loads(str(z["meta"])))


def _can_finetune(rows: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """(E,) bool: the edge is idle (no op in flight) and its action mask allows a finetune."""
    _, ops_ok = split_mask(info, rows.shape[0])
    return (rows[:, _IDLE] < 0.5) & ops_ok[:, OP_FINETUNE]


class FinetuneValuePolicy:
    """``periodic:j=0`` with learned finetunes (module docstring).

    Args:
        env: the env it acts on (the base heuristic's cost model reads its figures).
        model: path of a saved :class:`GainModel` (``.npz``).
        tau: finetune where the predicted accuracy change exceeds this (accuracy in [0, 1]; 0.08 was best on
            the validation seeds of metro and drift-storm).
    """

    def __init__(self, env: Any = None, model: str | Path = "", tau: float = 0.08) -> None:
        from gaisnet_env.agents.heuristics import make_heuristic

        self.model = GainModel.load(model)
        self.tau = float(tau)
        if not np.isfinite(self.tau):
            raise ValueError(f"finetune-value: tau={tau!r}; expected a finite accuracy change")
        self.base = make_heuristic("periodic", env=env, j=0)
        self.augmenter = ObsAugmenter()

    def reset(self, seed: int | None = None) -> None:
        self.base.reset(seed)
        self.augmenter.reset()

    def act(self, observation: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        action = np.asarray(self.base.act(observation, info), dtype=np.int64).copy()
        rows = edge_rows(observation, self.augmenter)
        go = _can_finetune(rows, info) & (self.model.predict(rows) > self.tau)
        action[1::2][go] = OP_FINETUNE
        return action


def exploration_episode(scenario: str, seed: int, finetune_prob: float = 0.2,
                        env_kwargs: dict[str, Any] | None = None, around: str | None = None,
                        around_tau: float = 0.08) -> tuple[np.ndarray, np.ndarray, float]:
    """One exploration episode (module docstring): the edge rows at each labelled finetune's start ``(n, 28)``,
    its labels ``(n,)`` (change of the true edge accuracy) and the episode's reward. With ``around`` (a saved
    model), the episode also starts the finetunes that model's policy at ``around_tau`` would (the next round of
    data then covers the states that policy visits, as in DAgger)."""
    from gaisnet_env.agents.heuristics import make_heuristic

    from gaisnet_env.env import GaisNetEnv

    env = GaisNetEnv(scenario, **(env_kwargs or {}))
    base = make_heuristic("periodic", env=env, j=0)
    base.reset(seed)
    rng = np.random.default_rng([seed, 1])  # the exploration's own stream, apart from the env's
    guide = GainModel.load(around) if around else None
    aug = ObsAugmenter()
    obs, info = env.reset(seed=seed)
    pending: list[tuple[int, np.ndarray, float, np.ndarray]] = []  # (edge, row, accuracy before, domain)
    xs, ys, total = [], [], 0.0
    while True:
        action = np.asarray(base.act(obs, info), dtype=np.int64).copy()
        rows = edge_rows(obs, aug)
        can = _can_finetune(rows, info)
        start = can & (rng.random(rows.shape[0]) < finetune_prob)
        if guide is not None:
            start |= can & (guide.predict(rows) > around_tau)
        action[1::2][start] = OP_FINETUNE
        domain = np.concatenate(env.true_domain(env.state.epoch), axis=1)
        seen = obs  # the observation after the epoch before: its finetunes have committed if since_finetune is 0
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        acc = np.asarray(info["edge_accuracy"], np.float64)  # this epoch's weights, before its commits
        for e, row, before, dom in pending:  # the finetunes started the epoch before
            if seen[e * len(EDGE_FEATURES) + _SINCE_FT] == 0.0 and np.array_equal(dom, domain[e]):
                xs.append(row)
                ys.append(acc[e] - before)
        pending = [(int(e), rows[e], float(acc[e]), domain[e]) for e in np.flatnonzero(start)]
        if terminated or truncated:
            break
    env.close()
    return np.asarray(xs, np.float32).reshape(-1, edge_row_dim()), np.asarray(ys, np.float64), total


def fit_gain_model(xs: list[np.ndarray], ys: list[np.ndarray], hidden: int = 64, epochs: int = 300, lr: float = 1e-3,
                   seed: int = 0, holdout: float = 0.25) -> tuple[GainModel, dict[str, float]]:
    """Fit a :class:`GainModel` to exploration episodes (``xs[i]`` rows, ``ys[i]`` labels of episode ``i``): the
    last ``holdout`` share of the episodes is kept apart to report R^2 on episodes the fit never saw, then the
    model is refitted on all of them. Returns the model and its statistics."""
    import torch

    n_test = int(round(len(xs) * holdout))
    if len(xs) - n_test < 1 or sum(len(y) for y in ys) < 10:
        raise ValueError(f"fit_gain_model: {len(xs)} episodes with {sum(len(y) for y in ys)} labelled finetunes; "
                         "need more (raise --episodes or --finetune-prob)")

    def train(x: np.ndarray, y: np.ndarray) -> GainModel:
        torch.manual_seed(seed)
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, hidden),
                                  torch.nn.Tanh(), torch.nn.Linear(hidden, 1)).double()
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
        xt, yt = torch.as_tensor((x - mean) / scale, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            perm = torch.randperm(len(xt), generator=gen)
            for b in range(0, len(xt), 128):
                i = perm[b : b + 128]
                loss = ((net(xt[i])[:, 0] - yt[i]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        weights = [p.detach().numpy().T.copy() if p.ndim == 2 else p.detach().numpy().copy() for p in net.parameters()]
        return GainModel(weights, mean, scale)

    def r2(model: GainModel, x: np.ndarray, y: np.ndarray) -> float:
        return float(1.0 - ((y - model.predict(x)) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12))

    stats: dict[str, float] = {"episodes": float(len(xs)), "finetunes": float(sum(len(y) for y in ys))}
    if n_test:
        x_tr, y_tr = np.concatenate(xs[:-n_test]), np.concatenate(ys[:-n_test])
        x_te, y_te = np.concatenate(xs[-n_test:]), np.concatenate(ys[-n_test:])
        first = train(x_tr, y_tr)
        pred = first.predict(x_te)
        top = pred > np.median(pred)
        stats.update(r2_train=r2(first, x_tr, y_tr), r2_heldout=r2(first, x_te, y_te), heldout_episodes=float(n_test),
                     heldout_mean_change=float(y_te.mean()), heldout_top_half_change=float(y_te[top].mean()),
                     heldout_bottom_half_change=float(y_te[~top].mean()))
    model = train(np.concatenate(xs), np.concatenate(ys))
    model.meta = {**stats, "hidden": hidden, "epochs": epochs, "lr": lr, "seed": seed}
    return model, stats


def save_data(path: str | Path, episodes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Exploration episodes' rows and labels in one ``.npz`` (``x`` (n, 28), ``y`` (n,), ``lengths`` per episode)."""
    np.savez(path, x=np.concatenate([e[0] for e in episodes]), y=np.concatenate([e[1] for e in episodes]),
             lengths=np.array([len(e[1]) for e in episodes], np.int64))


def load_data(path: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The episodes of :func:`save_data`'s file."""
    with np.load(path, allow_pickle=False) as z:
        cut = np.cumsum(z["lengths"])[:-1]
        return list(zip(np.split(z["x"], cut), np.split(z["y"], cut), strict=True))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gaisnet_env.agents.finetune_value", description=__doc__.split("\n")[0])
    p.add_argument("--scenario", default="metro")
    p.add_argument("--episodes", type=int, default=48, help="exploration episodes (training seeds FIRST_SEED + i)")
    p.add_argument("--first-seed", type=int, default=TRAIN_SEED_BASE, help="the first exploration seed")
    p.add_argument("--finetune-prob", type=float, default=0.2, help="per idle edge and epoch, exploration")
    p.add_argument("--around", default=None, metavar="MODEL",
                   help="also start the finetunes this model's policy would (a DAgger round around it)")
    p.add_argument("--around-tau", type=float, default=0.08, help="the threshold of --around's policy")
    p.add_argument("--data-in", action="append", default=[], metavar="DATA",
                   help="fit on an earlier run's data.npz too (repeatable; its episodes come first)")
    p.add_argument("--jobs", type=int, default=1, help="processes playing the exploration episodes")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--out", required=True, help="folder for model.npz, meta.json and data.npz")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Collect exploration episodes on training seeds, fit the model, write ``OUT/model.npz``, ``OUT/meta.json`` and
    the episodes' rows and labels ``OUT/data.npz``."""
    p = _parser()
    args = p.parse_args(argv)
    if args.episodes < 2 or not 0.0 < args.finetune_prob <= 1.0:
        p.error(f"--episodes={args.episodes} (at least 2) / --finetune-prob={args.finetune_prob} (in (0, 1])")
    t0 = time.perf_counter()
    seeds = [args.first_seed + i for i in range(args.episodes)]
    jobs = [(args.scenario, s, args.finetune_prob, None, args.around, args.around_tau) for s in seeds]
    if args.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        import torch

        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn"), initializer=torch.set_num_threads,
                                 initargs=(1,)) as ex:  # one torch thread per process, as the evaluation's
            episodes = list(ex.map(exploration_episode, *zip(*jobs, strict=True)))
    else:
        episodes = [exploration_episode(*j) for j in jobs]
    t_collect = time.perf_counter() - t0
    data = [e for path in args.data_in for e in load_data(path)] + [(e[0], e[1]) for e in episodes]
    model, _ = fit_gain_model([e[0] for e in data], [e[1] for e in data], args.hidden, args.epochs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.meta.update(scenario=args.scenario, seeds=[seeds[0], seeds[-1]], finetune_prob=args.finetune_prob,
                      around=args.around, around_tau=args.around_tau if args.around else None,
                      data_in=args.data_in, collect_wall_s=t_collect,
                      fit_wall_s=time.perf_counter() - t0 - t_collect,
                      exploration_reward_mean=float(np.mean([e[2] for e in episodes])),
                      episode_finetunes=[len(e[1]) for e in episodes])
    model.save(out / "model.npz")
    save_data(out / "data.npz", [(e[0], e[1]) for e in episodes])
    (out / "meta.json").write_text(json.dumps(model.meta, indent=2))
    print(json.dumps(model.meta, indent=2))
    return model.meta


if __name__ == "__main__":
    main()
