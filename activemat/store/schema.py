"""The on-disk schema of a campaign store: every HDF5 path, dtype and unit.

No other module writes a path string. Fixed-size dtypes throughout: HDF5's
SWMR mode (live readers while the driver writes) does not support
variable-length data.

Schema versions
---------------
1 : first version (candidates, calculations, snapshots, presets).
2 : calculations/fallback (which of the preset's fallback settings an attempt
    used). Version-1 files are migrated by adding the column (0 = as written).
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 2
CREATOR = "activemat"

# Root attributes
ATTR_SCHEMA = "schema_version"
ATTR_CREATOR = "creator"
ATTR_CREATOR_VERSION = "creator_version"
ATTR_CREATED = "created"
ATTR_CAMPAIGN_TEXT = "campaign_toml"
ATTR_IDENTITY = "campaign_identity"
ATTR_FEATURE_NAMES = "feature_names"
ATTR_ELEMENTS = "elements"
ATTR_SUPERCELL = "supercell"
ATTR_UNITS = "units"

# Groups
CANDIDATES = "candidates"
CALCULATIONS = "calculations"
SNAPSHOTS = "snapshots"
PRESETS = "presets"  # one attribute per preset: its JSON
SNAPSHOT_MEAN = "snapshots/pool_mean"  # (iterations, candidates) float32, eV
SNAPSHOT_STD = "snapshots/pool_std"

# Calculation status values
RUNNING, OK, FAILED, INTERRUPTED = "running", "ok", "failed", "interrupted"
# Prefixes of `error` that say why an attempt failed outside GPAW
LOST, TIMEOUT = "worker lost", "time limit"


@dataclass(frozen=True)
class Column:
    dtype: str
    unit: str = ""
    shape: tuple[int, ...] = ()
    fill: object = 0


CANDIDATE_COLUMNS = {
    "decoration": Column("u1"),  # shape (n_sites,) set at creation; 1 = alloying element B
    "n_b": Column("i4"),
    "x_b": Column("f8"),
    "multiplicity": Column("i8"),
    "features": Column("f8"),  # shape (n_features,) set at creation
    "test": Column("u1"),  # 1 = held out for testing, never trained on or selected
}

NAN = float("nan")
CALCULATION_COLUMNS = {
    "candidate": Column("i8", fill=-1),
    "attempt": Column("i4"),
    "status": Column("S12", fill=b""),
    "preset": Column("S40", fill=b""),
    "iteration": Column("i4", fill=-1),  # model iteration at selection
    "reason": Column("S24", fill=b""),  # why it was picked: seed, max_std, ei, ..., resubmit
    "score": Column("f8", fill=NAN),  # acquisition value at selection
    "gap": Column("f8", "eV", fill=NAN),
    "direct": Column("u1"),
    "vbm": Column("f8", "eV", fill=NAN),
    "cbm": Column("f8", "eV", fill=NAN),
    "energy": Column("f8", "eV", fill=NAN),
    "scf_iterations": Column("i4", fill=-1),
    "fallback": Column("i4"),  # 0 = the preset as written, k = its k-th fallback settings
    "kpts": Column("i4", shape=(3,)),
    "submitted": Column("f8", "s since epoch", fill=NAN),
    "started": Column("f8", "s since epoch", fill=NAN),
    "finished": Column("f8", "s since epoch", fill=NAN),
    "host": Column("S64", fill=b""),
    "worker": Column("S64", fill=b""),
    "versions": Column("S48", fill=b""),
    "error": Column("S400", fill=b""),
    "scratch": Column("S256", fill=b""),
}

SNAPSHOT_COLUMNS = {
    "iteration": Column("i4"),
    "time": Column("f8", "s since epoch", fill=NAN),
    "n_train": Column("i4"),
    "cv_mae": Column("f8", "eV", fill=NAN),
    "cv_rmse": Column("f8", "eV", fill=NAN),
    "cv_r2": Column("f8", fill=NAN),
    "baseline_mae": Column("f8", "eV", fill=NAN),
    "max_std": Column("f8", "eV", fill=NAN),
    "mean_std": Column("f8", "eV", fill=NAN),
    "test_mae": Column("f8", "eV", fill=NAN),
    "model": Column("S300", fill=b""),  # model kind and fitted hyperparameters
}

STRING_LIMITS = {name: int(c.dtype[1:]) for name, c in {**CALCULATION_COLUMNS, **SNAPSHOT_COLUMNS}.items()
                 if c.dtype.startswith("S")}
