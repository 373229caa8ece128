"""rl-zoo3 with sb3-contrib's MaskablePPO as ``--algo ppo_mask`` (stock rl-zoo3 has no ppo_mask).

rl-zoo3's ``train`` takes its ``--algo`` choices from ``rl_zoo3.utils.ALGOS``; this launcher adds
``ppo_mask`` (MaskablePPO, which reads ``env.action_masks()``) and then runs rl-zoo3's own ``train``
with the same command-line arguments (needs ``pip install rl-zoo3``)::

    python -m gaisnet_env.zoo --algo ppo_mask --env gaisnet_env/GaisNet-metro-v0 \\
        --gym-packages gaisnet_env -f logs/ --conf-file agents/hyperparams/ppo_mask.yml

rl-zoo3's periodic evaluation (``EvalCallback``) predicts without masks; infeasible choices then
fall back to feasible ones in the env (``info["actions_masked"]``). The project's own trainer
(``python train.py train --algo ppo_mask``) reads the same file and evaluates with masks.
"""

from __future__ import annotations

import sys


def register_ppo_mask() -> None:
    """Add ``ppo_mask`` (sb3-contrib's MaskablePPO) to rl-zoo3's algorithm table (idempotent)."""
    try:
        from rl_zoo3.utils import ALGOS
    except ImportError as e:
        raise ImportError(f"gaisnet_env.zoo needs rl-zoo3 (pip install rl-zoo3): {e}") from e
    from sb3_contrib import MaskablePPO

    ALGOS.setdefault("ppo_mask", MaskablePPO)


def main(argv: list[str] | None = None) -> None:
    """Run ``rl_zoo3.train`` with ``ppo_mask`` available; ``argv`` defaults to the command line."""
    register_ppo_mask()
    from rl_zoo3.train import train

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    train()


if __name__ == "__main__":
    main()
