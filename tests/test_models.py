"""Models: LoRA adapters, byte sizes, counted FLOPs, generator, RNG hygiene."""

from __future__ import annotations

import torch
from gaisnet_env.models import (
    CVAE,
    LoRAClassifier,
    LoRACVAE,
    MLPClassifier,
    classifier_flops,
    distil_decoder,
    generator_flops,
)

from gaisnet_env.worker_config import STYLES


def _init(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    model.reset_parameters(torch.Generator().manual_seed(seed))  # type: ignore[operator]
    return model


def test_lora_zero_adapter_equals_base() -> None:
    base = _init(MLPClassifier([64, 32, 10]))
    lora = LoRAClassifier([64, 32, 10], rank=3)
    lora.set_base(base.get_weights())
    lora.reset_adapter(torch.Generator().manual_seed(1))
    x = torch.rand(7, 64)
    torch.testing.assert_close(lora(x), base(x), rtol=0, atol=1e-6)
    # only adapter tensors are trainable
    trainable = [p for p in lora.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in lora.adapter_parameters()}
    # merged deltas of a trained-looking adapter reproduce the forward pass
    with torch.no_grad():
        for p in lora.adapter_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    from gaisnet_env.models import merged_forward

    torch.testing.assert_close(
        merged_forward(x, lora.get_base(), lora.adapter_deltas(lora.get_adapter())), lora(x), rtol=1e-5, atol=1e-5
    )


def test_bytes_are_real_tensor_sizes() -> None:
    lora = LoRAClassifier([64, 16, 10], rank=4)
    expect_adapter = 4 * (4 * 64 + 16 * 4 + 16) + 4 * (10 * 16 + 10)
    assert lora.adapter_bytes == expect_adapter
    assert lora.adapter_bytes == sum(t.numel() * t.element_size() for t in lora.get_adapter())
    mlp = MLPClassifier([64, 24, 10])
    assert mlp.n_params == 64 * 24 + 24 + 24 * 10 + 10
    assert mlp.n_bytes == 4 * mlp.n_params
    vae = CVAE(8, 32)
    assert vae.n_bytes == sum(p.numel() * p.element_size() for p in vae.parameters())


def test_flops_counted_match_matmul_count() -> None:
    mlp = MLPClassifier([64, 40, 40, 10])
    fwd, train = classifier_flops(mlp)
    assert fwd == 2 * (64 * 40 + 40 * 40 + 40 * 10)
    assert 2 * fwd < train <= 3 * fwd
    lora = LoRAClassifier([64, 40, 10], rank=2)
    lfwd, ltrain = classifier_flops(lora)
    assert lfwd == 2 * (64 * 40 + 64 * 2 + 2 * 40 + 40 * 10)
    assert ltrain > lfwd
    vae = CVAE(8, 32)
    gen, vtrain = generator_flops(vae)
    n_cond = 10 + len(STYLES)  # class and style one-hots
    assert gen == 2 * ((8 + n_cond) * 32 + 32 * 64)
    assert vtrain > gen
    lvae = LoRACVAE(8, 32, rank=2)
    lgen, _ = generator_flops(lvae)
    # low-rank decoder input layer (A: 2 x (8 + cond), B: 32 x 2) plus the full-delta output layer
    assert lgen == 2 * ((8 + n_cond) * 32 + (8 + n_cond) * 2 + 2 * 32 + 32 * 64)


def test_generator_shapes_and_determinism() -> None:
    vae = _init(CVAE(4, 16))
    y = torch.arange(10)
    s = torch.arange(10) % len(STYLES)
    a = vae.generate(y, s, torch.Generator().manual_seed(3))
    b = vae.generate(y, s, torch.Generator().manual_seed(3))
    assert a.shape == (10, 64) and torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.equal(a, vae.generate(y, (s + 1) % len(STYLES), torch.Generator().manual_seed(3)))
    loss = vae.loss(torch.rand(5, 64), torch.arange(5), torch.zeros(5, dtype=torch.long), torch.zeros(5, 4))
    assert torch.isfinite(loss)


def test_lora_cvae_starts_at_its_base_and_trains_only_the_adapter() -> None:
    base = _init(CVAE(4, 16))
    lvae = LoRACVAE(4, 16, rank=2)
    lvae.set_base(base.get_weights())
    lvae.reset_adapter(torch.Generator().manual_seed(0))
    y, s = torch.arange(6), torch.arange(6) % len(STYLES)
    assert torch.allclose(lvae.generate(y, s, torch.Generator().manual_seed(1)),
                          base.generate(y, s, torch.Generator().manual_seed(1)), atol=1e-6)
    frozen = [p.clone() for p in lvae.parameters() if not p.requires_grad]
    g = torch.Generator().manual_seed(2)
    z, target = base.sample(y, (s + 1) % len(STYLES), g)
    assert distil_decoder(lvae, lvae.adapter_parameters(), z, y, s, target, epochs=30, lr=0.01, batch=6, gen=g)
    after = [p for p in lvae.parameters() if not p.requires_grad]
    assert all(torch.equal(a, b) for a, b in zip(frozen, after, strict=True))
    # distillation moved the student's output for (z, y, s) towards the teacher's
    err_before = float((base.sample(y, s, g, z=z)[1] - target).abs().mean())
    err_after = float((lvae.sample(y, s, g, z=z)[1] - target).abs().mean())
    assert err_after < 0.5 * err_before


def test_models_do_not_touch_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    _init(MLPClassifier([64, 8, 10]))
    _init(CVAE(4, 8))
    LoRAClassifier([64, 8, 10], 2).reset_adapter(torch.Generator().manual_seed(0))
    assert torch.equal(before, torch.get_rng_state())


def _trained_looking_lora(sizes: list[int], rank: int) -> LoRAClassifier:
    base = _init(MLPClassifier(sizes))
    lora = LoRAClassifier(sizes, rank=rank)
    lora.set_base(base.get_weights())
    lora.reset_adapter(torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in lora.adapter_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return lora


def test_hand_written_gradients_match_autograd() -> None:
    """The backward pass of train_classifier equals autograd's on the distillation loss, for full MLPs and
    LoRA adapters (hidden layers low-rank, head full-delta)."""
    from gaisnet_env.models import classifier_gradients, trainable_parameters
    from gaisnet_env.models.classifiers import INPUT_CENTRE

    g = torch.Generator().manual_seed(3)
    x = torch.rand(19, 64, generator=g)
    target = torch.softmax(torch.randn(19, 10, generator=g), 1)
    for model in (_init(MLPClassifier([64, 32, 16, 10])), _trained_looking_lora([64, 32, 16, 10], 3)):
        params = trainable_parameters(model)
        t = 2.0
        loss = -(target * torch.log_softmax(model(x) / t, 1)).sum(1).mean() * t * t
        expect = torch.autograd.grad(loss, params)
        got = classifier_gradients(model, x, target, t, INPUT_CENTRE)
        assert len(got) == len(expect)
        for a, b in zip(got, expect, strict=True):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_train_classifier_matches_autograd_adam() -> None:
    """Whole training runs (hard labels; soft labels with a local anchor) end where torch.optim.Adam with
    autograd ends, drawing the same random numbers."""
    import torch.nn.functional as F
    from gaisnet_env.models import train_classifier, trainable_parameters
    from gaisnet_env.models.classifiers import INPUT_CENTRE

    g = torch.Generator().manual_seed(4)
    x = torch.rand(70, 64, generator=g)
    y = torch.randint(10, (70,), generator=g)
    soft = torch.softmax(torch.randn(70, 10, generator=g), 1)
    x_loc, y_loc = torch.rand(40, 64, generator=g), torch.randint(10, (40,), generator=g)
    for target, is_soft, anchor in ((y, False, None), (soft, True, (x_loc, y_loc, 2.0))):
        ref, fast = _trained_looking_lora([64, 32, 10], 4), _trained_looking_lora([64, 32, 10], 4)
        opt = torch.optim.Adam(trainable_parameters(ref), lr=0.01)
        gen_ref = torch.Generator().manual_seed(9)
        for _ in range(2):
            perm = torch.randperm(70, generator=gen_ref)
            for i in range(0, 70, 16):
                b = perm[i : i + 16]
                if anchor is None:
                    loss = F.cross_entropy(ref(x[b]), y[b])
                else:
                    j = torch.randint(40, (16,), generator=gen_ref)
                    out = ref(torch.cat([x[b], x_loc[j]]))
                    loss = -(target[b] * F.log_softmax(out[: len(b)] / 2.0, 1)).sum(1).mean() * 4.0
                    loss = loss + 2.0 * F.cross_entropy(out[len(b) :], y_loc[j])
                opt.zero_grad()
                loss.backward()
                opt.step()
        gen = torch.Generator().manual_seed(9)
        assert train_classifier(fast, x, target, soft=is_soft, epochs=2, lr=0.01, batch=16, temperature=2.0,
                                gen=gen, centre=INPUT_CENTRE, anchor=anchor)
        assert torch.equal(gen.get_state(), gen_ref.get_state())
        for a, b in zip(trainable_parameters(fast), trainable_parameters(ref), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_train_classifier_rejects_other_models() -> None:
    import pytest
    from gaisnet_env.models import train_classifier

    with pytest.raises(TypeError, match="not an MLP"):
        train_classifier(torch.nn.Linear(64, 10), torch.rand(4, 64), torch.zeros(4, dtype=torch.long), soft=False,
                         epochs=1, lr=0.1, batch=2, temperature=1.0, gen=torch.Generator(), centre=0.5)
