"""Draw the ROC curves of ``facepipe evaluate`` into one PNG (optional: ``facepipe[plot]``).

matplotlib is imported only here and only when drawing, through its object API (``Figure`` +
the Agg canvas) so no pyplot state or GUI backend is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from facepipe.errors import ExtraNotInstalledError

#: the PNG's size in inches and its resolution: 8 x 6 in at 100 dpi = 800 x 600 pixels
FIGURE_SIZE = (8.0, 6.0)
DPI = 100


def require_matplotlib() -> Any:
    """The ``matplotlib`` module, or an error naming the pip command that installs it."""
    try:
        import matplotlib
    except ImportError:
        raise ExtraNotInstalledError(
            "--plot needs matplotlib, which is not installed: pip install 'facepipe[plot]'") from None
    return matplotlib


def plot_roc(results: Sequence[Any], path: str | Path, *, title: str = "ROC",
             size: tuple[float, float] = FIGURE_SIZE, dpi: int = DPI) -> Path:
    """One curve per :class:`~facepipe.apps.evaluate.Evaluation` (TAR against FAR), each with a dot
    at its declared threshold; writes ``path`` (PNG) and returns it."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="0.8", linestyle=":", linewidth=1, label="chance")
    for result in results:
        roc = result.roc
        (line,) = axes.plot(roc.far, roc.tar, linewidth=1.5, drawstyle="default",
                            label=f"{result.label} (AUC {roc.auc:.3f}, EER {roc.eer:.3f})")
        if result.default_threshold is not None:
            far, tar = roc.point_at(result.default_threshold)
            axes.plot([far], [tar], marker="o", color=line.get_color(), markersize=5)
    axes.set_xlim(-0.01, 1.0)
    axes.set_ylim(0.0, 1.01)
    axes.set_xlabel("false accept rate (different people accepted)")
    axes.set_ylabel("true accept rate (same person accepted)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right", fontsize="small", title="dot: declared threshold", title_fontsize="small")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png")
    return out


__all__ = ["DPI", "FIGURE_SIZE", "plot_roc", "require_matplotlib"]
