"""Draw the ROC curves of ``facepipe evaluate`` into one PNG (optional: ``facepipe[plot]``).

matplotlib is imported only here and only when drawing, through its object API (``Figure`` +
the Agg canvas) so no pyplot state or GUI backend is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from facepipe.errors import ExtraNotInstalledError

#: the PNG's size in inches and its resolution: 11 x 5 in at 100 dpi = 1100 x 500 pixels
FIGURE_SIZE = (11.0, 5.0)
DPI = 100
#: the right-hand panel enlarges the low-FAR corner, where good configurations differ
ZOOM_FAR = 0.1
#: metrics that are monotonic in one another give the same curve: a line style each tells them apart
_STYLES = ("-", "--", ":", "-.")


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
    at its declared threshold, on the whole range (left) and on FAR <= ``ZOOM_FAR`` (right).
    A colour per detector + recognizer, a line style per metric.  Writes ``path`` (PNG)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    full, zoom = figure.subplots(1, 2)
    pipelines = list(dict.fromkeys((r.detector, r.recognizer) for r in results))
    metrics = list(dict.fromkeys(r.metric for r in results))
    colours = [f"C{k % 10}" for k in range(len(pipelines))]
    for axes in (full, zoom):
        axes.plot([0, 1], [0, 1], color="0.8", linestyle=":", linewidth=1, label="chance")
        for result in results:
            roc = result.roc
            colour = colours[pipelines.index((result.detector, result.recognizer))]
            style = _STYLES[metrics.index(result.metric) % len(_STYLES)]
            axes.plot(roc.far, roc.tar, color=colour, linestyle=style, linewidth=1.5,
                      label=f"{result.label}: AUC {roc.auc:.3f}, EER {roc.eer:.3f}")
            if result.default_threshold is not None:
                far, tar = roc.point_at(result.default_threshold)
                axes.plot([far], [tar], marker="o", color=colour, markersize=5)
        axes.set_xlabel("false accept rate (different people accepted)")
        axes.grid(True, alpha=0.3)
    # a little room past 0 and 1, so a curve that runs along an edge stays visible
    full.set_xlim(-0.02, 1.0)
    full.set_ylim(0.0, 1.02)
    full.set_ylabel("true accept rate (same person accepted)")
    full.set_title(title)
    zoom.set_xlim(-ZOOM_FAR / 50, ZOOM_FAR)
    zoom.set_ylim(0.0, 1.02)
    zoom.set_title(f"FAR <= {ZOOM_FAR:g} (dot: the recognizer's declared threshold)")
    full.legend(loc="lower right", fontsize="x-small")  # the corner a useful curve stays away from
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png")
    return out


__all__ = ["DPI", "FIGURE_SIZE", "ZOOM_FAR", "plot_roc", "require_matplotlib"]
