"""Stacked generator training (gaisnet_env.models.vae_stack): K edge-generator adapters trained at once end
where K serial train_vae / distil_decoder calls end (the same draws exactly, weights to float rounding)."""

from __future__ import annotations

import pytest
import torch
from gaisnet_env.models import LoRACVAE, distil_decoder, train_vae
from gaisnet_env.models.vae_stack import train_vae_stack, vae_draw_schedule

K = 5
EPOCHS, BATCH, LR = 4, 32, 0.01


@pytest.fixture(scope="module")
def template() -> LoRACVAE:
    vae = LoRACVAE(8, 48, 8)
    g = torch.Generator().manual_seed(1)
    for layer in vae._lora_layers():
        layer.weight.data.normal_(0.0, 0.1, generator=g)
        layer.bias.data.normal_(0.0, 0.1, generator=g)
    vae.reset_adapter(g)
    return vae


def _case(vae: LoRACVAE, distil: bool) -> tuple[list, list]:
    g = torch.Generator().manual_seed(2)
    starts = [[p.detach() + 0.01 * torch.randn(p.shape, generator=g) for p in vae.adapter_parameters()]
              for _ in range(K)]
    data = []
    for k in range(K):
        n = 20 + 17 * k  # ragged: last mini-batches of every size, models that finish early
        y, s = torch.randint(10, (n,), generator=g), torch.randint(9, (n,), generator=g)
        if distil:
            data.append((torch.randn(n, 8, generator=g), y, s, torch.rand(n, 64, generator=g)))
        else:
            data.append((torch.rand(n, 64, generator=g), y, s))
    return starts, data


@pytest.mark.parametrize("distil", [False, True])
def test_stack_ends_where_the_serial_calls_end(template: LoRACVAE, distil: bool) -> None:
    starts, data = _case(template, distil)
    want, states = [], []
    for k in range(K):
        template.set_adapter(starts[k])
        g = torch.Generator().manual_seed(100 + k)
        fn = distil_decoder if distil else train_vae
        assert fn(template, template.adapter_parameters(), *data[k], epochs=EPOCHS, lr=LR, batch=BATCH, gen=g)
        want.append(template.get_adapter())
        states.append(g.get_state())
    gens = [torch.Generator().manual_seed(100 + k) for k in range(K)]
    ok, got = train_vae_stack(template, starts, data, distil=distil, epochs=EPOCHS, lr=LR, batch=BATCH, gens=gens)
    assert ok == [True] * K
    assert all(torch.equal(g.get_state(), s) for g, s in zip(gens, states, strict=True))  # the same draws
    for k in range(K):
        moved = max(float((a - b).abs().max()) for a, b in zip(got[k], starts[k], strict=True))
        assert moved > 1e-3  # it trained
        for a, b in zip(got[k], want[k], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=2e-6)
    if distil:  # only the decoder's adapter trains
        for k in range(K):
            assert all(torch.equal(a, b) for a, b in zip(got[k][:9], starts[k][:9], strict=True))


def test_draw_schedule_replays_the_serial_draws(template: LoRACVAE) -> None:
    starts, data = _case(template, False)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    template.set_adapter(starts[0])
    train_vae(template, template.adapter_parameters(), *data[0], epochs=EPOCHS, lr=LR, batch=BATCH, gen=g1)
    vae_draw_schedule(g2, int(data[0][0].shape[0]), EPOCHS, BATCH, template.latent)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_non_finite_models_are_flagged(template: LoRACVAE) -> None:
    starts, data = _case(template, False)
    x, y, s = data[1]
    data[1] = (x * float("nan"), y, s)
    gens = [torch.Generator().manual_seed(k) for k in range(K)]
    ok, _ = train_vae_stack(template, starts, data, distil=False, epochs=1, lr=LR, batch=BATCH, gens=gens)
    assert ok == [True, False, True, True, True]
