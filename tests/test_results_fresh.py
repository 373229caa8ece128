"""Committed results must describe today's code: cheap rows of the committed main-job result are
re-run here and must match to the last digit (the env is deterministic). When this fails, the env's
behaviour changed: regenerate with ``python benchmarks/regenerate.py --cheap`` and commit."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gaisnet_env import cli

EPISODES = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "metro_main_episodes.csv"


def _committed(policy: str, seed: int) -> dict[str, str]:
    with EPISODES.open() as f:
        for row in csv.DictReader(f):
            if row["policy"] == policy and int(row["seed"]) == seed and int(row["episode"]) == 0:
                return row
    raise AssertionError(f"{EPISODES.name} has no row for {policy} seed {seed}")


@pytest.mark.parametrize("policy", ["always-end", "cost-aware"])
def test_main_job_heuristic_rows_match_the_code(policy: str) -> None:
    seed = 10_000
    want = _committed(policy, seed)
    got = cli._eval_job(policy, "metro", seed, 0, None)
    for key in ("reward", "accuracy", "energy_j", "bytes_moved", "ops_started"):
        assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-12, abs=1e-12), (
            f"{EPISODES.name}: {policy} seed {seed} {key} is {want[key]} in the committed file but "
            f"{got[key]} now; regenerate: python benchmarks/regenerate.py --cheap"
        )
