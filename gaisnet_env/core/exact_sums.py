"""Contractions that give the same bits on every machine.

``numpy.matmul`` (``@``) hands float products to the BLAS library, whose kernel depends on the processor
and on the environment (OpenBLAS picks SkylakeX, Haswell... kernels, or the one ``OPENBLAS_CORETYPE``
names), and the kernels sum in different orders: the same episode came out different in the last bits on
two machines. The env's small contractions (domain averages of accuracy tables, bytes per link, the fast
path's response networks) use these instead: elementwise products, then numpy's own reductions, whose
order is fixed by the array shapes alone.
"""

from __future__ import annotations

import numpy as np


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for ``a`` (..., m, k) and ``b`` (k, n) (or (..., k, n)), summed over k in index order."""
    return (np.asarray(a)[..., :, :, None] * np.asarray(b)[..., None, :, :]).sum(axis=-2)


def domain_mean(tables: np.ndarray, style_mix: np.ndarray, class_mix: np.ndarray) -> np.ndarray:
    """``sum_s style_mix[..., s] * sum_c tables[..., s, c] * class_mix[..., c]``: the mean of per
    (style, class) tables (..., S, C) over domains given as style (..., S) and class (..., C) shares."""
    per_style = (tables * np.asarray(class_mix)[..., None, :]).sum(axis=-1)
    return (per_style * np.asarray(style_mix)).sum(axis=-1)


__all__ = ["domain_mean", "matmul"]
