"""The workers' ``device`` setting (gaisnet_env.models.compute_device): clear errors for what this machine
cannot run, the CPU path unchanged bit for bit, and, where a GPU is present, the same draws and weights
to float tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gaisnet_env.models.compute_device import CPU, resolve_device, run_on

from gaisnet_env.scenario import ScenarioError, load_scenario
from gaisnet_env.worker_config import ENGINE_FIELDS, N_CLASSES, STYLES, WorkerConfig
from gaisnet_env.workers import WorkerSystem

HAVE_CUDA = torch.cuda.is_available()
N_EDGES = 5
OPS = [("finetune", 0), ("relay_down", 1), ("relay_to_end", 2), ("finetune", 3), ("relay_up", 4)]


def test_resolve_device_spellings() -> None:
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto") == (torch.device("cuda", 0) if HAVE_CUDA else CPU)
    for bad in ("gpu", "cuda:", "CPU", "", 0, None):
        with pytest.raises(ValueError, match=r"workers\.device: got .*allowed values: cpu, auto, cuda, cuda:N"):
            resolve_device(bad)


@pytest.mark.skipif(HAVE_CUDA, reason="checks the refusal on a machine without a GPU")
def test_cuda_without_a_gpu_is_refused_with_the_way_out() -> None:
    for value in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(ValueError, match=rf"workers\.device: got '{value}', but this machine has no CUDA.*'auto'"):
            resolve_device(value)
    with pytest.raises(ScenarioError, match=r"workers\.device: got 'cuda'"):
        load_scenario("tiny", workers={"device": "cuda"})
    with pytest.raises(ValueError, match=r"workers\.device"):
        WorkerSystem(1, WorkerConfig(device="cuda"), seed=0)


def test_scenario_accepts_portable_values() -> None:
    assert load_scenario("tiny", workers={"device": "auto"}).workers.device == "auto"
    with pytest.raises(ScenarioError, match=r"workers\.device: got 3; expected a string"):
        load_scenario("tiny", workers={"device": 3})
    assert "device" in ENGINE_FIELDS  # how, not what: a fast-path calibration holds under any device


def test_run_on_cpu_copies_nothing() -> None:
    layer = torch.nn.Linear(3, 2)
    ptr = layer.weight.data_ptr()
    t = torch.ones(2)
    with run_on(CPU, layer) as to:
        assert to(t) is t and to(None) is None
    assert layer.weight.data_ptr() == ptr


def _started(device: str, batched: bool) -> WorkerSystem:
    ws = WorkerSystem(N_EDGES, WorkerConfig(device=device, batched_ops=batched), seed=0)  # the shared cache
    ws.reset(5)
    rng = np.random.default_rng(11)
    for e in range(N_EDGES):
        sm = np.zeros(len(STYLES))
        sm[[0, 6 + e % 3]] = 0.5
        ws.add_feedback(e, np.full(N_CLASSES, 0.1), sm, 50 + 7 * e, rng)
    assert all(r.ok for r in ws.start_ops(OPS))
    return ws


def _pending(ws: WorkerSystem) -> list[torch.Tensor]:
    return [t for p in ws._pending if p is not None for t in (*p.weights, *(p.gen_weights or []))]


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA device"))]


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("device", DEVICES)
def test_ops_on_a_device_match_the_cpu(device: str, batched: bool) -> None:
    ref, got = _started("cpu", batched), _started(device, batched)
    assert torch.equal(ref._gen.get_state(), got._gen.get_state())  # the CPU's draws, in the same order
    a, b = _pending(ref), _pending(got)
    assert len(a) == len(b) > 0 and all(t.device.type == "cpu" for t in b)  # results come back to the CPU
    for x, y in zip(a, b, strict=True):
        if device == "cpu":
            assert torch.equal(x, y)
        else:
            torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-5)
    for e in range(N_EDGES):  # committed weights serve as before: inference stays on the CPU
        got.commit_op(e)
        assert np.isfinite(got.accuracy_table("edge", e)).all()
