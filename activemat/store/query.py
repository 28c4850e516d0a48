"""A store as read into memory (:class:`StoreView`): its columns, its candidates, one table of calculations.

A reader never builds a view itself: :func:`activemat.store.read.read_store`
(safe while a campaign writes the store) is the one function that opens a
store for reading, and returns a :class:`StoreView`. The campaign layer's
:class:`~activemat.campaign.stored.CampaignView` is the same reading that also
knows its campaign file, and :class:`activemat.Store` is it for notebooks.

Every calculation row is joined with its candidate (formula,
alloying-element count and fraction, multiplicity, test flag), and filters
are vectorised numpy masks over those columns, so stores of 10^5 rows filter
in milliseconds. The ``parameters`` column holds the canonical JSON of the
GPAW keyword arguments a calculation ran with (empty when not recorded, as in
stores written before schema 3); :func:`to_records` (and so the JSON output
of ``activemat query``) gives it back as an object. Writing a table out is
not done here: :mod:`activemat.store.export` writes files (extended XYZ,
CSV), :mod:`activemat.analysis.tables` prints it.

>>> parse_range("0.2:0.5", "gap")
(0.2, 0.5)
>>> parse_range("4", "ge-count", int)
(4, 4)
>>> parse_range(":0.3", "gap")
(None, 0.3)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from activemat.store import schema as S
from activemat.errors import InputError, StoreError
from activemat.space.formula import format_formula, parse_formula
from activemat.space.lattice import Parent, as_parent
from activemat.space.parents import parent_from_keys
from activemat.space.pool import CandidatePool
__all__ = ["StoreView", "parse_range", "to_records", "plain_values"]

JSON_COLUMNS = ("parameters",)  # table columns holding JSON text: objects in records and JSON output


def parse_range(text, name: str, kind=float) -> tuple:
    """Parse ``MIN:MAX`` (either side may be empty) or a single value into an inclusive range.

    ``text`` may also be a ``(min, max)`` tuple or a number (Python API).
    """
    if text is None:
        return None
    if isinstance(text, (tuple, list)) and len(text) == 2:
        lo, hi = text
    elif isinstance(text, (int, float, np.number)) and not isinstance(text, bool):
        lo = hi = text
    else:
        parts = str(text).split(":")
        if len(parts) > 2 or not any(p.strip() for p in parts):
            raise InputError(f"--{name} {text!r} is not a range; write MIN:MAX, MIN:, :MAX or a single value")
        if len(parts) == 1:
            parts = parts * 2
        try:
            lo, hi = (kind(p) if p.strip() else None for p in parts)
        except ValueError:
            what = "integers" if kind is int else "numbers"
            raise InputError(f"--{name} {text!r}: bounds must be {what}; write MIN:MAX, e.g. "
                             f"{'4:8' if kind is int else '0.2:0.5'}") from None
    for v in (lo, hi):
        if v is not None and isinstance(v, float) and math.isnan(v):
            raise InputError(f"--{name} {text!r}: bounds must not be nan; write MIN:MAX")
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"--{name} {text!r} is an empty range (MIN > MAX); write MIN:MAX with MIN <= MAX")
    return lo, hi


def _within(bounds: tuple, text, name: str, low, high, what: str) -> tuple:
    """``bounds``, refused in one line if a bound lies outside ``low..high`` (it could match nothing there).

    >>> _within((0.2, None), "0.2:", "x-ge", 0, 1, "the Ge fraction")
    (0.2, None)
    """
    if any(v is not None and not low <= v <= high for v in bounds):
        raise InputError(f"--{name} {text!r} is outside {low}..{high} ({what}); give a range within "
                         f"{low}:{high}, e.g. {low}:{high / 2:g}")
    return bounds


def _in_range(values: np.ndarray, bounds) -> np.ndarray:
    lo, hi = bounds
    mask = np.ones(len(values), bool)
    if lo is not None:
        mask &= values >= lo
    if hi is not None:
        mask &= values <= hi
    return mask  # NaN fails both comparisons, so a gap range drops failed rows


def _optional(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """An object array of Python values where ``known``, None elsewhere.

    >>> _optional(np.array([3, -1]), np.array([True, False])).tolist()
    [3, None]
    """
    out = np.array(values.tolist(), dtype=object)
    out[~known] = None
    return out


def _names(value) -> list[str]:
    """'a,b' or ['a', 'b'] -> ['a', 'b']."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(v).strip() for v in items if str(v).strip()]


@dataclass(eq=False)
class StoreView:
    """A store as read into memory, read-only: its columns as numpy arrays, and what they describe.

    Made by :func:`activemat.store.read.read_store`, the one way to open a store for reading. It is a copy:
    rows a campaign writes later are seen by reading the store again.

    Attributes
    ----------
    path
        The store's file.
    attrs
        Root attributes (text decoded to ``str``).
    candidates, calculations, snapshots
        Columns of each group as numpy arrays (text as ``str`` object arrays), named as in
        :mod:`activemat.store.schema`; columns a newer schema added to an older file are filled with
        their fill value.
    presets
        Preset name -> the preset as stored (a plain dict).
    parameters
        Parameter-set key (``calculations["parameters"]``) -> the GPAW keyword arguments (a plain
        dict); empty for a store written before schema 3. :meth:`parameters_of` gives a row's.
    """

    path: Path
    attrs: dict
    candidates: dict[str, np.ndarray]
    calculations: dict[str, np.ndarray]
    snapshots: dict[str, np.ndarray]
    presets: dict[str, dict] = field(default_factory=dict)
    parameters: dict[str, dict] = field(default_factory=dict)

    # -- what the store describes ---------------------------------------------
    @property
    def elements(self) -> tuple[str, str]:
        return tuple(str(e) for e in self.attrs[S.ATTR_ELEMENTS])

    @property
    def parent(self) -> Parent:
        """The parent structure as the store recorded it (its ``parent`` attribute); in stores written before
        that attribute, from the stored campaign file's ``[space]`` (the diamond lattice of the two elements
        when it names none: every store from before other parents existed)."""
        if "_parent" not in self.__dict__:
            recorded = self.attrs.get(S.ATTR_PARENT)
            self.__dict__["_parent"] = self._text_parent() if recorded is None else self._recorded_parent(recorded)
        return self.__dict__["_parent"]

    def _recorded_parent(self, text) -> Parent:
        try:
            return Parent.from_json(text.decode() if isinstance(text, bytes) else str(text))
        except (ValueError, KeyError, TypeError):  # damaged text (json's errors are ValueErrors)
            raise StoreError(f"{self.path} is damaged (root attribute '{S.ATTR_PARENT}' is not a parent structure);"
                             " restore it from a backup or start a new store path") from None

    def _text_parent(self) -> Parent:
        import tomllib

        try:
            space = tomllib.loads(str(self.attrs.get(S.ATTR_CAMPAIGN_TEXT, ""))).get("space", {})
        except tomllib.TOMLDecodeError:
            space = {}
        keys = ("lattice", "structure", "chemical_symbols", "lattice_constants")
        if any(k in space for k in keys):
            return parent_from_keys(elements=self.elements, **{k: space[k] for k in keys if k in space})
        return as_parent(self.elements)

    @property
    def supercell(self) -> tuple:
        """Three repeats, or a 3x3 matrix as a tuple of rows."""
        value = np.asarray(self.attrs[S.ATTR_SUPERCELL])
        return tuple(tuple(int(n) for n in row) for row in value) if value.ndim == 2 else tuple(int(n) for n in value)

    @property
    def cell(self) -> str:
        """The repeated cell, ``"primitive"`` or ``"cubic"`` (stores before schema 3 are primitive)."""
        return str(self.attrs.get(S.ATTR_CELL, "primitive"))

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(str(n) for n in self.attrs[S.ATTR_FEATURE_NAMES])

    @property
    def n_sites(self) -> int:
        return int(self.candidates["decoration"].shape[1])

    @property
    def b(self) -> str:
        """Lower-case symbol of the alloying element, as in column names (``x_ge``)."""
        return self.elements[1].lower()

    @property
    def test(self) -> np.ndarray:
        """Candidates held out for testing (never trained on), as a bool array."""
        test = self.candidates.get("test")
        return np.zeros(len(self.candidates["n_b"]), bool) if test is None else test.astype(bool)

    def formulas(self) -> np.ndarray:
        """Formula of every candidate, e.g. ``Si4Ge12``, ``Ga5Al3As8`` (object array)."""
        n = self.n_sites
        per_count = np.array([format_formula(self.parent, n - m, m) for m in range(n + 1)], dtype=object)
        return per_count[self.candidates["n_b"]]

    def n_b_of(self, formula: str) -> int:
        """Number of alloying atoms in a formula; InputError naming the fix if it is not one of this store's."""
        return parse_formula(formula, self.parent, self.n_sites)

    def pool(self) -> CandidatePool:
        """The store's candidate pool, from its stored arrays.

        The loop refuses a store whose decorations differ from ``build_pool``
        for its ``[space]``, so this is the campaign's pool, without enumerating
        it again.
        """
        c = self.candidates
        return CandidatePool(self.elements, self.supercell, c["decoration"].astype(np.uint8),
                             c["multiplicity"].astype(np.int64), c["features"].astype(float), self.feature_names,
                             cell=self.cell, sqs=c["sqs"].astype(bool) if c["sqs"].any() else None,
                             parent=self.parent)

    # -- what the calculations came to ------------------------------------------
    @property
    def n_calculations(self) -> int:
        return len(self.calculations["candidate"])

    def status_mask(self, status: str) -> np.ndarray:
        return self.calculations["status"] == status

    def completed(self, preset: str | None = None) -> dict[int, float]:
        """Candidate -> gap of its successful calculation (with that preset only, if given)."""
        ok = self.status_mask(S.OK)
        if preset is not None:
            ok &= self.calculations["preset"] == preset
        return dict(zip(self.calculations["candidate"][ok].tolist(), self.calculations["gap"][ok].tolist()))

    def results(self, preset: str, *, held_out: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Candidates with a successful calculation at ``preset`` and their gaps (eV): the training candidates,
        or with ``held_out`` the test candidates."""
        done = self.completed(preset)
        idx = np.fromiter(done, dtype=np.int64, count=len(done))
        gaps = np.fromiter(done.values(), dtype=float, count=len(done))
        keep = (self.test[idx] == held_out) if len(idx) else np.zeros(0, bool)
        return idx[keep], gaps[keep]

    def parameters_of(self, row: int) -> dict:
        """The GPAW keyword arguments calculation ``row`` ran with (empty if they were not recorded)."""
        return self.parameters.get(self.calculations["parameters"][row], {})

    # -- the calculations table -----------------------------------------------
    def table(self) -> dict[str, np.ndarray]:
        """Every calculation row joined with its candidate, as ordered columns (built once per view)."""
        if "_table" not in self.__dict__:
            self.__dict__["_table"] = _calculation_table(self)
        return dict(self.__dict__["_table"])

    def mask(self, table: dict[str, np.ndarray] | None = None, *, composition=None, n_b=None, x_b=None,
             status=None, gap=None, iteration=None, preset=None) -> np.ndarray:
        """Boolean mask over calculation rows; every given filter must hold.

        Parameters
        ----------
        composition
            Formula(s) such as ``"Si4Ge12"`` or ``"Si4Ge12,Si8Ge8"``.
        n_b, x_b
            Inclusive ranges (``"4:8"``, ``(0.25, 0.5)``) of the alloying
            element's count and fraction (Ge for SiGe).
        status
            One or more of running, ok, failed, interrupted.
        gap
            Inclusive range in eV; rows without a gap never match.
        iteration
            Inclusive range of the model iteration at selection.
        preset
            Calculator preset name(s).
        """
        t = self.table() if table is None else table
        b = self.b
        mask = np.ones(len(t["row"]), bool)
        if composition is not None:
            wanted = [self.n_b_of(f) for f in _names(composition)]
            if not wanted:
                half = self.n_sites // 2
                raise InputError("--composition is empty; give a formula such as "
                                 f"{self.elements[0]}{half}{self.elements[1]}{self.n_sites - half}")
            mask &= np.isin(t[f"n_{b}"], wanted)
        if n_b is not None:
            mask &= _in_range(t[f"n_{b}"], _within(parse_range(n_b, f"{b}-count", int), n_b, f"{b}-count", 0,
                                                    self.n_sites, f"the number of {self.elements[1]} atoms in the "
                                                    f"{self.n_sites}-site cell"))
        if x_b is not None:
            mask &= _in_range(t[f"x_{b}"], _within(parse_range(x_b, f"x-{b}"), x_b, f"x-{b}", 0, 1,
                                                    f"the {self.elements[1]} fraction"))
        if status is not None:
            wanted = _names(status)
            bad = [s for s in wanted if s not in S.STATUSES]
            if bad or not wanted:
                raise InputError(f"unknown status {', '.join(bad) or repr(status)}; use one or more of "
                                 f"{', '.join(S.STATUSES)} (comma-separated)")
            mask &= np.isin(t["status"], wanted)
        if gap is not None:
            mask &= _in_range(t["gap"], parse_range(gap, "gap"))
        if iteration is not None:
            mask &= _in_range(t["iteration"], parse_range(iteration, "iteration", int))
        if preset is not None:
            wanted = _names(preset)
            known = sorted(set(self.presets) | set(t["preset"].tolist()) - {""})
            bad = [p for p in wanted if p not in known]
            if bad or not wanted:
                raise InputError(f"preset {', '.join(bad) or repr(preset)} was not used in {self.path}; "
                                 f"presets in this store: {', '.join(known) or 'none'}")
            mask &= np.isin(t["preset"], wanted)
        return mask

    def select(self, columns=None, sort: str | None = None, reverse: bool = False, limit: int | None = None,
               **filters) -> dict[str, np.ndarray]:
        """Filtered (and optionally sorted, cut and column-selected) calculations table.

        ``filters`` are those of :meth:`mask`. ``sort`` puts NaN and missing values last.
        """
        t = self.table()
        idx = np.flatnonzero(self.mask(t, **filters))
        names = self.check_columns(columns, t) if columns is not None else list(t)
        if sort is not None:
            (key,) = self.check_columns([sort], t, option="--sort")
            idx = idx[_order(t[key][idx], reverse)]
        if limit is not None:
            if limit < 0:
                raise InputError(f"--limit {limit} is negative; give a number of rows >= 0")
            idx = idx[:limit]
        return {k: t[k][idx] for k in names}

    def check_columns(self, columns, table=None, option: str = "--columns") -> list[str]:
        t = self.table() if table is None else table
        names = _names(columns)
        bad = [c for c in names if c not in t]
        if bad or not names:
            raise InputError(f"unknown column {', '.join(bad) or repr(columns)} for {option}; "
                             f"columns: {', '.join(t)}")
        return names

    def records(self, **filters) -> list[dict]:
        """Filtered calculations as a list of dicts (NaN as None), e.g. for pandas or JSON."""
        return to_records(self.select(**filters))


def _calculation_table(view: StoreView) -> dict[str, np.ndarray]:
    """:meth:`StoreView.table`: every calculation row joined with its candidate."""
    calc, cand = view.calculations, view.candidates
    c = calc["candidate"]
    n = len(c)
    b = view.b
    known = (c >= 0) & (c < len(cand["n_b"]))
    ci = np.where(known, c, 0)

    def take(values, fill):
        return np.where(known, values[ci], fill) if n else values[:0]

    out = {
        "row": np.arange(n),
        "candidate": c,
        "formula": np.where(known, view.formulas()[ci], "") if n else np.array([], dtype=object),
        f"n_{b}": take(cand["n_b"], -1),
        f"x_{b}": take(cand["x_b"], np.nan),
        "multiplicity": take(cand["multiplicity"], 0),
        "test": take(view.test, False).astype(bool),
    }
    status = calc["status"]
    finished = np.isin(status, (S.OK, S.FAILED))  # rows with a result (the others hold only fills)
    # Then every calculation column, in schema order. A value the calculation never produced is None (an
    # empty cell, null, a key left out), never a fill that reads as a result: -1 SCF iterations, a 0x0x0
    # grid, "indirect" for a gap never computed, fallback 0 for a calculation that never ran.
    for name in S.CALCULATIONS.names:
        if name == "candidate":
            continue
        values = calc[name]
        if name == "kpts":
            values = np.array([None if not any(k) else "x".join(map(str, k)) for k in values.tolist()],
                              dtype=object)
        elif name == "direct":
            values = _optional(values.astype(bool), status == S.OK)
        elif name in ("scf_iterations", "relax_steps", "relax_from"):
            values = _optional(values, finished & (values >= 0))
        elif name == "ranks":  # 0: not recorded (rows from before MPI ranks were)
            values = _optional(values, finished & (values > 0))
        elif name == "fallback":
            values = _optional(values, finished)
        elif name == "parameters":  # the key of a parameter set -> its JSON
            keys, inverse = np.unique(values.astype(str), return_inverse=True)
            texts = [S.parameters_json(view.parameters[k]) if k in view.parameters else ""
                     for k in keys.tolist()]
            values = np.array(texts, dtype=object)[inverse]
        elif values.ndim > 1:
            continue  # positions and cell: the structure is in export's frames, not in the flat table
        out[name] = values
        if name == "finished":
            out["wall_time"] = calc["finished"] - calc["started"]
    for name, values in out.items():
        if values.dtype == object and n:
            # Rows still running hold their string fill, written as the text "b''" by store 0.1.0: show it empty.
            out[name] = np.where(values == "b''", "", values)
    return out


def _order(values: np.ndarray, reverse: bool) -> np.ndarray:
    """The order that sorts a column (descending with ``reverse``), NaN and None last either way.

    >>> _order(np.array([0.3, np.nan, 0.1]), reverse=True).tolist()
    [0, 2, 1]
    >>> _order(np.array([2, None, 1], dtype=object), reverse=False).tolist()
    [2, 0, 1]
    """
    missing = np.array([v is None for v in values.tolist()], bool) if values.dtype == object else None
    if missing is not None and missing.any():  # an optional column: values in order, None last
        present = np.flatnonzero(~missing)
        inner = np.argsort(np.array(values[present].tolist()), kind="stable")
        return np.concatenate([present[inner[::-1] if reverse else inner], np.flatnonzero(missing)])
    if values.dtype.kind == "f":
        order = np.argsort(-values if reverse else values, kind="stable")
        return np.concatenate([order[~np.isnan(values[order])], order[np.isnan(values[order])]])
    order = np.argsort(values, kind="stable")
    return order[::-1] if reverse else order


# -- records ---------------------------------------------------------------------
def plain_values(values: np.ndarray) -> list:
    """A column as a list of Python values, NaN as None.

    >>> plain_values(np.array([0.5, np.nan]))
    [0.5, None]
    """
    out = values.tolist()
    if values.dtype.kind == "f":
        out = [None if v != v else v for v in out]
    return out


def to_records(table: dict[str, np.ndarray]) -> list[dict]:
    """Rows of a table as dicts: NaN as None, JSON text columns (``parameters``) as objects (None if empty)."""
    names = list(table)
    cols = [plain_values(np.asarray(table[k])) for k in names]
    for i, name in enumerate(names):
        if name in JSON_COLUMNS:
            cols[i] = [json.loads(v) if v else None for v in cols[i]]
    return [dict(zip(names, row)) for row in zip(*cols)]
