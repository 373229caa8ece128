"""The calibrated fast path: same costs as the real operations, predicted accuracy tables, env integration,
determinism, clear errors, and a response model that beats "no change" on held-out real operations."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from gaisnet_env import GaisNetEnv
from gaisnet_env.surrogate import (
    DEFAULT_CALIBRATION,
    OP_TARGET,
    ResponseModel,
    SurrogateWorkerSystem,
    evaluate_fit,
    fast_path_factory,
)
from gaisnet_env.surrogate_fit import record_transitions
from gaisnet_env.worker_config import N_CLASSES, STYLES, WorkerConfig
from gaisnet_env.workers import CLASSIFIER_TIERS, WorkerSystem

UNIFORM = np.full(N_CLASSES, 1.0 / N_CLASSES)
ROTATE = np.eye(len(STYLES))[STYLES.index("rotate")]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("gaisnet_cache"))


def _filled(system: WorkerSystem) -> WorkerSystem:
    system.reset(0)
    rng = np.random.default_rng(0)
    for e in range(system.n_edges):
        system.add_feedback(e, UNIFORM, ROTATE, 200, rng)
    return system


def test_costs_equal_the_real_operations(cache_dir: str) -> None:
    for cfg in (WorkerConfig(), WorkerConfig(relay_down_variant="ship_adapter", relay_down_local_weight=0.0)):
        real = _filled(WorkerSystem(2, cfg, seed=0, cache_dir=cache_dir))
        fast = _filled(SurrogateWorkerSystem(2, cfg, seed=0, cache_dir=cache_dir,
                                             calibration=_calibration_for(cfg, cache_dir)))
        for op in OP_TARGET:
            a, b = real.start_op(op, 0), fast.start_op(op, 0)
            assert a.ok and b.ok
            assert (a.flops, a.bytes_up, a.bytes_down, a.samples) == (b.flops, b.bytes_up, b.bytes_down, b.samples), op
            real.commit_op(0)
            fast.commit_op(0)


def _calibration_for(cfg: WorkerConfig, cache_dir: str) -> str:
    """The shipped calibration, re-labelled for ``cfg`` (tests of mechanics, not of fidelity)."""
    if cfg == WorkerConfig():
        return str(DEFAULT_CALIBRATION)
    from pathlib import Path

    data = json.loads(DEFAULT_CALIBRATION.read_text())
    data["worker_config"] = dataclasses.asdict(cfg)
    path = Path(cache_dir) / "relabelled.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_predicted_tables_become_live_on_commit_only(cache_dir: str) -> None:
    fast = _filled(SurrogateWorkerSystem(2, WorkerConfig(), seed=0, cache_dir=cache_dir))
    for op, tier in OP_TARGET.items():
        before = {t: fast.accuracy_table(t, 0).copy() for t in CLASSIFIER_TIERS}
        v = fast.version(tier, 0)
        assert fast.start_op(op, 0).ok
        assert not fast.start_op("finetune", 0).ok  # busy
        assert all(np.array_equal(fast.accuracy_table(t, 0), before[t]) for t in CLASSIFIER_TIERS)
        fast.commit_op(0)
        assert fast.version(tier, 0) == v + 1
        after = fast.accuracy_table(tier, 0)
        assert after.shape == (len(STYLES), N_CLASSES) and np.all((after >= 0) & (after <= 1))
        if fast.response.layers[op] is not None:  # an op without a network predicts "no change"
            assert not np.array_equal(after, before[tier])
        # other tiers untouched; the other edge untouched (except the shared cloud teacher)
        assert all(np.array_equal(fast.accuracy_table(t, 0), before[t]) for t in CLASSIFIER_TIERS if t != tier)
        if tier != "cloud":
            assert np.array_equal(fast.accuracy_table(tier, 1), fast._pre_tables[tier])
    # finetune on rotated digits raises the edge's accuracy on rotated digits, as real training does
    fast.reset(0)
    _filled(fast)
    acc0 = fast.accuracy("edge", 0, UNIFORM, ROTATE)
    fast.start_op("finetune", 0)
    fast.commit_op(0)
    # (+0.09 here: the fit saw few full-buffer finetunes at metro's scarce labels)
    assert fast.accuracy("edge", 0, UNIFORM, ROTATE) > acc0 + 0.05


def test_env_on_the_fast_path_is_deterministic_and_restorable(cache_dir: str) -> None:
    def run(env: GaisNetEnv, seed: int, n: int) -> list[tuple]:
        out = []
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(n):
            mask = env.action_masks().reshape(env.n_edges, 8)
            act = [int(rng.choice(np.flatnonzero(m[:3]))) if k == 0 else int(rng.choice(np.flatnonzero(m[3:])))
                   for m in mask for k in (0, 1)]
            obs, r, _, trunc, info = env.step(np.array(act))
            out.append((obs.tobytes(), r, info["ops_started"]))
            if trunc:
                break
        return out

    env = GaisNetEnv("tiny", cache_dir=cache_dir, worker_system=SurrogateWorkerSystem)
    a = run(env, 3, 40)
    assert sum(x[2] for x in a) > 5  # operations really ran on the fast path
    assert run(env, 3, 40) == a
    env2 = GaisNetEnv("tiny", cache_dir=cache_dir, worker_system=fast_path_factory())
    assert run(env2, 3, 40) == a
    # snapshot / restore replays bit for bit
    env.reset(seed=4)
    for _ in range(5):
        env.step(np.tile([1, 2], env.n_edges))
    snap = env.snapshot()
    rest = [env.step(np.tile([1, 3], env.n_edges))[0].tobytes() for _ in range(6)]
    env.restore(snap)
    assert [env.step(np.tile([1, 3], env.n_edges))[0].tobytes() for _ in range(6)] == rest


def test_mismatched_calibration_names_the_settings(cache_dir: str) -> None:
    cfg = WorkerConfig(edge_hidden=32)
    with pytest.raises(ValueError, match="edge_hidden=32"):
        SurrogateWorkerSystem(1, cfg, seed=0, cache_dir=cache_dir)
    with pytest.raises(ValueError, match="relay_down_relative"):
        SurrogateWorkerSystem(1, WorkerConfig(relay_down_relative=True), seed=0, cache_dir=cache_dir)


def test_shipped_calibration_beats_no_change_on_held_out_operations() -> None:
    """The shipped file records its held-out fit (written by gaisnet_env.surrogate_fit.calibrate): an operation
    with a network predicts well below the error of "no change"; one without (its network did not beat "no
    change" on the fit data's validation split) predicts exactly "no change". relay_down and relay_to_end,
    the operations with large effects, must have a network."""
    model = ResponseModel.load(DEFAULT_CALIBRATION, WorkerConfig())
    held, kept = model.meta["held_out"], model.meta["kept"]
    assert set(held) == set(OP_TARGET) == set(kept)
    assert kept["relay_down"] and kept["relay_to_end"]
    for op, m in held.items():
        assert m["n"] >= 20, op
        if op in ("relay_down", "relay_to_end"):  # large effects: well below "no change"
            assert m["mae"] < 0.75 * m["mae_no_change"], (op, m)
        elif kept[op]:  # small effects (finetune on few labels): better than "no change"
            assert m["mae"] < m["mae_no_change"], (op, m)
        else:
            assert model.layers[op] is None and m["mae"] == pytest.approx(m["mae_no_change"], abs=1e-12), (op, m)


def test_record_and_fit_end_to_end(cache_dir: str) -> None:
    rows = record_transitions("tiny", (0,), ("random",), cache_dir=cache_dir, horizon=40)
    ops = {r["op"] for r in rows}
    assert ops == set(OP_TARGET)
    for r in rows:
        assert r["before"].shape == (3, len(STYLES), N_CLASSES) and r["after"].shape == (len(STYLES), N_CLASSES)
        assert 0 < r["fill"] <= 1
    model = ResponseModel.fit(rows + rows)  # tiny: small data, checks the mechanics only
    metrics = evaluate_fit(model, rows)
    assert set(metrics) == ops and all(np.isfinite(m["mae"]) for m in metrics.values())


def test_shipped_calibration_predicts_fresh_real_operations(cache_dir: str) -> None:
    """Live check: real operations recorded now (held-out seed 7, not in the fit) are predicted better
    than by "no change", for every operation that has a network (the others predict "no change")."""
    model = ResponseModel.load(DEFAULT_CALIBRATION, WorkerConfig())
    # a whole episode: at metro's scarce labels its first 60 epochs hold only ~11 relay_downs
    rows = record_transitions("metro", (7,), ("random",), cache_dir=cache_dir, horizon=200)
    metrics = evaluate_fit(model, rows)
    assert set(metrics) == set(OP_TARGET)
    for op, m in metrics.items():
        assert m["n"] >= 5, (op, m)
        if model.layers[op] is not None:
            assert m["mae"] < m["mae_no_change"], (op, m)
        else:
            assert m["mae"] == pytest.approx(m["mae_no_change"], abs=1e-12), (op, m)
