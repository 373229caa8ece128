"""Vector-env plumbing shared by the native vector envs (:mod:`gaisnet_env.vector_env`, :mod:`gaisnet_env.sb3_vec`):
per-copy seeds and Gymnasium's vector ``info`` format (values stacked over the copies, ``_key`` masks).

:func:`stack_infos` gives what Gymnasium's ``VectorEnv._add_info`` gives, copy by copy (the layout of
``SyncVectorEnv``): a key's array has the dtype of the first copy that has it (Python ``int`` ->
int64, ``float`` -> float64, arrays their own dtype and shape, anything else an object array), and
``info["_key"]`` is a bool ``(N,)`` mask of the copies that have the key; nested dicts recurse. When
every copy has the same keys (every step but an autoreset one) it builds each array in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def copy_seeds(seed: Any, num_envs: int) -> list[int | None]:
    """Per-copy seeds of ``reset(seed=...)``: None -> all None; an int ``s`` -> ``s + i`` for copy ``i``
    (as ``SyncVectorEnv``); a list or tuple of ``num_envs`` ints or Nones -> itself. ValueError otherwise."""
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        return [int(seed) + i for i in range(num_envs)]
    if isinstance(seed, (list, tuple, np.ndarray)):
        seeds = list(seed)
        if len(seeds) != num_envs:
            raise ValueError(f"seed: got {len(seeds)} seeds; num_envs is {num_envs} (one seed or None per copy)")
        for s in seeds:
            if s is not None and (isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer))):
                raise ValueError(f"seed: got {s!r} in the list; allowed: an integer or None per copy")
        return [None if s is None else int(s) for s in seeds]
    raise ValueError(f"seed: got {seed!r}; allowed: None, an integer or a list of {num_envs} integers / None")


def reset_mask(options: dict[str, Any] | None, num_envs: int) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """``(mask (N,) bool or None, the other options)`` of ``reset(options=...)``: ``options["reset_mask"]``
    (Gymnasium's partial reset) must be a bool ndarray of shape ``(num_envs,)`` with a True."""
    if not options or "reset_mask" not in options:
        return None, options
    rest = {k: v for k, v in options.items() if k != "reset_mask"}
    mask = options["reset_mask"]
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (num_envs,):
        got = f"{type(mask).__name__} {getattr(mask, 'dtype', '')} {getattr(mask, 'shape', '')}".strip()
        raise ValueError(f"options['reset_mask']: got {got}; allowed: a bool numpy array of shape ({num_envs},)")
    if not mask.any():
        raise ValueError("options['reset_mask']: no copy selected; allowed: a bool array with at least one True")
    return mask, rest


def add_info(vector_infos: dict[str, Any], env_info: dict[str, Any], i: int, num_envs: int) -> dict[str, Any]:
    """Add copy ``i``'s ``env_info`` to ``vector_infos`` (``VectorEnv._add_info``'s rules; returns it)."""
    for key, value in env_info.items():
        if key == "final_obs":
            array = vector_infos.get(key)
            if array is None:
                array = np.full(num_envs, None, dtype=object)
            array[i] = value
        elif isinstance(value, dict):
            array = add_info(vector_infos.get(key, {}), value, i, num_envs)
        else:
            array = vector_infos.get(key)
            if array is None:
                array = _empty(value, num_envs)
            array[i] = value
        m = vector_infos.get(f"_{key}")
        if m is None:
            m = np.zeros(num_envs, dtype=np.bool_)
        m[i] = True
        vector_infos[key], vector_infos[f"_{key}"] = array, m
    return vector_infos


def _empty(value: Any, num_envs: int) -> np.ndarray:
    """The batch array ``VectorEnv._add_info`` makes for a key whose first value is ``value``."""
    if type(value) in (int, float, bool) or issubclass(type(value), np.number):
        return np.zeros(num_envs, dtype=type(value))
    if isinstance(value, np.ndarray):
        return np.zeros((num_envs, *value.shape), dtype=value.dtype)
    return np.full(num_envs, None, dtype=object)


def stack_infos(infos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Gymnasium's vector info of the copies' ``infos`` (one dict per copy, in order)."""
    n = len(infos)
    keys = list(infos[0])
    if all(list(d) == keys for d in infos[1:]):
        out = _stack_uniform(infos, keys)
        if out is not None:
            return out
    out = {}
    for i, d in enumerate(infos):  # copy by copy, as _add_info
        add_info(out, d, i, n)
    return out


def _stack_uniform(infos: Sequence[dict[str, Any]], keys: list[str]) -> dict[str, Any] | None:
    """:func:`stack_infos` when every copy has the same keys: the scalars of one type converted in one call
    (rows of one block), arrays stacked; None when a key does not stack uniformly."""
    n, first = len(infos), infos[0]
    groups: dict[type, list[str]] = {}  # scalar keys by the first copy's type (-> the array's dtype)
    arrays: dict[str, Any] = {}
    for key in keys:
        tp = type(first[key])
        if key != "final_obs" and (tp in (int, float, bool) or issubclass(tp, np.number)):
            groups.setdefault(tp, []).append(key)
        else:
            arr = _stacked(key, [d[key] for d in infos])
            if arr is None:
                return None
            arrays[key] = arr
    for tp, names in groups.items():
        try:  # casts as _add_info's assignments into an array of the first value's type do
            block = np.array([[d[k] for d in infos] for k in names], dtype=tp)
        except (TypeError, ValueError, OverflowError):
            return None
        if block.shape != (len(names), n):
            return None
        arrays.update(zip(names, block, strict=True))
    out: dict[str, Any] = {}
    for key, mask in zip(keys, np.ones((len(keys), n), dtype=np.bool_), strict=True):
        out[key], out[f"_{key}"] = arrays[key], mask
    return out


def _stacked(key: str, vals: list[Any]) -> Any:
    """One non-scalar key's values of every copy in one array (None when they do not stack uniformly)."""
    first = vals[0]
    if isinstance(first, np.ndarray) and key != "final_obs":
        if all(isinstance(v, np.ndarray) and v.shape == first.shape and v.dtype == first.dtype for v in vals):
            return np.stack(vals)
        return None
    if isinstance(first, dict) and key != "final_obs":
        return stack_infos(vals) if all(isinstance(v, dict) for v in vals) else None
    arr = np.full(len(vals), None, dtype=object)
    for i, v in enumerate(vals):
        arr[i] = v
    return arr
