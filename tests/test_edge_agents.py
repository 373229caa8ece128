"""The shared edge policy (agents/edge_agents.py): every edge a slot of an SB3 VecEnv, parameter sharing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gaisnet_env.agents.augment import ObsAugmenter, edge_row_dim, edge_rows
from gaisnet_env.agents.base import run_episode
from gaisnet_env.agents.edge_agents import EdgeAgentsVecEnv, edge_teacher_samples, train_edge_agents
from gaisnet_env.agents.heuristics import make_heuristic
from gaisnet_env.agents.saved_models import load_policy

from gaisnet_env.callbacks import info_metrics
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.masks import flat_mask


def test_slots_replay_the_joint_env_copy_by_copy() -> None:
    """Two metro copies (4 edges each): slot c*E + e is edge e of copy c, seeded s + c; the per-edge rewards
    are info['edge_reward'], the rows edge_rows of the copy's observation, the masks its edges' masks."""
    venv = EdgeAgentsVecEnv("metro", n_copies=2, horizon=3)
    venv.seed(7)
    rows = venv.reset()
    assert rows.shape == (8, edge_row_dim()) and venv.action_space.nvec.tolist() == [3, 5]
    refs = [GaisNetEnv("metro", horizon=3) for _ in range(2)]
    augs = [ObsAugmenter() for _ in refs]
    pols = [make_heuristic("cost-aware", env=r) for r in refs]
    obs_info = [r.reset(seed=7 + c) for c, r in enumerate(refs)]
    for c, (o, _i) in enumerate(obs_info):
        assert np.array_equal(rows[4 * c: 4 * c + 4], edge_rows(o, augs[c]))
    for _ in range(3):
        joint = [np.asarray(p.act(o, i)) for p, (o, i) in zip(pols, obs_info, strict=True)]
        masks = venv.action_masks()
        for c, (_o, i) in enumerate(obs_info):
            assert np.array_equal(masks[4 * c: 4 * c + 4], flat_mask(i["action_mask"]).reshape(4, 8))
        rows, rews, dones, infos = venv.step(np.concatenate([a.reshape(-1, 2) for a in joint]))
        out = [r.step(a) for r, a in zip(refs, joint, strict=True)]
        for c, (o, _r, term, trunc, i) in enumerate(out):
            assert np.array_equal(rews[4 * c: 4 * c + 4], np.asarray(i["edge_reward"], np.float32))
            assert dones[4 * c] == (term or trunc)
            expected = edge_rows(o, augs[c])  # the final rows are the terminal observation
            got = np.stack([infos[4 * c + e]["terminal_observation"] for e in range(4)]) if dones[4 * c] else \
                rows[4 * c: 4 * c + 4]
            assert np.array_equal(got, expected)
        obs_info = [(o, i) for o, _r, _t, _tr, i in out]
    assert dones.all() and "terminal_observation" in infos[0] and "episode" in infos[0] and "episode" in infos[4]
    assert infos[0]["episode"]["l"] == 3
    assert info_metrics(infos[0]) and info_metrics(infos[4]) and not info_metrics(infos[1])  # a copy's info, once


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(ValueError, match="reward_mode"):
        EdgeAgentsVecEnv("tiny", reward_mode="team")
    with pytest.raises(ValueError, match="n_copies"):
        EdgeAgentsVecEnv("tiny", n_copies=0)
    venv = EdgeAgentsVecEnv("tiny")
    venv.reset()
    with pytest.raises(ValueError, match="actions"):
        venv.step(np.zeros((2, 2), dtype=np.int64))


def test_teacher_samples_are_split_edge_by_edge() -> None:
    rows, acts, masks, rets, totals = edge_teacher_samples("metro", "cost-aware", [3], 0.9, env_kwargs={"horizon": 4})
    assert rows.shape == (16, edge_row_dim()) and acts.shape == (16, 2) and masks.shape == (16, 8)
    assert rets.shape == (16,) and totals.shape == (1,) and np.isfinite(rets).all()
    ref = run_episode(make_heuristic("cost-aware", env=(env := GaisNetEnv("metro", horizon=4))), env, seed=3)
    assert totals[0] == pytest.approx(ref.reward)


def test_trained_edge_policy_plays_the_joint_env(tmp_path: Path) -> None:
    """Train on metro (a few steps, cloned from cost-aware), then the saved model acts edge by edge through
    load_policy; its validation history is the system reward on seeds 20000 + i."""
    _model, run_dir = train_edge_agents("metro", 8, logdir=tmp_path, warm_start="cost-aware", warm_start_episodes=1,
                                        eval_episodes=1, eval_freq=4, env_kwargs={"horizon": 4},
                                        hyperparams={"n_steps": 4, "batch_size": 16, "warm_start_epochs": 2})
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["view"].startswith("edges") and meta["num_timesteps"] == 32 and meta["warm_start"]["samples"] == 16
    pol = load_policy(run_dir / "best_model.zip")
    m = run_episode(pol, GaisNetEnv("metro", horizon=4), seed=20_000)
    assert m.epochs == 4 and np.isfinite(m.reward)
    assert max(v["system_reward"] for v in meta["validation"]) == pytest.approx(m.reward)
