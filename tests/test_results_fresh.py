"""Committed results must describe today's code: cheap rows of the committed main-job result are
re-run here and must match to the last digit (the env is deterministic). When this fails, the env's
behaviour changed: regenerate with ``python benchmarks/regenerate.py --cheap`` and commit.

The episodes are bit for bit the same only among machines with the same torch CPU kernels
(:func:`gaisnet_env.provenance.cpu_kernels`); the committed file's provenance line names the kernels it was
made with (files from before 2026-12-07 name none: those were made with AVX512 kernels). The main job's record
is ``benchmarks/results/metro_main*`` (AVX512) and, for machines with AVX2 kernels,
``benchmarks/results/avx2/metro_main*``; a machine whose kernels have no record skips the comparison."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from gaisnet_env import cli
from gaisnet_env.provenance import cpu_kernels

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def committed_kernels(md: Path = RESULTS / "metro_main.md") -> str:
    """The CPU kernels named on the provenance line of a committed result (AVX512 where none is named)."""
    match = re.search(r"; CPU kernels: (\S+)", md.read_text())
    return match.group(1) if match else "AVX512"


def main_record() -> Path | None:
    """The committed main-job record (its folder) made with this machine's CPU kernels, or None."""
    for folder in (RESULTS, RESULTS / "avx2"):
        if (folder / "metro_main.md").exists() and committed_kernels(folder / "metro_main.md") == cpu_kernels():
            return folder
    return None


def _committed(episodes: Path, policy: str, seed: int) -> dict[str, str]:
    with episodes.open() as f:
        for row in csv.DictReader(f):
            if row["policy"] == policy and int(row["seed"]) == seed and int(row["episode"]) == 0:
                return row
    raise AssertionError(f"{episodes} has no row for {policy} seed {seed}")


@pytest.mark.parametrize("policy", ["always-end", "cost-aware"])
def test_main_job_heuristic_rows_match_the_code(policy: str) -> None:
    folder = main_record()
    if folder is None:
        pytest.skip(f"no committed main-job record made with this machine's CPU kernels ({cpu_kernels()})")
    episodes = folder / "metro_main_episodes.csv"
    seed = 10_000
    want = _committed(episodes, policy, seed)
    got = cli._eval_job(policy, "metro", seed, 0, None)
    for key in ("reward", "accuracy", "energy_j", "bytes_moved", "ops_started"):
        assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-12, abs=1e-12), (
            f"{episodes}: {policy} seed {seed} {key} is {want[key]} in the committed file but "
            f"{got[key]} now; regenerate: python benchmarks/regenerate.py --cheap"
        )


def test_provenance_line_names_the_cpu_kernels() -> None:
    from gaisnet_env.provenance import provenance_line

    line = provenance_line()
    assert line.startswith("Commit ") and line.endswith(f"; CPU kernels: {cpu_kernels()}")
    assert committed_kernels(RESULTS / "metro_main.md") == "AVX512"  # made before the kernels were named


def test_committed_kernels_reads_the_provenance_line(tmp_path: Path) -> None:
    named, unnamed = tmp_path / "named.md", tmp_path / "unnamed.md"
    named.write_text("# x\n\nCommit abc; command: `python train.py`; CPU kernels: AVX2\n")
    unnamed.write_text("# x\n\nCommit abc; command: `python train.py`\n")
    assert committed_kernels(named) == "AVX2"
    assert committed_kernels(unnamed) == "AVX512"
