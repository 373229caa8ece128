"""Generator training per call: the hand-written gradients + FusedAdam of ``train_vae`` / ``distil_decoder``
against the autograd + ``torch.optim.Adam(fused=True)`` loops they replaced, at the workers' sizes.

Cases (the ``workers:`` settings of ``--scenario``, default metro):

* ``finetune``: the edge generator (LoRACVAE: adapter trains) ``train_vae`` on a full feedback buffer;
* ``relay_down``: the edge generator ``distil_decoder`` on the relayed samples (no replay);
* ``relay_up``: the cloud generator (CVAE: all weights) ``distil_decoder`` on the synthetic + public samples;
* ``pretrain``: the cloud generator ``train_vae`` on its pre-training pool (the public pool in every public
  style, epochs as ``model_cache`` sets them; it runs once per cache key).

Old and new run side by side in each repeat (same models, data and generator seed; medians reported), and
each pair's final weights and generator states are compared. The FLOP floor of a call is the matrix-product
FLOPs of one forward + backward per sample (counted with ``FlopCounterMode`` on the hand-written gradients),
x samples x epochs, / this machine's GFLOP/s on a 1024^3 float32 matmul at the same thread count.

Usage::

    python benchmarks/bench_vae_training.py                     # metro, 1 thread (~30 s)
    python benchmarks/bench_vae_training.py --repeats 3 --no-pretrain --out /tmp/bench   # smoke

Results: ``benchmarks/results/bench_vae_training.json`` and ``.md`` (or ``--out``/``--name``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, median, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _reference() -> Any:
    """tests/test_vae_training.py, whose autograd loops are the implementation the new one replaced."""
    spec = importlib.util.spec_from_file_location("_ref_vae_training", ROOT / "tests" / "test_vae_training.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def matmul_gflops(repeats: int = 7) -> float:
    """Median GFLOP/s of a 1024 x 1024 x 1024 float32 matmul (2 * 1024^3 FLOPs) at the current threads."""
    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    a @ b
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t)
    return 2.0 * 1024**3 / median(ts) / 1e9


def cases(scenario: str, pretrain: bool) -> list[dict[str, Any]]:
    """The benchmarked calls: name, function, model kind and sizes, samples, epochs, batch, lr."""
    from gaisnet_env.data import DigitsData
    from gaisnet_env.model_cache import STYLE_EPOCH_SHARE
    from gaisnet_env.scenario import load_scenario
    from gaisnet_env.worker_config import PUBLIC_STYLES

    c = load_scenario(scenario).workers
    edge = {"kind": "LoRACVAE", "latent": c.generator_latent, "hidden": c.edge_generator_hidden,
            "rank": c.generator_lora_rank}
    cloud = {"kind": "CVAE", "latent": c.generator_latent, "hidden": c.generator_hidden, "rank": None}
    run = {"epochs": c.generator_epochs, "batch": c.generator_batch_size, "lr": c.generator_lr}
    n_up = c.relay_up_samples + int(round(c.relay_up_public_share * c.relay_up_samples))
    out = [
        {"name": "finetune", "fn": "train_vae", **edge, "n": c.feedback_buffer, **run},
        {"name": "relay_down", "fn": "distil_decoder", **edge, "n": c.relay_down_samples, **run},
        {"name": "relay_up", "fn": "distil_decoder", **cloud, "n": n_up, **run},
    ]
    if pretrain:
        n_pub = len(DigitsData(1, load_scenario(scenario).seed).public_idx)
        n = n_pub * len(PUBLIC_STYLES)
        epochs = max(1, int(round(c.pretrain_epochs * STYLE_EPOCH_SHARE * n_pub / n)))
        out.append({"name": "pretrain", "fn": "train_vae", **cloud, "n": n, "epochs": epochs,
                    "batch": c.pretrain_batch_size, "lr": c.pretrain_lr})
    return out


def _model(case: dict[str, Any]) -> torch.nn.Module:
    """A random CVAE, or a LoRACVAE on a random base with a non-zero adapter (seeded: equal per call)."""
    from gaisnet_env.models import CVAE, LoRACVAE

    g = torch.Generator().manual_seed(0)
    base = CVAE(case["latent"], case["hidden"])
    base.reset_parameters(g)
    if case["kind"] == "CVAE":
        return base
    vae = LoRACVAE(case["latent"], case["hidden"], case["rank"])
    vae.set_base(base.get_weights())
    vae.reset_adapter(g)
    with torch.no_grad():
        for p in vae.adapter_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return vae


def flops_per_sample(case: dict[str, Any], batch: int = 8) -> tuple[float, float]:
    """Matrix-product FLOPs of one training sample's forward + backward: (hand-written gradients,
    autograd's as :mod:`gaisnet_env.models.flops` counts them for the cost model)."""
    from gaisnet_env.models import count_flops, decoder_distil_flops, distil_gradients, elbo_gradients, generator_flops

    vae = _model(case)
    x, z = torch.rand(batch, 64), torch.randn(batch, case["latent"])
    y = torch.zeros(batch, dtype=torch.long)
    if case["fn"] == "train_vae":
        return count_flops(lambda: elbo_gradients(vae, x, y, y, z)) / batch, generator_flops(vae)[1]
    return count_flops(lambda: distil_gradients(vae, z, y, y, x)) / batch, decoder_distil_flops(vae)


def time_case(case: dict[str, Any], repeats: int, ref: Any) -> dict[str, Any]:
    """Median ms per call of the old and the new implementation (alternating), and their agreement."""
    from gaisnet_env.models import distil_decoder, train_vae, vae_trainable_parameters

    g = torch.Generator().manual_seed(1)
    n = case["n"]
    x, z = torch.rand(n, 64, generator=g), torch.randn(n, case["latent"], generator=g)
    y, s = torch.randint(10, (n,), generator=g), torch.randint(9, (n,), generator=g)
    if case["fn"] == "train_vae":
        impls = {"old": ref._ref_train_vae, "new": train_vae}
        data: tuple[torch.Tensor, ...] = (x, y, s)
    else:
        impls = {"old": ref._ref_distil_decoder, "new": distil_decoder}
        data = (z, y, s, x)
    times: dict[str, list[float]] = {"old": [], "new": []}
    ends: dict[str, Any] = {}
    for _ in range(repeats):
        for key, fn in impls.items():
            vae, gen = _model(case), torch.Generator().manual_seed(2)
            t = time.perf_counter()
            fn(vae, vae_trainable_parameters(vae), *data, epochs=case["epochs"], lr=case["lr"], batch=case["batch"],
               gen=gen)
            times[key].append(time.perf_counter() - t)
            ends[key] = ([p.detach().clone() for p in vae.parameters()], gen.get_state())
    diff = max(float((a - b).abs().max()) for a, b in zip(ends["old"][0], ends["new"][0], strict=True))
    return {"old_ms": 1e3 * median(times["old"]), "new_ms": 1e3 * median(times["new"]),
            "max_abs_weight_diff": diff, "gen_state_equal": bool(torch.equal(ends["old"][1], ends["new"][1]))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="metro")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--repeats", type=int, default=21, help="calls per implementation and case (median)")
    p.add_argument("--pretrain-repeats", type=int, default=5)
    p.add_argument("--no-pretrain", action="store_true", help="skip the pre-training case")
    p.add_argument("--out", type=str, default=None, help="output folder (default benchmarks/results)")
    p.add_argument("--name", type=str, default="bench_vae_training")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ref = _reference()
    gflops = matmul_gflops()
    rows = []
    for case in cases(args.scenario, not args.no_pretrain):
        reps = args.pretrain_repeats if case["name"] == "pretrain" else args.repeats
        fl, fl_autograd = flops_per_sample(case)
        floor_ms = 1e3 * fl * case["n"] * case["epochs"] / (gflops * 1e9)
        row = {**case, **time_case(case, reps, ref), "repeats": reps, "flops_per_sample": fl,
               "autograd_flops_per_sample": fl_autograd, "floor_ms": floor_ms}
        rows.append(row)
        print(f"{case['name']}: old {row['old_ms']:.2f} ms, new {row['new_ms']:.2f} ms, floor {floor_ms:.3f} ms, "
              f"max |dw| {row['max_abs_weight_diff']:.1e}", flush=True)
    data = {"machine": machine_info(), "scenario": args.scenario, "threads": args.threads,
            "matmul_1024_gflops": gflops, "cases": rows}
    write_results(args.name, data, _table(data), Path(args.out) if args.out else None)
    return data


def _table(data: dict[str, Any]) -> str:
    same = all(r["flops_per_sample"] == r["autograd_flops_per_sample"] for r in data["cases"])
    lines = [
        f"Generator training per call, scenario {data['scenario']}, {data['threads']} torch thread(s); "
        f"1024^3 float32 matmul: {data['matmul_1024_gflops']:.1f} GFLOP/s. Old: autograd + "
        "torch.optim.Adam(fused=True); new: hand-written gradients + FusedAdam. Medians of the repeats; "
        "floor = matmul FLOPs of forward + backward per sample x samples x epochs / matmul GFLOP/s "
        f"(per-sample FLOPs {'equal to' if same else 'DIFFERENT from'} autograd's count in models.flops). "
        "max abs weight diff: new vs old final weights; same draws: generator states equal after the call.",
        "",
        "| case | call | model (latent, hidden, rank) | samples x epochs (batch) | old ms | new ms | speed-up "
        "| MFLOP / sample | floor ms | new / floor | max abs weight diff | same draws |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["cases"]:
        lines.append(
            f"| {r['name']} | {r['fn']} | {r['kind']} ({r['latent']}, {r['hidden']}, {r['rank'] or '-'}) "
            f"| {r['n']} x {r['epochs']} ({r['batch']}) | {r['old_ms']:.2f} | {r['new_ms']:.2f} "
            f"| {r['old_ms'] / r['new_ms']:.2f}x | {r['flops_per_sample'] / 1e6:.3f} | {r['floor_ms']:.3f} "
            f"| {r['new_ms'] / r['floor_ms']:.0f}x | {r['max_abs_weight_diff']:.1e} | {r['gen_state_equal']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
