"""The operator's view of tier accuracy (``accuracy_view``): estimates from the labels that come back."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from gaisnet_env import operator_view
from gaisnet_env.env import EDGE_FEATURES, OP_FINETUNE, OP_NONE, ROUTE_EDGE, WORKER_METHODS, GaisNetEnv
from gaisnet_env.worker_config import STYLES
from gaisnet_env.workers import CLASSIFIER_TIERS

NF = len(EDGE_FEATURES)


def _acc_feats(env: GaisNetEnv, obs: np.ndarray) -> np.ndarray:
    """Observation features 1-3 (accuracy end / edge / cloud), (E, 3)."""
    return obs[: env.n_edges * NF].reshape(env.n_edges, NF)[:, 1:4]


def _actions(env: GaisNetEnv, n: int, seed: int) -> list[np.ndarray]:
    env.action_space.seed(seed)
    return [env.action_space.sample() for _ in range(n)]


def test_estimated_features_never_read_the_test_pool() -> None:
    env = GaisNetEnv("tiny")
    assert env.accuracy_view == "estimated"
    env.reset(seed=0)
    for a in _actions(env, 20, 0):
        env.step(a)
    calls = []
    real = env._tier_accuracy

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("the estimated view read the held-out test pool")

    env._tier_accuracy = counting
    w = env.workers
    saved = {n: getattr(w, n) for n in ("accuracy_table", "_table_of", "accuracy_all", "accuracy")}
    for n in saved:
        setattr(w, n, forbidden)
    try:
        obs = env._observation()
    finally:
        for n in saved:
            delattr(w, n)  # back to the class methods
        del env._tier_accuracy
    assert calls == []
    assert np.all((_acc_feats(env, obs) >= 0) & (_acc_feats(env, obs) <= 1))


def test_estimated_edge_accuracy_converges_to_exact() -> None:
    # a domain that holds for the whole run (tiny's default drift switches it every few epochs, and the
    # decayed counts remember about 10 epochs)
    env = GaisNetEnv("tiny", workload={"label_rate": 1.0}, drift={"every_epochs": 1000})
    obs, _ = env.reset(seed=2)
    np.testing.assert_array_equal(_acc_feats(env, obs), operator_view.INITIAL_PRIOR)  # nothing seen yet
    act = np.tile([ROUTE_EDGE, OP_NONE], env.n_edges)
    errs = []
    for _ in range(60):
        obs, _, _, _, info = env.step(act)
        errs.append(abs(float(_acc_feats(env, obs)[:, 1].mean()) - info["accuracy_edge"]))
    assert max(errs[-20:]) < 0.1, errs
    # the cloud's answers are never observed when nothing is routed to the cloud: it stays at the prior
    np.testing.assert_array_equal(_acc_feats(env, obs)[:, 2], operator_view.INITIAL_PRIOR)


def test_committed_op_restarts_the_counts_of_the_changed_tier() -> None:
    env = GaisNetEnv("tiny", workload={"label_rate": 1.0}, drift={"every_epochs": 1000})
    env.reset(seed=2)
    E = env.n_edges
    for _ in range(10):
        env.step(np.tile([ROUTE_EDGE, OP_NONE], E))
    st = env.state
    act = np.tile([ROUTE_EDGE, OP_FINETUNE], E)
    for _ in range(20):
        seen_before = st.label_seen.copy()
        obs, *_, info = env.step(act)
        act = np.tile([ROUTE_EDGE, OP_NONE], E)
        if info["ops_finished"]:
            break
    assert info["ops_finished"] == E
    assert (st.label_seen[:, 1] == 0).all() and (st.label_hits[:, 1] == 0).all()
    assert (st.label_seen[:, 0] > seen_before[:, 0] * operator_view.DECAY).all()  # the end tier keeps counting
    # the new prior is the estimate just before the change (this epoch's labels folded in)
    assert (st.label_prior[:, 1] != operator_view.INITIAL_PRIOR).all()
    np.testing.assert_array_equal(_acc_feats(env, obs)[:, 1], st.label_prior[:, 1].astype(np.float32))


def test_exact_view_is_the_oracle_and_the_rest_is_unchanged() -> None:
    exact = GaisNetEnv("tiny", accuracy_view="exact")
    est = GaisNetEnv("tiny")
    acts = _actions(exact, 30, 5)
    ox, ix = exact.reset(seed=5)
    oe, ie = est.reset(seed=5)
    for a in [None, *acts]:
        if a is not None:
            ox, rx, *_, ix = exact.step(a)
            oe, re_, *_, ie = est.step(a)
            assert rx == re_  # label_hits draws no random numbers: the episode is the same
            assert ix["accuracy_edge"] == ie["accuracy_edge"]
        ref = exact._tier_accuracy(*exact._domain).astype(np.float32)
        assert _acc_feats(exact, ox).tobytes() == ref.tobytes()
        keep = np.ones(ox.shape, dtype=bool)
        keep[: exact.n_edges * NF].reshape(exact.n_edges, NF)[:, [1, 2, 3, 13]] = False  # accuracies, drift
        assert ox[keep].tobytes() == oe[keep].tobytes()


def test_estimated_drift_comes_from_the_domain_reports_only() -> None:
    env = GaisNetEnv("drift-storm", horizon=40)
    obs, _ = env.reset(seed=3)
    st = env.state
    drift_feature = EDGE_FEATURES.index("drift")
    rows = []
    for epoch in range(40):
        op = np.full(env.n_edges, OP_FINETUNE if epoch % 7 == 3 else OP_NONE)
        obs, *_ = env.step(np.stack([np.full(env.n_edges, ROUTE_EDGE), op], axis=1).ravel())
        feats = obs[: env.n_edges * NF].reshape(env.n_edges, NF)
        rc, rs, has = operator_view.reports(env.workers, env.n_edges)
        want = np.where(has, operator_view.domain_drift(rc, rs, st.reported_class_mix, st.reported_style_mix), 0.0)
        assert feats[:, drift_feature].tobytes() == want.astype(np.float32).tobytes()
        rows.append(feats[:, drift_feature].copy())
    assert np.ptp(np.array(rows)) > 0.05  # it moves with the reports
    # the true domain is never read for it: with no labels returned, no report changes and it stays 0
    quiet = GaisNetEnv("drift-storm", horizon=40, workload={"label_rate": 0.0})
    quiet.reset(seed=3)
    exact_drift = []
    for _ in range(30):
        obs, *_ = quiet.step(np.stack([np.full(quiet.n_edges, ROUTE_EDGE), np.zeros(quiet.n_edges, int)], 1).ravel())
        assert (obs[: quiet.n_edges * NF].reshape(quiet.n_edges, NF)[:, drift_feature] == 0).all()
        exact_drift.append(quiet._drift(*quiet._domain).max())
    assert max(exact_drift) > 0.1  # while the true domain did drift


def test_snapshot_restore_replays_estimated_observations() -> None:
    env = GaisNetEnv("tiny", workload={"label_rate": 0.5})
    env.reset(seed=7)
    for a in _actions(env, 15, 7):
        env.step(a)
    snap = env.snapshot()
    acts = _actions(env, 15, 8)
    first = [env.step(a)[0].tobytes() for a in acts]
    state_after = env.state
    env.restore(snap)
    again = [env.step(a)[0].tobytes() for a in acts]
    assert first == again
    for name in ("label_hits", "label_seen", "label_prior"):
        assert getattr(env.state, name).tobytes() == getattr(state_after, name).tobytes()


def test_bad_accuracy_view_raises() -> None:
    with pytest.raises(ValueError, match=r"accuracy_view.*'oracle'.*'estimated', 'exact'"):
        GaisNetEnv("tiny", accuracy_view="oracle")


def test_plugin_workers_without_label_hits() -> None:
    base = GaisNetEnv("tiny", accuracy_view="exact").workers
    plugin = types.SimpleNamespace(**{n: getattr(base, n) for n in WORKER_METHODS})
    with pytest.raises(TypeError, match=r"label_hits.*accuracy_view=\"exact\""):
        GaisNetEnv("tiny", worker_system=plugin)
    env = GaisNetEnv("tiny", worker_system=plugin, accuracy_view="exact")
    env.reset(seed=0)
    env.step(env.action_space.sample())


def test_label_hits_equal_a_direct_forward_pass() -> None:
    w = GaisNetEnv("tiny", accuracy_view="exact").workers
    w.reset(1)
    cap = w.config.feedback_buffer
    e = 0
    rng = np.random.default_rng(0)
    cm = np.full(10, 0.1)
    sm = np.zeros(len(STYLES))
    sm[:3] = 1.0 / 3.0
    assert w.label_hits(e, 5).tolist() == [0, 0, 0]  # an empty buffer
    added_idx, added_style = [], []
    for k in (cap // 2, cap // 2 + 7, 11):  # the later additions wrap around the ring buffer
        state = rng.bit_generator.state
        idx, style = w.data.sample_private(e, cm, sm, k, rng)  # the samples add_feedback will draw
        rng.bit_generator.state = state
        w.add_feedback(e, cm, sm, k, rng)
        added_idx.extend(idx.tolist())
        added_style.extend(style.tolist())
    assert w._fb_ptr[e] != 0 and w._fb_count[e] == cap
    for n in (1, 11, 40, cap, cap + 5):
        m = min(n, cap)
        x, y = w._views[e].get(np.array(added_idx[-m:]), np.array(added_style[-m:]))
        with torch.no_grad():
            want = [int((w._classifier(tier, e)(x).argmax(1) == y).sum()) for tier in CLASSIFIER_TIERS]
        got = w.label_hits(e, n)
        assert got.shape == (3,) and got.tolist() == want
        assert np.all(got <= m)


def test_label_scoring_tables_follow_the_weights_and_not_the_history() -> None:
    """label_hits reads per-(weight token, style) tables of the whole private pool: after a commit they are
    recomputed, and a restored copy that never scored anything gives the same counts bit for bit."""
    env = GaisNetEnv("tiny", accuracy_view="exact")
    w = env.workers
    w.reset(2)
    rng = np.random.default_rng(1)
    cm, sm = np.full(10, 0.1), np.full(len(STYLES), 1.0 / len(STYLES))
    w.add_feedback(0, cm, sm, 60, rng)
    before = w.label_hits(0, 60)
    snapshot = w.state_dict()
    assert w.start_op("finetune", 0).ok
    w.commit_op(0)
    idx, sty = w._newest_feedback(0, 60)
    x, y = w._views[0].get(idx, sty)
    with torch.no_grad():
        want = [int((w._classifier(t, 0)(x).argmax(1) == y).sum()) for t in CLASSIFIER_TIERS]
    assert w.label_hits(0, 60).tolist() == want  # the edge's new adapter, not the memo of the old one
    fresh = GaisNetEnv("tiny", accuracy_view="exact").workers
    fresh.load_state_dict(snapshot)
    assert fresh._correct_memo == {}  # nothing scored yet: the tables are built from scratch
    assert fresh.label_hits(0, 60).tolist() == before.tolist()
    w._fill_correct(1, 0, 3)
    table, filled = w._correct_tables()
    view = w._views[0]
    x, y = view.get(view.indices, np.full(len(view), 3))
    with torch.no_grad():
        assert filled[1, 0, 3]
        assert np.array_equal(table[1, 0, 3, : len(view)], (w._classifier("edge", 0)(x).argmax(1) == y).numpy())


def test_batched_label_scoring_and_domain_reports_equal_the_per_edge_ones() -> None:
    w = GaisNetEnv("metro", accuracy_view="exact").workers
    w.reset(5)
    rng = np.random.default_rng(3)
    cap = w.config.feedback_buffer
    for e, k in enumerate((0, 9, cap + 30, 70)):  # an empty buffer, a partial one, a wrapped one
        sm = np.zeros(len(STYLES))
        sm[[1, 7]] = 0.5
        w.add_feedback(e, np.full(10, 0.1), sm, k, rng)
    w.add_feedback(3, np.full(10, 0.1), np.full(len(STYLES), 1 / len(STYLES)), 90, rng)  # wraps edge 3 too
    edges, n = np.array([3, 0, 2, 1]), np.array([40, 5, cap + 9, 9])
    want = np.stack([w.label_hits(int(e), int(k)) for e, k in zip(edges, n, strict=True)])
    w._correct_memo.clear()
    assert np.array_equal(w.label_hits_batch(edges, n), want)
    ch, sh, count = w.domain_reports()
    for e in range(w.n_edges):
        one = w.domain_report(e)
        assert np.array_equal(ch[e], one[0]) and np.array_equal(sh[e], one[1]) and count[e] == one[2]
        assert ch[e].dtype == one[0].dtype == np.float32


def test_model_change_carries_the_estimate_into_the_prior() -> None:
    hits, seen, prior = operator_view.initial(2)
    hits, seen = operator_view.observe(hits, seen, np.full((2, 3), 8.0), np.full((2, 3), 10.0),
                                       np.array([[True, True, False], [True, True, True]]))
    est = operator_view.estimate(hits, seen, prior)
    np.testing.assert_allclose(est[0], [(8 + 1) / 12, (8 + 1) / 12, 0.5])
    changed = np.zeros((2, 3), dtype=bool)
    changed[:, 2] = True
    h2, s2, p2 = operator_view.model_changed(hits, seen, prior, changed)
    np.testing.assert_array_equal(p2[:, 2], est[:, 2])
    np.testing.assert_array_equal(operator_view.estimate(h2, s2, p2), est)  # no jump at the change
    assert (h2[:, 2] == 0).all() and (s2[:, 2] == 0).all() and (h2[:, :2] == hits[:, :2]).all()
    h3, s3 = operator_view.observe(h2, s2, np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3), dtype=bool))
    np.testing.assert_allclose(h3, operator_view.DECAY * h2)


def test_fast_path_estimates_from_its_tables() -> None:
    env = GaisNetEnv("tiny", worker_system="fast", workload={"label_rate": 1.0}, drift={"every_epochs": 1000})
    env.reset(seed=2)
    E = env.n_edges
    finished = 0
    for t in range(30):
        obs, *_, info = env.step(np.tile([ROUTE_EDGE, OP_FINETUNE if t == 5 else OP_NONE], E))
        finished += info["ops_finished"]
    assert finished == E  # a committed fast-path op (no weights change) is scored from its predicted table
    err = np.abs(_acc_feats(env, obs)[:, :2] - env._tier_accuracy(*env._domain)[:, :2])
    assert err.max() < 0.1, err
