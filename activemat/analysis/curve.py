"""The random alloy's gap curve E_g(x) and its bowing, with uncertainty from the joint posterior.

At each composition of the pool the curve is the average of the model's
mean over the pool's configurations at that composition, weighted by
multiplicity (an enumerated pool: the disorder average of the random
alloy; a sampled pool holds multiplicity 1, so its average is uniform; a
compositions-mode pool has one configuration per composition, so its
curve is over that one configuration each).

Three numbers per composition are kept apart:

- ``model_std``: the model's uncertainty of the average ``w' f``, i.e.
  ``sqrt(w' Cov w)`` with ``Cov`` the joint posterior covariance of the
  latent (noise-free) gap over that composition's configurations. The
  measurement-noise term of the kernel is left out (it belongs to a new
  DFT result, not to the gap function). Never a sum of standard deviations.
- ``model_std_bound``: the old figure, the weighted average of the
  per-configuration (noisy) stds, i.e. fully correlated errors plus noise;
  an upper bound of ``model_std``.
- ``spread``: the weighted std of the per-configuration means, the
  configurational spread of the gap at that composition (physics, not
  model error).

Large pools: the mean and the spread use every configuration; the
covariance uses at most ``max_configurations`` per composition (a seeded
random subsample, weights renormalised within it), reported as
``n_used`` and in ``notes``. The subsample's std estimates the full
average's and errs on the large side: in expectation over subsamples the
variance of an average of m exchangeable configurations is
``c + (v - c) / m`` (v, c: mean variance and mean covariance), which falls
with m. With a subsample it can exceed ``model_std_bound``, which is
computed over every configuration.

The bowing fit: E_g(x) = (1-x) E_A + x E_B - b x(1-x) by least squares over
the compositions, with E_A and E_B fitted too (``bowing="free"``, the
default) or fixed to the computed end members' gaps (``bowing="fixed-ends"``:
the DFT gaps of the pure A and pure B cells at the campaign's own preset, so
only b is fitted, from the mixed compositions). The result says which
(``bowing["ends"]``) and gives the computed end members beside the fit
(``bowing["computed"]``). The curve points are correlated, so its uncertainty comes
from joint draws of the whole curve: the curve is a linear map ``A f`` of
the latent gap at the subsampled configurations, so its posterior is
Gaussian with covariance ``A Cov A'``; samples of the curve are drawn from
it (the same distribution as sampling ``f`` over the union of the
configurations and averaging per composition, at the cost of the curve's
size), each is fitted, and E_A, E_B and b are reported as mean and std over
the samples.

One composition alone: :func:`composition_average` (what ``activemat
predict STORE Si4Ge12`` reports) gives the same mean, ``model_std`` and
spread as that composition's row of :func:`gap_curve`; both draw the
covariance subsample composition by composition from the same seeded
generator (:func:`composition_subsets`).

Co-kriging models (multi-fidelity, transfer) have the same joint
covariance (:meth:`activemat.learn.cokriging.CoKriging.latent_cov`: the
levels' independent discrepancies compose as rho^2 Cov_below + Cov_d); a
model without one (none of the package's) would report the fully correlated
bound and no bowing std.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from activemat.analysis.model import StoreModel, fit_store_model
from activemat.campaign.stored import CampaignView
from activemat.errors import InputError
from activemat.learn.curve import (  # noqa: F401  (MAX_CONFIGURATIONS: part of this module's API)
    JOINT_MAX,
    MAX_CONFIGURATIONS,
    composition_subsets,
    curve_covariance,
    has_joint_covariance,
)

#: Joint posterior samples of the curve for the bowing fit.
N_SAMPLES = 4000
#: The bowing fits: end points fitted with b, or fixed to the computed end members.
BOWING_FITS = ("free", "fixed-ends")


def bowing_design(x: np.ndarray) -> np.ndarray:
    """Columns multiplying (E_A, E_B, b) in E_g(x) = (1-x) E_A + x E_B - b x(1-x).

    >>> bowing_design(np.array([0.0, 0.5, 1.0])).tolist()
    [[1.0, 0.0, -0.0], [0.5, 0.5, -0.25], [0.0, 1.0, -0.0]]
    """
    x = np.asarray(x, float)
    return np.column_stack([1 - x, x, -x * (1 - x)])


def composition_average(sm: StoreModel, n_b: int, *, max_configurations: int = MAX_CONFIGURATIONS,
                        seed: int = 0) -> dict:
    """The multiplicity-weighted model average over all pool configurations with ``n_b`` alloying atoms.

    Parameters
    ----------
    sm : a refitted model (:func:`activemat.analysis.model.fit_store_model`).
    n_b : number of atoms of the second element.
    max_configurations, seed : the covariance subsample, as in :func:`gap_curve`.

    Returns
    -------
    dict
        ``gap`` (eV, the weighted average of the posterior means),
        ``model_std`` (eV, ``sqrt(w' Cov w)`` from the joint posterior of the
        latent gap, as in :func:`gap_curve`; for a model without a joint
        covariance the fully correlated bound), ``model_std_kind``
        (``"joint posterior"`` or ``"fully correlated bound"``),
        ``model_std_bound`` (the weighted average of the per-configuration
        noisy stds), ``config_spread`` (the weighted std of the
        per-configuration means: physics, not model error),
        ``n_configurations``, ``n_used`` (configurations in the covariance),
        ``configurations`` (their pool rows), and the per-configuration
        ``mean`` and ``std``.

    Raises
    ------
    InputError
        No configuration with ``n_b`` alloying atoms in the pool.
    """
    pool = sm.pool
    match = [c for c in composition_subsets(pool, max_configurations=max_configurations, seed=seed) if c[0] == n_b]
    if not match:
        raise InputError(f"no configuration with {n_b} {pool.elements[1]} atoms in the pool of {sm.view.path}")
    _, idx, w, used, wu = match[0]
    mean, std = sm.predict(pool.features[idx])
    mu = float(w @ mean)
    bound = float(w @ std)
    if has_joint_covariance(sm.model):
        model_std = float(np.sqrt(max(curve_covariance(sm.model, pool.features, [used], [wu])[0, 0], 0.0)))
        kind = "joint posterior"
    else:
        model_std, kind = bound, "fully correlated bound"
    return {"gap": mu, "model_std": model_std, "model_std_kind": kind, "model_std_bound": bound,
            "config_spread": float(np.sqrt(w @ (mean - mu) ** 2)), "n_configurations": int(len(idx)),
            "n_used": int(len(used)), "configurations": idx, "mean": mean, "std": std}


def fit_bowing(x: np.ndarray, mean: np.ndarray, cov: np.ndarray | None, *, ends: tuple[float, float] | None = None,
               n_samples: int = N_SAMPLES, seed: int = 0) -> dict:
    """Least-squares (E_A, E_B, b) of the curve, mean and std over joint posterior samples of it.

    Parameters
    ----------
    x, mean : compositions and the curve's posterior mean (eV).
    cov : the curve's joint posterior covariance (eV^2); None: fit the mean only (no stds).
    ends : None: E_A and E_B are fitted with b; ``(E_A, E_B)`` (eV): the end points are fixed there and
        only b is fitted (the end compositions, where x(1-x) = 0, then weigh nothing in it).
    n_samples, seed : number of joint samples and the seed of their generator.

    Returns
    -------
    dict
        ``E_A``, ``E_B``, ``b`` and their ``_std`` (None for fixed end
        points); ``ends`` (``"free"`` or ``"fixed"``); ``b_fit_of_mean`` (the
        fit to the mean curve), ``residual_rms`` (eV, how far the mean curve
        is from the fitted form), ``n_samples`` and ``seed``.

    >>> x = np.array([0.0, 0.5, 1.0])
    >>> round(fit_bowing(x, np.array([1.0, 0.5, 0.6]), None, ends=(1.0, 0.6))["b"], 6)
    1.2
    """
    design = bowing_design(x)
    if ends is None:
        pinv, base = np.linalg.pinv(design), np.zeros(len(x))
    else:
        base = design[:, :2] @ np.asarray(ends, float)  # the straight line between the fixed end points
        pinv = np.vstack([np.zeros((2, len(x))), np.linalg.pinv(design[:, 2:])])
    fit = pinv @ (mean - base)
    if ends is not None:
        fit[:2] = ends
    result = {"E_A": float(fit[0]), "E_B": float(fit[1]), "b": float(fit[2]), "E_A_std": None, "E_B_std": None,
              "b_std": None, "ends": "free" if ends is None else "fixed", "b_fit_of_mean": float(fit[2]),
              "residual_rms": float(np.sqrt(np.mean((design @ fit - mean) ** 2))),
              "n_samples": 0, "seed": seed}
    if cov is None or n_samples < 2:
        return result
    vals, vecs = np.linalg.eigh(cov)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    rng = np.random.default_rng(seed)
    samples = mean + rng.standard_normal((n_samples, len(x))) @ root.T
    coefs = (samples - base) @ pinv.T
    for j, name in enumerate(("E_A", "E_B", "b")):
        if ends is not None and j < 2:
            continue  # fixed, not fitted: no spread
        result[name] = float(coefs[:, j].mean())
        result[f"{name}_std"] = float(coefs[:, j].std(ddof=1))
    result["n_samples"] = int(n_samples)
    return result


def computed_end_members(sm: StoreModel) -> dict[str, float | None]:
    """The DFT gaps (eV) of the pure A and pure B cells among the model's training results (the campaign's own
    preset), by formula (e.g. ``{"Si16": 0.596, "Ge16": None}``); None where the end member was not computed."""
    pool = sm.pool
    n_b = pool.n_b[np.asarray(sm.train, dtype=np.int64)]
    y = np.asarray(sm.y, float)
    out = {}
    for k in (0, pool.n_sites):
        row = int(np.flatnonzero(pool.n_b == k)[0]) if np.any(pool.n_b == k) else None
        name = pool.formula(row) if row is not None else \
            f"{pool.elements[0]}{pool.n_sites}" if k == 0 else f"{pool.elements[1]}{pool.n_sites}"
        out[name] = float(y[n_b == k].mean()) if np.any(n_b == k) else None
    return out


def _bowing(sm: StoreModel, x: np.ndarray, mean: np.ndarray, cov: np.ndarray | None, bowing: str,
            n_samples: int, seed: int) -> dict:
    """:func:`fit_bowing` of the curve with the end points free or fixed to the computed end members, its keys
    named by the elements, and which fit it was."""
    a, b = sm.pool.elements
    computed = computed_end_members(sm)
    ends = None
    if bowing == "fixed-ends":
        missing = [name for name, gap in computed.items() if gap is None]
        if missing:
            raise InputError(f"--bowing fixed-ends fixes the end points to the computed end members, and "
                             f"{' and '.join(missing)} {'has' if len(missing) == 1 else 'have'} no result at the "
                             f"campaign's preset in {sm.view.path}; compute {'it' if len(missing) == 1 else 'them'} "
                             "(e.g. a fixed list of the formula) or use --bowing free")
        ends = tuple(computed.values())
    fit = fit_bowing(x, mean, cov, ends=ends, n_samples=n_samples, seed=seed)
    (end_a, gap_a), (end_b, gap_b) = computed.items()
    described = (f"end points free: E_{a}, E_{b} and b fitted together" if ends is None else
                 f"end points fixed to the computed end members {end_a} ({gap_a:.4f} eV) and {end_b} "
                 f"({gap_b:.4f} eV): b alone fitted")
    return {f"E_{a}": fit["E_A"], f"E_{a}_std": fit["E_A_std"], f"E_{b}": fit["E_B"],
            f"E_{b}_std": fit["E_B_std"], **{k: v for k, v in fit.items() if not k.startswith("E_")},
            "form": f"E_g(x) = (1-x) E_{a} + x E_{b} - b x(1-x), x = {b} fraction",
            "fit": described, "computed": computed}


def gap_curve(store_or_model: str | Path | CampaignView | StoreModel, *, kind: str | None = None,
              max_configurations: int = MAX_CONFIGURATIONS, n_samples: int = N_SAMPLES, seed: int = 0,
              joint_max: int = JOINT_MAX, refit: bool = False, bowing: str = "free", preset: str | None = None) -> dict:
    """The composition-averaged gap E_g(x) of the random alloy, its joint-posterior std and the bowing fit.

    Parameters
    ----------
    store_or_model : a store (path or view), refitted with
        :func:`activemat.analysis.model.fit_store_model`, or an already refitted model.
    kind, refit, preset : for a store, :func:`fit_store_model`'s: a model kind instead of the campaign's,
        hyperparameters optimised again, one level of a multi-fidelity store alone (ignored for a model).
    max_configurations : configurations per composition at most in the covariance.
    n_samples : joint posterior samples of the curve for the bowing fit.
    seed : seed of the subsample and of the samples.
    joint_max : configurations at most in one covariance matrix (see :func:`curve_covariance`).
    bowing : ``"free"`` (E_A, E_B and b fitted) or ``"fixed-ends"`` (E_A and E_B fixed to the computed
        end members' gaps, :func:`computed_end_members`; InputError if one was not computed).

    Returns
    -------
    dict
        JSON-ready: ``store``, ``model``, ``description``, ``n_train``,
        ``elements``, ``covariance`` (how ``model_std`` was obtained),
        ``compositions`` (one dict per composition: ``n_b``, ``x``,
        ``formula``, ``mean``, ``model_std``, ``model_std_bound``,
        ``spread``, ``n_configurations``, ``n_used``, ``extrapolation``),
        ``bowing`` (:func:`fit_bowing` with ``E_<A>``/``E_<B>`` keys for the
        elements, ``ends``, ``fit`` (which fit, in words) and ``computed``: the
        end members' DFT gaps by formula) and ``notes``.
    """
    if bowing not in BOWING_FITS:
        raise InputError(f"unknown bowing fit {bowing!r}; use one of {', '.join(BOWING_FITS)}")
    sm = store_or_model if isinstance(store_or_model, StoreModel) \
        else fit_store_model(store_or_model, kind, refit=refit, preset=preset)
    pool = sm.pool
    a, b = pool.elements
    mean_all, std_all = sm.predict(pool.features)
    lo, hi = sm.x_range()
    rows, subsets, weights = [], [], []
    for k, idx, w, used, wu in composition_subsets(pool, max_configurations=max_configurations, seed=seed):
        mu = float(w @ mean_all[idx])
        subsets.append(used)
        weights.append(wu)
        x = float(k) / pool.n_sites
        rows.append({"n_b": int(k), "x": x, "formula": pool.formula(int(idx[0])), "mean": mu, "model_std": None,
                     "model_std_bound": float(w @ std_all[idx]),
                     "spread": float(np.sqrt(w @ (mean_all[idx] - mu) ** 2)),
                     "n_configurations": int(len(idx)), "n_used": int(len(used)),
                     "extrapolation": not (lo - 1e-9 <= x <= hi + 1e-9)})
    x = np.array([r["x"] for r in rows])
    mean = np.array([r["mean"] for r in rows])
    notes = []
    if has_joint_covariance(sm.model):
        cov = curve_covariance(sm.model, pool.features, subsets, weights, joint_max)
        std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        how = "joint posterior of the latent (noise-free) gap: sqrt(w' Cov w) per composition"
    else:
        cov, std = None, np.array([r["model_std_bound"] for r in rows])
        how = ("fully correlated upper bound (weighted average of per-configuration stds): "
               f"{sm.kind} models have no joint covariance here")
        notes.append(f"{sm.kind} model: model_std is the fully correlated upper bound; the bowing has no std")
    for r, s in zip(rows, std):
        r["model_std"] = float(s)
    if all(r["n_configurations"] == 1 for r in rows):
        notes.append("one configuration per composition in this pool (compositions mode): the curve is over "
                     "that one configuration each, not a disorder average")
    capped = [r for r in rows if r["n_used"] < r["n_configurations"]]
    if capped:
        notes.append(f"model_std uses a seeded random subsample of at most {max_configurations} configurations at "
                     f"{len(capped)} of {len(rows)} compositions (n_used); mean and spread use all of them")
    if len(rows) >= 3:
        fitted = _bowing(sm, x, mean, cov, bowing, n_samples, seed)
    else:
        fitted = {}
        notes.append("the bowing fit needs at least 3 compositions")
    return {"store": str(sm.view.path), "model": sm.kind, "description": sm.model.describe(),
            "hyperparameters": sm.hyperparameters,
            "n_train": int(len(sm.train)), "elements": [a, b], "covariance": how, "compositions": rows,
            "system": pool.parent.name, "fixed": sorted({s[0] for s in pool.parent.chemical_symbols if len(s) == 1}),
            "bowing": fitted, "notes": notes}


def bowing_label(curve: dict) -> str:
    """``b = 0.123 +/- 0.004 eV`` (or without the std), for legends and titles."""
    fit = curve["bowing"]
    if not fit:
        return "no bowing fit"
    std = "" if fit["b_std"] is None else f" $\\pm$ {fit['b_std']:.3f}"
    return f"b = {fit['b']:.3f}{std} eV"


def with_experiment(curve: dict, corrections) -> dict:
    """The curve with the measured gap of its system (:func:`activemat.analysis.experiment.measured_for`)
    beside each composition.

    ``corrections`` names the terms of the system's measured-gap file added to the measurement first
    (``"none"`` or ``""``: the measured curve as it is); each row gets ``experiment`` and ``deviation``
    (model mean minus it), the curve ``corrections`` (each term and its size at x = 0 and 1),
    ``deviations`` (their summary) and ``experiment`` (the file's ``reference``, ``temperature``,
    ``quantity`` and ``file``). No file for the system is an InputError naming it.
    """
    from activemat.analysis.experiment import measured_for

    fixed = tuple(curve.get("fixed", ()))
    measured = measured_for(curve["elements"], fixed)
    if measured is None:
        system = curve.get("system", "(1-x)".join(curve["elements"]) + "(x)")
        raise InputError(f"no measured gap is shipped for {system}: add a file to activemat/analysis/experiments/ "
                         "(format: SiGe.toml or AlGaAs.toml there) or leave out --corrections")
    terms = measured.describe_corrections(corrections)
    names = tuple(t["name"] for t in terms)
    rows = [{**r, "experiment": float(measured.comparable_gap(r["x"], names))} for r in curve["compositions"]]
    for r in rows:
        r["deviation"] = r["mean"] - r["experiment"]
    x, mean = [r["x"] for r in rows], [r["mean"] for r in rows]
    return {**curve, "compositions": rows, "corrections": terms, "deviations": measured.deviations(x, mean, names),
            "experiment": {"reference": measured.reference, "temperature": measured.temperature,
                           "quantity": measured.quantity, "file": measured.path}}


def render(curve: dict, file=None) -> None:
    """Print :func:`gap_curve`'s result: the curve as a rich table, then the bowing fit."""
    from rich.console import Console
    from rich.table import Table

    file = file or sys.stdout
    console = Console(file=file, width=None if file.isatty() else 120)
    a, b = curve["elements"]
    table = Table(title=f"gap curve E_g(x) of {curve['store']}: {curve['model']} model, {curve['n_train']} "
                        f"calculations; model std from the {curve['covariance']}")
    compared = "corrections" in curve
    outside = any(r["extrapolation"] for r in curve["compositions"])
    names = (f"x_{b}", "formula", "mean (eV)", "model std", "bound", "spread", "configurations")
    names += ("experiment", "model - exp.") if compared else ()
    names += ("extrapolated",) if outside else ()  # a column only when some composition is outside the data
    for name in names:
        table.add_column(name, justify="left" if name in ("formula", "extrapolated") else "right")
    for r in curve["compositions"]:
        n = f"{r['n_configurations']}" + (f" ({r['n_used']} used)" if r["n_used"] < r["n_configurations"] else "")
        extra = (f"{r['experiment']:.4f}", f"{r['deviation']:+.4f}") if compared else ()
        extra += ("yes" if r["extrapolation"] else "",) if outside else ()
        table.add_row(f"{r['x']:.4f}", r["formula"], f"{r['mean']:.4f}", f"{r['model_std']:.4f}",
                      f"{r['model_std_bound']:.4f}", f"{r['spread']:.4f}", n, *extra)
    console.print(table)
    if curve.get("hyperparameters"):
        console.print(f"model: {curve['hyperparameters']}")
    console.print("model std: of the average (joint posterior); bound: the weighted average of per-configuration "
                  "stds (fully correlated, with noise); spread: configurational, physics not model error"
                  + ("; extrapolated: x outside the range of the computed compositions" if outside else ""))
    fit = curve["bowing"]
    if fit:
        def pm(key):
            std = fit[f"{key}_std"]
            return f"{fit[key]:.4f}" + ("" if std is None else f" +/- {std:.4f}") + " eV"

        samples = f" (mean +/- std over {fit['n_samples']} joint posterior samples of the curve, seed {fit['seed']})" \
            if fit["n_samples"] else ""
        console.print(f"bowing fit {fit['form']}{samples}:")
        console.print(f"  {fit['fit']}")
        fixed = fit["ends"] == "fixed"
        console.print(f"  E_{a} = {pm(f'E_{a}')}{' (computed)' if fixed else ''}, E_{b} = {pm(f'E_{b}')}"
                      f"{' (computed)' if fixed else ''}, b = {pm('b')}; "
                      f"rms residual of the mean curve {fit['residual_rms']:.4f} eV")
        if not fixed:
            known = [f"{name} {gap:.4f} eV" for name, gap in fit["computed"].items() if gap is not None]
            if known:
                console.print(f"  computed end members: {', '.join(known)}; `--bowing fixed-ends` fixes E_{a} "
                              f"and E_{b} there")
    if compared:
        terms = "; ".join(f"{t['name']} {t['shift_at_0'] * 1000:+.1f} / {t['shift_at_1'] * 1000:+.1f} meV at x = 0 / 1"
                          for t in curve["corrections"])
        d = curve["deviations"]
        e = curve["experiment"]
        console.print(f"experiment: {e['reference']}, {e['temperature']} K, {e['quantity']}")
        console.print(f"terms added: {terms}" if terms else "as measured, no correction terms")
        console.print(f"model - experiment: mean {d['mean_signed']:+.4f} eV, mean abs {d['mean_abs']:.4f} eV")
    for note in curve["notes"]:
        console.print(f"note: {note}")
