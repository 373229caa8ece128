"""The batched training engine (issue 13, step 3) ends where K serial ``train_classifier`` calls end:
weights to float tolerance, ok flags and generator states exactly."""

from __future__ import annotations

import copy

import pytest
import torch
from gaisnet_env.models import LoRAClassifier, MLPClassifier, train_classifier, trainable_parameters
from gaisnet_env.models.batched_training import ClassifierStack, train_classifiers_batched, train_stack
from gaisnet_env.models.classifier_stack import WORKSPACE
from gaisnet_env.models.classifiers import INPUT_CENTRE

TOL = 1e-5


def _mlp(sizes: list[int], seed: int) -> MLPClassifier:
    m = MLPClassifier(sizes)
    m.reset_parameters(torch.Generator().manual_seed(seed))
    return m


def _lora(sizes: list[int], rank: int, seed: int, base_seed: int = 0) -> LoRAClassifier:
    """A LoRA classifier with a random base (shared when ``base_seed`` is) and a non-zero adapter."""
    lora = LoRAClassifier(sizes, rank)
    lora.set_base(_mlp(sizes, base_seed).get_weights())
    lora.reset_adapter(torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in lora.adapter_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return lora


def _data(ns: list[int], soft: bool, seed: int = 5) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    xs = [torch.rand(n, 64, generator=g) for n in ns]
    if soft:
        return xs, [torch.softmax(2 * torch.randn(n, 10, generator=g), 1) for n in ns]
    return xs, [torch.randint(10, (n,), generator=g) for n in ns]


def _compare(models: list, xs: list, targets: list, *, soft: bool, epochs: int | list[int] = 3, anchors=None,
             shared_gen: bool = False, lr: float = 0.01, batch: int = 16) -> tuple[float, list[bool]]:
    """Train copies serially and batched from equal generators; check flags, generator states and weights.
    Returns the largest weight difference (over finite entries) and the ok flags."""
    k = len(models)
    serial, batched = [copy.deepcopy(m) for m in models], [copy.deepcopy(m) for m in models]
    eps = [epochs] * k if isinstance(epochs, int) else epochs
    anchors = [None] * k if anchors is None else anchors

    def gens() -> list[torch.Generator]:
        if shared_gen:
            return [torch.Generator().manual_seed(77)] * k
        return [torch.Generator().manual_seed(40 + i) for i in range(k)]

    gs, gb = gens(), gens()
    ok_s = [train_classifier(m, x, y, soft=soft, epochs=e, lr=lr, batch=batch, temperature=2.0, gen=g,
                             centre=INPUT_CENTRE, anchor=a)
            for m, x, y, e, g, a in zip(serial, xs, targets, eps, gs, anchors, strict=True)]
    ok_b, stack = train_classifiers_batched(batched, xs, targets, soft=soft, epochs=epochs, lr=lr, batch=batch,
                                            temperature=2.0, gens=gb, centre=INPUT_CENTRE, anchors=anchors)
    assert ok_b == ok_s
    for a, b in zip(gs, gb, strict=True):
        assert torch.equal(a.get_state(), b.get_state())
    worst = 0.0
    for i, (ms, mb) in enumerate(zip(serial, batched, strict=True)):
        for ps, pb, pt in zip(trainable_parameters(ms), trainable_parameters(mb), stack.tensors(i), strict=True):
            torch.testing.assert_close(pb.detach(), pt, rtol=0.0, atol=0.0, equal_nan=True)
            torch.testing.assert_close(pb, ps, rtol=0.0, atol=TOL, equal_nan=True)
            fin = torch.isfinite(ps)
            if fin.any():
                worst = max(worst, float((pb - ps).detach()[fin].abs().max()))
    return worst, ok_s


def test_lora_hard_labels_ragged() -> None:
    """finetune-like: LoRA adapters (low-rank hidden layers, full-delta head), hard labels, ragged n."""
    ns = [70, 33, 16, 5]
    xs, ys = _data(ns, soft=False)
    models = [_lora([64, 32, 16, 10], 4, seed=i) for i in range(4)]
    assert _compare(models, xs, ys, soft=False)[0] <= TOL


def test_dense_soft_labels_ragged_epochs() -> None:
    """relay_to_end-like: plain Dense MLPs, distillation at T = 2, ragged n (one empty) and epochs per model."""
    ns = [48, 17, 40, 0, 12]
    xs, ys = _data(ns, soft=True)
    models = [_mlp([64, 24, 10], seed=i) for i in range(5)]
    assert _compare(models, xs, ys, soft=True, epochs=[3, 5, 1, 2, 0])[0] <= TOL


def test_lora_per_model_bases() -> None:
    """Different frozen bases are stacked, not shared."""
    xs, ys = _data([40, 40], soft=True)
    models = [_lora([64, 32, 10], 3, seed=i, base_seed=10 + i) for i in range(2)]
    assert ClassifierStack.from_models(models).frozen[0][0].dim() == 3
    assert _compare(models, xs, ys, soft=True)[0] <= TOL


def test_anchor_ragged_and_mixed() -> None:
    """relay_down-like: soft labels plus a local anchor (different sizes and weights), one model unanchored."""
    ns = [50, 23, 32]
    xs, ys = _data(ns, soft=True)
    g = torch.Generator().manual_seed(8)
    anchors = [(torch.rand(m, 64, generator=g), torch.randint(10, (m,), generator=g), lam)
               for m, lam in ((40, 1.0), (9, 2.5))] + [None]
    models = [_lora([64, 32, 10], 4, seed=i) for i in range(3)]
    assert _compare(models, xs, ys, soft=True, anchors=anchors)[0] <= TOL


def test_shared_generator_is_serial_order() -> None:
    """One generator for all models: the draws follow the serial calls one after another."""
    xs, ys = _data([30, 20, 25], soft=False)
    models = [_mlp([64, 24, 10], seed=i) for i in range(3)]
    assert _compare(models, xs, ys, soft=False, shared_gen=True)[0] <= TOL


@pytest.mark.parametrize("shared_gen", [False, True])
def test_non_finite_model_stops_as_in_serial(shared_gen: bool) -> None:
    """A model fed an inf turns non-finite, stops after that epoch with ok False; the others train on."""
    xs, ys = _data([40, 24, 33], soft=True)
    xs[1] = xs[1].clone()
    xs[1][3, 7] = float("inf")
    models = [_lora([64, 32, 10], 4, seed=i) for i in range(3)]
    worst, ok = _compare(models, xs, ys, soft=True, shared_gen=shared_gen)
    assert ok == [True, False, True] and worst <= TOL


def test_guard_without_steps() -> None:
    """No samples but epochs: the guard still looks once (a model that starts non-finite is not ok)."""
    xs, ys = _data([0, 0, 10], soft=False)
    models = [_mlp([64, 24, 10], seed=i) for i in range(3)]
    with torch.no_grad():
        models[0].layers[0].weight[0, 0] = float("nan")
    worst, ok = _compare(models, xs, ys, soft=False, epochs=2)
    assert ok == [False, True, True] and worst <= TOL


def test_stack_from_template_and_write_back() -> None:
    """One module instance (as the workers hold) with K adapters: tensors in, trained tensors out."""
    template = _lora([64, 32, 10], 4, seed=0)
    adapters = [_lora([64, 32, 10], 4, seed=i).get_adapter() for i in range(3)]
    xs, ys = _data([20, 31, 16], soft=False)
    stack = ClassifierStack.from_template(template, adapters)
    assert stack.frozen[0][0].dim() == 2  # the base is shared
    gb = [torch.Generator().manual_seed(i) for i in range(3)]
    ok = train_stack(stack, xs, ys, soft=False, epochs=2, lr=0.02, batch=8, temperature=1.0, gens=gb,
                     centre=INPUT_CENTRE)
    assert ok == [True] * 3
    for k in range(3):
        template.set_adapter(adapters[k])
        assert train_classifier(template, xs[k], ys[k], soft=False, epochs=2, lr=0.02, batch=8, temperature=1.0,
                                gen=torch.Generator().manual_seed(k), centre=INPUT_CENTRE)
        for a, b in zip(template.get_adapter(), stack.tensors(k), strict=True):
            torch.testing.assert_close(b, a, rtol=0.0, atol=TOL)
    for k, ts in enumerate(stack.split()):
        for a, b in zip(ts, stack.tensors(k), strict=True):
            assert torch.equal(a, b)
    stack.subset([2]).write_back([template])
    for a, b in zip(template.get_adapter(), stack.tensors(2), strict=True):
        assert torch.equal(a, b)
    assert WORKSPACE.n_bytes > 0  # scratch memory is kept between calls until cleared
    WORKSPACE.clear()
    assert WORKSPACE.n_bytes == 0


def test_rejects_mixed_architectures() -> None:
    with pytest.raises(ValueError, match="architecture"):
        ClassifierStack.from_models([_mlp([64, 24, 10], 0), _mlp([64, 16, 10], 1)])
    with pytest.raises(TypeError, match="not an MLP"):
        ClassifierStack.from_models([torch.nn.Linear(64, 10)])


@pytest.mark.parametrize("anchored", [False, True])
def test_draw_schedule_makes_exactly_the_serial_calls_draws(anchored: bool) -> None:
    """``draw_schedule`` advances a generator as ``train_classifier`` does (the batched engine in the workers
    skips a deferred job's draws with it, so everything drawn after stays where it was)."""
    from gaisnet_env.models import draw_schedule

    model = _mlp([64, 16, 10], seed=1)
    xs, ys = _data([37], soft=False)
    anchor = (xs[0][:11], ys[0][:11], 0.5) if anchored else None
    serial, skip = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    train_classifier(model, xs[0], ys[0], soft=False, epochs=3, lr=0.01, batch=8, temperature=1.0, gen=serial,
                     centre=INPUT_CENTRE, anchor=anchor)
    draw_schedule(skip, 37, 11 if anchored else None, 3, 8)
    assert torch.equal(serial.get_state(), skip.get_state())
