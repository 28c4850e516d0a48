"""Predict band gaps from a store: the campaign's model (:func:`activemat.analysis.model.fit_store_model`, the
loop's own last model to rounding), for compositions, structure files and ``ase.Atoms``.

A composition is predicted as the multiplicity-weighted average over all its
configurations in the pool (a disorder average,
:func:`activemat.analysis.curve.composition_average`). Two uncertainties are
kept apart: the model std of that average, ``sqrt(w' Cov w)`` from the joint
posterior covariance of the latent (noise-free) gap over the composition's
configurations (never a sum of per-configuration stds; co-kriging models
included), and the configurational spread (the weighted std of the
per-configuration means), which is physics, not model error. A structure
file's ``model_std`` is the per-configuration predictive std, with the
fitted noise term (how far a new DFT result for it may scatter).
:mod:`activemat.analysis.curve` gives the whole curve E_g(x) with the same
per-composition model std (``predict --curve``), and the bowing parameter.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import ase.io
import numpy as np

from activemat.analysis.curve import composition_average
from activemat.analysis.model import StoreModel, fit_store_model
from activemat.campaign.stored import CampaignView
from activemat.errors import InputError, SpaceError
from activemat.store import schema as S
from activemat.space.formula import format_formula

# A formula as a user types it: counts may be missing (SiGe), integers or fractions (Si0.5Ge0.5).
_FORMULA = re.compile(r"^(?:[A-Z][a-z]?(?:\d+\.?\d*|\.\d+)?)+$")


def _composition(sm: StoreModel, formula: str) -> dict:
    view, b = sm.view, sm.view.b
    n_b = view.n_b_of(formula)
    avg = composition_average(sm, n_b)
    x = n_b / view.n_sites
    done = view.completed(view.preset)
    computed = [(c, g) for c, g in done.items() if sm.pool.n_b[c] == n_b]
    lo, hi = sm.x_range()
    item = {"spec": formula, "type": "composition", "formula": sm.pool.formula(int(avg["configurations"][0])),
            f"n_{b}": int(n_b), f"x_{b}": x,
            **{k: avg[k] for k in ("gap", "model_std", "model_std_kind", "config_spread", "n_configurations",
                                   "n_used")},
            "extrapolation": not (lo - 1e-9 <= x <= hi + 1e-9),
            "computed": [{"candidate": int(c), "gap": float(g), "multiplicity": int(sm.pool.multiplicity[c])}
                         for c, g in computed]}
    return item


def _read_frames(path: Path) -> list:
    try:
        frames = ase.io.read(path, index=":")
    except Exception as exc:  # ASE raises many types for unreadable files; keep the cause chained
        raise InputError(f"cannot read structure file {path} with ase.io.read ({type(exc).__name__}: {exc}); "
                         "give a file ASE can read, e.g. .extxyz, .cif or a POSCAR") from exc
    if not frames:
        raise InputError(f"structure file {path} holds no structure; give a file with at least one frame")
    return frames


def _structure(sm: StoreModel, atoms, spec: str, frame: int) -> dict:
    view, b = sm.view, sm.view.b
    where = f"{spec}: frame {frame}" if spec and not spec.startswith("atoms[") else spec
    feats = sm.featurize(atoms, where)
    mean, std = sm.model.predict(feats[None], return_std=True)
    symbols = np.array(atoms.get_chemical_symbols())
    n_b = int(np.sum(symbols == view.elements[1]))
    x = float(feats[0])
    lo, hi = sm.x_range()
    formula = format_formula(view.parent, int(np.sum(symbols == view.elements[0])), n_b)  # with fixed species
    return {"spec": spec, "type": "structure", "frame": frame, "formula": formula, "n_atoms": len(atoms),
            f"n_{b}": n_b, f"x_{b}": x, "gap": float(mean[0]), "model_std": float(std[0]),
            "extrapolation": not (lo - 1e-9 <= x <= hi + 1e-9),
            "features": dict(zip(view.feature_names, map(float, feats)))}


def _structures(sm: StoreModel, path: Path) -> list[dict]:
    return [_structure(sm, atoms, str(path), i) for i, atoms in enumerate(_read_frames(path))]


#: Suffixes that name a structure file even when it does not exist (a formula never has one).
_STRUCTURE_SUFFIXES = {".xyz", ".extxyz", ".cif", ".traj", ".vasp", ".json", ".db", ".pdb", ".xsf", ".in", ".out"}


def predict(store: str | Path | CampaignView | StoreModel, specs, kind: str | None = None, *,
            refit: bool = False, preset: str | None = None) -> dict:
    """Predict gaps (eV) for compositions (``"Si4Ge12"``, ``"SiGe3"``, ``"Si0.25Ge0.75"``), structure files
    and ``ase.Atoms``.

    Parameters
    ----------
    store : a store (path or view), or a model already built (:func:`fit_store_model`; then ``kind`` and
        ``refit`` are ignored).
    specs : one or a list of: a formula (a composition of the campaign's cell, or one that scales to it);
        a structure file (anything ``ase.io.read`` reads, every frame); an ``ase.Atoms``.
    kind : a model kind instead of the campaign's.
    refit : optimise the hyperparameters again instead of reusing the latest snapshot's
        (:func:`fit_store_model`).

    Returns
    -------
    dict
        ``store``, ``model`` (kind), ``description`` (fitted hyperparameters),
        ``hyperparameters`` (whether they are a snapshot's or optimised now),
        ``n_train`` and ``predictions``: one dict per composition, structure
        or structure frame with ``gap`` and ``model_std`` and, for compositions,
        ``model_std_kind`` (``"joint posterior"``: the std of the average
        from the joint posterior covariance of its configurations; or
        ``"fully correlated bound"`` for a model without a joint covariance),
        ``config_spread``, ``n_configurations`` and ``n_used`` (the
        configurations in that covariance, at most
        :data:`activemat.analysis.curve.MAX_CONFIGURATIONS`). A structure's
        ``model_std`` is its predictive std, fitted noise included.
    """
    from ase import Atoms

    specs = [specs] if isinstance(specs, (str, Path, Atoms)) else list(specs)
    if not specs:
        raise InputError("nothing to predict; give a composition such as Si4Ge12 or a structure file (or, for the "
                         "whole composition curve, activemat predict STORE --curve)")
    sm = store if isinstance(store, StoreModel) else fit_store_model(store, kind, refit=refit, preset=preset)
    items = []
    for i, spec in enumerate(specs):
        if isinstance(spec, Atoms):
            items.append(_structure(sm, spec, f"atoms[{i}]", 0))
            continue
        if not isinstance(spec, (str, Path)):
            raise InputError(f"cannot predict {type(spec).__name__} {str(spec)[:40]!r}; give a formula, a structure "
                             "file or an ase.Atoms")
        text = str(spec).strip()
        path = Path(text)
        if path.is_file():
            items += _structures(sm, path)
        elif isinstance(spec, str) and _FORMULA.match(text) and path.suffix.lower() not in _STRUCTURE_SUFFIXES:
            try:
                items.append(_composition(sm, text))
            except SpaceError as exc:
                if "not in space.elements" not in str(exc) or any(c.isdigit() for c in text):
                    raise
                # letters only, such as POSCAR: a missing file is as likely as a formula of other elements
                raise InputError(f"{exc}; or, if {text!r} is a structure file, it was not found: check the path"
                                 ) from None
        elif path.suffix or "/" in text:
            raise InputError(f"structure file not found: {text}; check the path")
        else:
            example = f"{sm.pool.elements[0]}4{sm.pool.elements[1]}{sm.view.n_sites - 4}"
            raise InputError(f"{text!r} is neither a composition nor a structure file; give a formula such as "
                             f"{example} or the path of a file ase.io.read can read")
    presets = sorted(set(sm.view.calculations["preset"][sm.view.status_mask(S.OK)].tolist()))
    return {"store": str(sm.view.path), "model": sm.kind, "description": sm.model.describe(),
            "hyperparameters": sm.hyperparameters, "n_train": int(len(sm.train)), "presets": presets,
            "predictions": items}


def render(result: dict, file=None) -> None:
    """Human-readable lines for :func:`predict`'s result."""
    file = file or sys.stdout
    print(f"{result['store']}: {result['model']} model on {result['n_train']} calculations "
          f"({', '.join(result['presets']) or 'no preset'}); {result['hyperparameters']}", file=file)
    for p in result["predictions"]:
        xkey = next(k for k in p if k.startswith("x_"))
        if p["type"] == "composition":
            where = p["spec"] if p["spec"] == p["formula"] else f"{p['spec']} ({p['formula']})"
        elif p["spec"].startswith("atoms["):
            where = f"{p['spec']} {p['formula']}"
        else:
            where = f"{p['spec']}[{p['frame']}] {p['formula']}"
        if p["type"] == "composition":
            kind = "model std of the average, " + p["model_std_kind"]
            if p["n_used"] < p["n_configurations"]:
                kind += f" over {p['n_used']} sampled configurations"
        else:
            kind = "model std"
        line = (f"{where}: {xkey} = {p[xkey]:.4f}, predicted gap {p['gap']:.3f} eV"
                f" +/- {p['model_std']:.3f} eV ({kind})")
        if p["type"] == "composition":
            n = p["n_configurations"]
            line += (f", configurational spread {p['config_spread']:.3f} eV over {n} configuration"
                     f"{'s' if n != 1 else ''} (multiplicity-weighted)")
            if p["computed"]:
                gaps = ", ".join(f"{c['gap']:.3f}" for c in p["computed"])
                line += f"; computed: {gaps} eV"
        if p["extrapolation"]:
            line += f"; extrapolation: {xkey} outside the trained range"
        print(line, file=file)
