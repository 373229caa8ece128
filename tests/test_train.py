"""train.py / gaisnet-train end to end on ``tiny`` (tiny budgets, in-process for speed)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gaisnet_env.agents.base import run_episode
from gaisnet_env.agents.learned import ObsAugmenter, load_hyperparams, load_policy, train

from gaisnet_env import cli
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.masks import flat_mask

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    logdir = tmp_path_factory.mktemp("runs")
    cli.main(["train", "--scenario", "tiny", "--algo", "ppo_mask", "--timesteps", "64", "--logdir", str(logdir),
              "--no-progress", "--eval-freq", "32", "--eval-episodes", "1", "--horizon", "8"])
    return logdir / "tiny_ppo_mask_s0"


def test_help_of_every_subcommand(capsys) -> None:
    for argv in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["benchmark", "--help"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--timesteps" in out and "--resume" in out and "--policies" in out


def test_train_script_help_runs_as_a_subprocess() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "train.py"), "--help"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and "benchmark" in res.stdout


def test_train_writes_models_checkpoints_and_meta(run_dir: Path) -> None:
    for name in ("best_model.zip", "final_model.zip", "meta.json"):
        assert (run_dir / name).exists(), name
    assert list((run_dir / "checkpoints").glob("*.zip"))
    assert list((run_dir / "tb").rglob("events.out.tfevents.*"))
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["algo"] == "ppo_mask" and meta["scenario"] == "tiny" and meta["num_timesteps"] >= 64


def test_train_resumes_from_a_saved_model(run_dir: Path, tmp_path: Path) -> None:
    model, out = train("tiny", "ppo_mask", 32, seed=1, logdir=tmp_path, resume=run_dir / "final_model.zip",
                       progress=False, eval_episodes=1, env_kwargs={"horizon": 8}, hyperparams={"n_steps": 32})
    assert model.num_timesteps >= 96  # continued counting from the saved model's steps
    assert json.loads((out / "meta.json").read_text())["resumed_from"].endswith("final_model.zip")


def test_saved_policy_loads_and_reproduces_its_actions(run_dir: Path) -> None:
    from sb3_contrib import MaskablePPO

    model = MaskablePPO.load(str(run_dir / "final_model.zip"), device="cpu")
    pol = load_policy(run_dir / "final_model.zip")
    env = GaisNetEnv("tiny", horizon=8)
    aug = ObsAugmenter()  # the shipped tiny hyperparameters train on AugmentObservation
    pol.reset(10_000)
    obs, info = env.reset(seed=10_000)
    for _ in range(8):
        a = pol.act(obs, info)
        b, _ = model.predict(aug(obs), deterministic=True, action_masks=flat_mask(info["action_mask"]))
        assert np.array_equal(a, np.asarray(b).ravel())
        obs, _, _, _, info = env.step(a)
    # a run directory resolves to its best model; two loads act identically over an episode
    m1 = run_episode(load_policy(run_dir), env, seed=10_001)
    m2 = run_episode(load_policy(run_dir), env, seed=10_001)
    assert m1.reward == m2.reward


@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn"])
def test_other_algorithms_train_and_act(algo: str, tmp_path: Path) -> None:
    hp = {"learning_starts": 8} if algo == "dqn" else {"n_steps": 8, **({"batch_size": 8} if algo == "ppo" else {})}
    _model, out = train("tiny", algo, 16, logdir=tmp_path, progress=False, eval_episodes=1, eval_freq=8,
                        env_kwargs={"horizon": 8}, hyperparams=hp)
    pol = load_policy(out / "best_model.zip")
    m = run_episode(pol, GaisNetEnv("tiny", horizon=8), seed=10_000)
    assert m.epochs == 8 and np.isfinite(m.reward)


def test_hyperparams_are_rl_zoo_entries() -> None:
    import yaml
    from gaisnet_env.agents.learned import HYPERPARAMS_DIR

    for f in HYPERPARAMS_DIR.glob("*.yml"):
        data = yaml.safe_load(f.read_text())
        for key, entry in data.items():
            assert key.startswith("gaisnet_env/GaisNet-") and key.endswith("-v0"), (f.name, key)
            assert "n_timesteps" in entry and "policy" in entry
    hp = load_hyperparams("maskable_ppo", "metro")
    assert hp["n_envs"] >= 1 and float(hp["n_timesteps"]) > 0


def test_evaluate_command_on_a_heuristic_and_a_model(run_dir: Path, capsys) -> None:
    rows = cli.main(["evaluate", "--policy", "periodic:j=3", "--scenario", "tiny", "--seeds", "10000", "10001",
                     "--no-progress", "--horizon", "8"])
    assert rows == 0
    cli.main(["evaluate", "--policy", str(run_dir), "--scenario", "tiny", "--seeds", "1", "--no-progress",
              "--horizon", "8"])
    out = capsys.readouterr().out
    assert '"seed": 10000' in out and "episode reward" in out


def test_benchmark_writes_markdown_csv_and_plot(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    cli.main(["benchmark", "--scenario", "tiny", "--seeds", "3", "--policies", "always-end", "cost-aware",
              "oracle:horizon=2,max_candidates=3", str(run_dir / "best_model.zip"), "a2c", "--horizon", "8",
              "--train-timesteps", "16", "--logdir", str(tmp_path / "runs"), "--out", str(out), "--no-progress"])
    md = (out / "tiny_benchmark.md").read_text()
    assert "± " in md and "oracle" in md and "Best heuristic" in md and "a2c" in md
    with (out / "tiny_benchmark.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and all(int(r["n"]) == 3 for r in rows)
    for k in ("reward", "accuracy", "latency_p95_s", "energy_j", "carbon_g", "sla_violations", "bytes_moved"):
        assert f"{k}_mean" in rows[0] and f"{k}_ci95" in rows[0]
    png = out / "tiny_benchmark.png"
    assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"
    # a later benchmark can reuse these episodes (e.g. add a new agent to an old table)
    cli.main(["benchmark", "--scenario", "tiny", "--seeds", "3", "--include-episodes",
              str(out / "tiny_benchmark_episodes.csv"), "--out", str(out), "--stem", "again", "--no-progress"])
    with (out / "again.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 5


def test_verdict_compares_learned_agent_and_oracle_with_the_best_heuristic_paired() -> None:
    from gaisnet_env.agents.base import EpisodeMetrics

    def row(policy: str, mean: float, ci: float, n: int = 10) -> dict:
        return {"policy": policy, "reward_mean": mean, "reward_ci95": ci, "n": n}

    agent = "runs/x/best_model.zip"
    rows = [row("cost-aware", 100.0, 5.0), row("periodic", 90.0, 5.0), row(agent, 111.0, 5.0),
            row("oracle:horizon=3", 108.0, 4.0, n=5)]
    lines = cli.verdict(rows)
    assert lines[0] == "Best heuristic: **cost-aware**, episode reward 100.00 ± 5.00."
    assert agent in lines[1] and "(difference of the means +11.00)" in lines[1]
    assert not any("Paired" in line for line in lines)  # no episodes: no paired statement
    # with episodes: seeds differ in difficulty far more than the policies do, so only pairing separates them
    eps = [EpisodeMetrics(p, s, 0, base + 50.0 * s + 0.1 * s * k, 0.9, 0.1, 1.0, 1.0, 0.0, 0.0, 10, 0, 1.0)
           for s in range(6) for k, (p, base) in enumerate((("cost-aware", 100.0), (agent, 102.0),
                                                            ("oracle:horizon=3", 104.0)))]
    lines = cli.verdict(rows, eps)
    assert any(line.startswith(f"Paired: {agent} - cost-aware = +2.25 ± 0.") and "excludes 0" in line
               for line in lines), lines
    assert lines[-1].startswith(f"Normalised score of {agent} (0: the best heuristic, 1: the oracle): 0.5"), lines


def test_warm_start_from_the_oracle_collects_the_same_episodes_in_parallel(tmp_path: Path) -> None:
    from gaisnet_env.agents.learned import behaviour_clone, teacher_episode

    teacher = "oracle:horizon=2,max_candidates=3"
    obs, acts, masks, rews = teacher_episode("tiny", teacher, 50_000, {"horizon": 6})
    assert len(obs) == len(acts) == len(masks) == len(rews) == 6
    for a, m in zip(acts, masks, strict=True):  # the oracle's actions respect the mask
        a, m = a.reshape(-1, 2), m.reshape(-1, 8)  # per cell: (route, op); 3 route then 5 op entries
        assert m[np.arange(len(a)), a[:, 0]].all() and m[np.arange(len(a)), 3 + a[:, 1]].all()
    stats = []
    for jobs in (1, 2):
        model, _ = train("tiny", "ppo_mask", 16, logdir=tmp_path / str(jobs), progress=False, eval_episodes=1,
                         env_kwargs={"horizon": 6}, hyperparams={"n_steps": 16})
        stats.append(behaviour_clone(model, "tiny", teacher, episodes=2, epochs=2, env_kwargs={"horizon": 6},
                                     augment=True, jobs=jobs))  # ppo_mask observes through AugmentObservation
    assert stats[0]["teacher_reward"] == stats[1]["teacher_reward"]
    assert stats[0]["teacher_reward"] == pytest.approx((sum(rews) + sum(teacher_episode(
        "tiny", teacher, 50_001, {"horizon": 6})[3])) / 2)
    assert stats[0]["samples"] == 12.0


def test_policy_labels_keep_oracles_of_different_settings_apart() -> None:
    assert cli.policy_label("oracle") == \
        "oracle:horizon=3,max_candidates=12,vary_edges=2,rollout=cost-aware,gamma=1.0 (upper ref.)"
    assert cli.policy_label("oracle:horizon=10,max_candidates=24") == \
        "oracle:horizon=10,max_candidates=24,vary_edges=2,rollout=cost-aware,gamma=1.0 (upper ref.)"
    assert cli.policy_label("cost-aware:acc_drop=0.02") == "cost-aware:acc_drop=0.02"


def test_validation_episode_i_is_seed_20000_plus_i(tmp_path: Path) -> None:
    """The trainer's validation plays seeds 20000, 20001, ...: with a frozen policy (learning rate 0) its
    first evaluation equals ``run_episode`` of the saved model on those seeds, episode by episode."""
    _model, out = train("tiny", "ppo_mask", 16, logdir=tmp_path, progress=False, eval_episodes=2, eval_freq=10_000,
                        env_kwargs={"horizon": 6}, hyperparams={"n_steps": 16, "learning_rate": 0.0})
    first = np.load(out / "eval" / "evaluations.npz")["results"][0]
    pol = load_policy(out / "final_model.zip")
    expected = [run_episode(pol, GaisNetEnv("tiny", horizon=6), seed=20_000 + i).reward for i in range(2)]
    assert first.tolist() == pytest.approx(expected, rel=1e-6)
    assert expected[0] != pytest.approx(expected[1])  # two different episodes, not one played twice
