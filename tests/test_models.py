"""Models: LoRA adapters, byte sizes, counted FLOPs, generator, RNG hygiene."""

from __future__ import annotations

import torch
from gaisnet_env.models import CVAE, LoRAClassifier, MLPClassifier, classifier_flops, generator_flops


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
    assert gen == 2 * ((8 + 10) * 32 + 32 * 64)
    assert vtrain > gen


def test_generator_shapes_and_determinism() -> None:
    vae = _init(CVAE(4, 16))
    y = torch.arange(10)
    a = vae.generate(y, torch.Generator().manual_seed(3))
    b = vae.generate(y, torch.Generator().manual_seed(3))
    assert a.shape == (10, 64) and torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    loss = vae.loss(torch.rand(5, 64), torch.arange(5), torch.zeros(5, 4))
    assert torch.isfinite(loss)


def test_models_do_not_touch_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    _init(MLPClassifier([64, 8, 10]))
    _init(CVAE(4, 8))
    LoRAClassifier([64, 8, 10], 2).reset_adapter(torch.Generator().manual_seed(0))
    assert torch.equal(before, torch.get_rng_state())
