"""GaisNetEnv's own keyword arguments: their names (for the error on an unknown one) and their checks."""

from __future__ import annotations

import numpy as np

#: What ``render_mode`` may be (besides None); GaisNetEnv.metadata lists the same.
RENDER_MODES: tuple[str, ...] = ("ansi", "rgb_array")
#: What ``accuracy_view`` may be.
ACCURACY_VIEWS: tuple[str, ...] = ("estimated", "exact")


def check_arguments(render_mode: str | None, masked_action: str, accuracy_view: str,
                     torch_threads: int | None) -> None:
    """ValueError naming the first of GaisNetEnv's own arguments that is not allowed."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode: got {render_mode!r}; allowed: None, 'ansi', 'rgb_array'")
    if masked_action not in ("fallback", "raise"):
        raise ValueError(f"masked_action: got {masked_action!r}; allowed: 'fallback', 'raise'")
    if accuracy_view not in ACCURACY_VIEWS:
        raise ValueError(f"accuracy_view: got {accuracy_view!r}; allowed: 'estimated', 'exact'")
    if torch_threads is not None and (
        isinstance(torch_threads, bool) or not isinstance(torch_threads, (int, np.integer)) or torch_threads < 1
    ):
        raise ValueError(f"torch_threads: got {torch_threads!r}; allowed: None or an integer >= 1")


#: GaisNetEnv's own keyword arguments (named in the error for an unknown one).
ENV_ARGUMENTS: tuple[str, ...] = (
    "scenario", "render_mode", "cache_dir", "masked_action", "accuracy_view", "torch_threads", "worker_system",
)
