"""Committed results must describe today's code: cheap rows of the committed main-job result are
re-run here and must match to the last digit (the env is deterministic). When this fails, the env's
behaviour changed: regenerate with ``python benchmarks/regenerate.py --cheap`` and commit.

The episodes are bit for bit the same only among machines with the same torch CPU kernels
(:func:`gaisnet_env.provenance.cpu_kernels`); the committed file's provenance line names the kernels it was
made with (files from before 2026-12-07 name none: those were made with AVX512 kernels), and a machine with
other kernels skips the comparison."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from gaisnet_env import cli
from gaisnet_env.provenance import cpu_kernels

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
EPISODES = RESULTS / "metro_main_episodes.csv"


def committed_kernels(md: Path = RESULTS / "metro_main.md") -> str:
    """The CPU kernels named on the provenance line of a committed result (AVX512 where none is named)."""
    match = re.search(r"; CPU kernels: (\S+)", md.read_text())
    return match.group(1) if match else "AVX512"


def _committed(policy: str, seed: int) -> dict[str, str]:
    with EPISODES.open() as f:
        for row in csv.DictReader(f):
            if row["policy"] == policy and int(row["seed"]) == seed and int(row["episode"]) == 0:
                return row
    raise AssertionError(f"{EPISODES.name} has no row for {policy} seed {seed}")


@pytest.mark.parametrize("policy", ["always-end", "cost-aware"])
def test_main_job_heuristic_rows_match_the_code(policy: str) -> None:
    if committed_kernels() != cpu_kernels():
        pytest.skip(f"metro_main was made with CPU kernels {committed_kernels()}, this machine has {cpu_kernels()}")
    seed = 10_000
    want = _committed(policy, seed)
    got = cli._eval_job(policy, "metro", seed, 0, None)
    for key in ("reward", "accuracy", "energy_j", "bytes_moved", "ops_started"):
        assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-12, abs=1e-12), (
            f"{EPISODES.name}: {policy} seed {seed} {key} is {want[key]} in the committed file but "
            f"{got[key]} now; regenerate: python benchmarks/regenerate.py --cheap"
        )


def test_provenance_line_names_the_cpu_kernels() -> None:
    from gaisnet_env.provenance import provenance_line

    line = provenance_line()
    assert line.startswith("Commit ") and line.endswith(f"; CPU kernels: {cpu_kernels()}")
    assert committed_kernels(RESULTS / "metro_main.md") in ("AVX512", "AVX2", "DEFAULT", "AVX512_VNNI", "ZVECTOR")
