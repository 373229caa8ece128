"""Action masks in the two layouts RL clients use.

* **Gymnasium's** (``info["action_mask"]``): for a ``MultiDiscrete`` space, a tuple with one
  ``int8`` array per sub-space (1 = feasible), so ``env.action_space.sample(mask=info["action_mask"])``
  works; for a ``Discrete`` space, one ``int8`` array. GaisNetEnv's tuple has ``2E`` entries: per
  edge a route mask (3) then an operation mask (5).
* **sb3-contrib's** (``env.action_masks()``, what MaskablePPO reads): one flat ``bool`` array, the
  sub-space masks concatenated (per edge 3 route then 5 operation entries).

:func:`gym_mask` and :func:`flat_mask` convert between them; :func:`flat_mask` also stacks a
vector env's batch of Gymnasium masks (``gym.make_vec``'s ``info["action_mask"]``, an object
array of tuples) into an ``(N, 8E)`` bool array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def gym_mask(flat: np.ndarray, nvec: Sequence[int] | np.ndarray) -> tuple[np.ndarray, ...]:
    """Flat bool mask -> Gymnasium's MultiDiscrete mask: a tuple of read-only int8 arrays, one per ``nvec`` entry."""
    sizes = np.asarray(nvec, dtype=np.int64).ravel()
    m = np.asarray(flat).ravel()
    if m.size != int(sizes.sum()):
        raise ValueError(f"gym_mask: flat mask has {m.size} entries; nvec {sizes.tolist()} needs {int(sizes.sum())}")
    m8 = m.astype(np.int8)  # a fresh array: the views below share it, and nobody else does
    m8.setflags(write=False)
    ends = np.cumsum(sizes).tolist()
    return tuple(m8[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True))


def flat_mask(mask: Any) -> np.ndarray:
    """Any mask layout -> flat bool: a tuple (one env) gives ``(sum(nvec),)``, a vector env's batch ``(N, ...)``.

    Accepts Gymnasium's tuple, a flat array (returned as bool), or a batch of either (a 2-D array, or
    the object array of tuples that Gymnasium's vector envs make of ``info["action_mask"]``).
    """
    if isinstance(mask, tuple):
        return np.concatenate([np.asarray(m) for m in mask]).astype(bool)
    arr = np.asarray(mask)
    if arr.dtype == object:  # a vector env's batch: one entry per env
        return np.stack([flat_mask(m) for m in arr])
    return arr.astype(bool)


def discrete_mask(flat: np.ndarray) -> np.ndarray:
    """Flat bool mask of a ``Discrete`` space -> Gymnasium's ``Discrete`` mask (int8, 1 = feasible)."""
    return np.asarray(flat, dtype=bool).astype(np.int8)


def info_arrays(info: dict[str, Any]) -> dict[str, np.ndarray]:
    """Every ``info`` value as a numpy array, ``action_mask`` made flat (for code that hashes or checks them all).

    ``np.asarray`` of Gymnasium's mask tuple fails (its arrays differ in length), hence this helper.
    """
    return {k: flat_mask(v) if k == "action_mask" else np.asarray(v) for k, v in info.items()}
