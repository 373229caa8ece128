"""The benchmark scripts run on ``tiny`` with tiny step counts (no timing asserts: CI machines are noisy)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))

    def load(name: str):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load


def test_bench_speed_runs_on_tiny(bench, tmp_path) -> None:
    res = bench("bench_speed").main([
        "--scenarios", "tiny", "--steps", "30", "--random-steps", "10", "--repeats", "2",
        "--ppo-train-steps", "32", "--ppo-eval-steps", "10", "--scaling", "1", "2", "--out", str(tmp_path),
    ])
    tiny = res["scenarios"]["tiny"]
    assert "error" not in tiny, tiny.get("error")
    for mode in ("noop", "random", "ppo"):
        assert tiny[mode]["steps_per_s_env"] > 0
        assert set(tiny[mode]["breakdown_us_per_step"]) >= {"knowledge_ops", "observation", "simulation_cost"}
    assert 0 < tiny["ppo"]["env_share_of_training"] <= 1
    assert tiny["peak_rss_mb"] > 0
    assert set(res["scaling"]) == {"1", "2"} and all("error" not in r for r in res["scaling"].values())
    saved = json.loads((tmp_path / "bench_speed.json").read_text())
    assert saved["machine"]["cores"] >= 1 and saved["machine"]["torch"]
    assert "| tiny |" in (tmp_path / "bench_speed.md").read_text()


def test_bench_memory_runs_on_tiny(bench, tmp_path) -> None:
    res = bench("bench_memory").main(["--scenario", "tiny", "--steps", "60", "--every", "20", "--out", str(tmp_path)])
    assert res["steps_done"] == 60 and len(res["samples"]) == 4
    assert res["rss_ref_step"] == 20 and res["rss_end_mb"] > 0
    assert (tmp_path / "bench_memory.md").exists() and (tmp_path / "bench_memory.json").exists()


def test_fast_path_benchmark_runs_on_tiny(bench, tmp_path) -> None:
    res = bench("fast_path").main(["--scenario", "tiny", "--seeds", "2", "--policies", "cost-aware", "always-end",
                                   "random", "--no-progress", "--out", str(tmp_path)])
    assert set(res["calibration"]["meta"]["held_out"]) == {"relay_down", "finetune", "relay_up", "relay_to_end"}
    pols = res["episodes"]["policies"]
    assert set(pols) == {"cost-aware", "always-end", "random"}
    for p in pols.values():
        assert len(p["real"]) == len(p["fast"]) == 2
    # no knowledge operation: both workers give the same episode
    assert pols["always-end"]["summary"]["paired_real_minus_fast"][0] == 0.0
    assert -1.0 <= res["episodes"]["spearman_reward"] <= 1.0
    assert "real - fast" in (tmp_path / "fast_path.md").read_text()


def test_bench_speed_fast_workers(bench, tmp_path) -> None:
    res = bench("bench_speed").main(["--workers", "fast", "--scenarios", "tiny", "--steps", "20", "--random-steps",
                                     "10", "--repeats", "1", "--modes", "noop", "random", "--scaling",
                                     "--out", str(tmp_path)])
    assert res["scenarios"]["tiny"]["random"]["steps_per_s_env"] > 0
    assert "calibrated fast path" in (tmp_path / "bench_speed.md").read_text()


def test_bench_speed_batched_engine(bench, tmp_path) -> None:
    res = bench("bench_speed").main(["--batched-ops", "--scenarios", "tiny", "--steps", "10", "--random-steps", "10",
                                     "--repeats", "1", "--modes", "random", "--scaling", "--out", str(tmp_path)])
    assert res["scenarios"]["tiny"]["random"]["steps_per_s_env"] > 0
    assert "batched training engine" in (tmp_path / "bench_speed.md").read_text()
    assert json.loads((tmp_path / "bench_speed.json").read_text())["args"]["batched_ops"] is True


def test_heuristic_sweep_runs_on_tiny(bench, tmp_path) -> None:
    res = bench("heuristic_sweep").main(["--scenario", "tiny", "--seeds", "2", "--grid", "acc_drop=0.02,0.05",
                                         "cooldown=1", "--no-progress", "--out", str(tmp_path)])
    assert res["seeds"] == [20000, 20001]
    rows = {r["policy"]: r for r in res["rows"]}
    assert set(rows) == {"cost-aware", "cost-aware:acc_drop=0.02,cooldown=1", "cost-aware:acc_drop=0.05,cooldown=1"}
    assert rows["cost-aware"]["paired_vs_defaults"] == 0.0
    assert "| cost-aware:acc_drop=0.02,cooldown=1 |" in (tmp_path / "cost-aware_sweep.md").read_text()
    with pytest.raises(SystemExit, match="--grid"):
        bench("heuristic_sweep").main(["--grid", "acc_drop"])


def test_bench_vae_training_runs(bench, tmp_path) -> None:
    res = bench("bench_vae_training").main(["--repeats", "1", "--no-pretrain", "--out", str(tmp_path)])
    assert [r["name"] for r in res["cases"]] == ["finetune", "relay_down", "relay_up"]
    for r in res["cases"]:
        assert r["old_ms"] > 0 and r["new_ms"] > 0 and r["floor_ms"] > 0
        assert r["flops_per_sample"] == r["autograd_flops_per_sample"]
        assert r["gen_state_equal"] and r["max_abs_weight_diff"] < 1e-5
    assert "| relay_up | distil_decoder |" in (tmp_path / "bench_vae_training.md").read_text()


def test_bench_engine_ops_runs_small(bench, tmp_path) -> None:
    res = bench("bench_engine_ops").main(["--es", "1", "2", "--repeats", "1", "--ops", "relay_to_end",
                                          "--out", str(tmp_path)])
    rows = res["rows"]
    assert [r["E"] for r in rows] == [1, 2]
    assert rows[0]["max_abs_weight_diff"] == 0.0 and all(r["same_draws"] for r in rows)  # E = 1: the serial run
    assert all(r["floor_ms_per_op"] > 0 and r["batched_ms_per_op"] > 0 for r in rows)
    assert "| relay_to_end | 2 |" in (tmp_path / "bench_engine_ops.md").read_text()


def test_bench_batched_ops_runs_small(bench, tmp_path) -> None:
    res = bench("bench_batched_ops").main(["--ks", "1", "2", "--repeats", "1", "--cases", "finetune", "relay_down",
                                           "--out", str(tmp_path)])
    assert [(r["case"], r["K"]) for r in res["rows"]] == [("finetune", 1), ("finetune", 2), ("relay_down", 1),
                                                          ("relay_down", 2)]
    for r in res["rows"]:
        assert r["max_abs_weight_diff"] <= 1e-5 and r["floor_ms_per_op"] > 0 and r["batched_ms_per_op"] > 0
    assert res["gflops"] > 0
    assert "| finetune | 2 |" in (tmp_path / "bench_batched_ops.md").read_text()


def test_bench_vector_random_policy_runs_on_tiny(bench, tmp_path) -> None:
    res = bench("bench_vector").main(["--scenario", "tiny", "--policy", "noop", "random", "--sizes", "1", "2",
                                      "--block", "4", "--rounds", "1", "--random-sizes", "1", "2", "--random-block",
                                      "2", "--random-rounds", "1", "--profile-top", "3", "--out", str(tmp_path)])
    assert set(res["random"]["rows"]) == {"single gym.make", "single GaisNetEnv", "native N=1", "native N=2"}
    assert all(r["us_per_env_step"] > 0 for r in res["random"]["rows"].values())
    assert "ncalls" in res["profile"]["top"] and res["random"]["profile"]["variant"] == "single GaisNetEnv"
    md = (tmp_path / "bench_vector.md").read_text()
    assert "## random policy" in md and "torch threads: 1" in md


def test_ab_vector_compares_two_checkouts(bench, tmp_path) -> None:
    import subprocess

    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH, capture_output=True).returncode:
        pytest.skip("not a git checkout: no commit to compare with")

    def worktrees() -> int:
        out = subprocess.run(["git", "worktree", "list"], cwd=BENCH, capture_output=True, text=True).stdout
        return len(out.strip().splitlines())

    before = worktrees()
    res = bench("ab_vector").main(["--against", "HEAD", "--scenario", "tiny", "--sizes", "2", "--rounds", "1",
                                   "--block", "4", "--blocks", "1", "--skip", "3", "--out", str(tmp_path)])
    assert res["skip"] == 3
    for side in ("against", "this"):
        assert set(res["median_us"][side]) == {"single GaisNetEnv", "native N=2"}
        assert all(v > 0 for v in res["median_us"][side].values())
    md = (tmp_path / "ab_vector.md").read_text()
    assert "| native N=2 |" in md and "HEAD µs per env-step" in md and "after 3 untimed steps" in md
    assert worktrees() == before  # the other checkout is removed


def test_quiet_phases_times_every_part(bench, tmp_path) -> None:
    res = bench("quiet_phases").main(["--scenario", "tiny", "--sizes", "2", "3", "--steps", "4", "--warmup", "1",
                                      "--out", str(tmp_path)])
    for row in res["rows"]:
        assert row["untimed_us"] > 0 and row["timed_us"] > 0
        parts = row["parts_us"]
        assert parts["quiet step"] > 0 and parts["draws and their bookkeeping"] > 0
        assert parts["vector env step"] >= parts["quiet step"] >= parts["epoch"] >= parts["observation"]
    md = (tmp_path / "quiet_phases.md").read_text()
    assert "| N = 2 | N = 3 |" in md and "next epoch's figures" in md
    from gaisnet_env.quiet_steps import QuietSteps

    assert not hasattr(QuietSteps.step, "__wrapped__") and QuietSteps.step.__name__ == "step"  # timers removed


def test_quiet_ceiling_does_the_same_work(bench, tmp_path) -> None:
    """The ceiling's outputs equal today's path's, and a tampered table is caught (the check can fail)."""
    qc = bench("quiet_ceiling")
    res = qc.main(["--scenario", "tiny", "--sizes", "3", "--steps", "6", "--warmup", "1", "--rounds", "1",
                   "--out", str(tmp_path)])
    row = res["rows"][0]
    assert row["same"] is True and row["copies"] == 3
    assert row["today_us"] > 0 and row["ceiling_us"] > 0 and row["single_us"] > 0
    assert "| 3 |" in (tmp_path / "quiet_ceiling.md").read_text()
    from gaisnet_env.vector_env import GaisNetVectorEnv

    def fresh():
        venv = GaisNetVectorEnv(3, "tiny")
        venv.reset(seed=0)
        venv.step(qc._noop(venv))
        return venv

    tape, outs = qc.record(fresh(), 4)
    tape[2].acc = tape[2].acc + 1e-9  # a wrong accuracy table: the rewards move
    venv = fresh()
    venv._quiet = qc.CeilingSteps(venv, tape)
    got = [venv.step(qc._noop(venv)) for _ in range(4)]
    same = [qc._same(o, (g[0], g[1], g[3], g[4])) for o, g in zip(outs, got, strict=True)]
    assert same[:2] == [True, True] and not same[2]
    # the compose quotes it in the vector row
    compose = bench("_issue13_compose")
    vec = compose.vector_row(None, res)
    assert vec["met"] is None
    bench("bench_vector").main(["--scenario", "tiny", "--sizes", "1", "--block", "2", "--rounds", "1",
                                "--profile-top", "0", "--out", str(tmp_path)])
    v = json.loads((tmp_path / "bench_vector.json").read_text())
    v["rows"]["native N=64"] = v["rows"].pop("native N=1")  # judged as if it were N = 64
    res["rows"][0]["copies"] = 64
    row = compose.vector_row(v, res)
    assert "quiet_ceiling, commit" in row["numbers"]
    fast = res["rows"][0]["single_us"] / res["rows"][0]["ceiling_us"] >= 25.0
    assert row["met"] is False and (row.get("bound") is None) == fast
    res["rows"][0]["ceiling_us"] = res["rows"][0]["single_us"] / 30.0  # a ceiling past 25x: no bound
    assert compose.vector_row(v, res).get("bound") is None


def test_bench_vector_batched_ops_variants(bench, tmp_path) -> None:
    res = bench("bench_vector").main(["--scenario", "tiny", "--policy", "random", "--random-sizes", "2",
                                      "--random-block", "2", "--random-rounds", "1", "--profile-top", "0",
                                      "--batched-ops", "--out", str(tmp_path)])
    assert {"single GaisNetEnv batched_ops", "native N=2 batched_ops"} <= set(res["random"]["rows"])


def test_hardware_bounds_runs_small(bench, tmp_path) -> None:
    res = bench("hardware_bounds").main(["--scenarios", "tiny", "--steps", "4", "--warmup", "10", "--ppo-envs", "2",
                                         "--ppo-steps", "256", "--noop-steps", "20", "--out", str(tmp_path)])
    r = res["random"]["tiny"]
    assert r["gflop_per_step"] > 0 and 0 < r["floor_ms"] and r["measured_over_floor"] > 0
    assert res["ppo"]["ms_per_env_step"] > 0 and res["per_copy"]["max_vector_speedup"] > 1
    assert "## Env share of PPO training at the FLOP floor" in (tmp_path / "hardware_bounds.md").read_text()


def test_ppo_vec_engine_composes_the_committed_runs(bench, tmp_path) -> None:
    res = bench("ppo_vec_engine").main(["--compose", "--out", str(tmp_path)])
    assert set(res["median_steps_per_s"]) == {"serial", "batched"} and res["ratio"] > 0
    assert "| batched1 |" in (tmp_path / "ppo_vec_engine.md").read_text()


def test_bench_speed_ppo_vec_mode(bench, tmp_path) -> None:
    res = bench("bench_speed").main(["--scenarios", "tiny", "--modes", "ppo-vec", "--ppo-scenarios", "tiny",
                                     "--ppo-envs", "2", "--ppo-vec-steps", "16", "--ppo-vec-n-steps", "8",
                                     "--scaling", "--out", str(tmp_path)])
    v = res["scenarios"]["tiny"]["ppo_vec"]
    assert v["train_steps"] == 16 and v["n_envs"] == 2
    assert 0 < v["env_share_of_training"] < 1 and 0 <= v["update_share_of_training"] < 1
    assert v["breakdown_us_per_step"]["total_step"] > 0
    assert "| tiny | 2 | 8 | 16 |" in (tmp_path / "bench_speed.md").read_text()


def test_bench_ops_runs_on_tiny(bench, tmp_path) -> None:
    res = bench("bench_ops").main(["--scenario", "tiny", "--repeats", "1", "--warm-steps", "20", "--profile-top",
                                   "3", "--out", str(tmp_path)])
    assert [r["op"] for r in res["ops"]] == ["finetune", "relay_down", "relay_up", "relay_to_end"]
    for r in res["ops"]:
        assert r["n"] >= 1 and r["ms_per_op"] > 0 and r["counted_flops"] > 0 and r["floor_ms"] > 0
    assert [t["tier"] for t in res["tables"]] == ["end", "edge", "cloud"] and res["gflops"] > 0
    assert "| relay_up |" in (tmp_path / "bench_ops.md").read_text()


def test_issue13_targets_compose(bench, tmp_path) -> None:
    bench("bench_vector").main(["--scenario", "tiny", "--sizes", "1", "--block", "2", "--rounds", "1",
                                "--profile-top", "3", "--out", str(tmp_path)])
    path = tmp_path / "bench_vector.json"
    data = json.loads(path.read_text())
    data["rows"]["native N=64"] = data["rows"].pop("native N=1")  # judged as if it were N = 64
    path.write_text(json.dumps(data))
    res = bench("issue13_targets").main(["compose", "--results", str(tmp_path), "--no-tests", "--out",
                                         str(tmp_path)])
    assert len(res["rows"]) == 7
    vec = res["rows"][0]
    assert vec["met"] is False and "N=64" in vec["numbers"]  # tiny's copies are not 25x faster
    assert all(r["met"] is None for r in res["rows"][1:])  # no other result there
    md = (tmp_path / "issue13_targets.md").read_text()
    assert "| target | status | numbers |" in md and "Why the vector env" in md and "ncalls" in md


def test_issue13_batched_target_is_judged_on_whole_ops(bench) -> None:
    compose = bench("_issue13_compose")
    row = {"E": 64, "speedup": 5.5, "batched_over_floor": 2.0}
    whole = {"gflops": 90.0, "machine": {"commit": "abc"},
             "rows": [{"op": op, **row} for op in ("finetune", "relay_down")] + [{"op": "x", **row, "E": 4}]}
    got = compose.batched_row(None, whole)
    assert got["met"] is True and "finetune 5.5x, 2.0x the floor" in got["numbers"] and "abc" in got["numbers"]
    whole["rows"][1]["batched_over_floor"] = 3.5  # one kind beyond 3x its floor
    assert compose.batched_row(None, whole)["met"] is False
    assert compose.batched_row(None, None)["met"] is None


def test_issue13_rows_carry_the_hardware_bounds(bench) -> None:
    compose = bench("_issue13_compose")
    quoted = {"old_md_metro_random": 45.0, "old_md_city_random": 1.8, "old_md_commit": "x",
              "issue_ppo_steps_per_s": 15.0, "issue_ppo_env_share": 0.905}
    summary = {"metro": {"today": 22.0, "baseline": 11.0, "ratio": 2.0, "vector": 30.0, "vector_ratio": 30 / 11,
                         "vector_copies": 16},
               "city": {"today": 6.0, "baseline": 3.0, "ratio": 2.0}}
    metro, city = compose.random_rows({"summary": summary, "baseline": "b", "machine": {"commit": "c"}}, quoted)
    assert metro["met"] is True and "16 copies" in metro["numbers"] and "opt-in" in metro["bound"]
    assert city["met"] is False
    floor = {"gflop_per_step": 1.0, "floor_ms": 20.0, "steps_per_s_at_floor": 50.0, "measured_over_floor": 2.5}
    hb = {"machine": {"commit": "h"}, "today_over_issue": {"metro": 2.0, "city": 2.0},
          "random": {"metro": floor, "city": floor}, "ppo": {"ms_per_env_step": 0.7}, "min_env_share_metro": 0.96,
          "per_copy": {"per_copy_us": 300.0, "breakdown_us": {"step": 900.0}, "max_vector_speedup": 3.0}}
    vector = {"machine": {"commit": "v"}, "copy_draws_us": 25.0,
              "rows": {"single GaisNetEnv": {"us_per_env_step": 800.0, "speedup_vs_bare_env": 1.0},
                       "single gym.make": {"us_per_env_step": 790.0, "speedup_vs_bare_env": 1.01},
                       "native N=64": {"us_per_env_step": 100.0, "speedup_vs_bare_env": 8.0}}}
    rows = [compose.vector_row(vector), compose.batched_row(None, None), metro, city, compose.ppo_row(None, quoted)]
    compose.hardware_bounds(rows, hb, None)
    assert rows[0]["met"] is False and "at most 32x" in rows[0]["numbers"]  # 800 / 25 µs of draws per copy
    assert rows[3]["bound"] == "beyond the hardware"  # city: 2.5x its floor x 2.0x the issue's = 5x < 10x
    assert "bound" not in rows[2] or "opt-in" in rows[2]["bound"]  # metro: 5x >= 2.5x
    assert rows[4]["bound"] == "beyond the hardware" and "96%" in rows[4]["numbers"]
