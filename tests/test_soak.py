"""The soak script (benchmarks/soak.py) in CI: 2,000 steps on tiny with random policies and faults, and
snapshot/restore across two instances."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _soak_module():
    spec = importlib.util.spec_from_file_location("gaisnet_soak", ROOT / "benchmarks" / "soak.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_short_soak_has_no_crash_and_bounded_memory(tmp_path: Path) -> None:
    soak = _soak_module()
    rc = soak.main(["--steps", "2000", "--scenario", "tiny", "--faults-rate", "0.2", "--op-prob", "0.1",
                    "--battery-j", "300", "--warmup", "500", "--report-every", "250", "--out", str(tmp_path)])
    r = json.loads((tmp_path / "soak_tiny.json").read_text())
    assert rc == 0 and r["crashes"] == 0, r["crash_details"]
    # snapshots restored into a second instance with its own history replay bit for bit
    assert r["restores"] >= 10 and r["restore_steps_compared"] >= 40 and r["restore_mismatches"] == 0
    assert r["steps"] == 2000 and r["episodes"] >= 2000 // 20
    assert set(r["faults_injected_by_kind"]) == {"link", "edge_down", "cloud_overload", "battery"}
    t = r["totals"]
    assert t["ops_started"] > 0 and t["edges_down"] > 0 and t["batteries_empty"] > 0 and t["requests_rerouted"] > 0
    from gaisnet_env.workers import _ACC_CACHE_SIZE

    assert 0 < r["acc_cache_size_end"] <= _ACC_CACHE_SIZE
    assert r["rss_growth_after_warmup_mb"] < 100  # a leak of a few KiB per step would show here
    md = (tmp_path / "soak_tiny.md").read_text()
    assert "| crashes | **0** |" in md


def test_soak_arguments_are_validated() -> None:
    soak = _soak_module()
    for bad in (["--faults-rate", "2"], ["--steps", "0"], ["--op-prob", "-1"]):
        with pytest.raises(SystemExit) as exc:
            soak.parse_args(bad)
        assert exc.value.code == 2
