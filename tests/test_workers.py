"""Real model workers: knowledge operations, costs, caching, access control, determinism, cache files."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import torch

from gaisnet_env import model_cache
from gaisnet_env.worker_config import N_CLASSES, OPERATIONS, PERSONAL_STYLES, PUBLIC_STYLES, STYLES, WorkerConfig
from gaisnet_env.workers import REPORT_BYTES, WorkerSystem

N_EDGES = 3
UNIFORM = np.full(N_CLASSES, 1.0 / N_CLASSES)


def style(name: str) -> np.ndarray:
    v = np.zeros(len(STYLES))
    v[STYLES.index(name)] = 1.0
    return v


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("gaisnet_cache"))


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> object:
    """Small models run fastest (and undisturbed by other processes) on one intra-op thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def system(cache_dir: str) -> WorkerSystem:
    return WorkerSystem(N_EDGES, WorkerConfig(), seed=0, cache_dir=cache_dir)


@pytest.fixture()
def ws(system: WorkerSystem) -> WorkerSystem:
    system.reset(0)
    return system


def fill(ws: WorkerSystem, name: str = "rotate", n: int = 200, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for e in range(ws.n_edges):
        ws.add_feedback(e, UNIFORM, style(name), n, rng)


def weights_of(ws: WorkerSystem) -> dict[str, list[torch.Tensor]]:
    """Every live weight tensor, by owner (pre-trained ones included)."""
    out = {"cloud": [t.clone() for t in (ws._teacher_w or ws._pre["teacher"])]}
    for e in range(ws.n_edges):
        out[f"edge{e}"] = [t.clone() for t in ws._adapter(e)]
        out[f"end{e}"] = [t.clone() for t in (ws._ends[e] or ws._pre["end"])]
    return out


def changed(a: dict[str, list[torch.Tensor]], b: dict[str, list[torch.Tensor]]) -> set[str]:
    return {k for k in a if any(not torch.equal(x, y) for x, y in zip(a[k], b[k], strict=True))}


# ---------------------------------------------------------------- pre-training
def test_pretrained_accuracies(ws: WorkerSystem) -> None:
    """The foundation premise: the cloud knows every public style, the edges' base only clean digits, and
    nobody the personalised styles."""
    teacher = ws.accuracy_table("cloud", 0)
    assert teacher.shape == (len(STYLES), N_CLASSES)
    for name in PUBLIC_STYLES:
        assert teacher[STYLES.index(name)].mean() > 0.8, name
    for name in PERSONAL_STYLES:
        assert teacher[STYLES.index(name)].mean() < 0.6, name
    for tier in ("edge", "end"):
        assert ws.accuracy(tier, 0, UNIFORM, style("clean")) > 0.85, tier
        for name in ("rotate", "invert", "shift"):
            assert ws.accuracy(tier, 0, UNIFORM, style(name)) < 0.3, (tier, name)
    cloud_q = ws.generation_table("cloud", 0)
    edge_q = ws.generation_table("edge", 1)
    assert cloud_q.shape == edge_q.shape == (len(STYLES), N_CLASSES)
    assert ((cloud_q >= 0) & (cloud_q <= 1)).all() and ((edge_q >= 0) & (edge_q <= 1)).all()
    # the cloud generator renders every public style, not the personal ones; the edge's base only clean
    for name in PUBLIC_STYLES:
        assert cloud_q[STYLES.index(name)].mean() > 0.05, name
    for name in PERSONAL_STYLES:
        assert cloud_q[STYLES.index(name)].mean() < 0.02, name
    assert edge_q[0].mean() > 0.05
    for name in ("rotate", "invert", "shift", *PERSONAL_STYLES):
        assert edge_q[STYLES.index(name)].mean() < 0.02, name


def test_model_sizes_and_flops(ws: WorkerSystem) -> None:
    assert ws.model_bytes("cloud") > ws.model_bytes("edge") > ws.model_bytes("end")
    assert ws.inference_flops("cloud") > ws.inference_flops("edge") > ws.inference_flops("end") > 0
    assert ws.generation_flops("cloud") > ws.generation_flops("edge") > 0
    assert ws.adapter_bytes == sum(t.numel() * t.element_size() for t in ws._adapter0)
    assert ws.adapter_bytes < ws.model_bytes("edge")


# ---------------------------------------------------------------- operations
@pytest.mark.parametrize(
    ("op", "owner"), [("relay_down", "edge1"), ("finetune", "edge1"), ("relay_up", "cloud"), ("relay_to_end", "end1")]
)
def test_each_operation_changes_only_its_weights(ws: WorkerSystem, op: str, owner: str) -> None:
    # relay_up on a personal style: the teacher is surer than the edge expert on every rotated sample, so
    # its selective distillation would (rightly) leave it unchanged there
    fill(ws, "mirror" if op == "relay_up" else "rotate")
    for _ in range(3):  # an adapter surer than the teacher on some samples, so relay_up teaches something
        ws.start_op("finetune", 1)
        ws.commit_op(1)
    before = weights_of(ws)
    versions = {(t, e): ws.version(t, e) for t in ("end", "edge", "cloud") for e in range(N_EDGES)}
    res = ws.start_op(op, 1)
    assert res.ok, res.message
    assert res.op == op and res.edge == 1 and res.samples > 0
    assert ws.has_pending(1)
    assert changed(before, weights_of(ws)) == set(), "start_op must not change live weights"
    ws.commit_op(1)
    assert not ws.has_pending(1)
    assert changed(before, weights_of(ws)) == {owner}
    tier = owner.rstrip("0123456789")
    for (t, e), v in versions.items():
        if t == tier and (t == "cloud" or e == 1):
            assert ws.version(t, e) > v
        else:
            assert ws.version(t, e) == v


def test_abort_and_busy_and_no_feedback(ws: WorkerSystem) -> None:
    res = ws.start_op("finetune", 0)
    assert not res.ok and "feedback" in res.message and not ws.has_pending(0)
    fill(ws)
    before = weights_of(ws)
    assert ws.start_op("finetune", 0).ok
    busy = ws.start_op("relay_down", 0)
    assert not busy.ok and "busy" in busy.message
    ws.abort_op(0)
    ws.commit_op(0)  # nothing pending: no-op
    assert changed(before, weights_of(ws)) == set()
    assert ws.version("edge", 0) == 0
    with pytest.raises(ValueError):
        ws.start_op("teleport", 0)


def test_bytes_equal_real_tensor_sizes(system: WorkerSystem, cache_dir: str) -> None:
    ws = system
    ws.reset(0)
    fill(ws)
    cfg = ws.config
    adapter_bytes = sum(t.numel() * t.element_size() for t in ws._edge.get_adapter())
    end_bytes = sum(p.numel() * p.element_size() for p in ws._end.parameters())
    report = ws.domain_report(0)
    report_bytes = report[0].nbytes + report[1].nbytes + np.int64(report[2]).nbytes
    assert REPORT_BYTES == report_bytes

    r = ws.start_op("relay_down", 0)
    gen_adapter = sum(t.numel() * t.element_size() for t in ws.gens.adapter(0))
    latents = cfg.relay_down_samples * ws.gens.cloud.latent * 4  # the generator distillation's inputs
    assert r.bytes_down == cfg.relay_down_samples * (64 + N_CLASSES) * 4 + latents and r.bytes_up == report_bytes
    assert r.flops["cloud"] > 0 and r.flops["edge"] > 0
    ws.abort_op(0)
    r = ws.start_op("finetune", 0)
    assert r.bytes_up == 0 and r.bytes_down == 0 and r.flops["edge"] > 0 and r.flops["cloud"] == 0
    ws.abort_op(0)
    r = ws.start_op("relay_up", 0)
    assert r.bytes_up == adapter_bytes + report_bytes + gen_adapter and r.bytes_down == 0 and r.flops["cloud"] > 0
    ws.abort_op(0)
    r = ws.start_op("relay_to_end", 0)
    assert r.bytes_down == end_bytes and r.bytes_up == 0 and r.flops["edge"] > 0
    ws.abort_op(0)

    other = WorkerSystem(2, dataclasses.replace(cfg, relay_down_variant="ship_adapter"), 0, cache_dir=cache_dir)
    fill(other)
    r = other.start_op("relay_down", 0)
    assert r.ok and r.bytes_down == adapter_bytes + gen_adapter
    assert r.bytes_up == adapter_bytes + report_bytes + gen_adapter
    assert r.flops["edge"] == 0 and r.flops["cloud"] > 0


# ------------------------------------------------ knowledge-operation options
#: (settings, operation, owner of the weights it may change); settings name both sides of each option
OPTION_CASES = [
    ({"relay_down_local_weight": 1.0, "relay_down_min_confidence": 0.0}, "relay_down", "edge1"),
    ({"relay_down_local_weight": 0.0, "relay_down_min_confidence": 0.9}, "relay_down", "edge1"),
    ({"relay_down_relative": True}, "relay_down", "edge1"),
    ({"relay_up_aggregation": "experts"}, "relay_up", "cloud"),
    ({"relay_up_aggregation": "fedavg"}, "relay_up", "cloud"),
]
#: the same option switched to its other side
OPPOSITE = {
    "relay_down_local_weight": lambda v: 0.0 if v else 1.0,
    "relay_down_min_confidence": lambda v: 0.0 if v else 0.9,
    "relay_down_relative": lambda v: not v,
    "relay_up_aggregation": lambda v: "fedavg" if v == "experts" else "experts",
}


def _variant(cache_dir: str, settings: dict) -> WorkerSystem:
    return WorkerSystem(N_EDGES, dataclasses.replace(WorkerConfig(), **settings), 0, cache_dir=cache_dir)


def _prepare(ws: WorkerSystem, seed: int = 0, extra_finetunes: int = 0, edge1: str = "invert") -> None:
    """Mixed domains (edge 1's style ``edge1``), fine-tuned adapters (edge 1 ``extra_finetunes`` more
    times), and edges 0 and 2 in the cloud's store."""
    ws.reset(seed)
    rng = np.random.default_rng(seed)
    for e, name in enumerate(["rotate", edge1, "blur"]):
        ws.add_feedback(e, UNIFORM, style(name), 200, rng)
    for e in range(N_EDGES):
        assert ws.start_op("finetune", e).ok
        ws.commit_op(e)
    for e in (0, 2):
        assert ws.start_op("relay_up", e).ok
        ws.commit_op(e)
    for _ in range(extra_finetunes):
        assert ws.start_op("finetune", 1).ok
        ws.commit_op(1)


@pytest.mark.parametrize(("settings", "op", "owner"), OPTION_CASES)
def test_each_option_changes_only_its_weights(cache_dir: str, settings: dict, op: str, owner: str) -> None:
    # a confident edge, so that selective distillation leaves some samples out, and an expert that is
    # surer than the teacher on some samples, so that relay_up has something to teach
    extra = 3 if settings.get("relay_down_relative") or op == "relay_up" else 0
    # edge 1 where its expert is surer than the teacher on some samples: a personal style for relay_up
    # (which the teacher does not know), blur for selective relay_down (which the base edge knows)
    edge1 = "dilate" if op == "relay_up" else "blur" if settings.get("relay_down_relative") else "invert"
    ws = _variant(cache_dir, settings)
    _prepare(ws, extra_finetunes=extra, edge1=edge1)
    before = weights_of(ws)
    res = ws.start_op(op, 1)
    assert res.ok, res.message
    assert changed(before, weights_of(ws)) == set(), "start_op must not change live weights"
    ws.commit_op(1)
    after = weights_of(ws)
    assert changed(before, after) == {owner}
    # the option matters: its other side gives other weights from the same state and seed
    other = _variant(cache_dir, {k: OPPOSITE[k](v) for k, v in settings.items()})
    _prepare(other, extra_finetunes=extra, edge1=edge1)
    assert other.start_op(op, 1).ok
    other.commit_op(1)
    assert owner in changed(after, weights_of(other))


def _classifier_flops(r) -> float:
    """Counted FLOPs of an op's parts done by the edge classifier (its generator parts aside)."""
    return sum(p.flops for p in r.work if p.model == "edge_classifier")


def test_option_bytes_equal_real_tensor_sizes(cache_dir: str) -> None:
    per_sample = (64 + N_CLASSES) * 4  # float32 image + soft label
    # anchoring: local samples never leave the edge; the edge pays for its local batches
    ws = _variant(cache_dir, {"relay_down_local_weight": 1.0, "relay_down_min_confidence": 0.0})
    _prepare(ws)
    cfg = ws.config
    r = ws.start_op("relay_down", 1)
    n = cfg.relay_down_samples
    latents = ws.gens.cloud.latent * 4  # per sample, for the generator distillation
    assert r.bytes_up == REPORT_BYTES and r.bytes_down == n * (per_sample + latents)
    n_local = -(-n // cfg.batch_size) * cfg.batch_size
    assert _classifier_flops(r) == cfg.distill_epochs * (n + n_local) * ws.training_flops("edge")
    # confidence filter: only the kept samples are shipped and trained on
    ws = _variant(cache_dir, {"relay_down_local_weight": 0.0, "relay_down_min_confidence": 0.9999})
    _prepare(ws)
    r = ws.start_op("relay_down", 1)
    kept, n = r.samples, ws.config.relay_down_samples  # dropped samples still go down for the generator
    assert r.bytes_down == kept * per_sample + n * latents + (n - kept) * 64 * 4
    assert 0 < kept < n, r.message
    assert _classifier_flops(r) == ws.config.distill_epochs * kept * ws.training_flops("edge")
    # selective distillation: everything is shipped; the edge scores the samples, then trains on some
    ws = _variant(cache_dir, {"relay_down_relative": True, "relay_down_min_confidence": 0.0,
                              "relay_down_local_weight": 0.0})
    _prepare(ws)
    r = ws.start_op("relay_down", 1)
    n = ws.config.relay_down_samples
    assert r.bytes_down == n * (per_sample + latents)
    trained = (_classifier_flops(r) - n * ws.inference_flops("edge")) / (ws.config.distill_epochs
                                                                          * ws.training_flops("edge"))
    assert trained == pytest.approx(round(trained)) and 0 <= round(trained) <= n
    # experts: each relay_up uploads the edge's adapter once; the cloud keeps the latest one per edge
    ws = _variant(cache_dir, {"relay_up_aggregation": "experts"})
    _prepare(ws)
    assert sorted(ws._store) == [0, 2]
    for _ in range(2):
        adapter = ws._adapter(1)
        r = ws.start_op("relay_up", 1)
        assert r.bytes_up == ws.adapter_bytes + ws.gens.adapter_bytes + REPORT_BYTES and r.bytes_down == 0
        assert ws.adapter_bytes == sum(t.numel() * t.element_size() for t in adapter)
        ws.commit_op(1)
        assert ws.start_op("finetune", 1).ok
        ws.commit_op(1)
        deltas = ws._edge.adapter_deltas(adapter)
        assert sorted(ws._store) == [0, 1, 2]
        assert all(torch.equal(a, b) for a, b in zip(ws._store[1][0], deltas, strict=True))


@pytest.mark.parametrize("settings", [OPTION_CASES[k][0] for k in (0, 1, 2, 3)])
def test_options_are_deterministic(cache_dir: str, settings: dict) -> None:
    ws = _variant(cache_dir, settings)
    runs = []
    for _ in range(2):
        _prepare(ws, seed=5)
        for op, e in [("relay_down", 1), ("relay_up", 1), ("relay_down", 0)]:
            assert ws.start_op(op, e).ok
            ws.commit_op(e)
        runs.append(weights_of(ws))
    assert changed(runs[0], runs[1]) == set()


def test_anchored_relay_down_keeps_local_knowledge(cache_dir: str) -> None:
    """In a domain half personal (mirror, which the cloud cannot render), pure distillation erodes what a
    fine-tuned edge knows of the personal half; the local cross-entropy term keeps it (mean over seeds)."""
    accs = {}
    mixed = 0.5 * style("mirror") + 0.5 * style("rotate")
    for lam in (0.0, 1.0):
        ws = _variant(cache_dir, {"relay_down_local_weight": lam, "relay_down_min_confidence": 0.0})
        accs[lam] = []
        for seed in range(3):
            ws.reset(seed)
            ws.add_feedback(0, UNIFORM, mixed, 200, np.random.default_rng(seed))
            for _ in range(3):
                assert ws.start_op("finetune", 0).ok
                ws.commit_op(0)
            assert ws.start_op("relay_down", 0).ok
            ws.commit_op(0)
            accs[lam].append(ws.accuracy("edge", 0, UNIFORM, style("mirror")))
    assert np.mean(accs[1.0]) > np.mean(accs[0.0]) + 0.05, accs


def test_no_operation_reaches_foreign_raw_samples(ws: WorkerSystem) -> None:
    d = ws.data
    cloud = ws._cloud
    # the cloud worker holds only the public pool view and its own models
    assert cloud.public.name == "public"
    for value in vars(cloud).values():
        assert not isinstance(value, type(d)), "the cloud must not hold the data set"
        if hasattr(value, "indices"):
            assert value is cloud.public
    zeros = np.zeros(2, dtype=np.int64)
    for foreign in (d.private_idx[0], d.test_idx):
        with pytest.raises(PermissionError):
            cloud.public.get(foreign[:2], zeros)
    # each edge's view refuses the other edges' and the public samples
    for e in range(N_EDGES):
        for other in (d.private_idx[(e + 1) % N_EDGES], d.public_idx):
            with pytest.raises(PermissionError):
                ws._views[e].get(other[:2], zeros)
    # what leaves an edge towards the cloud is a report: shares and a count, no samples
    fill(ws)
    ch, sh, n = ws.domain_report(0)
    assert ch.shape == (N_CLASSES,) and sh.shape == (len(STYLES),) and isinstance(n, int)
    assert abs(ch.sum() - 1) < 1e-5 and abs(sh.sum() - 1) < 1e-5
    # feedback of an edge only ever indexes its own pool
    for e in range(N_EDGES):
        assert np.isin(ws._feedback(e)[0], d.private_idx[e]).all()


@pytest.mark.parametrize("drift", ["rotate", "invert"])
def test_finetune_raises_accuracy_on_drifted_domain(ws: WorkerSystem, drift: str) -> None:
    gains = []
    for seed in range(3):
        ws.reset(seed)
        fill(ws, drift, seed=seed)
        before = ws.accuracy("edge", 0, UNIFORM, style(drift))
        for _ in range(3):
            assert ws.start_op("finetune", 0).ok
            ws.commit_op(0)
        gains.append(ws.accuracy("edge", 0, UNIFORM, style(drift)) - before)
    assert np.mean(gains) > 0.2, gains


def test_pure_data_free_relay_down_carries_the_clouds_knowledge(cache_dir: str) -> None:
    """The foundation premise: in a public style the edge's base never saw, pure distillation on the cloud's
    synthetic samples (no local labels) teaches the edge much of what the cloud knows."""
    ws = _variant(cache_dir, {"relay_down_local_weight": 0.0})
    fill(ws, "rotate", n=16)
    before = ws.accuracy("edge", 0, UNIFORM, style("rotate"))
    assert ws.start_op("relay_down", 0).ok
    ws.commit_op(0)
    assert ws.accuracy("edge", 0, UNIFORM, style("rotate")) > before + 0.4


def test_relay_down_fails_where_the_cloud_knows_no_reported_style(ws: WorkerSystem) -> None:
    fill(ws, "mirror")
    res = ws.start_op("relay_down", 0)
    assert not res.ok and "knows none" in res.message and not ws.has_pending(0)


def test_relay_up_keeps_what_the_cloud_knows_better(ws: WorkerSystem) -> None:
    """Selective targets: distilling a weaker edge expert does not erode the teacher."""
    fill(ws, "rotate")
    cloud_before = ws.accuracy("cloud", 0, UNIFORM, style("rotate"))
    clean_before = ws.accuracy("cloud", 0, UNIFORM, style("clean"))
    assert ws.start_op("finetune", 0).ok
    ws.commit_op(0)
    for _ in range(2):
        assert ws.start_op("relay_up", 0).ok
        ws.commit_op(0)
    assert ws.accuracy("cloud", 0, UNIFORM, style("rotate")) > cloud_before - 0.03
    assert ws.accuracy("cloud", 0, UNIFORM, style("clean")) > clean_before - 0.03


def test_cached_and_uncached_accuracy_agree(ws: WorkerSystem) -> None:
    fill(ws, "invert")
    for op in OPERATIONS[1:]:
        ws.start_op(op, 2)
        ws.commit_op(2)
        for tier in ("end", "edge", "cloud"):
            for e in range(N_EDGES):
                cached = ws.accuracy_table(tier, e)
                again = ws.accuracy_table(tier, e)
                assert again is cached  # no forward pass while weights are unchanged
                np.testing.assert_array_equal(cached, ws.accuracy_table(tier, e, use_cache=False))
    mix = np.random.default_rng(0).dirichlet(np.ones(N_CLASSES))
    smix = np.random.default_rng(1).dirichlet(np.ones(len(STYLES)))
    table = ws.accuracy_table("edge", 2)
    expect = float(sum(smix[s] * sum(mix[c] * table[s, c] for c in range(10)) for s in range(len(STYLES))))
    assert ws.accuracy("edge", 2, mix, smix) == pytest.approx(expect, abs=1e-12)


def test_numerical_guard(cache_dir: str) -> None:
    cfg = dataclasses.replace(WorkerConfig(), finetune_lr=1e30, finetune_epochs=3)
    ws = WorkerSystem(1, cfg, 0, cache_dir=cache_dir)
    fill(ws)
    res = ws.start_op("finetune", 0)
    assert not res.ok and "NaN" in res.message
    assert not ws.has_pending(0) and ws.version("edge", 0) == 0


def test_reset_is_fast_and_restores_pretrained(ws: WorkerSystem) -> None:
    fill(ws)
    for op in OPERATIONS[1:]:
        ws.start_op(op, 0)
        ws.commit_op(0)
    assert ws.version("edge", 0) > 0
    t0 = time.perf_counter()
    for _ in range(100):
        ws.reset(1)
    assert (time.perf_counter() - t0) / 100 < 0.005
    assert ws.version("edge", 0) == ws.version("cloud", 0) == 0
    assert ws.feedback_count(0) == 0 and not ws.has_pending(0)
    ref = weights_of(ws)
    assert changed(ref, weights_of(ws)) == set()
    assert all(torch.equal(a, b) for a, b in zip(ref["cloud"], ws._pre["teacher"], strict=True))


def test_state_dict_roundtrip_is_bit_exact(ws: WorkerSystem) -> None:
    fill(ws, "shift")
    ws.start_op("finetune", 0)
    ws.commit_op(0)
    ws.start_op("relay_up", 0)  # left pending on purpose
    snap = ws.state_dict()

    def branch() -> tuple[dict, list[np.ndarray]]:
        ws.commit_op(0)
        for op, e in [("relay_down", 1), ("finetune", 2), ("relay_to_end", 0)]:
            ws.start_op(op, e)
            ws.commit_op(e)
        return weights_of(ws), [ws.accuracy_table(t, e).copy() for t in ("end", "edge", "cloud") for e in range(3)]

    w1, a1 = branch()
    ws.load_state_dict(snap)
    w2, a2 = branch()
    assert changed(w1, w2) == set()
    assert all(np.array_equal(x, y) for x, y in zip(a1, a2, strict=True))
    ws.load_state_dict(snap)  # the snapshot stays reusable
    assert ws.has_pending(0)
    assert ws.version("edge", 0) == 1 and ws.version("cloud", 0) == 0


def test_versions_count_commits_since_reset(ws: WorkerSystem) -> None:
    def run() -> list[int]:
        ws.reset(3)
        fill(ws)
        for op in ["finetune", "finetune", "relay_up", "relay_to_end"]:
            ws.start_op(op, 0)
            ws.commit_op(0)
        return [ws.version(t, 0) for t in ("end", "edge", "cloud")]

    first = run()
    assert first == [1, 2, 1]
    assert run() == first  # same sequence after a reset: same versions


_SCRIPT = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from gaisnet_env.worker_config import STYLES, WorkerConfig
    from gaisnet_env.workers import WorkerSystem
    cfg = WorkerConfig(teacher_hidden=32, generator_hidden=32, pretrain_epochs=3, relay_up_samples=64,
                       relay_down_samples=64, relay_to_end_samples=64)
    ws = WorkerSystem(2, cfg, seed=4, cache_dir=sys.argv[1])
    ws.reset(9)
    rng = np.random.default_rng(9)
    for e in range(2):
        ws.add_feedback(e, np.full(10, 0.1), np.full(len(STYLES), 1 / len(STYLES)), 100, rng)
    for op in ["relay_down", "finetune", "relay_up", "relay_to_end"]:
        for e in range(2):
            ws.start_op(op, e)
            ws.commit_op(e)
    h = hashlib.sha256()
    for tier in ["end", "edge", "cloud"]:
        for e in range(2):
            h.update(ws.accuracy_table(tier, e).tobytes())
    for t in ws._teacher_w + ws._adapters[0] + ws._adapters[1] + ws._ends[0]:
        h.update(t.numpy().tobytes())
    print(h.hexdigest())
    """
)


def test_determinism_across_processes(tmp_path: os.PathLike) -> None:
    # separate cache dirs, so that pre-training itself is repeated in each process; run side by side
    procs = [
        subprocess.Popen([sys.executable, "-c", _SCRIPT, os.path.join(tmp_path, f"c{k}")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(2)
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        outs.append(out.strip())
    assert outs[0] == outs[1] and len(outs[0]) == 64


# ---------------------------------------------------------------- disk cache
SMALL = WorkerConfig(teacher_hidden=16, edge_hidden=8, end_hidden=8, generator_hidden=16,
                     edge_generator_hidden=8, reference_hidden=8, pretrain_epochs=1)


def _digest(weights: dict[str, list[torch.Tensor]]) -> str:
    h = hashlib.sha256()
    for name in model_cache.MODEL_NAMES:
        for t in weights[name]:
            h.update(t.numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_cache_file_is_rebuilt_with_warning(tmp_path: os.PathLike, damage: str) -> None:
    d = str(tmp_path)
    model_cache.clear_memory_cache()
    good = _digest(model_cache.pretrained_weights(SMALL, 0, d))
    path = os.path.join(d, f"pretrained-{model_cache.cache_key(SMALL, 0)}.pt")
    assert os.path.exists(path)
    raw = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write({"truncate": raw[: len(raw) // 2], "garbage": b"not a torch file" * 10, "empty": b""}[damage])
    model_cache.clear_memory_cache()
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        rebuilt = model_cache.pretrained_weights(SMALL, 0, d)
    assert _digest(rebuilt) == good
    model_cache.clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _digest(model_cache.pretrained_weights(SMALL, 0, d)) == good  # the rebuilt file is good
    leftovers = [f for f in os.listdir(d) if f.endswith(".tmp")]
    assert leftovers == []


def test_cache_key_tracks_pretraining_fields() -> None:
    k = model_cache.cache_key(SMALL, 0)
    assert k == model_cache.cache_key(dataclasses.replace(SMALL, finetune_lr=0.5), 0)
    assert k != model_cache.cache_key(dataclasses.replace(SMALL, teacher_hidden=17), 0)
    assert k != model_cache.cache_key(SMALL, 1)


def test_unusable_cache_dir_falls_back_to_memory(tmp_path: os.PathLike) -> None:
    blocker = os.path.join(tmp_path, "file")
    open(blocker, "w").close()
    d = os.path.join(blocker, "cache")  # a directory below a regular file cannot be created
    model_cache.clear_memory_cache()
    try:
        with pytest.warns(RuntimeWarning, match="memory"):
            w = model_cache.pretrained_weights(SMALL, 2, d)
        assert set(w) == set(model_cache.MODEL_NAMES)
        assert model_cache.pretrained_weights(SMALL, 2, d) is w  # in-memory cache
    finally:
        model_cache.clear_memory_cache()


def test_fedavg_weights_count_samples_since_the_last_upload(ws: WorkerSystem) -> None:
    """No cap artefact: the weight is every labelled sample since the edge's last relay_up, not the buffer."""
    cap = ws.config.feedback_buffer
    rng = np.random.default_rng(0)
    ws.add_feedback(0, UNIFORM, style("rotate"), cap + 172, rng)
    assert ws.feedback_count(0) == cap
    assert ws.start_op("relay_up", 0).ok
    ws.add_feedback(0, UNIFORM, style("rotate"), 7, rng)  # arrives while the upload is in flight
    ws.commit_op(0)
    assert ws._store[0][1] == cap + 172
    ws.add_feedback_batch(np.array([0]), UNIFORM[None], style("rotate")[None], np.array([43]), rng)
    assert ws.start_op("relay_up", 0).ok
    ws.commit_op(0)
    assert ws._store[0][1] == 7 + 43


def test_label_scoring_reads_the_live_weights_without_loading_them(ws: WorkerSystem) -> None:
    """label_hits' forward passes from the stored weights equal the working modules' forward, bit for bit,
    for pre-trained and trained models, even while another op's pending weights sit in the modules."""
    fill(ws)
    for op in ("finetune", "relay_to_end", "relay_up"):
        assert ws.start_op(op, 1).ok
        ws.commit_op(1)
    assert ws.start_op("finetune", 0).ok  # pending: the working edge module now holds edge 0's new adapter
    idx, sty = ws._newest_feedback(1, 64)
    x, _ = ws._views[1].get(idx, sty)
    with torch.no_grad():
        for tier in ("end", "edge", "cloud"):
            for e in (0, 1, 2):
                live = ws._live_logits(tier, e, x)
                assert torch.equal(live, ws._classifier(tier, e)(x)), (tier, e)
