"""Bring your own model worker: plug a different PyTorch model (small CNNs) into GaisNetEnv.

``GaisNetEnv`` talks to its model workers only through the interface documented in
``docs/workers.md`` (``reset, accuracy, generation_table, version, inference_flops,
generation_flops, model_bytes, add_feedback, domain_report, start_op, commit_op, abort_op,
has_pending, state_dict, load_state_dict``). This file implements that interface from scratch
with convolutional classifiers on the same 8x8 digit images and plugs it in with ``worker_system=``::

    python examples/custom_worker.py

Everything the cost model needs (FLOPs, bytes) is counted from the CNNs, so latency, energy
and carbon follow the new models automatically.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gaisnet_env.core import exact_sums
from gaisnet_env.data import DigitsData
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.worker_config import N_CLASSES, STYLES, WorkerConfig
from gaisnet_env.workers import OpResult

TIERS = ("end", "edge", "cloud")


class SmallCNN(nn.Module):
    """Conv classifier of 8x8 images given as flat (n, 64) tensors in [0, 1]."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.fc1 = nn.Linear(channels * 16, hidden)
        self.fc2 = nn.Linear(hidden, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv(x.view(-1, 1, 8, 8))), 2)
        return self.fc2(F.relu(self.fc1(h.flatten(1))))


def _flops(model: nn.Module, backward: bool = False) -> float:
    """Counted FLOPs of one sample's forward (and backward) pass."""
    x = torch.zeros(1, 64)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        if backward:
            out.sum().backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def _fit(model: nn.Module, x: torch.Tensor, target: torch.Tensor, epochs: int, lr: float, gen: torch.Generator) -> None:
    """Adam on mini-batches; ``target`` int64 labels or float soft labels (distillation)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for b in torch.randperm(x.shape[0], generator=gen).split(32):
            out = model(x[b])
            if target.dtype == torch.int64:
                loss = F.cross_entropy(out, target[b])
            else:
                loss = -(target[b] * F.log_softmax(out, 1)).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()


class CNNWorkers:
    """A worker system with one CNN per tier and cell: cloud (wide), edges (medium), ends (tiny).

    Knowledge operations (all real training, ``epochs`` from the scenario's ``workers:``):
    relay_down distils the cloud CNN into the edge CNN on the edge's unlabelled feedback inputs;
    finetune trains the edge CNN on its labelled feedback; relay_up distils the edge into the
    cloud on the same inputs; relay_to_end distils the edge into the end CNN.
    """

    def __init__(self, n_edges: int, config: WorkerConfig, seed: int, cache_dir: str | None = None) -> None:
        self.n_edges, self.config, self.seed = int(n_edges), config, int(seed)
        self.data = DigitsData(self.n_edges, self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self._proto = {"cloud": SmallCNN(16, 128), "edge": SmallCNN(8, 32), "end": SmallCNN(4, 16)}
        pub = self.data.public_view()
        x, y = pub.get(pub.indices, np.zeros(len(pub), dtype=np.int64))
        for model in self._proto.values():  # pre-train on the cloud's public pool (a second or two)
            _fit(model, x, y, epochs=8, lr=3e-3, gen=gen)
        self._flops = {t: (_flops(m), _flops(m, backward=True)) for t, m in self._proto.items()}
        test = self.data.test_view()
        n_test = len(test)
        styles = np.repeat(np.arange(len(STYLES)), n_test)
        self._x_eval, y_eval = test.get(np.tile(test.indices, len(STYLES)), styles)
        self._y_eval, self._n_test = y_eval, n_test
        onehot = F.one_hot(y_eval[:n_test], N_CLASSES).double().numpy()
        self._class_avg = onehot / np.maximum(onehot.sum(0), 1.0)
        self._views = [self.data.private_view(e) for e in range(self.n_edges)]
        self._tables: dict[tuple[str, int], np.ndarray] = {}
        self._gen = torch.Generator()
        self.reset(self.seed)

    # ---------------------------------------------------------------- state
    def reset(self, seed: int) -> None:
        """Pre-trained weights everywhere, no feedback, nothing pending; reseed training."""
        self._gen.manual_seed(int(seed))
        self._models = {
            "cloud": [copy.deepcopy(self._proto["cloud"])],
            "edge": [copy.deepcopy(self._proto["edge"]) for _ in range(self.n_edges)],
            "end": [copy.deepcopy(self._proto["end"]) for _ in range(self.n_edges)],
        }
        self._versions = {"cloud": [0], "edge": [0] * self.n_edges, "end": [0] * self.n_edges}
        self._counter = getattr(self, "_counter", 0)
        self._feedback: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(self.n_edges)]
        self._pending: list[tuple[str, str, int, dict] | None] = [None] * self.n_edges

    def state_dict(self) -> dict[str, Any]:
        """Deep copy of everything mutable (env snapshot/restore)."""
        return copy.deepcopy(
            {
                "models": {t: [m.state_dict() for m in ms] for t, ms in self._models.items()},
                "versions": self._versions,
                "counter": self._counter,
                "feedback": self._feedback,
                "pending": self._pending,
                "gen": self._gen.get_state(),
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = copy.deepcopy(state)
        for t, ms in self._models.items():
            for m, sd in zip(ms, state["models"][t], strict=True):
                m.load_state_dict(sd)
        self._versions, self._counter = state["versions"], state["counter"]
        self._feedback, self._pending = state["feedback"], state["pending"]
        self._gen.set_state(state["gen"])

    # ---------------------------------------------------------- measurement
    def _model(self, tier: str, edge: int) -> nn.Module:
        return self._models[tier][0 if tier == "cloud" else edge]

    def version(self, tier: str, edge: int) -> int:
        """Identifier of the current weights (0 = pre-trained; unique within this system)."""
        return self._versions[tier][0 if tier == "cloud" else edge]

    def accuracy(self, tier: str, edge: int, class_mix: np.ndarray, style_mix: np.ndarray) -> float:
        """Expected held-out accuracy on a domain (class mix (10,), style mix (n_styles,))."""
        key = (tier, self.version(tier, edge))
        if key not in self._tables:
            with torch.no_grad():
                pred = self._model(tier, edge)(self._x_eval).argmax(1)
            correct = (pred == self._y_eval).numpy().reshape(len(STYLES), self._n_test).astype(np.float64)
            # exact_sums rather than ``@``: numpy's BLAS kernel (and its rounding) varies between machines
            self._tables[key] = exact_sums.matmul(correct, self._class_avg)
        return float(exact_sums.domain_mean(self._tables[key], style_mix, class_mix))

    def generation_table(self, where: str, edge: int = 0) -> np.ndarray:
        """This worker has no generator: a fixed quality (n_styles, 10) in [0, 1] per (style, class)."""
        return np.full((len(STYLES), N_CLASSES), 0.9 if where == "cloud" else 0.7)

    def inference_flops(self, tier: str) -> float:
        """Counted forward FLOPs per sample of ``tier``'s CNN."""
        return self._flops[tier][0]

    def generation_flops(self, where: str) -> float:
        """FLOPs per generated sample (stand-in: ten forward passes of the tier's CNN)."""
        return 10.0 * self._flops[where][0]

    def model_bytes(self, tier: str) -> int:
        """Parameter bytes of ``tier``'s CNN."""
        return sum(p.numel() * p.element_size() for p in self._proto[tier].parameters())

    # -------------------------------------------------------------- feedback
    def add_feedback(
        self, edge: int, class_mix: np.ndarray, style_mix: np.ndarray, n: int, rng: np.random.Generator
    ) -> None:
        """Keep ``n`` labelled samples of the edge's requests (its private pool), most recent last."""
        if n > 0:
            self._feedback[edge].append(self.data.sample_private(edge, class_mix, style_mix, int(n), rng))
            self._feedback[edge] = self._feedback[edge][-16:]

    def _samples(self, edge: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.concatenate([i for i, _ in self._feedback[edge]])
        style = np.concatenate([s for _, s in self._feedback[edge]])
        return self._views[edge].get(idx, style)

    def label_hits(self, edge: int, n: int) -> np.ndarray:
        """Correct predictions (3,) of the end, edge and cloud CNNs on the ``n`` newest labelled samples
        (needed by the env's default ``accuracy_view="estimated"``)."""
        out = np.zeros(3)
        if n <= 0 or not self._feedback[edge]:
            return out
        x, y = self._samples(edge)
        x, y = x[-int(n):], y[-int(n):]
        with torch.no_grad():
            for j, tier in enumerate(("end", "edge", "cloud")):
                out[j] = float((self._model(tier, edge)(x).argmax(1) == y).sum())
        return out

    def domain_report(self, edge: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Class (10,) and style (n_styles,) histograms of the feedback, and its sample count."""
        if not self._feedback[edge]:
            return np.zeros(N_CLASSES, np.float32), np.zeros(len(STYLES), np.float32), 0
        _, y = self._samples(edge)
        style = np.concatenate([s for _, s in self._feedback[edge]])
        n = int(y.shape[0])
        return (
            (np.bincount(y.numpy(), minlength=N_CLASSES) / n).astype(np.float32),
            (np.bincount(style, minlength=len(STYLES)) / n).astype(np.float32),
            n,
        )

    # ------------------------------------------------------------ operations
    def has_pending(self, edge: int) -> bool:
        return self._pending[edge] is not None

    def start_op(self, op: str, edge: int) -> OpResult:
        """Train now, keep the new weights pending until :meth:`commit_op`; report the real cost."""
        if self._pending[edge] is not None:
            return OpResult(op, edge, False, "edge busy")
        if not self._feedback[edge]:
            return OpResult(op, edge, False, "no feedback yet")
        cfg = self.config
        x, y = self._samples(edge)
        n = int(x.shape[0])
        src, dst = {"relay_down": ("cloud", "edge"), "finetune": (None, "edge"),
                    "relay_up": ("edge", "cloud"), "relay_to_end": ("edge", "end")}[op]
        student = copy.deepcopy(self._model(dst, edge))
        if src is None:
            target = y
        else:
            with torch.no_grad():
                target = torch.softmax(self._model(src, edge)(x), 1)
        _fit(student, x, target, epochs=cfg.finetune_epochs, lr=cfg.finetune_lr, gen=self._gen)
        flops = {"end": 0.0, "edge": 0.0, "cloud": 0.0}
        flops["edge" if dst == "end" else dst] += cfg.finetune_epochs * n * self._flops[dst][1]
        if src is not None:
            flops[src] += n * self._flops[src][0]
        payload = self.model_bytes(dst)
        up = payload if op == "relay_up" else 0
        down = payload if op in ("relay_down", "relay_to_end") else 0
        self._pending[edge] = (op, dst, edge, student.state_dict())
        return OpResult(op, edge, True, f"{op}: {src or 'feedback'} -> {dst} on {n} samples",
                        flops=flops, bytes_up=up, bytes_down=down, samples=n)

    def commit_op(self, edge: int) -> None:
        """Make the pending weights live (new version)."""
        pending, self._pending[edge] = self._pending[edge], None
        if pending is not None:
            _, dst, e, weights = pending
            i = 0 if dst == "cloud" else e
            self._models[dst][i].load_state_dict(weights)
            self._counter += 1
            self._versions[dst][i] = self._counter

    def abort_op(self, edge: int) -> None:
        self._pending[edge] = None


def main(argv: list[str] | None = None) -> float:
    gym.register(
        "my_project/GaisNet-cnn-v0", entry_point=GaisNetEnv, kwargs={"scenario": "tiny", "worker_system": CNNWorkers}
    )
    env = gym.make("my_project/GaisNet-cnn-v0")
    obs, info = env.reset(seed=0)
    print("accuracy end/edge/cloud at reset:", info["accuracy_end"], info["accuracy_edge"], info["accuracy_cloud"])
    total = 0.0
    done = False
    while not done:
        # edge route, and a fine-tune whenever the edge is idle
        action = np.tile([1, 2], env.unwrapped.n_edges)
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        done = terminated or truncated
    print(f"return {total:.3f}; edge model versions {info['model_version_edge'].tolist()}")
    env.close()
    return total


if __name__ == "__main__":
    main()
