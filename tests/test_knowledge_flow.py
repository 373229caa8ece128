"""The seeds' claim at small scale: bidirectional knowledge flow beats no operations."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.knowledge_flow import SCHEDULES, parse_seeds, run, schedule_ops, to_markdown


def test_schedules_start_the_ops_they_name() -> None:
    assert parse_seeds(["3", "10-12"]) == [3, 10, 11, 12]
    for bad in (["x"], ["5-2"], ["1", "1"]):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)
    ops = np.stack([schedule_ops("bidirectional", t, 2, 6) for t in range(12)])
    assert set(np.unique(ops)) == {0, 1, 2, 3}
    assert set(np.unique(np.stack([schedule_ops("finetune_only", t, 2, 6) for t in range(12)]))) == {0, 2}
    assert set(np.unique(np.stack([schedule_ops("down_only", t, 2, 6) for t in range(12)]))) == {0, 1}
    assert not np.stack([schedule_ops("none", t, 2, 6) for t in range(12)]).any()


def test_bidirectional_flow_beats_no_operations_on_average_over_seeds() -> None:
    res = run("metro", seeds=[0, 1, 2], period=8, horizon=60, overrides={"drift": {"every_epochs": 20}})
    s = res["summary"]
    assert set(s) == set(SCHEDULES)
    acc = {k: v["mean_accuracy_edge"][0] for k, v in s.items()}
    assert acc["bidirectional"] > acc["none"] + 0.03  # +0.075 under AVX2 kernels (2026-12-07)
    assert s["bidirectional"]["ops_started"][0] > 0 and s["none"]["ops_started"][0] == 0
    assert "| bidirectional |" in to_markdown(res)


def test_cloud_knowledge_beats_local_labels_and_pure_relay_beats_none() -> None:
    """The finer claims on episodes long enough for them: on 60 epochs pure relay - none was -0.002 under AVX2
    kernels (positive under AVX-512, where this test's claims were first checked on 60 epochs); on 120 epochs
    under AVX2, bidirectional - finetune_twice +0.013 and down_only_pure - none +0.030 (2026-12-07). The
    10-seed benchmark (benchmarks/results/knowledge_flow_metro.md) measures them with CIs."""
    res = run("metro", seeds=[0, 1, 2], period=8, horizon=120, overrides={"drift": {"every_epochs": 20}},
              schedules=("bidirectional", "finetune_twice", "down_only_pure", "none"))
    acc = {k: v["mean_accuracy_edge"][0] for k, v in res["summary"].items()}
    # the cloud's knowledge is worth more than as many local labels, and pure data-free relay carries it
    assert acc["bidirectional"] > acc["finetune_twice"]
    assert acc["down_only_pure"] > acc["none"]


def test_true_domain_is_the_workloads_and_needs_a_reset() -> None:
    from gaisnet_env.env import GaisNetEnv

    env = GaisNetEnv("tiny")
    with pytest.raises(RuntimeError, match="reset"):
        env.true_domain(0)
    env.reset(seed=3)
    class_mix, style_mix = env.true_domain(5)
    want_c, want_s = env.workload.domains(5)
    np.testing.assert_array_equal(class_mix, want_c)
    np.testing.assert_array_equal(style_mix, want_s)
    assert not class_mix.flags.writeable
