"""Checks on what :meth:`GaisNetEnv.restore` is given: a snapshot of this env's scenario, whole.

A snapshot carries the scenario it was taken on (``fingerprint``: the scenario as a dict, faults left
out since the fault wrappers change them at run time and keep their own); ``check`` names the first
thing that does not match, so that a snapshot of another scenario or a damaged one fails at
``restore`` with a clear message instead of a broadcast error steps later.
"""

from __future__ import annotations

from typing import Any

from gaisnet_env.scenario import Scenario

#: The keys of :meth:`GaisNetEnv.snapshot`'s dict.
SNAPSHOT_KEYS: tuple[str, ...] = ("state", "rng", "workload", "workers", "version_base", "domain", "last_info")


def fingerprint(sc: Scenario) -> dict[str, Any]:
    """The scenario as a plain dict, without ``faults``."""
    out = sc.to_dict()
    out.pop("faults", None)
    return out


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted paths at which two nested dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if a == b else [path]


def check(snap: Any, scenario: Scenario, state_type: type) -> None:
    """Raise ValueError (TypeError for a non-dict) naming what makes ``snap`` unfit for an env of
    ``scenario``: missing keys, another scenario (the differing fields), a wrong state type."""
    if not isinstance(snap, dict):
        raise TypeError(f"restore: snap must be a dict from snapshot(), got {type(snap).__name__}")
    missing = [k for k in SNAPSHOT_KEYS if k not in snap]
    if missing:
        raise ValueError(
            f"restore: snap is not a snapshot() of this env: missing keys {missing}; "
            f"a snapshot has {list(SNAPSHOT_KEYS)}"
        )
    if not isinstance(snap["state"], state_type):
        raise ValueError(f"restore: snap['state'] must be a {state_type.__name__}, got {type(snap['state']).__name__}")
    theirs = snap.get("scenario")
    if theirs is not None:
        diff = sorted(_differences(theirs, fingerprint(scenario)), key=lambda d: (not d.startswith("topology"), d))
        if diff:
            shown = ", ".join(diff[:5]) + (f" and {len(diff) - 5} more" if len(diff) > 5 else "")
            raise ValueError(
                f"restore: the snapshot was taken on scenario {theirs.get('name')!r}, which differs from this "
                f"env's {scenario.name!r} in: {shown}; restore it into an env of the same scenario"
            )
    n = scenario.topology.n_edges
    shape = getattr(snap["state"].edge_backlog_s, "shape", None)
    if shape != (n,):
        raise ValueError(f"restore: the snapshot's state has {shape} edge queues; this env has {n} edges")
