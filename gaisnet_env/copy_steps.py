"""One step of several env copies, their knowledge operations trained as one batch.

The native vector env (:mod:`gaisnet_env.vector_env`) and its SB3 ``VecEnv`` (:mod:`gaisnet_env.sb3_vec`)
step their copies through :func:`step_copies`. Where every copy runs the stock workers with
``workers.batched_ops: true`` (the batched training engine, :mod:`gaisnet_env.op_batching`), each copy's
step runs up to the start of its ops, which record their training jobs with the copy's own generator state
(:meth:`GaisNetEnv.step_phases <gaisnet_env.env.GaisNetEnv.step_phases>`); the jobs of all copies are then
trained as one batch per kind (:func:`~gaisnet_env.op_batching.train_jobs_together`), and each copy
finishes its step. Each job still draws exactly the serial draws, so a copy's weights equal the single
env's to float rounding (the batched products' order: about 1e-7, which a chaotic job's training can grow
to 1e-3, measured in ``tests/test_copy_steps.py``), not bit for bit, and a copy's episode can depend on
which ops the other copies started in the same epoch. Episodes stay deterministic:
the same seeds and actions for all copies give the same episodes. Otherwise (the default serial workers,
custom workers, one copy) the copies step one after another and copy ``i`` equals the single env bit for
bit.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from gaisnet_env.op_batching import train_jobs_together
from gaisnet_env.workers import WorkerSystem


def batches_across_copies(envs: Sequence[Any]) -> bool:
    """Whether the copies' ops train as one batch: more than one copy, and every copy with stock workers
    (a :class:`~gaisnet_env.workers.WorkerSystem` whose op start is not overridden) and ``batched_ops``."""
    if len(envs) < 2:
        return False
    for env in envs:
        w = env.workers
        if not (isinstance(w, WorkerSystem) and w.config.batched_ops):
            return False
        if type(w).start_ops_phased is not WorkerSystem.start_ops_phased or "start_ops_phased" in vars(w):
            return False
    return True


def step_copies(envs: Sequence[Any], actions: np.ndarray, which: Sequence[int]) -> dict[int, tuple]:
    """Step the copies ``which`` of ``envs`` with their rows of ``actions``: ``{i: (obs, reward, terminated,
    truncated, info)}``. A ValueError of a copy (a masked action with ``masked_action="raise"``) names it;
    the copies before it finish their step first, those after it do not step (as one by one)."""
    if not which:
        return {}
    if not batches_across_copies(envs):
        return {i: _step_copy(envs[i], actions[i], i) for i in which}
    phases: dict[int, tuple[Generator, list[Any]]] = {}
    done: dict[int, tuple] = {}
    error: BaseException | None = None
    for i in which:
        phase = envs[i].step_phases(actions[i], defer_ops=True)
        try:
            phases[i] = (phase, next(phase))
        except StopIteration as stop:
            done[i] = stop.value
        except ValueError as e:
            error = ValueError(f"actions[{i}] (copy {i}): {e}")
            break
        except BaseException as e:  # finish the copies already half-way through their step, then raise
            error = e
            break
    while phases:  # in practice one round: a step yields its jobs once
        ok = train_jobs_together([(envs[i].workers, jobs) for i, (_, jobs) in phases.items()])
        nxt = {}
        for (i, (phase, _)), trained in zip(phases.items(), ok, strict=True):
            try:
                nxt[i] = (phase, phase.send(trained))
            except StopIteration as stop:
                done[i] = stop.value
            except BaseException as e:  # the others still finish their step
                error = e if error is None else error
        phases = nxt
    if error is not None:
        raise error
    return done


def _step_copy(env: Any, action: np.ndarray, i: int) -> tuple:
    """One copy's step; a ValueError (a masked action with ``masked_action="raise"``) names the copy."""
    try:
        return env.step(action)
    except ValueError as e:
        raise ValueError(f"actions[{i}] (copy {i}): {e}") from None
