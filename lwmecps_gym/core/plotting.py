"""PNG plots of evaluation results (needs the ``plot`` extra: matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence

from lwmecps_gym.core.evaluation import EvaluationResult, mean_ci


def plot_comparison(
    results: Sequence[EvaluationResult],
    metrics: Sequence[str],
    path: str,
    title: str | None = None,
    confidence: float = 0.95,
) -> str:
    """Bar chart, one panel per metric, one bar per policy with its CI as error bar.

    Args:
        results: one :class:`EvaluationResult` per policy.
        metrics: metric names to plot (one subplot each).
        path: output PNG path.
        title: figure title.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results or not metrics:
        raise ValueError("results and metrics must be non-empty")
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics) + 1, 3.6), squeeze=False)
    names = [r.policy for r in results]
    for ax, m in zip(axes[0], metrics, strict=True):
        stats = [mean_ci(r.values(m), confidence) for r in results]
        means = [s[0] for s in stats]
        errs = [0.0 if s[1] != s[1] else s[1] for s in stats]
        ax.bar(range(len(names)), means, yerr=errs, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(m, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
