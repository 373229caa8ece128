"""The learned finetune scheduler (agents/finetune_value.py): its model, its exploration data, its policy."""

from __future__ import annotations

import numpy as np
import pytest
from gaisnet_env.agents.augment import edge_row_dim
from gaisnet_env.agents.finetune_value import (
    OP_FINETUNE,
    FinetuneValuePolicy,
    GainModel,
    exploration_episode,
    fit_gain_model,
    load_data,
    main,
)

from gaisnet_env.env import GaisNetEnv
from gaisnet_env.evaluation import build_policy, policy_label


def _linear_model(w_in: np.ndarray, bias: float = 0.0) -> GainModel:
    """A model whose output is ``rows @ w_in + bias`` (one hidden tanh layer kept near linear)."""
    d = edge_row_dim()
    eps = 1e-3
    return GainModel([w_in.reshape(d, 1) * eps, np.zeros(1), np.array([[1.0 / eps]]), np.array([bias])],
                     np.zeros(d), np.ones(d))


def test_model_saves_and_loads_the_same_predictions(tmp_path):
    rng = np.random.default_rng(0)
    d = edge_row_dim()
    model = GainModel([rng.normal(size=(d, 8)), rng.normal(size=8), rng.normal(size=(8, 1)), rng.normal(size=1)],
                      rng.normal(size=d), rng.random(d) + 0.5, {"note": "x"})
    model.save(tmp_path / "m.npz")
    again = GainModel.load(tmp_path / "m.npz")
    rows = rng.random((5, d)).astype(np.float32)
    assert np.array_equal(model.predict(rows), again.predict(rows))
    assert again.meta == {"note": "x"}


def test_bad_models_and_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="input width 3"):
        GainModel([np.zeros((3, 1)), np.zeros(1)], np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="pairs"):
        GainModel([np.zeros((edge_row_dim(), 1))], np.zeros(1), np.ones(1))
    with pytest.raises(FileNotFoundError, match="model='nowhere.npz'"):
        GainModel.load("nowhere.npz")
    _linear_model(np.zeros(edge_row_dim())).save(tmp_path / "m.npz")
    env = GaisNetEnv("tiny")
    with pytest.raises(ValueError, match="tau=nan"):
        FinetuneValuePolicy(env, model=tmp_path / "m.npz", tau=float("nan"))
    with pytest.raises(TypeError):
        build_policy(f"finetune-value:model={tmp_path / 'm.npz'},taux=1", env)


def test_fit_recovers_a_relation_and_reports_heldout_r2():
    rng = np.random.default_rng(1)
    d = edge_row_dim()
    w = np.zeros(d)
    w[2], w[13] = -0.3, 0.2  # edge accuracy estimate and drift
    xs = [rng.random((60, d)) for _ in range(8)]
    ys = [x @ w + 0.01 * rng.normal(size=len(x)) for x in xs]
    model, stats = fit_gain_model(xs, ys, hidden=16, epochs=150)
    assert stats["r2_heldout"] > 0.9
    assert stats["heldout_top_half_change"] > stats["heldout_bottom_half_change"]
    with pytest.raises(ValueError, match="need more"):
        fit_gain_model([xs[0][:5]], [ys[0][:5]])


def test_exploration_episode_labels_finetunes_and_is_deterministic():
    x, y, reward = exploration_episode("tiny", 60000, finetune_prob=0.5)
    x2, y2, reward2 = exploration_episode("tiny", 60000, finetune_prob=0.5)
    assert x.shape == (len(y), edge_row_dim()) and len(y) >= 2
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0 and np.abs(y).max() > 0.0
    assert np.array_equal(x, x2) and np.array_equal(y, y2) and reward == reward2


def test_policy_finetunes_where_the_prediction_clears_tau(tmp_path):
    w = np.zeros(edge_row_dim())
    _linear_model(w, bias=0.05).save(tmp_path / "m.npz")  # predicts +0.05 everywhere
    env = GaisNetEnv("tiny")
    eager = build_policy(f"finetune-value:model={tmp_path / 'm.npz'},tau=0.01", env)
    never = build_policy(f"finetune-value:model={tmp_path / 'm.npz'},tau=0.1", env)
    base = build_policy("periodic:j=0", env)
    obs, info = env.reset(seed=3)
    for pol in (eager, never, base):
        pol.reset(3)
    a_eager, a_never, a_base = (p.act(obs, info) for p in (eager, never, base))
    assert np.array_equal(a_never, a_base)
    assert a_eager[1] == OP_FINETUNE and np.array_equal(a_eager[0::2], a_base[0::2])
    assert policy_label(f"finetune-value:model={tmp_path / 'm.npz'},tau=0.01").startswith("finetune-value:tau=0.01")


def test_main_builds_a_model_folder(tmp_path):
    meta = main(["--scenario", "tiny", "--episodes", "4", "--finetune-prob", "0.5", "--hidden", "8", "--epochs", "20",
                 "--out", str(tmp_path / "fv")])
    assert (tmp_path / "fv" / "model.npz").is_file() and (tmp_path / "fv" / "meta.json").is_file()
    assert meta["episodes"] == 4 and meta["finetunes"] > 0 and "r2_heldout" in meta
    assert [len(y) for _, y in load_data(tmp_path / "fv" / "data.npz")] == meta["episode_finetunes"]
    # a second round around the first model's policy, fitted on both rounds' episodes
    again = main(["--scenario", "tiny", "--episodes", "2", "--first-seed", "60100", "--finetune-prob", "0.1",
                  "--around", str(tmp_path / "fv" / "model.npz"), "--around-tau", "-1", "--data-in",
                  str(tmp_path / "fv" / "data.npz"), "--hidden", "8", "--epochs", "20", "--out", str(tmp_path / "fv2")])
    assert again["episodes"] == 6 and again["seeds"] == [60100, 60101] and again["around_tau"] == -1
    assert min(again["episode_finetunes"]) > 0  # tau -1: the guide finetunes wherever it can
    env = GaisNetEnv("tiny")
    pol = build_policy(f"finetune-value:model={tmp_path / 'fv' / 'model.npz'},tau=0.0", env)
    obs, info = env.reset(seed=1)
    pol.reset(1)
    while True:
        obs, _, term, trunc, info = env.step(pol.act(obs, info))
        if term or trunc:
            break
