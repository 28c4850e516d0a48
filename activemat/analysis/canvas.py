"""Figures on their own Agg canvas, never through pyplot, and the look the figures share.

:func:`canvas` makes an empty ``matplotlib.figure.Figure`` attached to an Agg canvas, so drawing
touches no global backend or pyplot state (a notebook's or a server's included); :func:`figure` adds
one set of axes. :func:`note` writes a centred remark on empty axes, :func:`legend_below` puts a
legend under the axes where it hides no data, and :data:`COLOURS` is the palette the store figures
and the experiment figure cycle through.
"""

from __future__ import annotations

#: Colours, in the order figures use them (a reason or a store keeps its colour).
COLOURS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")


def canvas(width: float, height: float):
    """An empty figure (inches) on its own Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure(width: float = 6.4, height: float = 4.4):
    """A figure from :func:`canvas` and its one set of axes."""
    fig = canvas(width, height)
    return fig, fig.add_subplot()


def note(ax, text: str) -> None:
    """``text`` in grey at the centre of ``ax``: why the axes are empty."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=10, color="0.35", wrap=True)


def legend_below(ax, ncol: int = 2, **kw) -> None:
    """Legend under the axes, so it never hides data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, fontsize=8, frameon=False, **kw)
