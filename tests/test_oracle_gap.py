"""benchmarks/oracle_gap.py runs on ``tiny`` with a short horizon: result files, finite numbers, and the
reward component split adding up to the oracle - periodic difference."""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _numbers(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _numbers(v)
    elif isinstance(x, list):
        for v in x:
            yield from _numbers(v)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield x


def test_oracle_gap_runs_on_tiny(monkeypatch, tmp_path) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    sys.modules.pop("oracle_gap", None)
    og = importlib.import_module("oracle_gap")
    og.main(["--scenario", "tiny", "--horizon", "12", "--seeds", "20000", "20001",
             "--oracle", "oracle:horizon=2,max_candidates=4", "--out", str(tmp_path), "--name", "og"])
    pj, pm = tmp_path / "og.json", tmp_path / "og.md"
    assert pj.exists() and pm.exists()
    data = json.loads(pj.read_text())  # strict JSON: an undefined share is null, never NaN
    assert all(math.isfinite(v) for v in _numbers({k: v for k, v in data.items() if k != "machine"}))
    assert data["seeds"] == [20000, 20001] and data["horizon"] == 12
    for s in data["per_seed"]:
        runs, diff = s["runs"], s["minus_periodic"]
        for name, r in runs.items():
            assert r["epochs"] == 12, name
            assert math.isclose(sum(r["components"].values()), r["reward"], rel_tol=1e-9, abs_tol=1e-9), name
            assert math.isclose(sum(r["route_shares"].values()), 1.0, abs_tol=1e-9), name
        total = runs["oracle"]["reward"] - runs["periodic"]["reward"]
        assert math.isclose(diff["oracle"]["total"], total, abs_tol=1e-9)
        split = sum(diff["oracle"][c] for c in og.COMPONENTS)
        assert math.isclose(split, total, rel_tol=1e-9, abs_tol=1e-9)
        # replaying the oracle's whole logged action reproduces its episode (deterministic env)
        assert math.isclose(runs["oracle_replay"]["reward"], runs["oracle"]["reward"], abs_tol=1e-9)
        assert runs["oracle_replay"]["op_counts"] == runs["oracle"]["op_counts"]
    agg = data["aggregate"]["minus_periodic"]["oracle"]
    assert math.isclose(agg["total"], np.mean([s["minus_periodic"]["oracle"]["total"] for s in data["per_seed"]]))
    md = pm.read_text()
    assert "Oracle - periodic per seed" in md and "What this means" in md and "| 20001 |" in md


def test_pieces(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    og = importlib.import_module("oracle_gap")
    dom = np.zeros((6, 2, 1))
    dom[3:, 1] = 1.0
    assert og.since_domain_change(dom).tolist() == [[-1, -1], [-1, -1], [-1, -1], [-1, 0], [-1, 1], [-1, 2]]
    ops = np.array([[2, 0], [4, 4], [0, 2], [4, 4]])
    assert og.r2end_after_finetune(ops) == 0.5  # per cell: r2e after ft, then r2e without
    pa, oa = np.array([1, 4, 1, 0]), np.array([2, 2, 0, 1])
    idle = np.array([True, True])
    assert og.mix_action("oracle_ops+periodic_routes", pa, oa, idle).tolist() == [1, 2, 1, 1]
    assert og.mix_action("oracle_finetunes+r2end_when_idle", pa, oa, idle).tolist() == [1, 2, 1, 4]
    assert og.mix_action("oracle_cloud_routes+periodic", pa, oa, idle).tolist() == [2, 4, 1, 0]
