"""Pre-training of the workers' models on the cloud's public pool, cached in memory and on disk.

``pretrained_weights(config, seed, cache_dir)`` returns the pre-trained weights of every model
(lists of float32 tensors, keyed by model name, see :data:`MODEL_NAMES`):

* ``teacher``: cloud classifier ``[64, teacher_hidden, teacher_hidden, 10]``;
* ``generator``: cloud class-and-style conditional CVAE (``generator_latent``, ``generator_hidden``);
* ``edge_base``: base of the edge classifier ``[64, edge_hidden, 10]`` (frozen at the edges);
* ``end``: end devices' tiny classifier ``[64, end_hidden, 10]``;
* ``edge_generator``: base of the edge CVAE (``generator_latent``, ``edge_generator_hidden``);
* ``reference``: fixed judge of generated samples ``[64, reference_hidden, 10 * n_styles]`` (joint
  style-and-class label).

Training is deterministic per seed (explicit ``torch.Generator``), uses public samples only (which
model sees which styles: :func:`_pretrain_pool`) and takes a few seconds on 2 cores. Weights are cached

1. in process memory (creating many systems in one process pre-trains once), and
2. on disk under ``cache_dir`` (default ``$GAISNET_CACHE_DIR`` or ``~/.cache/gaisnet_env``), one file
   per key = hash of (architecture and pre-training fields, seed, package version, format version).

Disk writes go to a temporary file that is renamed (``os.replace``) under an exclusive ``fcntl``
lock, so readers never see half files and concurrent builders pre-train once. Each file carries a
SHA-256 of its weights. A missing, truncated, corrupt or altered file is rebuilt with a
``warnings.warn``. A read-only directory that holds a good file is read without a word; one that does
not, a cache path that is a directory, or a failed write (disk full, quota) keeps the weights in
memory only, with one warning per directory and process. Files are written 0644, so a cache
directory shared by several users serves them all.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gaisnet_env.data import DigitsData
from gaisnet_env.models import CVAE, MLPClassifier, train_vae
from gaisnet_env.worker_config import INPUT_DIM, N_CLASSES, PUBLIC_STYLES, STYLES, WorkerConfig

try:  # POSIX only; elsewhere write-temp-then-rename alone keeps files whole
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

#: Bump when the pre-training procedure or the file layout changes (invalidates disk caches).
FORMAT_VERSION = 5
#: WorkerConfig fields that determine the pre-trained weights (part of the cache key).
PRETRAIN_FIELDS: tuple[str, ...] = (
    "teacher_hidden",
    "edge_hidden",
    "end_hidden",
    "generator_latent",
    "generator_hidden",
    "edge_generator_hidden",
    "reference_hidden",
    "pretrain_epochs",
    "pretrain_lr",
    "pretrain_batch_size",
    "edge_base_share",
)
MODEL_NAMES: tuple[str, ...] = ("teacher", "generator", "edge_base", "end", "edge_generator", "reference")

#: Multi-style pools (teacher, reference) train for this share of ``pretrain_epochs`` x (clean pool size /
#: pool size) epochs, i.e. ``STYLE_EPOCH_SHARE`` x the optimiser steps of a clean-only model per style.
STYLE_EPOCH_SHARE: float = 2.0
Weights = dict[str, list[torch.Tensor]]
_MEMORY: dict[str, Weights] = {}


def _package_version() -> str:
    try:
        from gaisnet_env import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - partial package
        return "unknown"


def cache_key(config: WorkerConfig, seed: int) -> str:
    """Hex key of the pre-trained weights for ``config``'s pre-training fields and ``seed``."""
    payload = {
        "fields": {name: getattr(config, name) for name in PRETRAIN_FIELDS},
        "seed": int(seed),
        "package": _package_version(),
        "format": FORMAT_VERSION,
    }
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def default_cache_dir() -> Path:
    """``$GAISNET_CACHE_DIR`` if set, else ``~/.cache/gaisnet_env``."""
    env = os.environ.get("GAISNET_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "gaisnet_env"


# --------------------------------------------------------------------------- architectures
def build_models(config: WorkerConfig) -> dict[str, torch.nn.Module]:
    """Untrained (zero) modules of every pre-trained model, keyed by :data:`MODEL_NAMES`."""
    return {
        "teacher": MLPClassifier([INPUT_DIM, config.teacher_hidden, config.teacher_hidden, N_CLASSES]),
        "generator": CVAE(config.generator_latent, config.generator_hidden),
        "edge_base": MLPClassifier([INPUT_DIM, config.edge_hidden, N_CLASSES]),
        "end": MLPClassifier([INPUT_DIM, config.end_hidden, N_CLASSES]),
        "edge_generator": CVAE(config.generator_latent, config.edge_generator_hidden),
        "reference": MLPClassifier([INPUT_DIM, config.reference_hidden, N_CLASSES * len(STYLES)]),
    }


# --------------------------------------------------------------------------- pre-training
def _fit(
    params: list[torch.nn.Parameter],
    n: int,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    epochs: int,
    lr: float,
    batch: int,
    gen: torch.Generator,
) -> None:
    """Adam on mini-batches of a random permutation per epoch; ``loss_fn(batch_indices)``."""
    opt = torch.optim.Adam(params, lr=lr, fused=True)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            loss = loss_fn(perm[i : i + batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def pretrain(config: WorkerConfig, seed: int) -> Weights:
    """Pre-train every model on the clean public pool of ``DigitsData(seed=seed)`` (deterministic).

    Runs on one intra-op thread (restored afterwards): these small models gain nothing from more,
    and a fixed thread count makes the weights independent of the caller's ``torch.set_num_threads``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _pretrain(config, seed)
    finally:
        torch.set_num_threads(threads)


def _pretrain_pool(name: str, config: WorkerConfig, data: DigitsData,
                   gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pre-training samples (x (n, 64), y (n,), style (n,)) of model ``name``, all from the public pool:

    * ``teacher`` and the cloud ``generator``: every sample in every public style (the broad
      "foundation" pool);
    * ``reference``: every sample in every style, personal ones included (the judge, a measuring
      instrument of generation quality, not a tier: it must know every domain it judges); its label is
      the joint (style, class) index ``style * 10 + class``;
    * ``edge_base``, ``end`` and the ``edge_generator``'s base: a class-stratified ``edge_base_share`` of
      the samples, clean only (the edges start from models that have seen less).
    """
    idx = data.public_idx
    if name in ("edge_base", "end", "edge_generator"):
        keep = []
        for c in range(N_CLASSES):
            idx_c = idx[data.y[idx] == c]
            keep.append(idx_c[torch.randperm(idx_c.size, generator=gen).numpy()[
                : max(1, int(round(config.edge_base_share * idx_c.size)))]])
        idx = np.sort(np.concatenate(keep))
    if name in ("teacher", "generator"):
        styles = [STYLES.index(s) for s in PUBLIC_STYLES]
    elif name == "reference":
        styles = list(range(len(STYLES)))
    else:
        styles = [0]
    x = torch.from_numpy(np.concatenate([data.x_styled[s][idx] for s in styles]))
    y = torch.from_numpy(np.tile(data.y[idx], len(styles)))
    style = torch.from_numpy(np.repeat(np.array(styles, dtype=np.int64), idx.size))
    if name == "reference":
        y = style * N_CLASSES + y
    return x, y, style


def _pretrain(config: WorkerConfig, seed: int) -> Weights:
    data = DigitsData(1, seed)
    models = build_models(config)
    out: Weights = {}
    for k, name in enumerate(MODEL_NAMES):
        gen = torch.Generator().manual_seed(int(seed) * 1000 + k)
        x, y, style = _pretrain_pool(name, config, data, gen)
        n = x.shape[0]
        # pools of several styles repeat each sample per style: epochs over the whole pool, at least 1
        epochs = max(1, int(round(config.pretrain_epochs * STYLE_EPOCH_SHARE * len(data.public_idx) / n))) \
            if n > len(data.public_idx) else config.pretrain_epochs
        model = models[name]
        model.reset_parameters(gen)  # type: ignore[operator]
        model.train()
        if isinstance(model, CVAE):
            train_vae(model, list(model.parameters()), x, y, style, epochs=epochs, lr=config.pretrain_lr,
                      batch=config.pretrain_batch_size, gen=gen)
        else:
            clf = model

            def clf_loss(b: torch.Tensor, clf: torch.nn.Module = clf, x: torch.Tensor = x,
                         y: torch.Tensor = y) -> torch.Tensor:
                return F.cross_entropy(clf(x[b]), y[b])

            _fit(list(model.parameters()), n, clf_loss, epochs, config.pretrain_lr,
                 config.pretrain_batch_size, gen)
        model.eval()
        out[name] = [p.detach().clone() for p in model.parameters()]
    return out


# --------------------------------------------------------------------------- validation / IO
def _validate(weights: object, config: WorkerConfig) -> Weights:
    """Check names, shapes, dtype and finiteness against ``config``'s architectures; raise ValueError."""
    if not isinstance(weights, dict):
        raise ValueError("cache file does not hold a dict")
    models = build_models(config)
    out: Weights = {}
    for name in MODEL_NAMES:
        ws = weights.get(name)
        params = list(models[name].parameters())
        if not isinstance(ws, list) or len(ws) != len(params):
            raise ValueError(f"cache file lacks model {name!r}")
        for w, p in zip(ws, params, strict=True):
            if not isinstance(w, torch.Tensor) or w.shape != p.shape or w.dtype != p.dtype:
                raise ValueError(f"cache file has a bad tensor for {name!r}")
            if not bool(torch.isfinite(w).all()):
                raise ValueError(f"cache file has non-finite weights for {name!r}")
        out[name] = ws
    return out


def _digest(weights: Weights) -> str:
    """SHA-256 over every tensor's bytes, in :data:`MODEL_NAMES` order (the file's checksum)."""
    h = hashlib.sha256()
    for name in MODEL_NAMES:
        for t in weights.get(name, []):
            h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def _read(path: Path, key: str, config: WorkerConfig) -> Weights:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("key") != key:
        raise ValueError("cache file key mismatch")
    weights = _validate(blob.get("weights"), config)
    if blob.get("sha256") != _digest(weights):
        raise ValueError("cache file checksum mismatch (the weights were altered on disk)")
    return weights


def _write_atomic(path: Path, key: str, weights: Weights) -> None:
    """Write to a temporary file, readable by all (0644: a shared cache directory serves every user),
    then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            torch.save({"key": key, "weights": weights, "sha256": _digest(weights)}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_WARNED: set[tuple[str, str]] = set()


def _warn_once(directory: Path, what: str, message: str) -> None:
    """A RuntimeWarning, once per process for each (directory, kind of problem)."""
    if (str(directory), what) not in _WARNED:
        _WARNED.add((str(directory), what))
        warnings.warn(f"gaisnet_env: {message}", RuntimeWarning, stacklevel=4)


def _try_read(path: Path, key: str, config: WorkerConfig) -> Weights | None:
    """The cached weights, or None if the file is missing or bad (bad: warned, to be rebuilt)."""
    if not path.is_file():
        return None
    try:
        return _read(path, key, config)
    except Exception as exc:  # truncated, corrupt, altered, foreign, unreadable
        warnings.warn(f"gaisnet_env: pre-trained weight cache {path} is unreadable ({exc!r}); rebuilding it",
                      RuntimeWarning, stacklevel=4)
        return None


def _load_or_build_on_disk(directory: Path, key: str, config: WorkerConfig, seed: int) -> Weights:
    """Read the cached file (no lock needed: files appear whole), or pre-train once under the lock and
    write it. Any failure to lock or write keeps the weights in memory only, with one warning."""
    path = directory / f"pretrained-{key}.pt"
    if path.is_dir():
        _warn_once(directory, "isdir", f"cache file {path} is a directory; keeping weights in memory only")
        return pretrain(config, seed)
    weights = _try_read(path, key, config)
    if weights is not None:
        return weights
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / f"pretrained-{key}.lock", "a+b")  # noqa: SIM115 - closed below
    except OSError as exc:
        _warn_once(directory, "lock", f"cache directory {directory} is not writable ({exc!r}); "
                   "keeping weights in memory only")
        return pretrain(config, seed)
    with lock:
        if fcntl is not None:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            weights = _try_read(path, key, config) if path.exists() else None  # built meanwhile?
            if weights is None:
                weights = pretrain(config, seed)
                try:
                    _write_atomic(path, key, weights)
                except Exception as exc:  # disk full (torch.save raises RuntimeError), quota, permissions
                    _warn_once(directory, "write", f"could not write the weight cache {path} ({exc!r}); "
                               "keeping weights in memory only")
            return weights
        finally:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def pretrained_weights(
    config: WorkerConfig, seed: int, cache_dir: str | os.PathLike[str] | None = None
) -> Weights:
    """Pre-trained weights for ``config`` and ``seed``: from memory, else disk, else pre-trained now.

    The returned tensors are shared with the in-memory cache: treat them as read-only.
    """
    key = cache_key(config, seed)
    if key not in _MEMORY:
        directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        _MEMORY[key] = _load_or_build_on_disk(directory, key, config, seed)
    return _MEMORY[key]


def clear_memory_cache() -> None:
    """Forget the in-process copies (tests use this to exercise the disk path)."""
    _MEMORY.clear()
    _WARNED.clear()
