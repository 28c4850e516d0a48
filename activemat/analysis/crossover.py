"""Where the random alloy's conduction-band minimum changes valley, from computed valley gaps.

Si(1-x)Ge(x)'s minimum lies in the Δ valley on the Si side and at L on the
Ge side (measured crossover: x = 0.85, :data:`activemat.analysis.experiment.CROSSOVER_X`);
Al(x)Ga(1-x)As's lies at Γ on the GaAs side and at X on the AlAs side (measured:
x = 0.37 ± 0.015 at 2 K). Which two valleys matter is the system's: by default
the pair its measured-gap file names (:meth:`activemat.analysis.experiment.Measured.crossover_valleys`),
and the result carries that file's measured crossover for comparison.
The edge pass stores the gap to each valley of every calculation
(``gap_delta``, ``gap_x``, ``gap_l``, ``gap_gamma``: :func:`activemat.compute.edges.valley_gaps`).
Here the separation of two valleys,

    s(config) = E(upper valley) - E(lower valley),  e.g. E_L - E_Δ,

is learned over the pool by the campaign's own model: a GP on the same
features fitted to the results of one preset or, for a multi-fidelity
campaign, its recursive co-kriging over every preset's separations (the
cheap levels' valleys move with the accurate ones, so they carry most of
the information where the accurate level has few results), averaged per
composition as the gap curve is (multiplicity weights, joint posterior:
:mod:`activemat.learn.curve`), and the crossover is where that average
changes sign. Its uncertainty comes from joint draws of the whole averaged
curve: each draw's first sign change (linear between compositions) is one
crossover; the figure is their median with the 16th-84th percentile
interval, and the share of draws with no sign change is reported. The
interval of the draws can be narrower than the cell allows: the two
compositions of the cell's grid between which the mean changes sign (its
bracket) are the resolution, and are reported beside it.

The Si-like valley is Δ or X, whichever is lower (Si's minimum lies on the
Δ line near X; in a supercell the state nearest X may unfold onto X). A
cross-check that uses no model: the share of computed cells, per
composition, whose minimum lies in the second valley (``cbm_character``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from activemat.analysis.experiment import measured_for_parent
from activemat.campaign.setup import model_factory
from activemat.campaign.stored import open_campaign
from activemat.errors import InputError
from activemat.learn.cokriging import CoKriging
from activemat.learn.curve import composition_subsets, curve_covariance
from activemat.store import schema as S

#: Valleys a crossover may be asked for, and the gap columns each reads (the lowest of them).
VALLEY_GAPS = {"Delta": ("gap_delta", "gap_x"), "L": ("gap_l",), "Gamma": ("gap_gamma",), "X": ("gap_x",)}
#: Joint draws of the averaged separation curve.
N_SAMPLES = 4000


def valley_gap(calculations: dict, valley: str) -> np.ndarray:
    """The gap (eV) to ``valley`` of every calculation row: the lowest of its columns; NaN if none was found."""
    if valley not in VALLEY_GAPS:
        raise InputError(f"unknown valley {valley!r}; use one of {', '.join(VALLEY_GAPS)}")
    return np.fmin.reduce([calculations[c] for c in VALLEY_GAPS[valley]])


def separation_data(view, preset: str, lower: str, upper: str) -> tuple[np.ndarray, np.ndarray]:
    """Candidates with a successful ``preset`` calculation that found both valleys (held-out ones excluded;
    the last such row per candidate) and their separation E(upper) - E(lower) (eV)."""
    calc = view.calculations
    sep = valley_gap(calc, upper) - valley_gap(calc, lower)
    rows = np.flatnonzero((calc["status"] == S.OK) & (calc["preset"] == preset) & np.isfinite(sep))
    last = {int(calc["candidate"][r]): r for r in rows}
    idx = np.array(sorted(last), dtype=np.int64)
    keep = ~view.test[idx] if len(idx) else np.zeros(0, bool)
    idx = idx[keep]
    return idx, sep[[last[int(c)] for c in idx]]


def _fit_separation(view, config, pool, preset: str | None, lower: str, upper: str):
    """The fitted separation model and its levels (``preset``, ``n_results``), cheap to accurate: the campaign's
    co-kriging over every preset with results (``preset`` None, a multi-fidelity campaign), else one GP."""
    every = [config.calculator.name] if config.model.transfer_from else list(config.calculator.presets)
    presets = [preset] if preset else every  # a transfer campaign's frozen level is another store's
    data = [(p, *separation_data(view, p, lower, upper)) for p in presets]
    top, top_idx, _ = data[-1]
    if len(top_idx) < 3:
        raise InputError(f"{view.path}: {len(top_idx)} {top} result(s) with both the {lower} and {upper} valley "
                         "gaps; a crossover needs 3 (valley gaps come from presets with edges = \"folded\", "
                         "schema 8 and later)")
    data = [d for d in data if len(d[1])]  # a cheap level without valley gaps (an older preset) is left out
    levels = [{"preset": p, "n_results": int(len(idx))} for p, idx, _ in data]
    make = model_factory(config.model, config.campaign.seed, pool)
    if len(data) > 1:
        model = CoKriging(make).fit([(pool.features[idx], sep) for _, idx, sep in data])
    else:
        model = make(n_train=len(top_idx)).fit(pool.features[top_idx], data[-1][2])
    return model, levels


def _first_crossing(x: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Per row of ``curves`` (values at increasing ``x``): where it first goes from >= 0 to < 0, linear between
    points; NaN where it never does."""
    out = np.full(len(curves), np.nan)
    for i, s in enumerate(curves):
        below = np.flatnonzero((s[:-1] >= 0) & (s[1:] < 0))
        if len(below):
            k = below[0]
            out[i] = x[k] + (x[k + 1] - x[k]) * s[k] / (s[k] - s[k + 1])
    return out


def default_valleys(view, lower: str | None = None, upper: str | None = None) -> tuple[str, str]:
    """``(lower, upper)`` with the missing ones from the store's system's measured-gap file (Si-Ge: Delta, L;
    Al-Ga-As: Gamma, X); InputError when one is missing and no file names them."""
    if lower and upper:
        return lower, upper
    measured = measured_for_parent(view.parent)
    valleys = measured.crossover_valleys() if measured is not None else None
    if valleys is None:
        why = "names no two valleys" if measured is not None else "is shipped"
        raise InputError(f"no measured-gap file for {view.parent.name} {why}: give the valleys, "
                         f"--crossover LOWER,UPPER (from {', '.join(VALLEY_GAPS)})")
    return lower or valleys[0], upper or valleys[1]


def crossover(store: str | Path, *, lower: str | None = None, upper: str | None = None, preset: str | None = None,
              n_samples: int = N_SAMPLES, seed: int = 0) -> dict:
    """Where the minimum changes from valley ``lower`` (the x = 0 side) to ``upper``, from a store's valley gaps.

    Parameters
    ----------
    store : the campaign store.
    lower, upper : the valleys (``Delta``, ``L``, ``Gamma``, ``X``); the separation E(upper) - E(lower) is
        positive where ``lower`` holds the minimum. Default: the pair of the system's measured-gap file
        (:func:`default_valleys`).
    preset : whose results alone (default: every preset of the campaign, cheap to accurate, by its co-kriging;
        the campaign's own preset for a single-fidelity or transfer campaign).
    n_samples, seed : the joint draws of the averaged separation.

    Returns
    -------
    dict
        ``x`` (median crossover of the draws; NaN if under half of them cross), ``x_low``/``x_high`` (16th and
        84th percentiles), ``no_crossing`` (share of draws that never change sign), ``bracket`` (the two
        compositions of the cell's grid between which the mean separation changes sign, or None: the
        resolution the cell allows, however narrow the interval of the draws), ``n_results``,
        ``preset`` (the accurate level), ``levels`` (each fitted level's ``preset`` and ``n_results``, cheap to
        accurate), ``valleys``, ``curve`` (per composition: ``x``, ``separation`` and its joint-posterior
        ``std``, eV) and ``characters`` (per composition with computed cells: ``x``, ``n`` and ``share_upper``,
        the share whose ``cbm_character`` is ``upper``), and ``measured``: the system's measured crossover of
        these valleys (``x``, ``uncertainty``, ``temperature``, ``reference``, and ``branches_x``, where the
        file's branches cross), or None.

    Raises
    ------
    InputError
        Fewer than 3 results with both valleys, an unknown valley, or no valleys given where no measured-gap
        file names them.
    """
    view = open_campaign(store)
    lower, upper = default_valleys(view, lower, upper)
    config, pool = view.config(), view.pool()
    model, levels = _fit_separation(view, config, pool, preset, lower, upper)
    preset = levels[-1]["preset"]
    subsets = list(composition_subsets(pool))
    x = np.array([k for k, *_ in subsets], float) / pool.n_sites
    mean = np.array([w @ model.predict(pool.features[i]) for _, i, w, _, _ in subsets])
    cov = curve_covariance(model, pool.features, [c[3] for c in subsets], [c[4] for c in subsets])
    draws = np.random.default_rng(seed).multivariate_normal(mean, cov, n_samples, method="eigh")
    crossings = _first_crossing(x, draws)
    found = crossings[np.isfinite(crossings)]
    half = len(found) >= n_samples / 2
    chars = view.calculations["cbm_character"]
    ok = (view.calculations["status"] == S.OK) & (view.calculations["preset"] == preset)
    cand = view.calculations["candidate"][ok]
    n_b = pool.n_b[cand]
    sign = np.flatnonzero((mean[:-1] >= 0) & (mean[1:] < 0))  # the grid points around the mean's sign change
    bracket = (float(x[sign[0]]), float(x[sign[0] + 1])) if len(sign) else None
    characters = [{"x": float(k / pool.n_sites), "n": int((n_b == k).sum()),
                   "share_upper": float(np.mean(chars[ok][n_b == k] == upper))} for k in np.unique(n_b)]
    return {"preset": preset, "levels": levels, "valleys": (lower, upper), "n_results": levels[-1]["n_results"],
            "x": float(np.median(found)) if half else float("nan"),
            "x_low": float(np.percentile(found, 16)) if half else float("nan"),
            "x_high": float(np.percentile(found, 84)) if half else float("nan"),
            "no_crossing": float(1 - len(found) / n_samples), "bracket": bracket,
            "curve": [{"x": float(xi), "separation": float(m), "std": float(np.sqrt(max(c, 0.0)))}
                      for xi, m, c in zip(x, mean, np.diag(cov))],
            "characters": characters, "measured": _measured(view, lower, upper)}


def _measured(view, lower: str, upper: str) -> dict | None:
    """The system's measured crossover of ``lower`` -> ``upper`` (and where its file's branches cross), if any."""
    measured = measured_for_parent(view.parent)
    if measured is None or measured.crossover_valleys() != (lower, upper):
        return None
    seen = dict(measured.measured_crossover or {})
    return {**seen, "branches_x": measured.crossover(), "branches_reference": measured.reference}


def bracket_text(result: dict) -> str:
    """The cell's resolution as printed after the figure (``"; between the cell's compositions x = a and b"``), or
    nothing where the mean never changes sign (and for a result saved before the bracket existed)."""
    bracket = result.get("bracket")
    return f"; between the cell's compositions x = {bracket[0]:.3f} and {bracket[1]:.3f}" if bracket else ""


def render(result: dict, console=None) -> None:
    """Print a crossover result: the figure, then the averaged separation per composition."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    lower, upper = result["valleys"]
    figure = (f"x = {result['x']:.3f} (16-84 %: {result['x_low']:.3f}-{result['x_high']:.3f})"
              if result["x"] == result["x"] else "not located (under half of the draws cross)")
    source = " + ".join(f"{level['n_results']} {level['preset']}" for level in result["levels"])
    console.print(f"{lower} -> {upper} crossover from {source} results: {figure}{bracket_text(result)}; "
                  f"no crossing in {100 * result['no_crossing']:.1f} % of the draws")
    seen = result.get("measured")
    if seen:
        measured = f"x = {seen['x']:.3f} +/- {seen['uncertainty']:.3f} ({seen['reference']}); " if "x" in seen else ""
        console.print(f"experiment: {measured}the branches of {seen['branches_reference']} cross at "
                      f"x = {seen['branches_x']:.3f}")
    shares = {round(c["x"], 6): c for c in result["characters"]}
    table = Table("x", f"E_{upper} - E_{lower} (eV)", "std (eV)", "computed cells", f"CBM at {upper}")
    for row in result["curve"]:
        computed = shares.get(round(row["x"], 6))
        table.add_row(f"{row['x']:.4f}", f"{row['separation']:+.4f}", f"{row['std']:.4f}",
                      str(computed["n"]) if computed else "0",
                      f"{100 * computed['share_upper']:.0f} %" if computed else "")
    console.print(table)
