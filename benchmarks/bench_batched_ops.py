"""Per-op time of the knowledge operations' classifier training: K serial ``train_classifier`` calls vs one
batched call (:func:`~gaisnet_env.models.batched_training.train_classifiers_batched`), side by side in one
run, beside each op's FLOP floor.

Cases (architectures and training settings from the scenario's ``workers:`` section, metro by default):

* ``finetune``: the edge's LoRA adapter (``LoRAClassifier([64, edge_hidden, 10], lora_rank)``) on a full
  feedback buffer (``feedback_buffer`` samples, hard labels), ``finetune_epochs``, ``finetune_lr``;
* ``relay_to_end``: the end model (``MLPClassifier([64, end_hidden, 10])``) distilled on
  ``relay_to_end_samples`` soft labels at ``distill_temperature``, ``distill_epochs``, ``distill_lr``;
* ``relay_down``: the edge adapter distilled on ``relay_down_samples`` soft labels with the local anchor
  (``relay_down_local_weight`` x CE on a full feedback buffer), ``relay_down_epochs``, ``distill_lr``.

Only the classifier training of each op is timed (not its sampling, labelling or generator training).
Per K, every repeat trains fresh copies from fresh generators; the times are medians over ``--repeats``
and per op (total / K). Each repeat checks that the batched weights equal the serial ones (max abs diff).
FLOP floor per op = counted FLOPs (epochs x training samples x the model's counted training FLOPs per
sample, :func:`~gaisnet_env.models.classifier_flops`, as ``op_costs`` charges them) / this machine's
measured float32 rate (median of 1024 x 1024 x 1024 matmuls at the same thread count).

Usage::

    python benchmarks/bench_batched_ops.py                         # metro, K = 1 4 16 64, 1 thread
    python benchmarks/bench_batched_ops.py --ks 1 4 --repeats 2 --out /tmp/bench   # smoke

Results: ``benchmarks/results/bench_batched_ops.json`` and ``.md`` (or ``--out``/``--name``).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, median, write_results  # noqa: E402
from gaisnet_env.models import LoRAClassifier, MLPClassifier, classifier_flops, train_classifier  # noqa: E402
from gaisnet_env.models.batched_training import train_classifiers_batched  # noqa: E402
from gaisnet_env.models.classifiers import INPUT_CENTRE  # noqa: E402
from gaisnet_env.models.training import trainable_parameters  # noqa: E402

from gaisnet_env.worker_config import INPUT_DIM, N_CLASSES, WorkerConfig  # noqa: E402

CASES = ("finetune", "relay_to_end", "relay_down")


def measured_gflops(size: int = 1024, repeats: int = 7) -> float:
    """Median float32 rate of ``size``^3 matmuls, GFLOP/s (2 FLOPs per multiply-add)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(size, size, generator=g), torch.rand(size, size, generator=g)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2.0 * size**3 / median(times) / 1e9


def case_setup(case: str, cfg: WorkerConfig) -> dict[str, Any]:
    """The model factory, data sizes and training settings of ``case``."""
    edge_sizes, end_sizes = [INPUT_DIM, cfg.edge_hidden, N_CLASSES], [INPUT_DIM, cfg.end_hidden, N_CLASSES]
    if case == "finetune":
        return {"sizes": edge_sizes, "lora": True, "n": cfg.feedback_buffer, "soft": False, "anchor": 0,
                "epochs": cfg.finetune_epochs, "lr": cfg.finetune_lr}
    if case == "relay_to_end":
        return {"sizes": end_sizes, "lora": False, "n": cfg.relay_to_end_samples, "soft": True, "anchor": 0,
                "epochs": cfg.distill_epochs, "lr": cfg.distill_lr}
    if case == "relay_down":
        return {"sizes": edge_sizes, "lora": True, "n": cfg.relay_down_samples, "soft": True,
                "anchor": cfg.feedback_buffer, "epochs": cfg.relay_down_epochs, "lr": cfg.distill_lr}
    raise ValueError(f"unknown case {case!r}; expected one of {CASES}")


def _model(setup: dict[str, Any], cfg: WorkerConfig, k: int) -> torch.nn.Module:
    """Model ``k`` of a case: a random base (one per case, as the edges share theirs) and adapter."""
    base = MLPClassifier(setup["sizes"])
    base.reset_parameters(torch.Generator().manual_seed(1))
    if not setup["lora"]:
        base.reset_parameters(torch.Generator().manual_seed(100 + k))
        return base
    m = LoRAClassifier(setup["sizes"], cfg.lora_rank)
    m.set_base(base.get_weights())
    m.reset_adapter(torch.Generator().manual_seed(100 + k))
    return m


def _inputs(setup: dict[str, Any], cfg: WorkerConfig, n_models: int) -> dict[str, Any]:
    """Per-model data (x in [0, 1], labels or soft labels at T, local anchors) and models."""
    g = torch.Generator().manual_seed(7)
    n, t = setup["n"], cfg.distill_temperature
    xs = [torch.rand(n, INPUT_DIM, generator=g) for _ in range(n_models)]
    if setup["soft"]:
        ys = [torch.softmax(3 * torch.randn(n, N_CLASSES, generator=g) / t, 1) for _ in range(n_models)]
    else:
        ys = [torch.randint(N_CLASSES, (n,), generator=g) for _ in range(n_models)]
    anchors = None
    if setup["anchor"]:
        m = setup["anchor"]
        anchors = [(torch.rand(m, INPUT_DIM, generator=g), torch.randint(N_CLASSES, (m,), generator=g),
                    float(cfg.relay_down_local_weight)) for _ in range(n_models)]
    return {"xs": xs, "ys": ys, "anchors": anchors, "models": [_model(setup, cfg, k) for k in range(n_models)]}


def _timed(case: dict[str, Any], setup: dict[str, Any], cfg: WorkerConfig, batched: bool,
           ) -> tuple[float, list[torch.nn.Module]]:
    """Seconds of one serial pass (K calls) or one batched call on fresh copies; the trained models."""
    models = [copy.deepcopy(m) for m in case["models"]]
    k = len(models)
    gens = [torch.Generator().manual_seed(1000 + i) for i in range(k)]
    anchors = case["anchors"] or [None] * k
    kw = {"soft": setup["soft"], "epochs": setup["epochs"], "lr": setup["lr"], "batch": cfg.batch_size,
          "temperature": cfg.distill_temperature, "centre": INPUT_CENTRE}
    t0 = time.perf_counter()
    if batched:
        ok, _ = train_classifiers_batched(models, case["xs"], case["ys"], gens=gens, anchors=anchors, **kw)
    else:
        ok = [train_classifier(m, x, y, gen=g, anchor=a, **kw)
              for m, x, y, g, a in zip(models, case["xs"], case["ys"], gens, anchors, strict=True)]
    dt = time.perf_counter() - t0
    if not all(ok):
        raise RuntimeError("a benchmark model turned non-finite")
    return dt, models


def _max_diff(a: list[torch.nn.Module], b: list[torch.nn.Module]) -> float:
    return max(float((p - q).detach().abs().max()) for ma, mb in zip(a, b, strict=True)
               for p, q in zip(trainable_parameters(ma), trainable_parameters(mb), strict=True))


def run_case(name: str, cfg: WorkerConfig, ks: list[int], repeats: int, gflops: float) -> list[dict[str, Any]]:
    """Serial vs batched rows of one case, per K."""
    setup = case_setup(name, cfg)
    spe = math.ceil(setup["n"] / cfg.batch_size)
    steps = setup["epochs"] * spe
    n_local = spe * cfg.batch_size if setup["anchor"] else 0  # one local batch per step, as op_costs counts
    n_train = setup["epochs"] * (setup["n"] + n_local)
    flops = n_train * classifier_flops(_model(setup, cfg, 0))[1]
    floor_ms = flops / (gflops * 1e9) * 1e3
    rows = []
    for k in ks:
        case = _inputs(setup, cfg, k)
        _timed(case, setup, cfg, False)  # warm-up
        _timed(case, setup, cfg, True)
        ts, tb, diff = [], [], 0.0
        for _ in range(repeats):
            dt_s, ms = _timed(case, setup, cfg, False)
            dt_b, mb = _timed(case, setup, cfg, True)
            ts.append(dt_s / k)
            tb.append(dt_b / k)
            diff = max(diff, _max_diff(ms, mb))
        s_ms, b_ms = median(ts) * 1e3, median(tb) * 1e3
        rows.append({"case": name, "K": k, "serial_ms_per_op": s_ms, "batched_ms_per_op": b_ms,
                     "speedup": s_ms / b_ms, "flops_per_op": flops, "floor_ms_per_op": floor_ms,
                     "batched_over_floor": b_ms / floor_ms, "serial_over_floor": s_ms / floor_ms,
                     "max_abs_weight_diff": diff, "steps_per_op": steps, "repeats": repeats})
        print(f"{name:13s} K={k:3d}: serial {s_ms:7.3f} ms/op, batched {b_ms:7.3f} ms/op ({s_ms / b_ms:5.1f}x), "
              f"floor {floor_ms:.3f} ms ({b_ms / floor_ms:.1f}x), max |dw| {diff:.2e}", flush=True)
    return rows


def rate_line(gflops: float, threads: int, load: list[float]) -> str:
    """The results' first line: this machine's measured rate and the load average around the run."""
    return (f"Measured float32 rate: {gflops:.1f} GFLOP/s (1024^3 matmul, median) at {threads} torch thread(s); "
            f"1-minute load average {load[0]:.2f} at the start, {load[1]:.2f} at the end (other processes "
            "on the machine make the times noisy: serial and batched alternate per repeat, medians).")


def run_beside_floor(run: Callable[[float], list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], float, list[float]]:
    """``run(gflops)``'s rows, this machine's measured float32 rate (GFLOP/s) and the 1-minute load average
    before and after."""
    load = [os.getloadavg()[0]]
    gflops = measured_gflops()
    rows = run(gflops)
    load.append(os.getloadavg()[0])
    return rows, gflops, load


def _table(rows: list[dict[str, Any]], gflops: float, threads: int, load: list[float]) -> str:
    out = [rate_line(gflops, threads, load) + "\n",
           "| case | K | serial ms/op | batched ms/op | speedup | FLOP floor ms/op | batched / floor | "
           "serial / floor | max abs weight diff |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['case']} | {r['K']} | {r['serial_ms_per_op']:.3f} | {r['batched_ms_per_op']:.3f} | "
                   f"{r['speedup']:.1f}x | {r['floor_ms_per_op']:.3f} | {r['batched_over_floor']:.1f}x | "
                   f"{r['serial_over_floor']:.1f}x | {r['max_abs_weight_diff']:.1e} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="metro")
    p.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--out", type=str, default=None, help="output folder (default benchmarks/results)")
    p.add_argument("--name", type=str, default="bench_batched_ops")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from gaisnet_env.scenario import load_scenario

    cfg = load_scenario(args.scenario).workers
    rows, gflops, load = run_beside_floor(
        lambda gflops: [r for c in args.cases for r in run_case(c, cfg, args.ks, args.repeats, gflops)])
    data = {"machine": machine_info(), "scenario": args.scenario, "threads": args.threads, "gflops": gflops,
            "workers": {f: getattr(cfg, f) for f in ("edge_hidden", "end_hidden", "lora_rank", "feedback_buffer",
                                                     "batch_size", "finetune_epochs", "finetune_lr",
                                                     "relay_to_end_samples", "relay_down_samples",
                                                     "relay_down_epochs", "relay_down_local_weight",
                                                     "distill_epochs", "distill_lr", "distill_temperature")},
            "load_average_1min": load, "rows": rows}
    write_results(args.name, data, _table(rows, gflops, args.threads, load), Path(args.out) if args.out else None)
    return data


if __name__ == "__main__":
    main()
