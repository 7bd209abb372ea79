"""Comparison plots: a Figure back, no backend switch, units on the axes, intervals inside valid ranges."""

from __future__ import annotations

import pytest

from lwmecps_gym.core.evaluation import EvaluationResult, compare_table, paired_table

matplotlib = pytest.importorskip("matplotlib")


def _results() -> list[EvaluationResult]:
    # latency 1 +- large spread: a plain t-interval would reach below 0 ms
    a = EvaluationResult("a", "toy", [0, 1, 2], [{"latency_ms": v, "return": -v} for v in (0.1, 0.2, 5.0)])
    b = EvaluationResult("b", "toy", [0, 1, 2], [{"latency_ms": v, "return": -v, "extra_s": 1.0} for v in (3.0, 3.1, 2.9)])
    return [a, b]


def test_plot_comparison_returns_figure_without_switching_backend(tmp_path):
    from matplotlib.figure import Figure

    from lwmecps_gym.core.plotting import plot_comparison

    before = matplotlib.get_backend()
    path = tmp_path / "cmp.png"
    fig = plot_comparison(_results(), ["latency_ms", "return", "extra_s"], str(path))
    assert isinstance(fig, Figure)
    assert matplotlib.get_backend() == before
    assert path.stat().st_size > 5_000
    axes = fig.get_axes()
    assert [ax.get_xlabel() for ax in axes] == ["mean latency (ms)", "episode return (reward)", "extra (s)"]
    assert fig.get_suptitle().startswith("toy: mean and 95% CI over 3 episodes")
    # the lower whisker of policy a's latency stops at 0 (the t-interval's low end is negative)
    lat = axes[0]
    lows = [seg[0][0] for seg in lat.collections[0].get_segments()]
    assert min(lows) == pytest.approx(0.0)
    # one colour per policy, the same in every panel
    assert lat.patches[0].get_facecolor() != lat.patches[1].get_facecolor()
    assert axes[1].patches[0].get_facecolor() == lat.patches[0].get_facecolor()


def test_plot_comparison_sorts_rows_and_rejects_unknown_metrics():
    from lwmecps_gym.core.plotting import plot_comparison

    fig = plot_comparison(list(reversed(_results())), ["latency_ms"], sort_by="latency_ms")
    assert [t.get_text() for t in fig.get_axes()[0].get_yticklabels()] == ["a", "b"]
    with pytest.raises(KeyError, match=r"latncy_ms.*latency_ms"):
        plot_comparison(_results(), ["latncy_ms"])
    with pytest.raises(ValueError, match="sort_by"):
        plot_comparison(_results(), ["latency_ms"], sort_by="return")


def test_tables_name_unknown_metrics():
    with pytest.raises(KeyError, match=r"'latncy_ms'.*recorded.*'latency_ms'"):
        compare_table(_results(), ["latncy_ms"])
    with pytest.raises(KeyError, match="latncy_ms"):
        paired_table(_results(), "a", "latncy_ms")
    # recorded by one policy only: a '-' cell for the other, no error
    assert "| a | - |" in compare_table(_results(), ["extra_s"])
