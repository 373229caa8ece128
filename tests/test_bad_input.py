"""Hostile input (the reliability audit): every bad scenario file, argument, seed or action gets an
error that names the field or argument, the value and what is allowed."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaisnet_env.env import OP_NONE, ROUTE_EDGE, GaisNetEnv
from gaisnet_env.scenario import ScenarioError, load_scenario


def _yaml(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "s.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# ------------------------------------------------------------------------------- scenario files
def test_duplicate_sections_and_keys_are_errors(tmp_path: Path) -> None:
    two = "name: x\nworkload:\n  rate_per_s: 3.0\nhorizon: 20\nworkload:\n  generate_share: 0.2\n"
    with pytest.raises(ScenarioError, match=r"line 5: key 'workload' given twice .*first at line 2"):
        load_scenario(_yaml(tmp_path, two))
    inner = "topology:\n  n_edges: 4\n  n_edges: 5\n"
    with pytest.raises(ScenarioError, match=r"line 3: key 'n_edges' given twice"):
        load_scenario(_yaml(tmp_path, inner))


@pytest.mark.parametrize("text", ["010", "-07", "0_10"])
def test_leading_zero_integers_are_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(ScenarioError, match=rf"line 2: horizon: got '{text}', an integer with a leading zero"):
        load_scenario(_yaml(tmp_path, f"name: x\nhorizon: {text}\n"))


def test_yaml_12_numbers_still_load(tmp_path: Path) -> None:
    sc = load_scenario(_yaml(tmp_path, "name: '010'\nhorizon: 1_000\nseed: 0\nreward:\n  w_lat: 1e3\n"))
    assert (sc.name, sc.horizon, sc.seed, sc.reward.w_lat) == ("010", 1000, 0, 1000.0)
    assert load_scenario(_yaml(tmp_path, "horizon: 0x10\n")).horizon == 16
    assert load_scenario(_yaml(tmp_path, "horizon: 0o17\n")).horizon == 15


def test_unreadable_scenario_sources(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"s\.yaml'?: not UTF-8 text .* at byte 9"):
        load_scenario(_yaml(tmp_path, b"name: caf\xe9\n"))
    with pytest.raises(ScenarioError, match="is a directory; pass a YAML file or a built-in name"):
        load_scenario(tmp_path)
    for bad in (None, 3, ["metro"]):
        with pytest.raises(TypeError, match=r"scenario: got .*; expected a built-in name \(city, .*a Scenario"):
            GaisNetEnv(bad)


def test_seed_beyond_what_pre_training_takes() -> None:
    with pytest.raises(ScenarioError, match=r"seed: got 18446744073709551616; must be <= 2147483647"):
        GaisNetEnv("tiny", seed=2**64)


# ------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("threads", [0, -2, 1.5, True, "2"])
def test_torch_threads_must_be_a_positive_integer(threads: object) -> None:
    with pytest.raises(ValueError, match=rf"torch_threads: got {threads!r}; allowed: None or an integer >= 1"):
        GaisNetEnv("tiny", torch_threads=threads)


def test_action_masks_before_reset_raises_what_step_raises() -> None:
    env = GaisNetEnv("tiny")
    with pytest.raises(RuntimeError, match=r"action_masks\(\) called before reset\(\)"):
        env.action_masks()
    with pytest.raises(RuntimeError, match=r"step\(\) called before reset\(\)"):
        env.step([ROUTE_EDGE, OP_NONE])


# ------------------------------------------------------------------------------- actions
@pytest.fixture(scope="module")
def tiny() -> GaisNetEnv:
    env = GaisNetEnv("tiny")
    env.reset(seed=0)
    return env


def test_huge_unsigned_action_is_reported_as_given(tiny: GaisNetEnv) -> None:
    with pytest.raises(ValueError, match=r"action\[0\] \(edge 0 route\) = 18446744073709551615 is out of range"):
        tiny.step(np.array([2**64 - 1, 0], dtype=np.uint64))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dtype=st.sampled_from(["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                           "float16", "float32", "float64"]),
    route=st.integers(-(2**70), 2**70),
    op=st.integers(0, 4),
)
def test_any_integral_action_is_taken_or_refused_by_name(tiny: GaisNetEnv, dtype: str, route: int, op: int) -> None:
    """No numpy warning, and either the step runs (route in 0..2) or the error names action[0]."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # building the test input may overflow; the env must not
        action = np.array([route, op]).astype(dtype) if abs(route) < 2**63 else np.array([route, op], dtype=object)
    snap = tiny.snapshot()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                tiny.step(action)
                assert 0 <= int(action[0]) <= 2
            except ValueError as e:
                assert str(e).startswith(("action[0] (edge 0 route) = ", "action: expected integers"))
    finally:
        tiny.restore(snap)
