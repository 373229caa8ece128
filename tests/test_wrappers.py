"""Wrappers: graph observation, reward-weight override, episode metrics, and their composition
with Gymnasium's standard wrappers (all on ``tiny``)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest
from gymnasium.wrappers import NormalizeObservation, RecordEpisodeStatistics, TimeLimit

import gaisnet_env  # noqa: F401  (registers the ids)
from gaisnet_env.env import EDGE_FEATURES, GLOBAL_FEATURES
from gaisnet_env.wrappers import (
    METRICS_MEAN,
    METRICS_TOTAL,
    GraphObservation,
    RecordMetrics,
    RewardWeights,
    node_feature_names,
)

TINY = "gaisnet_env/GaisNet-tiny-v0"


def _run(env: gym.Env, seed: int = 0, steps: int | None = None) -> list[tuple]:
    """Step with a seeded action stream until the episode ends (or ``steps``); return the transitions."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    out = []
    while True:
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out.append((obs, r, term, trunc, info))
        if term or trunc or (steps is not None and len(out) >= steps):
            return out


def test_graph_observation_layout_and_networkx() -> None:
    env = GraphObservation(gym.make(TINY))
    base = env.unwrapped
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    n = base.graph.number_of_nodes()
    assert obs["nodes"].shape == (n, len(node_feature_names())) == (n, 4 + len(EDGE_FEATURES) + len(GLOBAL_FEATURES))
    assert env.node_names[0] == "cloud" and set(env.node_names) == set(base.graph.nodes)
    # adjacency / edge_index match the networkx topology
    adj = nx.to_numpy_array(base.graph, nodelist=env.node_names)
    np.testing.assert_array_equal(obs["adjacency"], adj.astype(np.float32))
    ei = obs["edge_index"]
    assert ei.shape == (2, 2 * base.graph.number_of_edges())
    assert all(adj[a, b] == 1 for a, b in ei.T)
    # node rows come from the flat observation
    flat = base._observation()
    nf = len(EDGE_FEATURES)
    rows = {v: obs["nodes"][i] for i, v in enumerate(env.node_names)}
    np.testing.assert_array_equal(rows["cloud"][4 + nf :], flat[base.n_edges * nf :])
    for e in range(base.n_edges):
        np.testing.assert_array_equal(rows[f"edge{e}"][4 : 4 + nf], flat[e * nf : (e + 1) * nf])
        assert rows[f"end{e}"][4 + EDGE_FEATURES.index("accuracy_end")] == flat[e * nf + 1]
        assert rows[f"end{e}"][4 + EDGE_FEATURES.index("accuracy_edge")] == 0.0
    assert [rows[v][:4].argmax() for v in ("cloud", "edge0", "end0")] == [0, 2, 3]
    obs2, *_ = env.step(env.action_space.sample())
    g = env.to_networkx()
    assert isinstance(g, nx.Graph) and g.number_of_edges() == base.graph.number_of_edges()
    np.testing.assert_array_equal(g.nodes["edge0"]["x"], obs2["nodes"][env.node_names.index("edge0")])
    assert g.nodes["edge0"]["tier"] == "edge" and "accuracy_edge" in g.nodes["edge0"]
    assert "accuracy_edge" not in g.nodes["end0"] and "cloud_backlog" in g.nodes["cloud"]
    assert "x" not in base.graph.nodes["edge0"]  # the env's own graph is untouched
    env.close()


def test_graph_observation_passes_env_checker() -> None:
    from gymnasium.utils.env_checker import check_env

    env = GraphObservation(gym.make(TINY).unwrapped)
    with warnings.catch_warnings():
        warnings.filterwarnings("error")
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version.*")
        check_env(env, skip_render_check=True)
    env.close()


def test_reward_weights_default_reproduces_env_reward() -> None:
    plain = _run(gym.make(TINY), seed=3)
    wrapped = _run(RewardWeights(gym.make(TINY)), seed=3)
    for (_, r0, *_), (_, r1, _, _, info) in zip(plain, wrapped, strict=True):
        assert r1 == pytest.approx(r0, rel=1e-9, abs=1e-12)
        assert info["reward_original"] == pytest.approx(r0)


def test_reward_weights_override_recomputes_components() -> None:
    env = RewardWeights(gym.make(TINY), w_lat=2.0, weights={"w_carbon": 0.5})
    base_w = gym.make(TINY).unwrapped.scenario.reward
    assert env.weights["w_lat"] == 2.0 and env.weights["w_carbon"] == 0.5
    assert env.weights["w_acc"] == base_w.w_acc
    for _, r, _, _, info in _run(env, seed=1, steps=5):
        comps = [info[k] for k in ("reward_accuracy", "reward_latency", "reward_energy", "reward_sla", "reward_carbon")]
        assert r == pytest.approx(sum(comps))
        assert info["reward_latency"] == pytest.approx(-2.0 * info["latency_ratio"])
        assert info["reward_carbon"] == pytest.approx(-0.5 * info["carbon_g"] / env.unwrapped.carbon_ref_g)
    with pytest.raises(ValueError, match="unknown weight"):
        RewardWeights(gym.make(TINY), w_latency=1.0)
    with pytest.raises(ValueError, match=">= 0"):
        RewardWeights(gym.make(TINY), w_lat=-1.0)


def test_record_metrics_episode_summary() -> None:
    env = RecordMetrics(gym.make(TINY))
    steps = _run(env, seed=2)
    assert all("episode_metrics" not in s[4] for s in steps[:-1])
    m = steps[-1][4]["episode_metrics"]
    assert m["length"] == len(steps) == env.unwrapped.scenario.horizon
    assert m["return"] == pytest.approx(sum(s[1] for s in steps))
    assert m["accuracy_mean"] == pytest.approx(np.mean([s[4]["accuracy"] for s in steps]))
    assert m["energy_j_total"] == pytest.approx(sum(s[4]["energy_j"] for s in steps))
    assert m["energy_j_total"] == pytest.approx(steps[-1][4]["episode_energy_j"])
    assert {f"{k}_mean" for k in METRICS_MEAN} | {f"{k}_total" for k in METRICS_TOTAL} <= set(m)
    assert env.episode_metrics == m
    # a second episode starts from zero
    steps2 = _run(env, seed=2)
    assert steps2[-1][4]["episode_metrics"] == pytest.approx(m)


def test_wrappers_compose_with_standard_wrappers() -> None:
    """RewardWeights -> NormalizeObservation -> TimeLimit -> RecordMetrics -> RecordEpisodeStatistics."""
    env = gym.make(TINY)
    env = RewardWeights(env, w_energy=0.0)
    env = NormalizeObservation(env)
    env = TimeLimit(env, max_episode_steps=7)
    env = RecordMetrics(env)
    env = RecordEpisodeStatistics(env)
    steps = _run(env, seed=0)
    assert len(steps) == 7 and steps[-1][3]  # TimeLimit truncates first
    info = steps[-1][4]
    assert info["episode"]["l"] == 7 and info["episode_metrics"]["length"] == 7
    assert info["episode"]["r"] == pytest.approx(info["episode_metrics"]["return"])
    assert all(s[4]["reward_energy"] == 0.0 for s in steps)
    assert np.all(np.isfinite(steps[-1][0]))
    # the graph view on top of a normalised flat observation, plus the standard wrappers
    genv = RecordEpisodeStatistics(TimeLimit(GraphObservation(NormalizeObservation(gym.make(TINY))), 5))
    gsteps = _run(genv, seed=0)
    assert len(gsteps) == 5 and "episode" in gsteps[-1][4]
    assert gsteps[-1][0]["nodes"].shape[1] == len(node_feature_names())
    # action masks stay reachable through the wrappers (sb3-contrib uses get_wrapper_attr)
    mask = env.get_wrapper_attr("action_masks")()
    assert mask.dtype == bool and mask.shape == (sum(env.action_space.nvec),)
