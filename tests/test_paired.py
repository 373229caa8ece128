"""Paired comparisons and the normalised score (gaisnet_env.paired)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gaisnet_env.agents.base import EpisodeMetrics

from gaisnet_env.paired import normalised_score, paired


def _episodes(rewards: dict[str, list[float]]) -> list[EpisodeMetrics]:
    return [EpisodeMetrics(p, seed, 0, r, 0.9, 0.1, 1.0, 1.0, 0.0, 0.0, 10, 0, 1.0)
            for p, rs in rewards.items() for seed, r in enumerate(rs)]


def test_paired_difference_uses_only_common_seeds() -> None:
    eps = _episodes({"a": [10.0, 20.0, 30.0], "b": [9.0, 18.0]})
    d = paired(eps, "a", "b")
    assert (d.mean, d.n) == (1.5, 2)
    assert d.ci95 > 0 and not d.excludes_zero  # 1 and 2: t-CI over 2 pairs is wide
    assert math.isnan(paired(eps, "a", "missing").mean)


def test_normalised_score_and_its_bootstrap_ci() -> None:
    rng = np.random.default_rng(1)
    difficulty = rng.normal(0, 50, 10)  # seeds differ far more than the policies
    h = difficulty
    o = difficulty + 10 + rng.normal(0, 1, 10)
    a = difficulty + 6 + rng.normal(0, 1, 10)
    eps = _episodes({"h": list(h), "o": list(o), "a": list(a)})
    s = normalised_score(eps, "a", "h", "o")
    assert s.n == 10
    assert math.isclose(s.score, float(np.mean(a - h) / np.mean(o - h)))
    assert s.lo < s.score < s.hi and 0.4 < s.lo and s.hi < 0.8
    assert normalised_score(eps, "a", "h", "o") == s  # the bootstrap has a fixed seed
    assert normalised_score(eps, "h", "h", "o").score == 0.0
    assert math.isclose(normalised_score(eps, "o", "h", "o").score, 1.0)


def test_normalised_score_is_nan_when_the_oracle_does_not_lead() -> None:
    eps = _episodes({"h": [10.0, 11.0, 12.0], "o": [9.0, 11.0, 11.5], "a": [10.0, 12.0, 12.0]})
    s = normalised_score(eps, "a", "h", "o")
    assert math.isnan(s.score) and s.text() == "n/a"
    one = normalised_score(_episodes({"h": [1.0], "o": [2.0], "a": [1.5]}), "a", "h", "o")
    assert one.score == 0.5 and math.isnan(one.lo) and one.text() == "0.50"


def test_suite_writes_one_file_per_scenario_and_the_leaderboard(tmp_path) -> None:
    from gaisnet_env.report import aggregate
    from gaisnet_env.suite import run_suite

    calls = []

    def fake_benchmark(scenario: str, policies: list[str], out, stem: str, **kw):
        calls.append((scenario, policies, stem, kw))
        base = {"tiny": 0.0, "metro": 100.0}[scenario]
        eps = _episodes({"cost-aware": [base + 10 * s for s in range(4)],
                         "oracle:horizon=2": [base + 10 * s + 4 for s in range(4)],
                         policies[-1]: [base + 10 * s + 1 + 0.5 * (s % 2) for s in range(4)]})
        return aggregate(eps), eps

    board = run_suite(["tiny", "metro"], ["cost-aware", "oracle:horizon=2", "runs/{scenario}_ppo/best_model.zip"],
                      tmp_path, fake_benchmark, seeds=[1, 2])
    assert [c[0] for c in calls] == ["tiny", "metro"] and calls[1][2] == "metro_suite"
    assert calls[1][1][-1] == "runs/metro_ppo/best_model.zip" and calls[1][3] == {"seeds": [1, 2]}
    row = board[1]
    assert row["heuristic"] == "cost-aware" and row["oracle"] == "oracle:horizon=2"
    assert row["learned"] == "runs/metro_ppo/best_model.zip" and row["seeds"] == 4
    assert row["oracle_minus_heuristic"] == "+4.00 ± 0.00"
    assert row["normalised_score"].startswith("0.31 [")  # 1.25 / 4
    md = (tmp_path / "suite_summary.md").read_text()
    assert "| tiny | cost-aware |" in md and "normalised score [95% CI]" in md and "Commit " in md
    assert (tmp_path / "suite_summary.csv").read_text().count("\n") == 3


def test_benchmark_suite_command_runs_each_scenario(monkeypatch, tmp_path) -> None:
    from gaisnet_env import cli
    from gaisnet_env.report import aggregate

    seen = []

    def fake(scenario, policies, out, stem, **kw):
        seen.append((scenario, stem, kw["seeds"]))
        eps = _episodes({"cost-aware": [1.0, 2.0], "oracle": [2.0, 3.0]})
        return aggregate(eps), eps

    monkeypatch.setattr(cli, "run_benchmark", fake)
    cli.main(["benchmark", "--suite", "--scenarios", "tiny", "green", "--seeds", "2", "--policies", "cost-aware",
              "oracle", "--out", str(tmp_path), "--no-progress"])
    assert seen == [("tiny", "tiny_suite", [10000, 10001]), ("green", "green_suite", [10000, 10001])]
    assert "| green | cost-aware |" in (tmp_path / "suite_summary.md").read_text()
    with pytest.raises(SystemExit, match="--stem"):
        cli.main(["benchmark", "--suite", "--stem", "x", "--out", str(tmp_path)])


def test_summary_only_rebuilds_the_leaderboard_from_episode_files(tmp_path) -> None:
    from gaisnet_env import cli
    from gaisnet_env.report import aggregate, write_tables

    for name, base in (("tiny", 0.0), ("green", 50.0)):  # as two separate suite runs left them
        eps = _episodes({"cost-aware": [base + s for s in range(3)], "oracle": [base + s + 2 for s in range(3)],
                         "m.zip": [base + s + 1 for s in range(3)]})
        write_tables(aggregate(eps), eps, tmp_path, f"{name}_suite", "# x\n")
    board = cli.main(["benchmark", "--suite", "--summary-only", "--scenarios", "tiny", "green", "--out",
                      str(tmp_path), "--note", "Two runs, one table."])
    md = (tmp_path / "suite_summary.md").read_text()
    assert "| green | cost-aware |" in md and "Two runs, one table." in md and "| tiny |" in md
    assert "0.50" in md  # (1 - 0) / (2 - 0)
    with pytest.raises(FileNotFoundError, match="city_suite_episodes.csv"):
        cli.main(["benchmark", "--suite", "--summary-only", "--scenarios", "city", "--out", str(tmp_path)])
    assert board == 0
