"""Reliability: numerical guards, worker plug-in checks, and
the disk cache cases not covered in test_workers.py / test_vector.py (read-only directories,
foreign and non-finite files, stale temporary files)."""

from __future__ import annotations

import builtins
import dataclasses
import errno
import hashlib
import os
import stat
import warnings

import numpy as np
import pytest
import torch

from gaisnet_env import model_cache
from gaisnet_env.env import OP_FINETUNE, OP_NONE, ROUTE_EDGE, WORKER_METHODS, GaisNetEnv, _check_finite_info
from gaisnet_env.masks import info_arrays
from gaisnet_env.worker_config import WorkerConfig
from gaisnet_env.workers import WorkerSystem


def all_finite(obs, reward, info) -> bool:
    vals = [v.astype(np.float64) for k, v in info_arrays(info).items() if k != "fault_injected"]
    return bool(np.isfinite(obs).all() and np.isfinite(reward) and all(np.isfinite(v).all() for v in vals))


# ------------------------------------------------------------------------------- numerical guards
def test_nan_in_an_operation_fails_it_and_keeps_the_weights() -> None:
    env = GaisNetEnv("tiny", horizon=50)
    env.reset(seed=0)
    while env.workers.feedback_count(0) == 0:  # an op needs labelled feedback to train on
        env.step([ROUTE_EDGE, OP_NONE])
    before = env.workers.state_dict()
    good_lr = env.workers.config.finetune_lr
    env.workers.config.finetune_lr = float("inf")  # the training step turns the adapter into NaN
    obs, reward, _, _, info = env.step([ROUTE_EDGE, OP_FINETUNE])
    assert info["ops_failed"] == 1 and info["ops_started"] == 0 and info["model_version_edge"][0] == 0
    assert not env.workers.has_pending(0)
    after = env.workers.state_dict()
    for a, b in zip(before["adapters"], after["adapters"], strict=True):
        assert (a is None and b is None) or all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert all_finite(obs, reward, info) and env.observation_space.contains(obs)
    # the env goes on; with a sane learning rate the same op succeeds
    env.workers.config.finetune_lr = good_lr
    obs, reward, _, _, info = env.step([ROUTE_EDGE, OP_FINETUNE])
    assert info["ops_started"] == 1 and info["ops_failed"] == 0 and all_finite(obs, reward, info)


def test_non_finite_pending_weights_are_refused_at_commit() -> None:
    """A plug-in op runner that returns NaN weights: the commit is refused and counted, the previous
    weights stay live and the next op on the model works."""

    class NaNFinetune(WorkerSystem):
        def _op_finetune(self, edge: int):
            res, pending = super()._op_finetune(edge)
            if pending is not None:
                pending.weights = [w.clone() for w in pending.weights]
                pending.weights[0].view(-1)[0] = float("nan")
            return res, pending

    env = GaisNetEnv("tiny", horizon=50, epoch_s=3000.0, worker_system=NaNFinetune)  # ops end in an epoch
    env.reset(seed=0)
    for _ in range(3):
        env.step([ROUTE_EDGE, OP_NONE])
    before = env.workers.state_dict()["adapters"]
    table = env.workers.accuracy_table("edge", 0)
    refused = 0
    for _ in range(4):
        _, _, _, _, info = env.step([ROUTE_EDGE, OP_FINETUNE if info_free(env) else OP_NONE])
        refused += info["ops_refused"]
        assert info["ops_finished"] == 0 and info["model_version_edge"][0] == 0
    assert refused >= 1
    after = env.workers.state_dict()["adapters"]
    assert before == after == [None]
    np.testing.assert_array_equal(env.workers.accuracy_table("edge", 0, use_cache=False), table)
    env.workers.__class__ = WorkerSystem  # the plug-in fixed: the same op now commits
    finished = 0
    for _ in range(3):
        _, _, _, _, info = env.step([ROUTE_EDGE, OP_FINETUNE if info_free(env) else OP_NONE])
        finished += info["ops_finished"]
    assert finished >= 1 and info["model_version_edge"][0] >= 1 and info["ops_refused"] == 0


def info_free(env: GaisNetEnv) -> bool:
    """Whether edge 0 may start an op now (nothing in flight)."""
    return bool(env.action_masks().reshape(-1, 8)[0, 3 + OP_FINETUNE])


def test_non_finite_values_never_reach_obs_reward_or_info() -> None:
    env = GaisNetEnv("tiny")
    env.reset(seed=0)
    env._generation_quality = lambda class_mix, style_mix: np.full((1, 2), np.nan)  # a broken worker score
    with pytest.raises(FloatingPointError, match="not finite"):
        env.step([ROUTE_EDGE, OP_NONE])
    env = GaisNetEnv("tiny")
    env.reset(seed=0)
    env.state.last_latency_ratio = np.array([np.inf])
    with pytest.raises(FloatingPointError, match="observation"):
        env._observation()
    env = GaisNetEnv("tiny")
    env.reset(seed=0)
    env.access_j_up = np.array([np.nan])  # a broken cost figure
    with pytest.raises(FloatingPointError, match="not finite"):
        env.step([ROUTE_EDGE, OP_NONE])
    # arrays in info are checked too, not only floats
    with pytest.raises(FloatingPointError, match="edge_reward"):
        _check_finite_info({"ok": 1.0, "n": 3, "edge_reward": np.array([0.1, np.nan])}, 7)
    _check_finite_info({"mask": np.array([True]), "v": np.array([1, 2]), "x": np.float32(1.0)}, 0)


# ------------------------------------------------------------------------------- worker plug-ins
class _Partial:
    """A workers object that forgot ``abort_op``."""

    def __init__(self, inner: WorkerSystem) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        if name == "abort_op":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_workers_plugin_is_checked_and_used() -> None:
    ref = GaisNetEnv("tiny")
    ws = ref.workers
    with pytest.raises(TypeError, match="no method 'abort_op'"):
        GaisNetEnv("tiny", worker_system=_Partial(ws))

    class NoState:
        def __init__(self, n_edges, config, seed, cache_dir=None) -> None:
            for name in WORKER_METHODS:
                if name != "state_dict":
                    setattr(self, name, lambda *a, **k: None)

    with pytest.raises(TypeError, match="NoState has no method 'state_dict'"):
        GaisNetEnv("tiny", worker_system=NoState)
    # a subclass that swaps in a bad object is caught at reset()
    env = GaisNetEnv("tiny")
    env.workers = object()
    with pytest.raises(TypeError, match="no method 'reset'"):
        env.reset(seed=0)
    # a good object and a factory both work and give the default env's episode
    own = GaisNetEnv("tiny", worker_system=WorkerSystem(1, ref.scenario.workers, seed=0))
    fac = GaisNetEnv("tiny", worker_system=lambda n, cfg, seed, cache_dir=None: WorkerSystem(n, cfg, seed, cache_dir))
    outs = []
    for e in (ref, own, fac):
        e.reset(seed=2)
        outs.append([e.step([ROUTE_EDGE, k % 3])[1] for k in range(6)])
    assert outs[0] == outs[1] == outs[2]


# ------------------------------------------------------------------------------- cache safety
SMALL = WorkerConfig(teacher_hidden=16, edge_hidden=8, end_hidden=8, generator_hidden=16,
                     edge_generator_hidden=8, reference_hidden=8, pretrain_epochs=1)


def _weights_digest(weights) -> str:
    h = hashlib.sha256()
    for name in model_cache.MODEL_NAMES:
        for t in weights[name]:
            h.update(t.numpy().tobytes())
    return h.hexdigest()


@pytest.fixture()
def fresh_memory():
    model_cache.clear_memory_cache()
    yield
    model_cache.clear_memory_cache()


def _read_only(monkeypatch: pytest.MonkeyPatch, directory: str) -> None:
    """Make ``directory`` behave as on a read-only file system: creating files in it fails (EROFS).

    (chmod does not stop root, so the file system calls of model_cache are refused instead.)
    """
    real_open = builtins.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and os.path.dirname(os.path.abspath(file)) == directory:
            raise OSError(errno.EROFS, "Read-only file system", str(file))
        return real_open(file, mode, *args, **kwargs)

    def no_mkstemp(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", directory)

    monkeypatch.setattr(model_cache, "open", guarded_open, raising=False)
    monkeypatch.setattr(model_cache.tempfile, "mkstemp", no_mkstemp)


def test_read_only_dir_with_a_good_file_uses_it(tmp_path, monkeypatch, fresh_memory) -> None:
    d = str(tmp_path)
    good = _weights_digest(model_cache.pretrained_weights(SMALL, 5, d))
    for f in os.listdir(d):  # only the weights file is left (no lock file to reopen)
        if not f.endswith(".pt"):
            os.unlink(os.path.join(d, f))
    model_cache.clear_memory_cache()
    _read_only(monkeypatch, d)
    monkeypatch.setattr(model_cache, "pretrain", lambda *a: pytest.fail("pre-trained again"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a good file is all it needs: nothing to warn about
        w = model_cache.pretrained_weights(SMALL, 5, d)
    assert _weights_digest(w) == good
    assert os.listdir(d) == [f"pretrained-{model_cache.cache_key(SMALL, 5)}.pt"]


def test_read_only_empty_dir_falls_back_to_memory(tmp_path, monkeypatch, fresh_memory) -> None:
    d = str(tmp_path)
    expect = _weights_digest(model_cache.pretrain(SMALL, 6))
    _read_only(monkeypatch, d)
    with pytest.warns(RuntimeWarning, match="memory only") as got:
        w = model_cache.pretrained_weights(SMALL, 6, d)
        model_cache.pretrained_weights(SMALL, 16, d)  # another key, the same directory: warned once
    assert len([x for x in got if "memory only" in str(x.message)]) == 1
    assert _weights_digest(w) == expect and os.listdir(d) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model_cache.pretrained_weights(SMALL, 6, d) is w  # served from memory afterwards


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="chmod does not restrict root")
def test_chmod_read_only_dir_falls_back_to_memory(tmp_path, fresh_memory) -> None:
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.warns(RuntimeWarning, match="memory only"):
            w = model_cache.pretrained_weights(SMALL, 7, str(d))
        assert set(w) == set(model_cache.MODEL_NAMES) and list(d.iterdir()) == []
    finally:
        d.chmod(stat.S_IRWXU)


@pytest.mark.parametrize("damage", ["foreign_key", "nan_weights", "wrong_shape"])
def test_foreign_or_bad_cache_file_is_rebuilt(tmp_path, damage: str, fresh_memory) -> None:
    d = str(tmp_path)
    weights = model_cache.pretrained_weights(SMALL, 8, d)
    good = _weights_digest(weights)
    key = model_cache.cache_key(SMALL, 8)
    path = os.path.join(d, f"pretrained-{key}.pt")
    bad = {k: [t.clone() for t in v] for k, v in weights.items()}
    if damage == "nan_weights":
        bad["teacher"][0][0, 0] = float("nan")
    if damage == "wrong_shape":
        bad["end"][0] = torch.zeros(3, 3)
    torch.save({"key": "someone-else" if damage == "foreign_key" else key, "weights": bad}, path)
    model_cache.clear_memory_cache()
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        rebuilt = model_cache.pretrained_weights(SMALL, 8, d)
    assert _weights_digest(rebuilt) == good
    blob = torch.load(path, weights_only=True)
    assert blob["key"] == key and _weights_digest(blob["weights"]) == good


def test_stale_temp_file_of_a_crashed_writer_is_harmless(tmp_path, fresh_memory) -> None:
    d = str(tmp_path)
    key = model_cache.cache_key(SMALL, 9)
    with open(os.path.join(d, f"pretrained-{key}.pt.abc123.tmp"), "wb") as fh:
        fh.write(b"half a file")  # a writer killed before its rename
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = model_cache.pretrained_weights(SMALL, 9, d)
    model_cache.clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _weights_digest(model_cache.pretrained_weights(SMALL, 9, d)) == _weights_digest(w)


def test_env_builds_with_a_read_only_cache(tmp_path, monkeypatch, fresh_memory) -> None:
    """End to end: the env works (same episode) when its cache directory cannot be written."""
    cfg = dataclasses.asdict(SMALL)
    d = str(tmp_path)
    ref = GaisNetEnv("tiny", workers=cfg, cache_dir=d)
    ref.reset(seed=0)
    a = [ref.step([ROUTE_EDGE, OP_FINETUNE])[1] for _ in range(4)]
    model_cache.clear_memory_cache()
    ro = str(tmp_path / "ro")
    os.mkdir(ro)
    _read_only(monkeypatch, ro)
    with pytest.warns(RuntimeWarning, match="memory only"):
        env = GaisNetEnv("tiny", workers=cfg, cache_dir=ro)
    env.reset(seed=0)
    assert [env.step([ROUTE_EDGE, OP_FINETUNE])[1] for _ in range(4)] == a


def test_flipped_bit_in_a_cached_tensor_is_caught_by_the_checksum(tmp_path, fresh_memory) -> None:
    d = str(tmp_path)
    good = _weights_digest(model_cache.pretrained_weights(SMALL, 10, d))
    path = os.path.join(d, f"pretrained-{model_cache.cache_key(SMALL, 10)}.pt")
    blob = torch.load(path, weights_only=True)
    bits = blob["weights"]["teacher"][0].view(torch.int32)
    bits.view(-1)[17] ^= 1 << 3  # one bit of one float: still finite, right shape and dtype
    torch.save(blob, path)  # the stored checksum is the old one
    model_cache.clear_memory_cache()
    with pytest.warns(RuntimeWarning, match="checksum mismatch"):
        assert _weights_digest(model_cache.pretrained_weights(SMALL, 10, d)) == good
    model_cache.clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt and rewritten: good again
        assert _weights_digest(model_cache.pretrained_weights(SMALL, 10, d)) == good


def test_disk_full_while_writing_falls_back_to_memory(tmp_path, monkeypatch, fresh_memory) -> None:
    """torch.save on a full disk raises RuntimeError, not OSError: any write failure falls back."""
    d = str(tmp_path)

    def full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 3136 vs 3024")

    monkeypatch.setattr(model_cache.torch, "save", full_disk)
    with pytest.warns(RuntimeWarning, match="could not write.*memory only"):
        w = model_cache.pretrained_weights(SMALL, 11, d)
    assert _weights_digest(w) == _weights_digest(model_cache.pretrain(SMALL, 11))
    assert not [f for f in os.listdir(d) if f.endswith((".pt", ".tmp"))]  # no half file left


def test_cache_path_that_is_a_directory_pretrains_once(tmp_path, monkeypatch, fresh_memory) -> None:
    d = tmp_path
    (d / f"pretrained-{model_cache.cache_key(SMALL, 12)}.pt").mkdir()
    calls = []
    real = model_cache.pretrain
    monkeypatch.setattr(model_cache, "pretrain", lambda *a: calls.append(a) or real(*a))
    with pytest.warns(RuntimeWarning, match="is a directory"):
        model_cache.pretrained_weights(SMALL, 12, str(d))
    assert len(calls) == 1


def test_cache_files_are_readable_by_other_users(tmp_path, fresh_memory) -> None:
    d = str(tmp_path)
    model_cache.pretrained_weights(SMALL, 13, d)
    path = os.path.join(d, f"pretrained-{model_cache.cache_key(SMALL, 13)}.pt")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
