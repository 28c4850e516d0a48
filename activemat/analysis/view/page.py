"""The live page: a Bokeh document of plots and tables, fed by :class:`~activemat.analysis.view.frames.Frame` s.

One :class:`Page` per browser session. Its sources start empty; every
tick (a Bokeh periodic callback on the server) it takes the newest frame
of its :class:`~activemat.analysis.view.server.StoreWatcher` and, when the
store changed, replaces each source's data; the elapsed times of running
calculations and the header's clock move on every tick. Everything runs in
Python on the server: the browser only draws what Bokeh sends it.
"""

from __future__ import annotations

import html
import math
import time

import numpy as np
from bokeh.core.properties import value
from bokeh.layouts import column, row
from bokeh.models import (
    CDSView,
    ColumnDataSource,
    DataTable,
    Div,
    GroupFilter,
    HoverTool,
    Legend,
    LegendItem,
    NumberFormatter,
    Range1d,
    Slope,
    StringFormatter,
    TableColumn,
)
from bokeh.plotting import figure
from bokeh.transform import linear_cmap

from activemat.analysis.view.frames import FAILED, RUNNING, TESTED, Frame, ok_kind

#: Colours of successful results by fidelity, the campaign's own preset first (as ``activemat plot``).
PRESET_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2")
MODEL_COLOUR = "#1f77b4"
#: Legend of the band around the composition average: joint posterior, or the fully correlated bound.
BAND_LABELS = {"joint": "± 2σ of the average (joint posterior)",
               "bound": "± 2σ bound of the average (errors fully correlated)"}
TICK_MS = 1000
_EV = NumberFormatter(format="0.000", nan_format="")
_WIDE = 1380


def _ev(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f} eV"


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _table(source: ColumnDataSource, columns: list[tuple], *, width: int, height: int) -> DataTable:
    cols = [TableColumn(field=f, title=t, width=w, formatter=fmt or StringFormatter()) for f, t, w, fmt in columns]
    return DataTable(source=source, columns=cols, width=width, height=height, index_position=None,
                     sortable=False, reorderable=False, autosize_mode="none")


def _empty(names) -> dict:
    return {n: [] for n in names}


class Page:
    """The document of one browser session.

    Parameters
    ----------
    doc : the session's Bokeh document (filled here).
    watcher : where the frames come from (:class:`~activemat.analysis.view.server.StoreWatcher`).
    dashboard : a callable returning the Dask dashboard's URL, or None when there is none.
    tick_ms : milliseconds between ticks.
    """

    def __init__(self, doc, watcher, *, dashboard=None, tick_ms: int = TICK_MS):
        self.doc, self.watcher, self.dashboard = doc, watcher, dashboard or (lambda: None)
        self.version = -1
        self.frame: Frame | None = None
        self.sources = {name: ColumnDataSource(_empty(cols)) for name, cols in _COLUMNS.items()}
        self.header = Div(text="reading the store…", width=_WIDE, name="header")
        self._gap_figure()
        self._learning_figure()
        self._parity_figure()
        self._tables()
        layout = column(
            self.header,
            row(self.gap, self.learning),
            row(column(self.running_title, self.running_table, self.failures_title, self.failures_table,
                       self.picks_title, self.picks_table), self.parity),
        )
        doc.add_root(layout)
        doc.title = "activemat view"
        self.tick()
        doc.add_periodic_callback(self.tick, tick_ms)

    # -- the plots ------------------------------------------------------------------------------
    def _gap_figure(self) -> None:
        s = self.sources
        p = figure(width=820, height=560, title="band gap", x_range=Range1d(-0.04, 1.04),
                   tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="above", name="gap_vs_x")
        p.yaxis.axis_label = "band gap (eV)"
        items = []
        whiskers = p.segment("x_plot", "lower", "x_plot", "upper", source=s["configs"], color="#7f7f7f",
                             alpha=0.22, line_width=1)
        dots = p.scatter("x_plot", "mean", source=s["configs"], size=4, color="#7f7f7f", alpha=0.7)
        p.add_tools(HoverTool(renderers=[dots], tooltips=[("configuration", "@formula #@candidate"),
                                                          ("model", "@mean{0.000} ± @std{0.000} eV"),
                                                          ("state", "@state")]))
        self.configs_item = LegendItem(label=value("model mean ± 2σ per configuration"), renderers=[dots, whiskers])
        band = p.varea("x", "lower", "upper", source=s["curve"], color=MODEL_COLOUR, alpha=0.15)
        line = p.line("x", "mean", source=s["curve"], color=MODEL_COLOUR, line_width=2.5)
        self.band_item = LegendItem(label=value(BAND_LABELS["bound"]), renderers=[band])
        items += [self.configs_item,
                  LegendItem(label=value("composition average (multiplicity-weighted)"), renderers=[line]),
                  self.band_item]
        exp = p.line("x", "gap", source=s["experiment"], color="black", line_dash="dashed", line_width=1.5)
        self.experiment_item = LegendItem(label=value("experiment"), renderers=[exp])
        items.append(self.experiment_item)
        self.computed_items: dict[str, LegendItem] = {}
        self.gap, self.gap_items = p, items

    def _computed_renderers(self, presets: list[str]) -> None:
        """Glyphs of the calculations, one per kind; built once the store names its presets."""
        p, src = self.gap, self.sources["computed"]
        styles = [(ok_kind(name), f"computed: {name}", dict(marker="circle", size=10, fill_color=colour,
                                                             line_color="black", line_width=0.8))
                  for name, colour in zip(reversed(presets), PRESET_COLOURS)]
        styles += [(TESTED, "held-out test (not trained on)", dict(marker="square", size=11, fill_color=None,
                                                                    line_color="black", line_width=1.6)),
                   (RUNNING, "running (at the model mean)", dict(marker="diamond", size=16, fill_color=None,
                                                                  line_color="#ff7f0e", line_width=2.5)),
                   (FAILED, "failed or interrupted (at the model mean)", dict(marker="x", size=12,
                                                                              line_color="#d62728", line_width=2.5))]
        renderers = []
        for kind, label, style in styles:
            r = p.scatter("x_plot", "y", source=src, view=CDSView(filter=GroupFilter(column_name="kind", group=kind)),
                          **style)
            renderers.append(r)
            self.computed_items[kind] = LegendItem(label=value(label), renderers=[r], visible=False)
        p.add_tools(HoverTool(renderers=renderers, tooltips=[("calculation", "#@row @formula (@preset)"),
                                                             ("status", "@status, picked by @reason"),
                                                             ("gap", "@gap{0.000} eV"),
                                                             ("model", "@mean{0.000} ± @std{0.000} eV")]))
        legend = Legend(items=self.gap_items + list(self.computed_items.values()), location="top_left",
                        click_policy="hide", label_text_font_size="9pt", ncols=2, spacing=0, padding=4,
                        margin=4, background_fill_alpha=0.8)
        p.add_layout(legend, "below")

    def _learning_figure(self) -> None:
        s = self.sources["learning"]
        p = figure(width=540, height=560, title="learning curve", y_axis_type="log",
                   tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="above", name="learning_curve")
        p.xaxis.axis_label = "successful calculations (training size)"
        p.xaxis.ticker.min_interval = 1
        p.yaxis.axis_label = "error or std (eV, log scale)"
        items = []
        for name, label, style in (
                ("cv_mae", "model CV MAE", dict(color="#d62728", line_width=2.5)),
                ("baseline_mae", "baseline: predict the training mean", dict(color="#333333", line_dash="dotted",
                                                                             line_width=2)),
                ("test_mae", "held-out test MAE", dict(color="#2ca02c", line_width=2)),
                ("max_std", "max posterior std over the pool", dict(color="#7f7f7f", line_dash="dashed",
                                                                    line_width=2))):
            line = p.line("n", name, source=s, **style)
            dots = p.scatter("n", name, source=s, size=5, color=style["color"])
            items.append(LegendItem(label=value(label), renderers=[line, dots]))
        self.test_item = items[2]
        p.add_layout(Legend(items=items, label_text_font_size="9pt", click_policy="hide", spacing=0, padding=4,
                            margin=4), "below")
        p.add_tools(HoverTool(tooltips=[("training size", "@n"), ("CV MAE", "@cv_mae{0.000} eV"),
                                        ("baseline", "@baseline_mae{0.000} eV"), ("max std", "@max_std{0.000} eV")],
                              mode="vline", renderers=[p.renderers[1]]))
        self.learning = p

    def _parity_figure(self) -> None:
        s = self.sources["parity"]
        p = figure(width=560, height=500, title="parity", x_range=Range1d(0, 1), y_range=Range1d(0, 1),
                   tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="above", name="parity")
        p.xaxis.axis_label = "DFT band gap (eV)"
        p.yaxis.axis_label = "predicted before it was computed (eV)"
        p.add_layout(Slope(gradient=1, y_intercept=0, line_color="black", line_dash="dashed", line_width=1))
        p.segment("dft", "lower", "dft", "upper", source=s, color="#999999", alpha=0.5)
        colour = linear_cmap("x", "Viridis256", 0, 1)
        dots = p.scatter("dft", "predicted", source=s, size=8, fill_color=colour, line_color="black",
                         line_width=0.5)
        self.parity_colours = dots.construct_color_bar(title="x", width=10, title_text_font_style="normal")
        p.add_layout(self.parity_colours, "right")
        p.add_tools(HoverTool(renderers=[dots], tooltips=[("calculation", "#@row @formula"),
                                                          ("DFT", "@dft{0.000} eV"),
                                                          ("predicted", "@predicted{0.000} eV (model of @n_train "
                                                                        "results)")]))
        self.parity = p

    def _tables(self) -> None:
        s = self.sources
        self.running_title = Div(text="<b>running</b>", width=800)
        self.running_table = _table(s["running"], [
            ("row", "#", 40, None), ("formula", "configuration", 110, None), ("preset", "preset", 110, None),
            ("attempt", "attempt", 55, None), ("worker", "worker", 90, None),
            ("elapsed", "since submitted", 110, None), ("expected", "expected (median)", 120, None),
            ("progress", "elapsed / expected", 150, None)], width=800, height=175)
        self.failures_title = Div(text="<b>recent failures</b>", width=800)
        self.failures_table = _table(s["failures"], [
            ("row", "#", 40, None), ("formula", "configuration", 110, None), ("preset", "preset", 100, None),
            ("attempt", "attempt", 55, None), ("worker", "worker", 70, None), ("error", "reason", 420, None)],
            width=800, height=150)
        self.picks_title = Div(text="<b>last picks</b> (newest first)", width=800)
        self.picks_table = _table(s["picks"], [
            ("row", "#", 40, None), ("formula", "configuration", 95, None), ("x", "x", 50, _EV),
            ("preset", "preset", 95, None), ("reason", "picked by", 75, None),
            ("score", "score", 65, NumberFormatter(format="0.0000", nan_format="")),
            ("iteration", "iteration", 65, None), ("at_pick", "model at the pick (eV)", 150, None),
            ("status", "status", 70, None), ("gap", "DFT gap (eV)", 90, _EV)], width=800, height=405)

    # -- updates --------------------------------------------------------------------------------
    def tick(self) -> None:
        """Take the watcher's newest frame; redraw what changed; move the clocks on."""
        frame, version = self.watcher.latest()
        now = time.time()
        if frame is not None and version != self.version:
            self.version = version
            self.frame = frame
            if frame.error is None:
                self._show(frame)
        if self.frame is not None:
            self._clock(self.frame, now)

    def _show(self, frame: Frame) -> None:
        h = frame.header
        if not self.computed_items:
            self._computed_renderers(h["presets"])
            self.gap.xaxis.axis_label = f"{h['x_label']}; configurations side by side at each x, by predicted gap"
            self.parity_colours.title = f"{h['elements'][1]} fraction x"
        for name in self.sources:
            if name != "running":  # with its clocks, in _clock
                self._set(name, dict(frame.sources[name]))
        kinds = frame.sources["computed"]["kind"]
        for kind, item in self.computed_items.items():
            item.visible = kind in kinds
        self.experiment_item.label = value(f"experiment ({h['citation']})" if h["citation"] else "experiment")
        self.experiment_item.visible = bool(h["citation"])
        self.test_item.visible = bool(h["tested"])
        shown = "" if h["n_shown"] == h["n_candidates"] else f", {h['n_shown']} of {h['n_candidates']} shown"
        self.configs_item.label = value(f"model mean ± 2σ per configuration ({h['n_candidates']}{shown})")
        self.band_item.label = value(BAND_LABELS[h.get("curve_band", "bound")])
        model = (f"{h['model']} model on {h['n_train']} results (latest snapshot)" if h["n_train"]
                 else "no model yet (it needs 2 results)")
        self.gap.title.text = f"band gap against composition: {model}"
        self.parity.title.text = (f"parity: each result against the model before it (n = {h['n_parity']}, "
                                  f"MAE {_ev(h['parity_mae'])})" if h["n_parity"]
                                  else "parity: no result predicted by a model yet")
        par = frame.sources["parity"]
        if len(par["dft"]):  # the same range on both axes, around the points and their 2-sigma bars
            both = np.concatenate([par["dft"], par["lower"], par["upper"]])
            lo, hi = float(np.nanmin(both)), float(np.nanmax(both))
            pad = 0.08 * (hi - lo or 0.5)
            for r in (self.parity.x_range, self.parity.y_range):
                r.update(start=lo - pad, end=hi + pad)
        n_running, n_failures = len(frame.sources["running"]["row"]), len(frame.sources["failures"]["row"])
        self.running_title.text = f"<b>running</b> ({n_running or 'none'})"
        self.failures_title.text = (f"<b>recent failures</b> (the last {n_failures})" if n_failures
                                    else "<b>recent failures</b> (none)")
        # an empty table only while a driver may fill it (a finished report stays compact)
        self.running_table.visible = bool(n_running or h["driver_running"])
        self.failures_table.visible = bool(n_failures)
        self.learning.title.text = f"learning curve: CV MAE {_ev(h['cv_mae'])}, max std {_ev(h['max_std'])}"
        self.doc.title = f"{h['completed']} done · {h['name']} · activemat view"

    def _set(self, name: str, data: dict) -> None:
        """New data for a source. A table gets a new source: Bokeh 3.9.1-3.9.2 redraw a DataTable when its
        source's length changes, not when only its values do (bokeh/bokeh#15328)."""
        table = {"running": self.running_table, "failures": self.failures_table, "picks": self.picks_table}.get(name)
        if table is not None:
            table.source = self.sources[name] = ColumnDataSource(data)
        else:
            self.sources[name].data = data

    def _clock(self, frame: Frame, now: float) -> None:
        if frame.error is not None:
            self.header.text = (f"<h2 style='margin:4px 0'>activemat view: {html.escape(frame.path)}</h2>"
                                f"<p style='color:#a00'>{html.escape(frame.error)}</p>"
                                f"<p>checked {_ago(now - frame.read_at)} ago; the page keeps trying.</p>")
            return
        h = frame.header
        run = frame.sources["running"]
        if len(run["row"]) or len(self.running_table.source.data["row"]):  # a few rows: sent whole, clocks moved on
            elapsed = [now - t for t in run["submitted"]]
            self._set("running", {**run, "elapsed": [_ago(e) for e in elapsed],
                                  "expected": [_ago(e) if e > 0 else "" for e in run["expected"]],
                                  "progress": [_progress(e, x) for e, x in zip(elapsed, run["expected"])]})
        self.header.text = _header_html(h, now, frame, self.dashboard())


def _progress(elapsed: float, expected: float) -> str:
    """A text bar of elapsed against expected time, e.g. ``█████░░░░░``; ``overdue`` past 1.5 times."""
    if not expected > 0:  # no median yet (or NaN)
        return ""
    done = round(10 * min(elapsed / expected, 1.0))
    return "█" * done + "░" * (10 - done) + (" overdue" if elapsed > 1.5 * expected else "")


def _header_html(h: dict, now: float, frame: Frame, dashboard: str | None) -> str:
    esc = html.escape
    if h["driver_running"]:
        state = "<span style='color:#2a7d2a'>● campaign running</span>"
    else:
        state = "<span style='color:#555'>■ no driver: the store as it stands (a finished or stopped campaign)</span>"
    last = f", last row written {_ago(now - h['last_row'])} ago" if h["last_row"] else ""
    trained, budget = h["trained"], h["budget"]
    held = f" (+ {h['tested']} held-out)" if h["tested"] else ""
    progress = (f"{h['progress']} {trained} of budget {budget} training results{held}" if trained <= budget
                else f"{trained} training results{held}; the stored campaign file's budget is {budget} "
                     "(<code>run --budget</code> raised it)")
    counts = [("completed", h["completed"], "#000"), ("running", h["running"], "#ff7f0e"),
              ("failed attempts", h["failed"], "#d62728"), ("given up", h["given_up"], "#d62728"),
              ("to retry", h["to_retry"], "#555"), ("interrupted", h["interrupted"], "#555")]
    badges = " &nbsp; ".join(
        f"<span style='font-size:15px'>{label}: <b id='count-{label.split()[0]}' style='font-size:20px;"
        f"color:{colour}'>{value}</b></span>" for label, value, colour in counts)
    test = f" · held-out test MAE {_ev(h['test_mae'])}" if h["tested"] else ""
    model = (f"model: {esc(h['model_text'] or h['model'])}<br>CV MAE {_ev(h['cv_mae'])} · baseline "
             f"{_ev(h['baseline_mae'])}{test} · max std {_ev(h['max_std'])}")
    dash = (f" · <a href='{esc(dashboard)}' target='_blank'>Dask dashboard</a>" if dashboard
            else " · Dask dashboard: only beside a running driver (<code>activemat run --view</code>)")
    presets = ", ".join(esc(p) for p in reversed(h["presets"]))
    return (f"<div style='font-family:sans-serif'>"
            f"<div style='font-size:20px;font-weight:bold;margin:2px 0'>activemat view · {esc(h['name'])} · "
            f"<code>{esc(h['store'])}</code></div>"
            f"<div style='margin:2px 0'>{state}{last} · store read {_ago(now - frame.read_at)} ago{dash}</div>"
            f"<div style='margin:6px 0'>{badges}</div>"
            f"<div style='margin:2px 0'>{progress} · strategy {esc(h['strategy'])} · preset {presets} · "
            f"{h['n_candidates']} candidates</div>"
            f"<div style='margin:2px 0;color:#333'>{model}</div>"
            + (f"<div style='color:#a00'>{esc(frame.note)}</div>" if frame.note else "") + "</div>")


#: Every source's columns (the page's sources start empty with these).
_COLUMNS = {
    "configs": ("x", "x_plot", "mean", "std", "lower", "upper", "formula", "candidate", "state", "gap", "test"),
    "curve": ("x", "mean", "bound", "lower", "upper", "formula", "n"),
    "experiment": ("x", "gap"),
    "computed": ("x", "x_plot", "y", "kind", "row", "formula", "candidate", "preset", "status", "reason", "gap",
                 "mean", "std"),
    "learning": ("n", "cv_mae", "baseline_mae", "test_mae", "max_std"),
    "parity": ("dft", "predicted", "lower", "upper", "x", "formula", "row", "n_train", "test"),
    "picks": ("row", "formula", "x", "preset", "reason", "score", "iteration", "at_pick", "status", "gap"),
    "running": ("row", "candidate", "formula", "preset", "attempt", "worker", "submitted", "expected", "elapsed", "progress"),
    "failures": ("row", "formula", "preset", "attempt", "worker", "error"),
}
