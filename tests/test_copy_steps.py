"""The native vector env trains its copies' knowledge operations as one batch (gaisnet_env.copy_steps) when
every copy runs the batched training engine (``workers.batched_ops``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gaisnet_env import copy_steps, op_batching
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.sb3_vec import make_sb3_vec_env
from gaisnet_env.vector_env import GaisNetVectorEnv

ENGINE = {"workers": {"batched_ops": True}}
N_COPIES = 3


def _actions(venv: GaisNetVectorEnv, rng: np.random.Generator) -> np.ndarray:
    """Uniform over what each copy's mask allows (tiny: one edge, so an op in two copies is a cross-copy batch)."""
    m = venv.action_masks().reshape(venv.num_envs, venv.n_edges, 8)
    noise = rng.random(m.shape)
    noise[~m] = -1.0
    return np.stack([noise[..., :3].argmax(-1), noise[..., 3:].argmax(-1)], axis=-1).reshape(venv.num_envs, -1)


def _stack_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = op_batching.train_stack

    def spy(stack: object, xs: list, *args: object, **kwargs: object) -> list[bool]:
        sizes.append(len(xs))
        return real(stack, xs, *args, **kwargs)

    monkeypatch.setattr(op_batching, "train_stack", spy)
    return sizes


def _episode(steps: int, seed: int = 0, **kwargs: object) -> tuple[list[np.ndarray], list[np.ndarray], list]:
    venv = GaisNetVectorEnv(N_COPIES, "tiny", **kwargs)
    obs, _ = venv.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, rewards, actions = [obs], [], []
    for _ in range(steps):
        act = _actions(venv, rng)
        obs, rew, _, _, _ = venv.step(act)
        observations.append(obs)
        rewards.append(rew)
        actions.append(act)
    venv.close()
    return observations, rewards, actions


def test_the_copies_ops_train_as_one_batch_and_episodes_are_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _stack_sizes(monkeypatch)
    first = _episode(12, **ENGINE)
    assert max(sizes) > 1  # one edge per copy: a stack of several models holds ops of several copies
    second = _episode(12, **ENGINE)
    for a, b in zip(first[0] + first[1], second[0] + second[1], strict=True):
        assert np.array_equal(a, b)


def test_the_copies_relay_up_rounds_distil_into_their_cloud_models_as_one_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each copy's federated round distils into its own dense cloud model; across copies those trainings are
    one stack (target "cloud"), with the same draws as the single env (the generator-state test below)."""
    groups: list[tuple[str, int]] = []
    real = op_batching._train_classifier_group

    def spy(systems: list, group: list) -> list[bool]:
        groups.append((group[0].target, len(group)))
        return real(systems, group)

    monkeypatch.setattr(op_batching, "_train_classifier_group", spy)
    venv = GaisNetVectorEnv(N_COPIES, "tiny", **ENGINE)
    venv.reset(seed=0)
    while venv.envs[0].workers._fb_count[0] == 0 or venv.envs[1].workers._fb_count[0] == 0:
        venv.step(np.array([[1, 0]] * N_COPIES))
    _, _, _, _, info = venv.step(np.array([[1, 3], [1, 3], [1, 0]]))  # copies 0 and 1 relay up
    assert ("cloud", 2) in groups
    assert list(info["ops_started"]) == [1, 1, 0]
    assert all(venv.envs[i].workers.pending_op(0) == "relay_up" or venv.envs[i].workers._ver_cloud == 1
               for i in (0, 1))


def test_without_the_engine_the_copies_step_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _stack_sizes(monkeypatch)
    venv = GaisNetVectorEnv(N_COPIES, "tiny")
    assert not copy_steps.batches_across_copies(venv.envs)
    assert copy_steps.batches_across_copies(GaisNetVectorEnv(2, "tiny", **ENGINE).envs)
    assert not copy_steps.batches_across_copies(GaisNetVectorEnv(1, "tiny", **ENGINE).envs)
    _episode(6)
    assert sizes == []  # the serial workers never stack


def _weights(env: GaisNetEnv) -> list[torch.Tensor]:
    w = env.workers
    return [t for ws in w._adapters + w._ends if ws is not None for t in ws]


def test_a_copy_draws_as_the_single_env_and_trains_the_same_weights_to_rounding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Copy i against a single env seeded the same way and given copy i's actions: the same random draws
    (generator states equal) and op outcomes at every step; after the first epoch whose ops trained as one
    stack, the same weights to float rounding, which a chaotic job's training amplifies (later ops compound
    it further)."""
    sizes = _stack_sizes(monkeypatch)
    venv = GaisNetVectorEnv(N_COPIES, "tiny", **ENGINE)
    venv.reset(seed=3)
    singles = [GaisNetEnv("tiny", **ENGINE) for _ in range(N_COPIES)]
    for i, env in enumerate(singles):
        env.reset(seed=3 + i)
    rng = np.random.default_rng(3)
    compared = False
    for _ in range(12):
        act = _actions(venv, rng)
        stacked_before = any(k > 1 for k in sizes)
        _, _, _, _, info = venv.step(act)
        for i, env in enumerate(singles):
            inf = env.step(act[i])[4]
            assert inf["ops_started"] == info["ops_started"][i] and inf["ops_failed"] == info["ops_failed"][i]
            assert torch.equal(env.workers._gen.get_state(), venv.envs[i].workers._gen.get_state())
        if not compared and any(k > 1 for k in sizes) and not stacked_before:
            compared = True  # the first cross-copy stack: each job trained from the single env's start
            diffs = [max(float((x - y).abs().max()) for x, y in zip(_weights(c), _weights(s), strict=True))
                     for c, s in zip(venv.envs, singles, strict=True)]
            # rounding (1e-7) in most jobs; a chaotic job can grow it to ~1e-3 (a mix-up of copies: ~0.1)
            assert min(diffs) <= 1e-6 and max(diffs) <= 1e-2, diffs
    assert compared


def test_a_failed_job_reruns_only_its_copy_serially(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first model of a stack turns non-finite: its copy reruns its ops one by one from the same draws
    (as the single env would), the other copies keep their batched results."""
    real = op_batching.train_stack
    calls: list[int] = []

    def failing(stack: object, xs: list, *args: object, **kwargs: object) -> list[bool]:
        ok = real(stack, xs, *args, **kwargs)
        calls.append(len(xs))
        return [False, *ok[1:]] if len(xs) > 1 else ok

    venv = GaisNetVectorEnv(2, "tiny", **ENGINE)
    venv.reset(seed=5)
    finetune = np.array([[1, 2], [1, 2]])  # both copies finetune their one edge
    warmup = 0
    while min(env.workers._fb_count[0] for env in venv.envs) == 0:  # feedback first
        venv.step(np.array([[1, 0], [1, 0]]))
        warmup += 1
    states = [env.workers._gen.get_state() for env in venv.envs]
    monkeypatch.setattr(op_batching, "train_stack", failing)
    _, _, _, _, info = venv.step(finetune)
    assert calls and calls[0] == 2
    assert list(info["ops_started"]) == [1, 1] and list(info["ops_failed"]) == [0, 0]
    monkeypatch.setattr(op_batching, "train_stack", real)
    serial = GaisNetEnv("tiny")  # the serial run of copy 0's epoch
    serial.reset(seed=5)
    for _ in range(warmup):
        serial.step(np.array([1, 0]))
    assert torch.equal(serial.workers._gen.get_state(), states[0])
    serial.step(np.array([1, 2]))
    a, b = venv.envs[0].workers, serial.workers
    assert torch.equal(a._gen.get_state(), b._gen.get_state())
    for x, y in zip(a._adapters[0], b._adapters[0], strict=True):
        assert torch.equal(x, y)  # copy 0 reran serially: the serial weights bit for bit


def test_a_masked_action_names_its_copy_and_the_copies_before_it_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    venv = GaisNetVectorEnv(3, "tiny", masked_action="raise", **ENGINE)
    venv.reset(seed=1)
    venv.step(np.array([[1, 0]] * 3))
    routes, ops = venv.envs[1]._mask_arrays()
    no_ops = ops.copy()
    no_ops[:, 1:] = False
    monkeypatch.setattr(venv.envs[1], "_mask_arrays", lambda: (routes, no_ops))
    epochs = [env.state.epoch for env in venv.envs]
    with pytest.raises(ValueError, match=r"actions\[1\] \(copy 1\)"):
        venv.step(np.array([[1, 2], [1, 2], [1, 2]]))
    assert [env.state.epoch for env in venv.envs] == [epochs[0] + 1, epochs[1], epochs[2]]


def test_the_copies_replay_bit_for_bit_after_a_restore_into_fresh_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshots of every copy restored into a new vector env (other instances, other workers objects) replay
    the same steps bit for bit, the cross-copy stacks included."""
    sizes = _stack_sizes(monkeypatch)
    venv = GaisNetVectorEnv(N_COPIES, "tiny", **ENGINE)
    venv.reset(seed=7)
    rng = np.random.default_rng(7)
    for _ in range(4):
        venv.step(_actions(venv, rng))
    snaps = [env.snapshot() for env in venv.envs]
    acts = [_actions_from(rng) for _ in range(8)]
    sizes.clear()
    first = [venv.step(a)[:2] for a in acts]
    assert max(sizes, default=0) > 1  # the replayed steps hold cross-copy stacks
    other = GaisNetVectorEnv(N_COPIES, "tiny", **ENGINE)
    other.reset(seed=123)
    for env, snap in zip(other.envs, snaps, strict=True):
        env.restore(snap)
    for (obs, rew), a in zip(first, acts, strict=True):
        obs2, rew2 = other.step(a)[:2]
        assert np.array_equal(obs, obs2) and np.array_equal(rew, rew2)


def _actions_from(rng: np.random.Generator) -> np.ndarray:
    """Unmasked (route, op) per copy for tiny: the env's fallback handles infeasible choices."""
    return np.stack([rng.integers(0, 3, N_COPIES), rng.integers(0, 5, N_COPIES)], axis=1)


def test_the_sb3_vec_env_batches_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _stack_sizes(monkeypatch)
    venv = make_sb3_vec_env("tiny", n_envs=N_COPIES, seed=0, **ENGINE)
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(12):
        m = venv.action_masks().reshape(N_COPIES, 1, 8)
        noise = rng.random(m.shape)
        noise[~m] = -1.0
        venv.step(np.stack([noise[..., :3].argmax(-1), noise[..., 3:].argmax(-1)], -1).reshape(N_COPIES, -1))
    assert max(sizes) > 1
