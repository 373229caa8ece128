"""The main job (``python train.py``): a step budget, the stop reason on screen, every output file listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gaisnet_env.agents.learned import train

from gaisnet_env import cli


def test_main_job_budgets_training_in_steps_and_writes_beside_the_run(monkeypatch, tmp_path, capsys) -> None:
    calls = []
    monkeypatch.setattr(cli, "run_benchmark", lambda *a, **kw: calls.append((a, kw)) or ([], []))
    cli.main(["--logdir", str(tmp_path / "runs")])
    (args, kw), = calls
    assert kw.get("time_budget_s") is None  # no wall-clock cap: the same agent on any machine
    assert kw["train_timesteps"] == cli.MAIN_TRAIN_STEPS == 8192
    assert kw["eval_freq"] == 4096  # validations at half and at the end (and of the warm start)
    assert Path(kw["out"]) == tmp_path / "runs" and kw["stem"] == "metro_main"  # beside the run by default
    text = capsys.readouterr().out
    assert "for 8,192 env steps (a step budget" in text
    for name in ("metro_ppo_s0/best_model.zip", "metro_ppo_s0/tb", "metro_main.md", "metro_main.csv",
                 "metro_main.png"):
        assert str(tmp_path / "runs" / name) in text, name
    cli.main(["--logdir", str(tmp_path / "runs"), "--out", str(tmp_path / "tables"), "--timesteps", "512"])
    assert Path(calls[-1][1]["out"]) == tmp_path / "tables" and calls[-1][1]["train_timesteps"] == 512


@pytest.mark.parametrize("budget", [None, 1e-6])
def test_training_says_which_budget_stopped_it(budget, tmp_path, capsys) -> None:
    _, run_dir = train("tiny", "ppo", 128, logdir=tmp_path, progress=False, eval_episodes=1,
                       hyperparams={"n_steps": 32, "batch_size": 32, "n_epochs": 1}, time_budget_s=budget)
    meta = json.loads((run_dir / "meta.json").read_text())
    summary = cli.training_summary(meta)
    if budget is None:
        assert meta["stopped_by"] == "steps" and meta["num_timesteps"] >= 128
        assert summary == "training stopped at its step budget of 128 env steps"
    else:
        assert meta["stopped_by"] == "time" and meta["num_timesteps"] < 128
        assert "the time budget of 0 s ran out" in summary and "of 128 env steps" in summary
        assert "training stopped: the time budget" in capsys.readouterr().out  # said when it happened
