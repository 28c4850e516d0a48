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

The declarations are written with the frozen dataclasses of
:mod:`activemat.store.schema_types` (:class:`~activemat.store.schema_types.Column`,
:class:`~activemat.store.schema_types.Group`, ...), which this module
imports for the rest of the package: ``S.Column`` and ``S.CALCULATIONS``
come from the same place.

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

from activemat.store.schema_types import Attribute, Column, Dimension, Group

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
ATTR_PARENT = "parent"

#: Every root attribute, for the reference.
ROOT_ATTRIBUTES = (
    Attribute(ATTR_SCHEMA, "int", "schema version of the file (see the changelog); newer files are refused"),
    Attribute(ATTR_CREATOR, "str", f'always "{CREATOR}"; a file without it is not a store'),
    Attribute(ATTR_CREATOR_VERSION, "str", "activemat version that created the file"),
    Attribute(ATTR_CREATED, "str", "creation time, ISO 8601 with UTC offset"),
    Attribute(ATTR_CAMPAIGN_TEXT, "str", "text of the campaign file the store was created with"),
    Attribute(ATTR_IDENTITY, "str", "hash of what defines the data (space and calculator); a resume must match it"),
    Attribute(ATTR_FEATURE_NAMES, "list[str]", "names of the columns of candidates/features"),
    Attribute(ATTR_ELEMENTS, "list[str]", "host and alloying species of the mixing sublattice (A, B), e.g. Si, Ge "
                                          "or Ga, Al; the parent and any fixed species are in the campaign text"),
    Attribute(ATTR_SUPERCELL, "list[int]", "repetitions of the cell named by the cell attribute, e.g. 2, 2, 2"),
    Attribute(ATTR_CELL, "str", 'the repeated cell: "primitive" (the parent\'s primitive cell: 2 atoms for diamond '
                                'and zincblende) or "cubic" (the conventional cubic cell: 8 atoms for those); files '
                                'without it (schema 1-2) are "primitive"'),
    Attribute(ATTR_UNITS, "JSON", "units of the physical quantities, " + json.dumps(UNITS)),
    Attribute(ATTR_PARENT, "JSON", "the parent structure as computed: lattice (a name, or the structure file it "
                                   "was read from), chemical_symbols per site, the end members' lattice constants, "
                                   "a structure file's cell and scaled_positions; so a store is read anywhere "
                                   "without the file. Optional: in stores created before it existed, the parent "
                                   "is read from the campaign text"),
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

#: Every dimension of a store: each group holds the coordinates of those its columns use.
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
           doc="k-point of the VBM by unfolding, in the reciprocal cell of the parent's primitive cell. An fcc "
               "parent (diamond, zincblende, rocksalt): Cartesian in units of 2 pi / a, first zone, components "
               "made positive and sorted (kx >= ky >= kz). Any other parent: fractional in the primitive cell's "
               "reciprocal basis, ASE's coordinates of the special point it is (wurtzite's M: 0.5, 0, 0), else "
               "wrapped into (-1/2, 1/2]. NaN = a grid preset"),
    Column("cbm_k", "f8", "", _NAN, per=3, source=RESULT, since=7, axis=XYZ,
           doc="k-point of the CBM, as vbm_k (fcc: (0.85, 0, 0) is Delta at 0.85 Gamma-X, (1, 0, 0) X)"),
    Column("cbm_character", "S8", fill=b"", source=RESULT, since=7,
           doc="valley of the CBM, a special point of the parent's primitive cell. fcc parents: Gamma, Delta "
               "(on Gamma-X), X, L or other. Others: Gamma or the special points ASE names for the Bravais "
               "lattice (hexagonal, as wurtzite: A, H, K, L, M; simple cubic, as the perovskite: M, R, X), or "
               "other: the one holding most of the CBM states' unfolded weight summed over its points (the rule "
               "the valley gaps use; stores written before 2026-12-08 name the single heaviest point's valley, "
               "which can say Gamma for a Gamma-L mixture mostly on L); empty = a grid preset"),
    Column("band_check", "f8", "eV", _NAN, source=RESULT, since=7,
           doc="CBM with twice the unoccupied bands minus the CBM (beyond -0.005 eV the attempt fails)"),
    Column("soc_gap", "f8", "eV", _NAN, source=RESULT, since=7,
           doc="gap with spin-orbit coupling added non-self-consistently; NaN = not computed"),
    Column("relax_gap", "f8", "eV", _NAN, source=RESULT, since=7,
           doc="gap of the [relax] forces preset (PBE for TB09) at the relaxed structure; NaN = not that case"),
    *(Column(f"gap_{valley}", "f8", "eV", _NAN, source=RESULT, since=8,
             doc=f"gap to the lowest conduction state of the {name} valley (unfolded states up to 1.5 eV above "
                 "the CBM); NaN = none in that window, or a grid preset"
                 + ("" if valley == "gamma" else ", or a parent that is not fcc (only gap_gamma is filled there)"))
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
               " (activemat.learn.models.state_json); empty before schema 5 (read verbs then refit)"),
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
