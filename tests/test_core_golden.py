"""Golden episodes: the env's outputs, bit for bit, against digests recorded on the code before the
simulation core was split out of ``GaisNetEnv._step`` (issue 13).

Each case runs a few dozen epochs with masked-random actions (knowledge operations included) from fixed
seeds and hashes, step by step, the observation, reward, terminated, truncated and info (every key, in
order; arrays by dtype, shape and bytes; floats exactly). A refactor must keep every digest.

To re-record after a deliberate change of behaviour (never for a refactor):
``GAISNET_GOLDEN_RECORD=1 pytest tests/test_core_golden.py``. Re-recorded once (2026-12-06) when the env's
numpy contractions stopped going through BLAS (:mod:`gaisnet_env.core.exact_sums`): the digests of 08d6255
held only where numpy's OpenBLAS ran its Haswell kernel; since then they hold under every kernel
(``test_episodes_do_not_depend_on_the_blas_kernel``).

The digests are kept per torch CPU kernel set (:func:`gaisnet_env.provenance.cpu_kernels`: "AVX512",
"AVX2"): the workers' training rounds differently under AVX2 and AVX-512 kernels, so an episode is bit for bit
the same among machines with the same kernels only. The AVX512 digests are those recorded above; the AVX2
ones were recorded (2026-12-07) on an AVX2-only EPYC from the code of commit 97b5bf0. A
machine whose kernels have no record skips the comparison and says how to record.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gaisnet_env.env import GaisNetEnv
from gaisnet_env.masks import flat_mask
from gaisnet_env.provenance import cpu_kernels
from gaisnet_env.wrappers import FaultInjection

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "golden_episodes.json"
BATTERIES = {"end_battery_j": 200.0, "end_recharge_w": 2.0}
# 1 ms epochs: real ops (~1-13 ms) stay in flight for several epochs (advance, abort, commit later)
FAST = {"epoch_s": 0.001, "workload": {"rate_per_s": 20_000.0, "label_rate": 1.0}}
# scenario faults at fixed epochs: ops in flight aborted, queues dropped, links out, cloud overloaded
PLAN = {
    "edges_down": [{"edge": 0, "start_epoch": 6, "duration_epochs": 3}, {"edge": 0, "start_epoch": 14}],
    "links": [
        {"edge": 0, "link": "backhaul", "start_epoch": 10, "duration_epochs": 2},
        {"edge": 0, "link": "access", "start_epoch": 18, "duration_epochs": 2},
        {"edge": 0, "link": "access", "start_epoch": 21, "duration_epochs": 3, "bandwidth_factor": 0.3},
    ],
    "cloud_overload": [{"start_epoch": 3, "duration_epochs": 6}],
}

# name -> (scenario, env kwargs, seed, steps, op probability per edge, probability per edge of an
# unmasked (possibly masked-out: fallback) choice, fault-injection rate or None)
CASES: dict[str, tuple[str, dict[str, Any], int, int, float, float, float | None]] = {
    "tiny": ("tiny", {}, 0, 45, 0.3, 0.0, None),  # horizon 20: truncates and resets twice
    "metro": ("metro", {}, 1, 30, 0.2, 0.0, None),
    "drift-storm": ("drift-storm", {}, 2, 30, 0.2, 0.0, None),
    "tiny-fast-faults-batteries": (
        "tiny", {**FAST, "horizon": 30, "energy": BATTERIES, "faults": PLAN}, 3, 40, 0.6, 0.2, 0.3,
    ),
    "metro-faults-batteries": (  # a loaded metro: the edges queue, so a down edge drops requests
        "metro", {"horizon": 25, "energy": BATTERIES, "workload": {"rate_per_s": 60.0}}, 4, 30, 0.2, 0.15, 0.3,
    ),
    "metro-exact": ("metro", {"accuracy_view": "exact"}, 5, 25, 0.2, 0.0, None),
    "drift-storm-fast-path": ("drift-storm", {"worker_system": "fast"}, 6, 25, 0.3, 0.0, None),
    # workers from scratch (examples/custom_worker.py): no batched or memoised paths
    "tiny-custom-workers": ("tiny", {"worker_system": "cnn"}, 7, 25, 0.3, 0.1, None),
}


def _script(rel: str) -> Any:
    """A script of the checkout (examples/ and benchmarks/ are not packages) as a module."""
    path = ROOT / rel
    spec = importlib.util.spec_from_file_location(f"_golden_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _feed(h: Any, v: Any) -> None:
    """Hash ``v`` exactly: its type, then its value (arrays by dtype, shape and bytes)."""
    if isinstance(v, np.ndarray):
        h.update(f"nd:{v.dtype.str}:{v.shape}:".encode())
        h.update(np.ascontiguousarray(v).tobytes())
    elif isinstance(v, (bool, np.bool_)):
        h.update(f"b:{bool(v)}".encode())
    elif isinstance(v, (int, np.integer)):
        h.update(f"i:{type(v).__name__}:{int(v)}".encode())
    elif isinstance(v, (float, np.floating)):
        h.update(f"f:{type(v).__name__}:".encode() + struct.pack("<d", float(v)))
    elif isinstance(v, dict):
        h.update(f"d:{len(v)}:".encode())
        for k, x in v.items():
            h.update(f"k:{k}:".encode())
            _feed(h, x)
    elif isinstance(v, (tuple, list)):
        h.update(f"l:{len(v)}:".encode())
        for x in v:
            _feed(h, x)
    else:
        h.update(f"o:{type(v).__name__}:{v!r}".encode())
    h.update(b";")


def _flat(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with the action mask in the flat layout the fixture was recorded with (the same bits)."""
    return {**info, "action_mask": flat_mask(info["action_mask"])} if "action_mask" in info else info


def _digest(*values: Any) -> str:
    h = hashlib.sha256()
    for v in values:
        _feed(h, v)
    return h.hexdigest()


def run_case(name: str, cache_dir: str | None = None) -> dict[str, Any]:
    """Run case ``name`` and return its digests: per step (short) and per output over the whole run."""
    scenario, kwargs, seed, steps, p_op, p_raw, fault_rate = CASES[name]
    soak = _script("benchmarks/soak.py")  # its masked-random and unmasked actions
    if kwargs.get("worker_system") == "cnn":
        kwargs = {**kwargs, "worker_system": _script("examples/custom_worker.py").CNNWorkers}
    base = GaisNetEnv(scenario, cache_dir=cache_dir, **kwargs)
    env = base if fault_rate is None else FaultInjection(base, rate=fault_rate, seed=seed)
    rng = np.random.default_rng(1000 + seed)
    E = base.n_edges
    whole = {k: hashlib.sha256() for k in ("obs", "reward", "terminated", "truncated", "info")}
    per_step = []
    obs, info = env.reset(seed=seed)
    info = _flat(info)
    _feed(whole["obs"], obs)
    _feed(whole["info"], info)
    per_step.append(_digest(obs, info)[:16])
    for _ in range(steps):
        act = soak.random_masked_action(base.action_masks(), E, p_op, rng).reshape(E, 2)
        if p_raw:  # some edges ignore the mask (the env's fallback handles infeasible choices)
            raw = rng.random(E) < p_raw
            act[raw] = soak.unmasked_action(E, 0.5, rng).reshape(E, 2)[raw]
        obs, reward, terminated, truncated, info = env.step(act.ravel())
        info = _flat(info)
        for k, v in zip(whole, (obs, reward, terminated, truncated, info), strict=True):
            _feed(whole[k], v)
        per_step.append(_digest(obs, reward, terminated, truncated, info)[:16])
        if terminated or truncated:
            obs, info = env.reset()
            info = _flat(info)
            _feed(whole["obs"], obs)
            _feed(whole["info"], info)
            per_step.append(_digest(obs, info)[:16])
    env.close()
    return {**{k: h.hexdigest() for k, h in whole.items()}, "steps": per_step}


def _load() -> dict[str, Any]:
    """The fixture: ``{cpu kernels: {case: digests}}``."""
    return json.loads(FIXTURE.read_text()) if FIXTURE.exists() else {}


@pytest.mark.parametrize("name", list(CASES))
def test_golden_episode(name: str) -> None:
    got = run_case(name)
    if os.environ.get("GAISNET_GOLDEN_RECORD"):
        data = _load()
        data[cpu_kernels()] = dict(sorted({**data.get(cpu_kernels(), {}), name: got}.items()))
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")
        pytest.skip("recorded")
    data = _load()
    if cpu_kernels() not in data:
        pytest.skip(f"no golden episodes recorded with this machine's CPU kernels {cpu_kernels()!r} (recorded: "
                    f"{sorted(data)}); record them with GAISNET_GOLDEN_RECORD=1 from a commit whose episodes are "
                    "known to match the recorded kernels' digests")
    want = data[cpu_kernels()].get(name)
    assert want is not None, f"no golden digests for {name!r} with CPU kernels {cpu_kernels()!r} in {FIXTURE}"
    first = next((i for i, (a, b) in enumerate(zip(got["steps"], want["steps"], strict=False)) if a != b), None)
    assert first is None and len(got["steps"]) == len(want["steps"]), (
        f"{name}: episode differs from the golden one first at output {first} (0 = the reset)"
    )
    for k in ("obs", "reward", "terminated", "truncated", "info"):
        assert got[k] == want[k], f"{name}: {k} differs from the golden episode"


def test_episodes_do_not_depend_on_the_blas_kernel() -> None:
    """The same episode under other OpenBLAS kernels (``OPENBLAS_CORETYPE``, as another machine would pick):
    the env's numpy sums do not go through BLAS, whose kernels round differently."""
    import subprocess
    import sys

    code = ("import json, sys; sys.path.insert(0, 'tests'); import test_core_golden as g; "
            "print(json.dumps(g.run_case('tiny-fast-faults-batteries')))")
    here = run_case("tiny-fast-faults-batteries")
    for kernel in ("Prescott", "Haswell"):  # SSE3 and AVX2 kernels: any x86-64 machine of these years has them
        env = {**os.environ, "OPENBLAS_CORETYPE": kernel}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True, timeout=600)
        assert json.loads(out.stdout.strip().splitlines()[-1]) == here, kernel
