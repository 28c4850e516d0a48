"""The on-disk schema of a campaign store: every HDF5 group, column, dtype, unit and fill value.

This module is the one place that names a path, a dtype or a unit of the
store. :mod:`activemat.store.write` creates and :mod:`activemat.store.migrate`
migrates a store from these declarations alone, and the readers look columns
up by the names declared here. A store is one HDF5 file:

- root attributes (:data:`ROOT_ATTRIBUTES`): schema version, creator, the
  campaign file's text and identity, the pool's elements, supercell and
  feature names, the units;
- groups (:data:`GROUPS`), each a table of equal-length columns, one
  dataset per column: :data:`CANDIDATES` (one row per candidate, written
  once), :data:`CALCULATIONS` (one row per attempt), :data:`PARAMETERS`
  (the distinct GPAW parameter sets the calculations used),
  :data:`SNAPSHOTS` (one row per model refit, with the predictions over the
  pool); and :data:`PRESETS`, attributes only.

Every dtype is fixed-size: HDF5's SWMR mode (live readers while the driver
writes) supports no variable-length data, and a SWMR writer can only append
to datasets that already exist, so every group and column is created with
the store (or added by a migration), never while a campaign writes.

Schema versions
---------------
1
    first version (candidates, calculations, snapshots, presets).
2
    calculations/fallback (which of the preset's fallback settings an attempt
    used). Version-1 files are migrated by adding the column (0 = as written).
3
    the GPAW parameters of every calculation: calculations/parameters (the
    key of its parameter set), the group ``parameters`` (key -> canonical
    JSON, each distinct set once), and calculations/ks_gap and
    calculations/discontinuity (GLLB-SC results, NaN otherwise). Older files
    are migrated by adding the columns (empty key = parameters not recorded,
    NaN) and an empty ``parameters`` group.
4
    candidates/sqs (icet's special quasirandom structure of each composition).
5
    named dimensions (:data:`DIMENSIONS`): every group holds one coordinate
    dataset per dimension it uses (``calculations/calculation``,
    ``candidates/feature``, ...), an HDF5 dimension scale attached to every
    column, so netCDF readers (xarray with h5netcdf) see named dimensions
    and coordinates; text columns carry ``_Encoding = "utf-8"`` (read as
    text, not bytes); a column's unit is its ``units`` attribute (CF; it was
    ``unit``), times in ``seconds since 1970-01-01T00:00:00Z`` (read as
    dates); every object is written in the HDF5 1.10 file format, a migrated
    file's too (its datasets are rewritten, not copied as they were).
    snapshots/hyperparameters: the fitted model exactly (JSON), so the read
    verbs rebuild it without re-optimising. Older files are migrated by a
    copy that adds the coordinates and scales and an empty hyperparameters
    column (those snapshots' models are refitted when read).
6
    MPI ranks and relaxation, per calculation: calculations/ranks, relax,
    relax_steps, relax_fmax, relax_from, unrelaxed_gap, and the structure the
    gap was computed on, calculations/positions (one row of x, y, z per
    site) and calculations/cell. Older files are migrated by adding the
    columns (ranks 0 = not recorded; empty relax and NaN structure =
    the ideal Vegard structure, as the candidate describes it).
7
    band edges where they are (presets with ``edges = "folded"``):
    calculations/grid_gap, vbm_k, cbm_k, cbm_character, band_check, and
    soc_gap (spin-orbit) and relax_gap (the gap of the preset whose forces
    relaxed the structure). Older files are migrated by adding the columns
    (NaN and empty: their gaps are grid gaps, read on the self-consistent
    k-points).
8
    the gap to each conduction valley, calculations/gap_gamma, gap_delta,
    gap_x and gap_l (the lowest unfolded conduction state of each valley
    minus the VBM), from which the valley order along the composition
    axis is learned. Older files are migrated by adding the columns (NaN).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

SCHEMA_VERSION = 8
CREATOR = "activemat"

#: HDF5 file-format bounds (low, high) of every open that writes. New objects use the low bound, the
#: lowest format with SWMR (1.10), so HDF5 1.10 tools (Debian's ``h5dump``) read the store. A recovery or
#: migration rewrites every dataset (never an object copy, which would keep the format an older activemat
#: wrote it in); the high bound only lets such a file be opened.
FORMAT = ("v110", "latest")

#: Units of the physical quantities (also stored as the root attribute ``units``, and per column).
UNITS = {"energy": "eV", "length": "Angstrom", "time": "s"}
#: Unit of a point in time (CF convention: netCDF readers such as xarray decode it to dates).
TIME = "seconds since 1970-01-01T00:00:00Z"
#: The attribute that holds a column's unit (CF), and the one that says its bytes are UTF-8 text (netCDF).
UNITS_ATTR, ENCODING_ATTR = "units", "_Encoding"

# -- root attributes -----------------------------------------------------------------------
ATTR_SCHEMA = "schema_version"
ATTR_CREATOR = "creator"
ATTR_CREATOR_VERSION = "creator_version"
ATTR_CREATED = "created"
ATTR_CAMPAIGN_TEXT = "campaign_toml"
ATTR_IDENTITY = "campaign_identity"
ATTR_FEATURE_NAMES = "feature_names"
ATTR_ELEMENTS = "elements"
ATTR_SUPERCELL = "supercell"
ATTR_CELL = "cell"
ATTR_UNITS = "units"


@dataclass(frozen=True)
class Attribute:
    """A root attribute of the store.

    Attributes
    ----------
    name
        Attribute name (one of the ``ATTR_*`` constants).
    kind
        What it holds, for the reference: ``"int"``, ``"str"``, ``"list[str]"``, ``"list[int]"`` or ``"JSON"``.
    doc
        One line for the reference.
    """

    name: str
    kind: str
    doc: str


ROOT_ATTRIBUTES = (
    Attribute(ATTR_SCHEMA, "int", "schema version of the file (see the changelog); newer files are refused"),
    Attribute(ATTR_CREATOR, "str", f'always "{CREATOR}"; a file without it is not a store'),
    Attribute(ATTR_CREATOR_VERSION, "str", "activemat version that created the file"),
    Attribute(ATTR_CREATED, "str", "creation time, ISO 8601 with UTC offset"),
    Attribute(ATTR_CAMPAIGN_TEXT, "str", "text of the campaign file the store was created with"),
    Attribute(ATTR_IDENTITY, "str", "hash of what defines the data (space and calculator); a resume must match it"),
    Attribute(ATTR_FEATURE_NAMES, "list[str]", "names of the columns of candidates/features"),
    Attribute(ATTR_ELEMENTS, "list[str]", "host and alloying element (A, B), e.g. Si, Ge"),
    Attribute(ATTR_SUPERCELL, "list[int]", "repetitions of the cell named by the cell attribute, e.g. 2, 2, 2"),
    Attribute(ATTR_CELL, "str", 'the repeated cell: "primitive" (2-atom diamond) or "cubic" (8-atom); files '
                                'without it (schema 1-2) are "primitive"'),
    Attribute(ATTR_UNITS, "JSON", "units of the physical quantities, " + json.dumps(UNITS)),
)

# -- calculation status ------------------------------------------------------------------
RUNNING, OK, FAILED, INTERRUPTED = "running", "ok", "failed", "interrupted"
#: Every value of calculations/status.
STATUSES = (RUNNING, OK, FAILED, INTERRUPTED)
#: Prefixes of calculations/error that say why an attempt failed outside GPAW.
LOST, TIMEOUT = "worker lost", "time limit"

# -- dimensions ------------------------------------------------------------------------------
#: Lengths a column's ``per`` rule can name; the candidate pool fixes them when the store is created. They are
#: also the names of those dimensions.
SITE, FEATURE, CANDIDATE = "site", "feature", "candidate"
#: The other dimensions: the rows of calculations, snapshots and parameters, and the axes of a k-point grid.
CALCULATION, SNAPSHOT, PART, K_AXIS = "calculation", "snapshot", "part", "k_axis"
#: Axes of a structure: Cartesian x, y, z, and the cell's three vectors.
XYZ, CELL_VECTOR = "xyz", "cell_vector"


@dataclass(frozen=True)
class Dimension:
    """A named dimension: an HDF5 dimension scale (a netCDF dimension and its coordinate).

    Each group holds one coordinate dataset per dimension it uses, named as the dimension and attached as
    the scale of that axis of every column; a reader of the store's own columns skips them.

    Attributes
    ----------
    name
        Dimension name, also the name of its coordinate dataset in each group that uses it.
    dtype
        Dtype of the coordinate.
    doc
        What the coordinate holds, one line for the reference.
    """

    name: str
    dtype: str
    doc: str
    size: int | None = None  # a fixed length (the others: the rows, or a size of the pool)


DIMENSIONS = (
    Dimension(CANDIDATE, "i8", "row of candidates: 0, 1, ... (the axis of candidates and of a pool prediction)"),
    Dimension(SITE, "i4", "supercell site: 0, 1, ..."),
    Dimension(FEATURE, "S64", "feature name (the root attribute feature_names)"),
    Dimension(CALCULATION, "i8", "row of calculations: 0, 1, ... (one per attempt)"),
    Dimension(K_AXIS, "i4", "axis of the k-point grid: 0, 1, 2 (the reciprocal cell vectors)", 3),
    Dimension(XYZ, "i4", "Cartesian axis: 0, 1, 2 (x, y, z)", 3),
    Dimension(CELL_VECTOR, "i4", "cell vector: 0, 1, 2 (the rows of a cell)", 3),
    Dimension(PART, "i8", "row of parameters: 0, 1, ..."),
    Dimension(SNAPSHOT, "i8", "row of snapshots: 0, 1, ... (one per refit)"),
)


def dimension(name: str) -> Dimension:
    """The declared dimension ``name``.

    >>> dimension("feature").dtype
    'S64'
    """
    return next(d for d in DIMENSIONS if d.name == name)


# -- columns ---------------------------------------------------------------------------------
#: Sources of a calculation column: written on submission or from the finished record.
SUBMIT, RESULT = "submit", "result"
_NAN = float("nan")


@dataclass(frozen=True)
class Column:
    """One column of a group: a dataset with one entry per row.

    Attributes
    ----------
    name
        Dataset name inside its group.
    dtype
        Fixed-size numpy dtype; ``S<n>`` is UTF-8 text cut to ``n`` bytes on a character boundary.
    unit
        Physical unit (also the dataset's ``units`` attribute, :data:`UNITS_ATTR`); empty if none.
    fill
        Value of a row that has none (not yet written, or added by a migration).
    per
        Shape of one entry: ``None`` a scalar; an int ``n`` a fixed vector of ``n``; or :data:`SITE`,
        :data:`FEATURE`, :data:`CANDIDATE` a vector with one value per supercell site, per feature or
        per candidate of the pool; or a tuple of these, a table (``(SITE, 3)``: x, y, z of each site).
    source
        Where the writer takes the value: for candidates, the attribute of the candidate pool (empty:
        the fill); for calculations, :data:`SUBMIT` (``CampaignStore.add_attempt``) or :data:`RESULT`
        (``CampaignStore.finish_attempt``, from the calculation record); empty elsewhere (the caller's
        values).
    compress
        Gzip each row as its own chunk (rows as wide as the pool).
    since
        Schema version that added the column (older files get it, filled, by migration).
    doc
        One line for the reference.
    axis
        Dimension of a fixed vector's entries (``per`` an int); :data:`SITE`, :data:`FEATURE` and
        :data:`CANDIDATE` name their own.
    """

    name: str
    dtype: str
    unit: str = ""
    fill: object = 0
    per: int | str | tuple[int | str, ...] | None = None
    source: str = ""
    compress: bool = False
    since: int = 1
    doc: str = ""
    axis: str | tuple[str, ...] = ""

    def shape(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """Shape of one entry, with the pool's ``sizes`` (keys :data:`SITE`, :data:`FEATURE`, :data:`CANDIDATE`).

        >>> Column("kpts", "i4", per=3).shape({})
        (3,)
        >>> Column("features", "f8", per=FEATURE).shape({FEATURE: 5})
        (5,)
        >>> Column("positions", "f8", per=(SITE, 3)).shape({SITE: 16})
        (16, 3)
        """
        if self.per is None:
            return ()
        per = self.per if isinstance(self.per, tuple) else (self.per,)
        return tuple(p if isinstance(p, int) else sizes[p] for p in per)

    @property
    def entry_dimensions(self) -> tuple[str, ...]:
        """Dimensions of the axes of one entry (none for a scalar): a pool size names its own, a fixed length
        takes the next name of ``axis``.

        >>> Column("kpts", "i4", per=3, axis=K_AXIS).entry_dimensions
        ('k_axis',)
        >>> Column("positions", "f8", per=(SITE, 3), axis=XYZ).entry_dimensions
        ('site', 'xyz')
        """
        if self.per is None:
            return ()
        per = self.per if isinstance(self.per, tuple) else (self.per,)
        names = iter(self.axis if isinstance(self.axis, tuple) else (self.axis,))
        return tuple(next(names) if isinstance(p, int) else p for p in per)

    @property
    def width(self) -> int:
        """Bytes of a text column (0 for numbers).

        >>> Column("status", "S12").width
        12
        """
        return int(self.dtype[1:]) if self.dtype.startswith("S") else 0


@dataclass(frozen=True)
class Group:
    """An HDF5 group: a table of equal-length columns, or (with no columns) attributes only.

    Attributes
    ----------
    path
        Path of the group from the file's root.
    columns
        Its columns, in table order.
    doc
        One paragraph for the reference.
    appendable
        Rows are appended as the campaign runs (chunked, resizable datasets); otherwise the rows
        are written once, when the store is created.
    chunk_rows
        Rows per HDF5 chunk of an appendable column (compressed columns: one row per chunk).
    since
        Schema version that added the group.
    row
        Dimension of its rows (empty for a group of attributes only).
    """

    path: str
    columns: tuple[Column, ...]
    doc: str
    appendable: bool = True
    chunk_rows: int = 1024
    since: int = 1
    row: str = ""

    def __getitem__(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.path} has no column {name!r}; columns: {', '.join(self.names)}")

    def __contains__(self, name: str) -> bool:
        return name in self.names

    @property
    def names(self) -> tuple[str, ...]:
        """Column names, in table order."""
        return tuple(c.name for c in self.columns)

    def dimensions_of(self, column: Column) -> tuple[str, ...]:
        """Dimensions of a column's axes: the group's rows, then its entries'.

        >>> SNAPSHOTS.dimensions_of(SNAPSHOTS["pool_std"])
        ('snapshot', 'candidate')
        """
        return (self.row, *column.entry_dimensions)

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Every dimension its columns use, rows first: the names of its coordinate datasets.

        >>> CALCULATIONS.dimensions
        ('calculation', 'k_axis', 'site', 'xyz', 'cell_vector')
        """
        out = [self.row] if self.columns else []
        for column in self.columns:
            out += [d for d in self.dimensions_of(column) if d not in out]
        return tuple(out)

    def path_of(self, name: str) -> str:
        """Path of a column's dataset from the file's root.

        >>> SNAPSHOTS.path_of("pool_std")
        'snapshots/pool_std'
        """
        return f"{self.path}/{self[name].name}"


CANDIDATES = Group("candidates", (
    Column("decoration", "u1", per=SITE, source="decorations",
           doc="occupation of each supercell site: 0 = host element A, 1 = alloying element B"),
    Column("n_b", "i4", source="n_b", doc="number of B atoms"),
    Column("x_b", "f8", source="x_b", doc="fraction of B atoms, n_b / sites"),
    Column("multiplicity", "i8", source="multiplicity",
           doc="number of decorations of the supercell equivalent to this one by symmetry"),
    Column("features", "f8", per=FEATURE, source="features",
           doc="model features; names in the root attribute feature_names"),
    Column("test", "u1", doc="1 = held out for testing: never trained on or selected"),
    Column("sqs", "u1", source="sqs", since=4,
           doc="1 = icet's special quasirandom structure of its composition: that composition's seed"),
), doc="The candidate pool: symmetry-distinct configurations of the supercell, one row each, written once.",
    appendable=False, row=CANDIDATE)

CALCULATIONS = Group("calculations", (
    Column("candidate", "i8", fill=-1, source=SUBMIT, doc="row of the candidate in candidates"),
    Column("attempt", "i4", source=SUBMIT, doc="0 for the first attempt at a candidate and preset, then 1, 2, ..."),
    Column("status", "S12", fill=b"", source=RESULT,
           doc="running, then ok or failed; interrupted if the driver stopped before the result"),
    Column("preset", "S40", fill=b"", source=SUBMIT, doc="name of the calculator preset"),
    Column("iteration", "i4", fill=-1, source=SUBMIT, doc="model iteration at selection"),
    Column("reason", "S24", fill=b"", source=SUBMIT,
           doc="why it was picked: seed, a strategy name (max_std, ei, ...), retry, ..."),
    Column("score", "f8", fill=_NAN, source=SUBMIT, doc="acquisition value at selection"),
    Column("gap", "f8", "eV", _NAN, source=RESULT, doc="band gap (CBM - VBM; with GLLB-SC its discontinuity added)"),
    Column("direct", "u1", source=RESULT, doc="1 = VBM and CBM at the same k-point"),
    Column("vbm", "f8", "eV", _NAN, source=RESULT, doc="valence band maximum"),
    Column("cbm", "f8", "eV", _NAN, source=RESULT, doc="conduction band minimum"),
    Column("energy", "f8", "eV", _NAN, source=RESULT, doc="total energy"),
    Column("scf_iterations", "i4", fill=-1, source=RESULT, doc="SCF iterations to convergence"),
    Column("fallback", "i4", source=RESULT, since=2,
           doc="0 = the preset as written, k = with its first k fallback settings"),
    Column("kpts", "i4", per=3, source=RESULT, axis=K_AXIS,
           doc="Gamma-centred Monkhorst-Pack grid (0, 0, 0 = not run)"),
    Column("submitted", "f8", TIME, _NAN, source=SUBMIT, doc="time of submission"),
    Column("started", "f8", TIME, _NAN, source=RESULT, doc="time the calculation started"),
    Column("finished", "f8", TIME, _NAN, source=RESULT, doc="time the calculation ended"),
    Column("host", "S64", fill=b"", source=RESULT, doc="host name of the machine that ran it"),
    Column("worker", "S64", fill=b"", source=RESULT, doc="Dask worker that ran it"),
    Column("versions", "S48", fill=b"", source=RESULT, doc="GPAW and ASE versions"),
    Column("error", "S400", fill=b"", source=RESULT,
           doc="why it failed (first line); prefixed 'worker lost' or 'time limit' outside GPAW"),
    Column("scratch", "S256", fill=b"", source=RESULT, doc="scratch folder kept after a failure"),
    Column("parameters", "S16", fill=b"", source=RESULT, since=3,
           doc="key of the GPAW parameters used, in the parameters group; empty = not recorded"),
    Column("ks_gap", "f8", "eV", _NAN, source=RESULT, since=3,
           doc="GLLB-SC: the Kohn-Sham gap before the discontinuity; NaN otherwise"),
    Column("discontinuity", "f8", "eV", _NAN, source=RESULT, since=3,
           doc="GLLB-SC: the derivative discontinuity added to the gap; NaN otherwise"),
    Column("ranks", "i4", source=RESULT, since=6, doc="MPI ranks (cores) the calculation ran on; 0 = not recorded"),
    Column("relax", "S12", fill=b"", source=RESULT, since=6,
           doc="relaxation before the gap: positions, cell, or empty (the ideal Vegard structure)"),
    Column("relax_steps", "i4", fill=-1, source=RESULT, since=6, doc="optimizer steps of this attempt"),
    Column("relax_fmax", "f8", "eV/Angstrom", _NAN, source=RESULT, since=6,
           doc="largest force left when the relaxation stopped"),
    Column("relax_from", "i4", fill=-1, source=RESULT, since=6,
           doc="attempt whose last geometry this one continued from; -1 = the ideal structure"),
    Column("unrelaxed_gap", "f8", "eV", _NAN, source=RESULT, since=6,
           doc="gap at the ideal (Vegard) structure, from the relaxation's first step; NaN if not computed"),
    Column("positions", "f8", "Angstrom", _NAN, per=(SITE, 3), source=RESULT, since=6, axis=XYZ,
           doc="Cartesian positions of the structure the gap was computed on (relaxed); NaN = not recorded"),
    Column("cell", "f8", "Angstrom", _NAN, per=(3, 3), source=RESULT, since=6, axis=(CELL_VECTOR, XYZ),
           doc="cell vectors (rows) of that structure; NaN = not recorded"),
    Column("grid_gap", "f8", "eV", _NAN, source=RESULT, since=7,
           doc="gap on the self-consistent k-points alone (a folded-edges preset's gap is read after them)"),
    Column("vbm_k", "f8", "", _NAN, per=3, source=RESULT, since=7, axis=XYZ,
           doc="primitive-cell k-point of the VBM by unfolding, Cartesian in units of 2 pi / a, components made "
               "positive and sorted (kx >= ky >= kz); NaN = a grid preset"),
    Column("cbm_k", "f8", "", _NAN, per=3, source=RESULT, since=7, axis=XYZ,
           doc="primitive-cell k-point of the CBM, as vbm_k ((0.85, 0, 0): Delta at 0.85 Gamma-X)"),
    Column("cbm_character", "S8", fill=b"", source=RESULT, since=7,
           doc="valley of the CBM: Gamma, Delta, X, L or other; empty = a grid preset"),
    Column("band_check", "f8", "eV", _NAN, source=RESULT, since=7,
           doc="CBM with twice the unoccupied bands minus the CBM (beyond -0.005 eV the attempt fails)"),
    Column("soc_gap", "f8", "eV", _NAN, source=RESULT, since=7,
           doc="gap with spin-orbit coupling added non-self-consistently; NaN = not computed"),
    Column("relax_gap", "f8", "eV", _NAN, source=RESULT, since=7,
           doc="gap of the [relax] forces preset (PBE for TB09) at the relaxed structure; NaN = not that case"),
    *(Column(f"gap_{valley}", "f8", "eV", _NAN, source=RESULT, since=8,
             doc=f"gap to the lowest conduction state of the {name} valley (unfolded states up to 1.5 eV above "
                 "the CBM); NaN = none in that window, or a grid preset")
      for valley, name in (("gamma", "Gamma"), ("delta", "Delta"), ("x", "X"), ("l", "L"))),
), doc="One row per calculation attempt, appended on submission and filled in when its result arrives.",
    row=CALCULATION)

#: Bytes of JSON per row of the parameters group; a longer set continues on the next rows under its key.
PARAMETERS_PART = 512
PARAMETERS = Group("parameters", (
    Column("key", "S16", fill=b"", doc="first 16 hex digits of the SHA-256 of the set's canonical JSON"),
    Column("json", f"S{PARAMETERS_PART}", fill=b"",
           doc="canonical JSON of the GPAW keyword arguments (the parts of one key, in row order, joined)"),
), doc="Each distinct set of GPAW keyword arguments used by the calculations, stored once under its key "
       "(calculations/parameters).", chunk_rows=8, since=3, row=PART)

#: Bytes of a snapshot's hyperparameters JSON (a longer one is not stored: that snapshot's model is refitted).
HYPERPARAMETERS_WIDTH = 8192
SNAPSHOTS = Group("snapshots", (
    Column("iteration", "i4", doc="model iteration"),
    Column("time", "f8", TIME, _NAN, doc="time of the refit"),
    Column("n_train", "i4", doc="training set size"),
    Column("cv_mae", "f8", "eV", _NAN, doc="cross-validated mean absolute error"),
    Column("cv_rmse", "f8", "eV", _NAN, doc="cross-validated root-mean-square error"),
    Column("cv_r2", "f8", fill=_NAN, doc="cross-validated coefficient of determination"),
    Column("baseline_mae", "f8", "eV", _NAN, doc="error of predicting the training mean"),
    Column("max_std", "f8", "eV", _NAN, doc="largest predicted standard deviation over the pool"),
    Column("mean_std", "f8", "eV", _NAN, doc="mean predicted standard deviation over the pool"),
    Column("test_mae", "f8", "eV", _NAN, doc="mean absolute error on the held-out test set"),
    Column("model", "S300", fill=b"", doc="model kind and fitted hyperparameters, as text (rounded)"),
    Column("hyperparameters", f"S{HYPERPARAMETERS_WIDTH}", fill=b"", compress=True, since=5,
           doc="the fitted model exactly, as JSON: kind, kernel structure and hyperparameters of each level"
               " (activemat.learn.models.model_state); empty before schema 5 (read verbs then refit)"),
    Column("pool_mean", "f4", "eV", _NAN, per=CANDIDATE, compress=True, doc="predicted gap of every candidate"),
    Column("pool_std", "f4", "eV", _NAN, per=CANDIDATE, compress=True,
           doc="predicted standard deviation of every candidate's gap"),
), doc="One row per model refit: training size, errors, hyperparameters and the predictions over the pool.",
    row=SNAPSHOT)

PRESETS = Group("presets", (), doc="One attribute per calculator preset the campaign uses: its name -> its JSON.")

#: Every group of a store, in file order.
GROUPS = (CANDIDATES, CALCULATIONS, PARAMETERS, SNAPSHOTS, PRESETS)


# -- parameter sets --------------------------------------------------------------------------
def parameters_json(parameters: Mapping) -> str:
    """Canonical JSON of a parameter set: sorted keys, no spaces, ASCII only, tuples as lists.

    >>> parameters_json({"xc": "PBE", "kpts": {"size": (2, 2, 2)}})
    '{"kpts":{"size":[2,2,2]},"xc":"PBE"}'
    """
    return json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=_plain)


def parameters_key(text: str) -> str:
    """Key of a parameter set from its canonical JSON: the first 16 hex digits of its SHA-256.

    >>> parameters_key('{"xc":"PBE"}')
    'cbf3d9efe811fe3e'
    """
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(value):
    # numpy scalars and arrays (anything with tolist); anything else as its text, so a record is never lost
    return value.tolist() if hasattr(value, "tolist") else str(value)
