"""The batched training engine (gaisnet_env.op_batching): an epoch's ops started with their classifier
training batched per kind end where the one-by-one run ends (weights to float rounding, the generator
parts and every random draw exactly), and a failure reruns them one by one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gaisnet_env import op_batching
from gaisnet_env.worker_config import N_CLASSES, STYLES, WorkerConfig
from gaisnet_env.workers import WorkerSystem

N_EDGES = 4


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorkerSystem, WorkerSystem]:
    cache = str(tmp_path_factory.mktemp("cache"))
    return (WorkerSystem(N_EDGES, WorkerConfig(batched_ops=True), seed=0, cache_dir=cache),
            WorkerSystem(N_EDGES, WorkerConfig(batched_ops=False), seed=0, cache_dir=cache))


def _prepare(ws: WorkerSystem) -> None:
    ws.reset(3)
    rng = np.random.default_rng(7)
    for e in range(N_EDGES):
        sm = np.zeros(len(STYLES))
        sm[[0, 6 + e % 3]] = 0.5  # clean plus a personal style the cloud cannot render
        ws.add_feedback(e, np.full(N_CLASSES, 0.1), sm, 40 + 9 * e, rng)


def _pending_tensors(ws: WorkerSystem) -> list[list[torch.Tensor]]:
    out = []
    for p in ws._pending:
        out.append([] if p is None else [*p.weights, *(p.gen_weights or [])])
    return out


def _start_both(pair: tuple[WorkerSystem, WorkerSystem], ops: list[tuple[str, int]]) -> tuple[list, list]:
    results = []
    for ws in pair:
        _prepare(ws)
        results.append(ws.start_ops(ops))
    return results[0], results[1]


@pytest.mark.parametrize("ops", [
    [("finetune", 0), ("finetune", 1), ("relay_to_end", 2), ("relay_to_end", 3)],
    [("relay_down", 0), ("finetune", 1), ("relay_down", 2), ("finetune", 3)],
    [("relay_down", 3), ("relay_up", 0), ("relay_down", 1), ("relay_up", 2)],
])
def test_batched_starts_end_where_the_serial_ones_end(pair: tuple[WorkerSystem, WorkerSystem],
                                                      ops: list[tuple[str, int]]) -> None:
    batched, serial = pair
    got, want = _start_both(pair, ops)
    assert [(r.ok, r.flops, r.bytes_up, r.bytes_down, r.message) for r in got] == \
        [(r.ok, r.flops, r.bytes_up, r.bytes_down, r.message) for r in want]
    assert torch.equal(batched._gen.get_state(), serial._gen.get_state())  # the same draws, in order
    for e, (a, b) in enumerate(zip(_pending_tensors(batched), _pending_tensors(serial), strict=True)):
        assert len(a) == len(b), e
        for x, y in zip(a, b, strict=True):
            assert torch.allclose(x, y, rtol=0, atol=1e-6), (e, float((x - y).abs().max()))
    for e in range(N_EDGES):  # committed, they score the same on the test pool
        batched.commit_op(e)
        serial.commit_op(e)
        for tier in ("end", "edge", "cloud"):
            assert np.abs(batched.accuracy_table(tier, e) - serial.accuracy_table(tier, e)).max() <= 0.02


def test_one_op_of_each_kind_is_the_serial_run_bit_for_bit(pair: tuple[WorkerSystem, WorkerSystem]) -> None:
    ops = [("finetune", 0), ("relay_down", 1), ("relay_to_end", 2)]
    batched, serial = pair
    _start_both(pair, ops)
    assert not batched._batches_worth_it(ops)
    for a, b in zip(_pending_tensors(batched), _pending_tensors(serial), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_failed_job_reruns_the_epoch_one_by_one(pair: tuple[WorkerSystem, WorkerSystem],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = op_batching.train_stack
    calls = []

    def failing(stack: object, xs: list, *args: object, **kwargs: object) -> list[bool]:
        ok = real(stack, xs, *args, **kwargs)
        calls.append(len(xs))
        return [False, *ok[1:]]  # as if the first model's weights had become non-finite

    monkeypatch.setattr(op_batching, "train_stack", failing)
    ops = [("finetune", 0), ("finetune", 2), ("relay_to_end", 1)]
    got, want = _start_both(pair, ops)
    batched, serial = pair
    assert calls == [2]  # tried batched, then fell back
    assert [r.ok for r in got] == [r.ok for r in want]
    assert torch.equal(batched._gen.get_state(), serial._gen.get_state())
    for a, b in zip(_pending_tensors(batched), _pending_tensors(serial), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))  # the serial run itself


def test_batched_episodes_are_deterministic_and_batch_for_real() -> None:
    """With ``batched_ops`` the env is as deterministic as without (same seed, same episode), and the
    random policy does start several ops of a kind in one epoch (so the engine is exercised)."""
    from gaisnet_env import GaisNetEnv

    runs, batched_epochs, engine_calls = [], 0, []
    for _ in range(2):
        env = GaisNetEnv("metro", workers={"batched_ops": True}, horizon=12)
        calls: list[int] = []
        engine_calls.append(calls)
        real = env.workers._start_batched
        env.workers._start_batched = (lambda ops, *rest, real=real, calls=calls:
                                      calls.append(len(ops)) or real(ops, *rest))
        env.reset(seed=4)
        env.action_space.seed(4)
        rewards = []
        for _ in range(12):
            action = env.action_space.sample(mask=env.gym_action_mask())
            ops = [int(o) for o in np.asarray(action).reshape(-1, 2)[:, 1]]
            batched_epochs += any(ops.count(k) > 1 for k in (1, 2, 4))
            rewards.append(env.step(action)[1])
        runs.append(rewards)
    assert runs[0] == runs[1]
    assert batched_epochs > 0
    assert engine_calls[0] and engine_calls[0] == engine_calls[1]  # the engine ran, the same in both runs


def test_a_failed_generator_job_reruns_the_epoch_one_by_one(pair: tuple[WorkerSystem, WorkerSystem],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real = op_batching.train_vae_stack
    calls = []

    def failing(template: object, starts: list, *args: object, **kwargs: object) -> tuple[list, list]:
        ok, out = real(template, starts, *args, **kwargs)
        calls.append(len(starts))
        return [*ok[:-1], False], out

    monkeypatch.setattr(op_batching, "train_vae_stack", failing)
    ops = [("finetune", 0), ("finetune", 2), ("relay_down", 1)]
    got, want = _start_both(pair, ops)
    batched, serial = pair
    assert calls == [2]
    assert [r.ok for r in got] == [r.ok for r in want]
    assert torch.equal(batched._gen.get_state(), serial._gen.get_state())
    for a, b in zip(_pending_tensors(batched), _pending_tensors(serial), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_batched_episode_replays_after_a_restore_into_a_fresh_instance() -> None:
    """Restored into a fresh instance mid-episode, a batched_ops env replays the rest bit for bit (the
    deferred jobs leave nothing behind between steps)."""
    from gaisnet_env import GaisNetEnv

    env = GaisNetEnv("metro", workers={"batched_ops": True}, horizon=16)
    env.reset(seed=9)
    env.action_space.seed(1)
    for _ in range(5):
        env.step(env.action_space.sample(mask=env.gym_action_mask()))
    snap = env.snapshot()
    tail, want = [], []
    for _ in range(8):
        a = env.action_space.sample(mask=env.gym_action_mask())
        obs, r, *_ = env.step(a)
        tail.append(a)
        want.append((obs.tobytes(), r))
    fresh = GaisNetEnv("metro", workers={"batched_ops": True}, horizon=16)
    fresh.reset(seed=123)
    fresh.restore(snap)
    got = []
    for a in tail:
        obs, r, *_ = fresh.step(a)
        got.append((obs.tobytes(), r))
    assert got == want
