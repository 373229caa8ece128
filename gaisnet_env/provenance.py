"""Where a result came from: the checkout's commit and the command line, for result files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]


def git_commit(root: str | Path = _ROOT) -> str:
    """The checkout's short commit (``+dirty`` when tracked files differ from it), or "unknown" outside
    a git checkout (an installed wheel)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def command_line() -> str:
    """This process's command as a user would type it: ``python <script> <args>``."""
    script = sys.argv[0] if sys.argv else ""
    name = Path(script).name if script.endswith(".py") else (Path(script).name or "python")
    try:
        name = str(Path(script).resolve().relative_to(Path.cwd())) if script.endswith(".py") else name
    except ValueError:
        pass
    prefix = "python " if script.endswith(".py") else ""
    return prefix + " ".join([name, *sys.argv[1:]])


def cpu_kernels() -> str:
    """The vector kernels torch picked on this machine (``torch.backends.cpu.get_cpu_capability()``: "AVX2",
    "AVX512", ...). The workers' training rounds differently under different kernels, so trained weights,
    and the episodes that follow from them, are bit for bit the same only among machines with the same
    kernels (and the same torch); result files name them, and the tests that compare against recorded
    episodes pick the record made with this machine's kernels."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def provenance_line() -> str:
    """``Commit <sha>; command: `<command>`; CPU kernels: <kernels>``: the line result files start with."""
    return f"Commit {git_commit()}; command: `{command_line()}`; CPU kernels: {cpu_kernels()}"
