"""Where the workers' training kernels run: the ``workers.device`` setting.

Values: ``"cpu"`` (the default), ``"cuda"`` / ``"cuda:N"`` (an NVIDIA GPU; an error where none is
present), or ``"auto"`` (the first GPU when one is present, else the CPU).

What moves: the training of the classifiers (one by one and stacked) and of the generators. Everything
else stays on the CPU: the workers' state (weights, data pools, random generators), the accuracy, label
and quality tables and the small inference of the ops. A training call copies its model and data to the
device, draws its mini-batches and noise from the CPU generator exactly as on the CPU (so the same
samples are drawn in the same order) and copies the trained weights back. On the CPU nothing is copied:
``"cpu"`` is the serial path itself, bit for bit. On a GPU the kernels round differently (weights agree to
float tolerance, not bit for bit, with the CPU's), and each call pays its copies: with these small models a
GPU pays off for the batched engine's stacks (``workers.batched_ops``) more than for one op at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from torch import nn

#: The accepted spellings of ``workers.device`` (``cuda:N`` with N an installed GPU's index).
DEVICE_CHOICES: tuple[str, ...] = ("cpu", "auto", "cuda", "cuda:N")
CPU = torch.device("cpu")
_CUDA_INDEX = re.compile(r"cuda:(\d+)")

T = TypeVar("T", torch.Tensor, None)


def resolve_device(value: object, name: str = "workers.device") -> torch.device:
    """The torch device of a ``workers.device`` value, or ValueError naming ``name``, the value and what is
    allowed (a CUDA device where no GPU is present, or an index beyond the installed ones, is refused)."""
    allowed = ", ".join(DEVICE_CHOICES)
    if not isinstance(value, str):
        raise ValueError(f"{name}: got {value!r}; allowed values: {allowed}")
    if value == "cpu":
        return CPU
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if value == "auto":
        return torch.device("cuda", 0) if n_gpus else CPU
    match = _CUDA_INDEX.fullmatch(value)
    if value != "cuda" and match is None:
        raise ValueError(f"{name}: got {value!r}; allowed values: {allowed}")
    index = int(match.group(1)) if match else 0
    if index >= n_gpus:
        have = f"{n_gpus} CUDA device(s)" if n_gpus else "no CUDA device (torch " + torch.__version__ + ")"
        raise ValueError(f"{name}: got {value!r}, but this machine has {have}; allowed values: {allowed} "
                         "('auto' falls back to the CPU)")
    return torch.device("cuda", index)


@contextmanager
def run_on(device: torch.device, *modules: nn.Module) -> Iterator[Callable[[T], T]]:
    """Context in which ``modules`` live on ``device``; yields ``to(tensor)``, which copies a tensor (or
    None) there. On leaving, the modules return to the CPU (also on an error). On the CPU: no copies, and
    ``to`` returns its argument itself."""
    if device.type == "cpu":
        yield _same
        return
    for m in modules:
        m.to(device)
    try:
        yield lambda t: None if t is None else t.to(device)
    finally:
        for m in modules:
            m.to(CPU)


def _same(t: T) -> T:
    return t


def to_cpu(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """``tensors`` on the CPU (the same objects where they already are)."""
    return [t if t.device.type == "cpu" else t.cpu() for t in tensors]


__all__ = ["CPU", "DEVICE_CHOICES", "resolve_device", "run_on", "to_cpu"]
