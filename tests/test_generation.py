"""Generators that learn (edge adapters, relay of generator knowledge) and federated relay_up rounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gaisnet_env.env import GaisNetEnv
from gaisnet_env.worker_config import N_CLASSES, STYLES, WorkerConfig
from gaisnet_env.workers import WorkerSystem

UNIFORM = np.full(N_CLASSES, 1.0 / N_CLASSES)


def mix(**shares: float) -> np.ndarray:
    v = np.zeros(len(STYLES))
    for name, share in shares.items():
        v[STYLES.index(name)] = share
    return v


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> WorkerSystem:
    return WorkerSystem(3, WorkerConfig(), seed=0, cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture()
def ws(system: WorkerSystem) -> WorkerSystem:
    system.reset(0)
    return system


def quality(ws: WorkerSystem, where: str, edge: int, style_mix: np.ndarray) -> float:
    return float(style_mix @ ws.generation_table(where, edge) @ UNIFORM)


def test_finetune_teaches_the_edge_generator_its_own_personal_style(ws: WorkerSystem) -> None:
    domain = mix(mirror=1.0)
    ws.add_feedback(0, UNIFORM, domain, 128, np.random.default_rng(0))
    before = quality(ws, "edge", 0, domain)
    for _ in range(2):
        assert ws.start_op("finetune", 0).ok
        ws.commit_op(0)
    assert quality(ws, "edge", 0, domain) > before + 0.05
    assert quality(ws, "edge", 1, domain) == before  # other edges' generators are untouched


def test_relay_down_distils_the_cloud_generator_and_keeps_personal_styles(ws: WorkerSystem) -> None:
    domain = mix(rotate=0.5, mirror=0.5)
    ws.add_feedback(0, UNIFORM, domain, 128, np.random.default_rng(1))
    assert ws.start_op("finetune", 0).ok
    ws.commit_op(0)
    rotate, mirror = quality(ws, "edge", 0, mix(rotate=1.0)), quality(ws, "edge", 0, mix(mirror=1.0))
    assert ws.start_op("relay_down", 0).ok
    ws.commit_op(0)
    # the cloud renders rotated digits well: the edge generator learns them from it, data-free
    assert quality(ws, "edge", 0, mix(rotate=1.0)) > rotate + 0.05
    # the cloud cannot render mirrored digits; the edge replays its own, so it keeps most of them
    assert quality(ws, "edge", 0, mix(mirror=1.0)) > 0.7 * mirror


def test_generator_relay_off_leaves_generators_to_the_edges_own_data(tmp_path) -> None:
    ws = WorkerSystem(2, WorkerConfig(generator_relay=False), seed=0, cache_dir=str(tmp_path))
    ws.reset(0)
    ws.add_feedback(0, UNIFORM, mix(rotate=1.0), 128, np.random.default_rng(1))
    before = ws.generation_table("edge", 0)
    assert ws.start_op("relay_down", 0).ok
    ws.commit_op(0)
    assert ws.generation_table("edge", 0) is before


def test_relay_up_teaches_the_cloud_generator_a_style_only_edges_see(ws: WorkerSystem) -> None:
    domain = mix(mirror=1.0)
    ws.add_feedback(0, UNIFORM, domain, 128, np.random.default_rng(2))
    for _ in range(2):
        assert ws.start_op("finetune", 0).ok
        ws.commit_op(0)
    assert not ws.gens.known[STYLES.index("mirror")]
    cloud_before = quality(ws, "cloud", 0, domain)
    public_before = quality(ws, "cloud", 0, mix(rotate=1.0))
    assert ws.start_op("relay_up", 0).ok
    assert quality(ws, "cloud", 0, domain) == cloud_before  # pending: nothing live yet
    ws.commit_op(0)
    assert ws.gens.known[STYLES.index("mirror")]
    assert quality(ws, "cloud", 0, domain) > cloud_before + 0.05
    assert quality(ws, "cloud", 0, mix(rotate=1.0)) > 0.8 * public_before  # replay keeps public styles
    # and a relay_down to another edge of that domain now has something to relay
    ws.add_feedback(1, UNIFORM, domain, 64, np.random.default_rng(3))
    res = ws.start_op("relay_down", 1)
    assert res.ok, res.message


def test_one_federated_round_aggregates_every_sender(ws: WorkerSystem) -> None:
    rng = np.random.default_rng(4)
    for e, name in enumerate(("mirror", "dilate", "rotate")):
        ws.add_feedback(e, UNIFORM, mix(**{name: 1.0}), 96, rng)
        assert ws.start_op("finetune", e).ok
        ws.commit_op(e)
    uploads = {e: ws._fb_new[e] for e in range(3)}
    results = ws.start_ops([("relay_up", 0), ("relay_up", 1), ("relay_up", 2)])
    assert all(r.ok for r in results) and all("round of 3 sender(s)" in r.message for r in results)
    # every sender holds the same round's weights: one distillation, no last-writer-wins
    pend = [ws._pending[e] for e in range(3)]
    assert all(p.round == pend[0].round for p in pend)
    assert all(all(torch.equal(a, b) for a, b in zip(p.weights, pend[0].weights, strict=True)) for p in pend)
    version = ws.version("cloud", 0)
    ws.commit_op(1)  # the first commit makes the round live for all senders
    assert ws.version("cloud", 0) == version + 1
    assert set(ws._store) == {0, 1, 2}
    assert all(ws._fb_new[e] == 0 for e in uploads)
    teacher = [t.clone() for t in ws._teacher_w]
    ws.commit_op(0)
    ws.commit_op(2)
    assert ws.version("cloud", 0) == version + 1
    assert all(torch.equal(a, b) for a, b in zip(teacher, ws._teacher_w, strict=True))
    assert ws.gens.known[STYLES.index("mirror")] and ws.gens.known[STYLES.index("dilate")]


def test_round_is_deterministic_and_survives_a_snapshot(ws: WorkerSystem) -> None:
    rng = np.random.default_rng(5)
    for e in range(3):
        ws.add_feedback(e, UNIFORM, mix(occlude=0.5, clean=0.5), 64, rng)
    snap = ws.state_dict()
    ws.start_ops([("relay_up", 0), ("relay_up", 2)])
    ws.commit_op(2)
    first = [t.clone() for t in ws._teacher_w], ws.generation_table("cloud", 0).copy()
    ws.load_state_dict(snap)
    ws.start_ops([("relay_up", 0), ("relay_up", 2)])
    ws.commit_op(2)
    assert all(torch.equal(a, b) for a, b in zip(first[0], ws._teacher_w, strict=True))
    assert np.array_equal(first[1], ws.generation_table("cloud", 0))


def test_env_round_senders_finish_together_and_quality_varies() -> None:
    env = GaisNetEnv("metro", horizon=60)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    quality_seen, rounds = [], 0
    for t in range(60):
        m = env.action_masks().reshape(env.n_edges, -1)
        act = np.array([[rng.choice(np.flatnonzero(m[e, :3])), rng.choice(np.flatnonzero(m[e, 3:]))]
                        for e in range(env.n_edges)])
        if t % 10 == 9:  # every edge that can starts a relay_up: one federated round of several senders
            act[m[:, 3 + 3], 1] = 3
        before = env.state.op_kind.copy()
        _, _, term, trunc, info = env.step(act)
        started = (env.state.op_kind == 3) & (before != 3)
        if started.sum() > 1:
            rounds += 1
            assert np.unique(env.state.op_total_s[started]).size == 1
        quality_seen.append(info["quality_generate"])
        if term or trunc:
            break
    assert rounds > 0
    assert np.std(quality_seen) > 0.005 and len(set(np.round(quality_seen, 6))) > 10
