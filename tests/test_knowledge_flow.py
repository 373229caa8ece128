"""The seeds' claim at small scale: bidirectional knowledge flow beats no operations."""

from __future__ import annotations

import numpy as np

from benchmarks.knowledge_flow import SCHEDULES, run, schedule_ops, to_markdown


def test_schedules_start_the_ops_they_name() -> None:
    ops = np.stack([schedule_ops("bidirectional", t, 2, 6) for t in range(12)])
    assert set(np.unique(ops)) == {0, 1, 2, 3}
    assert set(np.unique(np.stack([schedule_ops("finetune_only", t, 2, 6) for t in range(12)]))) == {0, 2}
    assert set(np.unique(np.stack([schedule_ops("down_only", t, 2, 6) for t in range(12)]))) == {0, 1}
    assert not np.stack([schedule_ops("none", t, 2, 6) for t in range(12)]).any()


def test_bidirectional_flow_beats_no_operations_on_average_over_seeds() -> None:
    res = run("metro", seeds=[0, 1, 2], period=6, horizon=30, overrides={"drift": {"every_epochs": 10}})
    s = res["summary"]
    assert set(s) == set(SCHEDULES)
    assert s["bidirectional"]["mean_accuracy_edge"][0] > s["none"]["mean_accuracy_edge"][0]
    assert s["bidirectional"]["ops_started"][0] > 0 and s["none"]["ops_started"][0] == 0
    assert "| bidirectional |" in to_markdown(res)
