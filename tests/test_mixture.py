"""BAIM's bottom-up cloud model: the gated mixture of the teacher and the relayed edge experts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gaisnet_env.models import MixtureClassifier, MLPClassifier

from gaisnet_env.worker_config import N_CLASSES, STYLES, WorkerConfig
from gaisnet_env.workers import WorkerSystem

UNIFORM = np.full(N_CLASSES, 1.0 / N_CLASSES)


def mix(**shares: float) -> np.ndarray:
    v = np.zeros(len(STYLES))
    for name, share in shares.items():
        v[STYLES.index(name)] = share
    return v


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> WorkerSystem:
    return WorkerSystem(3, WorkerConfig(cloud_model="mixture"), seed=0,
                        cache_dir=str(tmp_path_factory.mktemp("cache")))


def test_mixture_without_experts_is_the_teacher() -> None:
    g = torch.Generator().manual_seed(0)
    teacher, gate = MLPClassifier([64, 16, 10]), MLPClassifier([64, 8, 4])
    teacher.reset_parameters(g)
    gate.reset_parameters(g)
    base = [torch.randn(32, 64, generator=g), torch.zeros(32), torch.randn(10, 32, generator=g), torch.zeros(10)]
    model = MixtureClassifier(teacher, gate, base)
    x = torch.rand(7, 64, generator=g)
    with torch.no_grad():
        assert torch.allclose(model(x), torch.log_softmax(teacher(x), 1), atol=1e-6)
        model.set_experts([None, [torch.zeros_like(t) for t in base], None])
        p = model(x).exp()
    assert torch.allclose(p.sum(1), torch.ones(7), atol=1e-5)
    with pytest.raises(ValueError, match="set_experts: 1 edges given, the gate has 3"):
        model.set_experts([None])


def test_relay_up_trains_only_the_gate_and_the_mixture_learns_personal_domains(ws: WorkerSystem) -> None:
    ws.reset(0)
    rng = np.random.default_rng(0)
    domains = [mix(mirror=1.0), mix(dilate=1.0), mix(occlude=1.0)]
    for e, d in enumerate(domains):
        ws.add_feedback(e, UNIFORM, d, 128, rng)
        for _ in range(2):
            assert ws.start_op("finetune", e).ok
            ws.commit_op(e)
    pre = ws.accuracy_table("cloud", -1)
    assert np.array_equal(ws.accuracy_table("cloud", 0), pre)  # no experts yet: the teacher alone
    before = [ws.accuracy("cloud", e, UNIFORM, d) for e, d in enumerate(domains)]
    results = ws.start_ops([("relay_up", e) for e in range(3)])
    assert all(r.ok for r in results), [r.message for r in results]
    ws.commit_op(0)
    assert ws._teacher_w is None  # the experts and the teacher stay frozen; only the gate trained
    after = [ws.accuracy("cloud", e, UNIFORM, d) for e, d in enumerate(domains)]
    assert np.mean(after) > np.mean(before) + 0.05, (before, after)
    assert ws.accuracy("cloud", 0, UNIFORM, mix(rotate=1.0)) > 0.9 * float(mix(rotate=1.0) @ pre @ UNIFORM)


def test_mixture_inference_flops_count_every_expert(ws: WorkerSystem) -> None:
    dense = WorkerSystem(3, WorkerConfig(), seed=0)
    assert ws.inference_flops("cloud") > dense.inference_flops("cloud") + 3 * ws.inference_flops("edge")
