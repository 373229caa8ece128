"""The benchmark's Pareto plot (outlier panel, rank colours, shared labels) and the rgb_array frame's legend."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np

from gaisnet_env import render
from gaisnet_env.env import GaisNetEnv
from gaisnet_env.plots import coincident_groups, energy_ranks, latency_outliers, pareto_front, pareto_plot


def _row(policy: str, acc: float, lat: float, energy: float) -> dict:
    return {"policy": policy, "accuracy_mean": acc, "accuracy_ci95": 0.02, "latency_p95_s_mean": lat,
            "latency_p95_s_ci95": 0.01, "energy_j_mean": energy, "reward_mean": 1.0}


ROWS = [_row("always-end", 0.606, 0.093, 75e3), _row("greedy-latency", 0.606, 0.093, 75e3),
        _row("always-cloud", 0.62, 35.0, 1.6e6), _row("cost-aware", 0.836, 0.106, 1.1e5),
        _row("ppo", 0.811, 0.103, 1.2e5), _row("threshold", 0.81, 0.128, 3e5)]


def test_outliers_ranks_front_and_shared_labels() -> None:
    assert latency_outliers(ROWS) == [2]  # always-cloud: far above 3x the median p95 latency
    ranks, levels = energy_ranks(ROWS)
    assert ranks.tolist() == [0, 0, 4, 1, 2, 3] and levels.tolist() == [75e3, 1.1e5, 1.2e5, 3e5, 1.6e6]
    front = pareto_front([(r["accuracy_mean"], r["latency_p95_s_mean"]) for r in ROWS])
    assert front == [(0.606, 0.093), (0.811, 0.103), (0.836, 0.106)]
    xy = np.array([(r["accuracy_mean"], r["latency_p95_s_mean"]) for i, r in enumerate(ROWS) if i != 2])
    groups = coincident_groups(xy)
    assert groups[0] == [0, 1] and len(groups) == 4  # always-end and greedy-latency share one label


def test_pareto_plot_adds_a_panel_without_the_outliers(tmp_path) -> None:
    two = mpimg.imread(pareto_plot(ROWS, tmp_path / "two.png"))
    one = mpimg.imread(pareto_plot([r for i, r in enumerate(ROWS) if i != 2], tmp_path / "one.png"))
    assert two.shape[1] > 1.4 * one.shape[1]  # the second panel
    assert one.std() > 0 and two.std() > 0


def test_rgb_array_frame_has_a_colour_bar_and_a_key() -> None:
    env = GaisNetEnv("tiny", render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert img.shape == (480, 480, 3) and img.dtype == np.uint8
    fig = render._FIGURES[id(env)]
    assert len(fig.axes) == 2  # the topology and the colour bar
    assert "model accuracy" in fig.axes[1].get_ylabel()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"cloud", "edge server", "end devices", "no queue"} <= set(labels)
    env.close()
