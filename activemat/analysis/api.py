"""A campaign store for notebooks and scripts: its tables as pandas DataFrames, and its model.

One import gives everything::

    import activemat

    store = activemat.Store("runs/demo.h5")      # read-only; safe while a campaign writes it
    store.calculations                           # one row per attempt: units in .attrs["units"], times as dates
    store.candidates, store.features             # the pool: one row per candidate
    store.snapshots                              # one row per refit of the loop's model
    store.model()                                # the loop's model, rebuilt from its stored hyperparameters
    store.predict(["Si4Ge12", atoms, "cell.cif"])
    store.curve()                                # E_g(x) with its joint-posterior std; bowing in .attrs

``activemat.Store`` is the documented way to open a store for reading. Underneath, it is the store as
:func:`activemat.store.read.read_store` reads it (every reader of activemat, the CLI's included, reads through
that one function): ``store.view`` is that same reading as numpy columns, with the query layer's filters
(:class:`~activemat.campaign.stored.CampaignView`, a :class:`~activemat.store.query.StoreView`)::

    store.view.calculations["gap"]               # numpy columns, as stored
    store.view.select(status="ok", x_b="0.25:0.75", columns="candidate,formula,gap")
    store.view.pool().atoms(0)                   # a candidate as ase.Atoms

Missing values are missing: NaN for numbers, ``<NA>`` for integer and boolean columns, NaT for times, None
for a k-point grid or parameters never recorded; never the store's fill values. Every DataFrame keeps the
units of its columns in ``df.attrs["units"]`` (eV for energies, s for durations; times are timezone-aware
UTC). The store is read once, when the handle is made; :meth:`Store.refresh` reads it again (a live
campaign keeps appending).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from activemat.analysis.curve import gap_curve
from activemat.analysis.modelcard import model_card
from activemat.analysis.model import StoreModel, fit_store_model
from activemat.analysis.predict import predict
from activemat.campaign.stored import CampaignView, open_campaign
from activemat.store import schema as S
from activemat.store.query import StoreView

__all__ = ["Store"]

#: Columns of :attr:`Store.calculations` that hold points in time (timezone-aware UTC in the DataFrame).
_TIMES = tuple(c.name for c in S.CALCULATIONS.columns if c.unit == S.TIME)


def _units(columns, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Column -> unit for the DataFrame's ``attrs``: the schema's units, times as UTC dates."""
    units = {}
    for column in columns:
        if column.unit == S.TIME:
            units[column.name] = "UTC"
        elif column.unit:
            units[column.name] = column.unit
    return {**units, **(extra or {})}


def _dates(seconds) -> pd.Series | pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(seconds, float), unit="s", utc=True)


def _nullable(values: np.ndarray, dtype: str) -> pd.array:
    """An object array of values and None as a pandas nullable array (``Int64``, ``boolean``)."""
    return pd.array([pd.NA if v is None else v for v in values.tolist()], dtype=dtype)


class Store:
    """A campaign store, read-only: its tables as pandas DataFrames, its model, predictions and gap curve.

    Parameters
    ----------
    path : the store (an ``.h5`` file a campaign wrote), or a store already read
        (:func:`activemat.store.read.read_store`), used as it is.

    Raises
    ------
    activemat.errors.StoreError
        Missing, foreign, newer or damaged store (one line naming the path and the fix).
    """

    def __init__(self, path: str | Path | StoreView):
        self._view = open_campaign(path)
        self._models: dict[tuple, StoreModel] = {}

    def refresh(self) -> Store:
        """Read the store again (a running campaign appends rows); forgets the model built so far."""
        self._view = open_campaign(self._view.path)
        self._models = {}
        return self

    def __repr__(self) -> str:
        view = self._view
        ok = int(np.sum(view.calculations["status"] == S.OK))
        return (f"<activemat.Store {self.path}: {view.n_calculations} calculations ({ok} ok), "
                f"{len(view.candidates['n_b'])} candidates, {len(view.snapshots['iteration'])} snapshots, "
                f"schema {int(view.attrs[S.ATTR_SCHEMA])}>")

    # -- what the store is --------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self._view.path

    @property
    def view(self) -> CampaignView:
        """The store as read, as numpy columns (:class:`~activemat.campaign.stored.CampaignView`: the columns
        as stored, the calculations table with ``select``/``records`` filters, the pool, the stored campaign
        file)."""
        return self._view

    @property
    def elements(self) -> tuple[str, str]:
        """Host and alloying element, e.g. ``("Si", "Ge")``."""
        return self._view.elements

    @property
    def preset(self) -> str:
        """The campaign's own calculator preset (a multi-fidelity store also holds cheaper ones)."""
        return self._view.preset

    def config(self):
        """The campaign file the store was created with (:class:`~activemat.campaign.config.CampaignConfig`)."""
        return self._view.config()

    def status(self) -> dict:
        """What ``activemat status --json`` prints: counts, the latest model errors, failures."""
        return self._view.status()

    # -- tables ------------------------------------------------------------------------------
    @property
    def calculations(self) -> pd.DataFrame:
        """One row per calculation attempt, indexed by ``calculation`` (the store's row), joined with its candidate.

        Columns as in ``activemat query`` (``formula``, ``x_ge``, ``status``, ``gap``, ``preset``, ...);
        ``submitted``, ``started`` and ``finished`` are UTC dates, ``wall_time`` seconds, ``kpts`` a tuple,
        ``parameters`` a dict of GPAW keyword arguments; ``direct``, ``scf_iterations`` and ``fallback`` are
        nullable (``<NA>`` without a result). Units: ``.attrs["units"]``.
        """
        t = self._view.table()
        calc = self._view.calculations
        n = len(t["row"])
        frame = {}
        for name, values in t.items():
            if name == "row":
                continue
            if name in _TIMES:
                frame[name] = _dates(values)
            elif name == "kpts":
                frame[name] = pd.array([tuple(k) if any(k) else None for k in calc["kpts"].tolist()], dtype=object) \
                    if n else pd.array([], dtype=object)
            elif name == "direct":
                frame[name] = _nullable(values, "boolean")
            elif name in ("scf_iterations", "fallback"):
                frame[name] = _nullable(values, "Int64")
            elif name == "parameters":
                frame[name] = pd.array([json.loads(v) if v else None for v in values.tolist()], dtype=object)
            else:
                frame[name] = values
        df = pd.DataFrame(frame, index=pd.RangeIndex(n, name=S.CALCULATION))
        df.attrs["units"] = _units(S.CALCULATIONS.columns, {"wall_time": "s"})
        return df

    @property
    def candidates(self) -> pd.DataFrame:
        """The candidate pool, indexed by ``candidate``: ``formula``, ``n_ge``, ``x_ge``, ``multiplicity``,
        ``test`` (held out), ``sqs``, ``decoration`` (one 0/1 character per site, 1 = alloying element) and
        ``gap``: the gap (eV) of its successful calculation at the campaign's preset, NaN if none yet."""
        view, c = self._view, self._view.candidates
        b = view.b
        gap = np.full(len(c["n_b"]), np.nan)
        done = view.completed(view.preset)
        gap[np.fromiter(done, np.int64, len(done))] = np.fromiter(done.values(), float, len(done))
        df = pd.DataFrame({
            "formula": view.formulas(), f"n_{b}": c["n_b"], f"x_{b}": c["x_b"], "multiplicity": c["multiplicity"],
            "test": c["test"].astype(bool), "sqs": c["sqs"].astype(bool),
            "decoration": ["".join(map(str, row)) for row in c["decoration"].tolist()], "gap": gap,
        }, index=pd.RangeIndex(len(gap), name=S.CANDIDATE))
        df.attrs["units"] = {"gap": "eV", f"x_{b}": "fraction"}
        return df

    @property
    def features(self) -> pd.DataFrame:
        """The model's features of every candidate: one column per feature name, indexed by ``candidate``."""
        c = self._view.candidates
        return pd.DataFrame(c["features"], columns=list(self._view.feature_names),
                            index=pd.RangeIndex(len(c["n_b"]), name=S.CANDIDATE))

    @property
    def snapshots(self) -> pd.DataFrame:
        """One row per refit of the loop's model, indexed by ``snapshot``: training size, CV and baseline
        errors, the pool's max and mean std (eV), ``time`` (UTC), ``model`` (text) and ``hyperparameters``
        (the exact fitted state as a dict, None before store schema 5). The predictions over the pool are in
        :meth:`pool_predictions`."""
        snaps = self._view.snapshots
        n = len(snaps["iteration"])
        frame = {}
        for column in S.SNAPSHOTS.columns:
            if column.per is not None:
                continue
            values = snaps[column.name]
            if column.unit == S.TIME:
                values = _dates(values)
            elif column.name == "hyperparameters":
                values = pd.array([json.loads(v) if v else None for v in values.tolist()], dtype=object)
            frame[column.name] = values
        df = pd.DataFrame(frame, index=pd.RangeIndex(n, name=S.SNAPSHOT))
        df.attrs["units"] = _units(S.SNAPSHOTS.columns)
        return df

    def pool_predictions(self, snapshot: int = -1) -> pd.DataFrame:
        """The loop's prediction over the pool at a snapshot (default the latest): ``mean`` and ``std`` (eV)
        of every candidate, as stored (float32), indexed by ``candidate``."""
        snaps = self._view.snapshots
        if not len(snaps["iteration"]):
            raise IndexError(f"{self.path} has no snapshot yet: run the campaign further")
        df = pd.DataFrame({"mean": snaps["pool_mean"][snapshot], "std": snaps["pool_std"][snapshot]},
                          index=pd.RangeIndex(snaps["pool_mean"].shape[1], name=S.CANDIDATE))
        df.attrs["units"] = {"mean": "eV", "std": "eV"}
        df.attrs["snapshot"] = int(np.arange(len(snaps["iteration"]))[snapshot])
        return df

    # -- the model -----------------------------------------------------------------------------
    def model(self, kind: str | None = None, *, refit: bool = False) -> StoreModel:
        """The campaign's model, rebuilt on the store's results with the latest snapshot's hyperparameters
        (nothing optimised; ``refit=True`` optimises them again, ``kind`` fits another model kind).

        The result's ``predict(X_or_atoms)`` gives mean and std (eV); ``hyperparameters`` says how they were
        found. Built once per handle (and per ``kind``/``refit``).

        Raises
        ------
        activemat.errors.NotEnoughData
            Fewer than two successful calculations to train on.
        """
        key = (kind, refit)
        if key not in self._models:
            self._models[key] = fit_store_model(self._view, kind, refit=refit)
        return self._models[key]

    def predict(self, items, kind: str | None = None, *, refit: bool = False) -> pd.DataFrame:
        """Predicted gaps of compositions, structure files and ``ase.Atoms`` (one or a list, mixed).

        A composition (``"Si4Ge12"``, ``"SiGe3"``, ``"Si0.25Ge0.75"``) is the multiplicity-weighted average
        over its configurations in the pool, with the joint-posterior ``model_std`` of that average and the
        ``config_spread``; a structure (every frame of a file, or an Atoms) is featurised and predicted
        with its predictive ``model_std``. One row per prediction; units in ``.attrs["units"]``, how the
        model was built in ``.attrs["model"]`` and ``.attrs["hyperparameters"]``.
        """
        result = predict(self.model(kind, refit=refit), items)
        rows = []
        for p in result["predictions"]:
            row = {k: v for k, v in p.items() if k not in ("features", "computed")}
            if p["type"] == "composition":
                row["n_computed"] = len(p["computed"])
            rows.append(row)
        df = pd.DataFrame(rows)
        df.attrs.update(units={"gap": "eV", "model_std": "eV", "config_spread": "eV"}, model=result["description"],
                        hyperparameters=result["hyperparameters"])
        return df

    def curve(self, kind: str | None = None, *, refit: bool = False) -> pd.DataFrame:
        """The composition-averaged gap curve E_g(x) (:func:`activemat.analysis.curve.gap_curve`): one row per
        composition with ``mean``, ``model_std`` (joint posterior), ``model_std_bound``, ``spread``; the bowing
        fit (b and the end points with their std) in ``.attrs["bowing"]``, notes in ``.attrs["notes"]``."""
        result = gap_curve(self.model(kind, refit=refit))
        df = pd.DataFrame(result["compositions"])
        df.attrs.update(units={k: "eV" for k in ("mean", "model_std", "model_std_bound", "spread")},
                        bowing=result["bowing"], notes=result["notes"], model=result["description"],
                        hyperparameters=result["hyperparameters"], covariance=result["covariance"])
        return df

    def card(self, kind: str | None = None, *, reference=None, refit: bool = False) -> dict:
        """The model card (``activemat inspect --json``): hyperparameters with units, CV and baseline errors."""
        return model_card(self._view, kind, reference=reference, refit=refit)
