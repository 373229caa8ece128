"""Shared helpers of the benchmark scripts: machine and version info, RSS, policies, result files."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gaisnet_env.provenance import command_line, cpu_kernels, git_commit

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, OS and the versions of python, torch, numpy, gymnasium and gaisnet-env."""
    import gymnasium
    import torch

    import gaisnet_env

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import stable_baselines3

        sb3 = stable_baselines3.__version__
    except ImportError:  # pragma: no cover - a dependency
        sb3 = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_kernels": cpu_kernels(),
        "numpy": np.__version__,
        "gymnasium": gymnasium.__version__,
        "stable_baselines3": sb3,
        "gaisnet_env": getattr(gaisnet_env, "__version__", "unknown"),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "argv": sys.argv,
        "commit": git_commit(),
        "command": command_line(),
    }


def rss_mb() -> float:
    """Current resident set size, MiB (Linux /proc; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MiB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def scenario_for_edges(n_edges: int) -> dict[str, Any]:
    """``metro`` with ``n_edges`` cells: flash crowds and faults naming a missing edge are dropped."""
    from gaisnet_env.scenario import load_scenario

    d = load_scenario("metro").to_dict()
    d["topology"]["n_edges"] = n_edges
    d["topology"]["edge_access_links"] = None
    fcs = []
    for fc in d["workload"].get("flash_crowds") or []:
        if fc.get("edges") is not None:
            fc = dict(fc, edges=[e for e in fc["edges"] if e < n_edges])
            if not fc["edges"]:
                continue
        fcs.append(fc)
    d["workload"]["flash_crowds"] = fcs
    for key in ("links", "edges_down"):
        d["faults"][key] = [f for f in d["faults"].get(key) or [] if f["edge"] < n_edges]
    d["name"] = f"metro-E{n_edges}"
    return d


class NoOpPolicy:
    """Every cell routes to its edge (falling back to a feasible tier) and starts no operation."""

    def __init__(self, env: Any) -> None:
        self.act = np.zeros((env.unwrapped.n_edges, 2), dtype=np.int64)
        self.act[:, 0] = 1

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.act


class MaskedRandomPolicy:
    """Uniform over the choices ``env.action_masks()`` allows, per cell (route and operation)."""

    def __init__(self, env: Any, seed: int = 0) -> None:
        self.env = env.unwrapped
        self.rng = np.random.default_rng(seed)
        self.E = self.env.n_edges

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        m = self.env.action_masks().reshape(self.E, 8)
        # one uniform per choice, masked: argmax of noise over allowed entries = uniform pick
        noise = self.rng.random((self.E, 8))
        noise[~m] = -1.0
        return np.stack([noise[:, :3].argmax(1), noise[:, 3:].argmax(1)], axis=1)


def add_timer(owner: Any, name: str, totals: dict[str, float], key: str) -> None:
    """Wrap ``owner.name`` (an instance attribute shadowing it) so every call adds its wall time (s) to
    ``totals[key]``; ``delattr(owner, name)`` removes the wrapper again."""
    fn = getattr(owner, name)

    def wrapper(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - t0

    setattr(owner, name, wrapper)


def write_results(name: str, data: dict[str, Any], table_md: str, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.md`` to ``out_dir`` (default benchmarks/results)."""
    out = Path(out_dir) if out_dir else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    pj, pm = out / f"{name}.json", out / f"{name}.md"
    pj.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    m = data["machine"]
    head = (
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable); {m['platform']}\n\n"
        f"Versions: python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads), numpy {m['numpy']}, "
        f"gymnasium {m['gymnasium']}, stable-baselines3 {m['stable_baselines3']}, gaisnet-env {m['gaisnet_env']}; "
        f"{m['date']}\n\n"
        f"Commit {m.get('commit', 'unknown')}; command: `{m.get('command', ' '.join(m.get('argv', [])))}`"
        f"{'; CPU kernels: ' + m['cpu_kernels'] if m.get('cpu_kernels') else ''}\n\n"
    )
    pm.write_text(head + table_md + "\n")
    return pj, pm


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
