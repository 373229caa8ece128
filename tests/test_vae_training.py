"""Generator training without autograd: the hand-written gradients of the CVAE's negative ELBO and of the
decoder distillation loss equal autograd's, and train_vae / distil_decoder end where the autograd +
torch.optim.Adam(fused=True) loops they replaced (kept below as the reference) end, with the same draws."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from gaisnet_env.models import (
    CVAE,
    LoRACVAE,
    distil_decoder,
    distil_gradients,
    elbo_gradients,
    train_vae,
    vae_trainable_parameters,
)
from torch import nn

N_STYLES = 9
LATENT, HIDDEN, RANK = 8, 32, 4


def _cvae(seed: int = 0) -> CVAE:
    vae = CVAE(LATENT, HIDDEN)
    vae.reset_parameters(torch.Generator().manual_seed(seed))
    return vae


def _lora_cvae(seed: int = 0) -> LoRACVAE:
    """A LoRACVAE on a random base with a trained-looking (non-zero) adapter."""
    vae = LoRACVAE(LATENT, HIDDEN, RANK)
    vae.set_base(_cvae(seed).get_weights())
    g = torch.Generator().manual_seed(seed + 1)
    vae.reset_adapter(g)
    with torch.no_grad():
        for p in vae.adapter_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return vae


def _data(n: int, seed: int = 3) -> tuple[torch.Tensor, ...]:
    """Pixels (n, 64) in [0, 1], classes, styles, noise / latents (n, LATENT), soft target pixels (n, 64)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 64, generator=g)
    y, s = torch.randint(10, (n,), generator=g), torch.randint(N_STYLES, (n,), generator=g)
    return x, y, s, torch.randn(n, LATENT, generator=g), torch.rand(n, 64, generator=g)


def _decoder_params(vae: CVAE) -> list[nn.Parameter]:
    """The decoder's trainable tensors: after the encoder's 3 layers x [W, b] (CVAE) or x [A, B, db] (LoRA)."""
    return vae_trainable_parameters(vae)[9 if isinstance(vae, LoRACVAE) else 6 :]


def _distil_loss(vae: CVAE, z: torch.Tensor, y: torch.Tensor, s: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    logits = vae.decode_logits(z, vae.condition(y, s))
    return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / z.shape[0]


# ---------------------------------------------------------------- the autograd loops they replaced
def _ref_train_vae(vae: CVAE, params: list[nn.Parameter], x: torch.Tensor, y: torch.Tensor, style: torch.Tensor,
                   *, epochs: int, lr: float, batch: int, gen: torch.Generator) -> bool:
    opt = torch.optim.Adam(params, lr=lr, fused=True)
    n = x.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            b = perm[i : i + batch]
            loss = vae.loss(x[b], y[b], style[b], torch.randn((b.shape[0], vae.latent), generator=gen))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if not all(bool(torch.isfinite(p).all()) for p in params):
            return False
    vae.eval()
    return True


def _ref_distil_decoder(vae: CVAE, params: list[nn.Parameter], z: torch.Tensor, y: torch.Tensor,
                        style: torch.Tensor, target: torch.Tensor, *, epochs: int, lr: float, batch: int,
                        gen: torch.Generator) -> bool:
    opt = torch.optim.Adam(params, lr=lr, fused=True)
    cond = vae.condition(y, style)
    n = z.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            b = perm[i : i + batch]
            logits = vae.decode_logits(z[b], cond[b])
            loss = F.binary_cross_entropy_with_logits(logits, target[b], reduction="sum") / b.shape[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if not all(bool(torch.isfinite(p).all()) for p in params):
            return False
    vae.eval()
    return True


def _assert_close_all(got: list[torch.Tensor], expect: list[torch.Tensor] | tuple[torch.Tensor, ...],
                      rel: float) -> None:
    assert len(got) == len(expect)
    for a, b in zip(got, expect, strict=True):
        assert a.shape == b.shape
        scale = max(float(b.abs().max()), 1e-3)
        torch.testing.assert_close(a, b, rtol=0, atol=rel * scale)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("make", [_cvae, _lora_cvae], ids=["CVAE", "LoRACVAE"])
@pytest.mark.parametrize("n", [1, 6, 37])
def test_elbo_gradients_match_autograd(make, n: int) -> None:
    """Gradients of CVAE.loss (reconstruction + KL through the reparameterised latent) w.r.t. all of a
    CVAE's weights / a LoRACVAE's adapter equal autograd's."""
    vae = make()
    x, y, s, eps, _ = _data(n)
    expect = torch.autograd.grad(vae.loss(x, y, s, eps), vae_trainable_parameters(vae))
    _assert_close_all(elbo_gradients(vae, x, y, s, eps), expect, 1e-6)


@pytest.mark.parametrize("make", [_cvae, _lora_cvae], ids=["CVAE", "LoRACVAE"])
@pytest.mark.parametrize("n", [1, 6, 37])
def test_distil_gradients_match_autograd(make, n: int) -> None:
    """Gradients of the decoder distillation loss w.r.t. the decoder's trainable tensors equal autograd's
    (and autograd gives the encoder none)."""
    vae = make()
    _, y, s, z, target = _data(n)
    loss = _distil_loss(vae, z, y, s, target)
    params = vae_trainable_parameters(vae)
    all_grads = torch.autograd.grad(loss, params, allow_unused=True)
    dec = _decoder_params(vae)
    assert all(g is None for g in all_grads[: len(params) - len(dec)])
    _assert_close_all(distil_gradients(vae, z, y, s, target), all_grads[len(params) - len(dec) :], 1e-6)


def test_vae_trainable_parameters_order() -> None:
    """A CVAE trains all its parameters (parameters() order), a LoRACVAE its adapter (adapter_parameters()
    order); the decoder's part is the last 4 / 5 tensors."""
    cvae, lvae = _cvae(), _lora_cvae()
    assert [id(p) for p in vae_trainable_parameters(cvae)] == [id(p) for p in cvae.parameters()]
    assert [id(p) for p in vae_trainable_parameters(lvae)] == [id(p) for p in lvae.adapter_parameters()]
    assert [id(p) for p in _decoder_params(cvae)] == [id(p) for p in [*cvae.dec.parameters(),
                                                                      *cvae.dec_out.parameters()]]
    assert [id(p) for p in _decoder_params(lvae)] == [
        id(p) for p in [*lvae.dec.adapter_parameters(), *lvae.dec_out.adapter_parameters()]]


# ---------------------------------------------------------------- whole runs
@pytest.mark.parametrize("make", [_cvae, _lora_cvae], ids=["CVAE", "LoRACVAE"])
@pytest.mark.parametrize("which", ["train_vae", "distil_decoder"])
def test_training_matches_autograd_adam(make, which: str) -> None:
    """Short runs (70 samples, batch 16: a last batch of 6, 3 epochs) end at the autograd loop's weights
    and leave ``gen`` in the same state (the same randperm / randn draws); the model ends in eval mode."""
    x, y, s, z, target = _data(70)
    ref, fast = make(), make()
    fast.train()
    gen_ref, gen = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    kw = {"epochs": 3, "lr": 0.01, "batch": 16}
    if which == "train_vae":
        assert _ref_train_vae(ref, vae_trainable_parameters(ref), x, y, s, gen=gen_ref, **kw)
        assert train_vae(fast, vae_trainable_parameters(fast), x, y, s, gen=gen, **kw)
    else:
        assert _ref_distil_decoder(ref, vae_trainable_parameters(ref), z, y, s, target, gen=gen_ref, **kw)
        assert distil_decoder(fast, vae_trainable_parameters(fast), z, y, s, target, gen=gen, **kw)
    assert torch.equal(gen.get_state(), gen_ref.get_state())
    assert not fast.training
    moved = False
    for a, b, before in zip(fast.parameters(), ref.parameters(), make().parameters(), strict=True):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-5, atol=1e-5)
        moved |= not torch.equal(a, before)
    assert moved


@pytest.mark.parametrize("which", ["train_vae", "distil_decoder"])
def test_non_finite_guard_stops_after_the_epoch(which: str) -> None:
    """A non-finite input makes the weights non-finite: False after the first epoch, as the autograd loop
    (the same draws from ``gen``: one epoch's)."""
    x, y, s, z, target = _data(20)
    x[3, 5] = target[3, 5] = float("nan")
    ref, fast = _lora_cvae(), _lora_cvae()
    gen_ref, gen = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    kw = {"epochs": 4, "lr": 0.01, "batch": 8}
    if which == "train_vae":
        assert not _ref_train_vae(ref, ref.adapter_parameters(), x, y, s, gen=gen_ref, **kw)
        assert not train_vae(fast, fast.adapter_parameters(), x, y, s, gen=gen, **kw)
    else:
        assert not _ref_distil_decoder(ref, ref.adapter_parameters(), z, y, s, target, gen=gen_ref, **kw)
        assert not distil_decoder(fast, fast.adapter_parameters(), z, y, s, target, gen=gen, **kw)
    assert torch.equal(gen.get_state(), gen_ref.get_state())


def test_other_params_are_rejected() -> None:
    """``params`` must be what the gradients cover: all of a CVAE's, a LoRACVAE's adapter, in order."""
    x, y, s, z, target = _data(8)
    cvae, lvae = _cvae(), _lora_cvae()
    kw = {"epochs": 1, "lr": 0.01, "batch": 4, "gen": torch.Generator()}
    for vae, params in ((lvae, list(lvae.parameters())), (cvae, list(cvae.parameters())[:-2]),
                        (cvae, list(cvae.parameters())[::-1]), (lvae, lvae.adapter_parameters()[:-1])):
        with pytest.raises(ValueError, match="params must be"):
            train_vae(vae, params, x, y, s, **kw)
        with pytest.raises(ValueError, match="params must be"):
            distil_decoder(vae, params, z, y, s, target, **kw)


def test_cvae_loss_still_differentiable() -> None:
    """CVAE.loss (the reference objective, used by the FLOP counter) still runs under autograd."""
    vae = _cvae()
    x, y, s, eps, _ = _data(5)
    loss = vae.loss(x, y, s, eps)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in vae.parameters())
