"""Export a store's calculations: extended XYZ (structures) or CSV (the query table).

Each extended-XYZ frame is the structure the calculation's gap was computed
on: the relaxed positions and cell when the campaign relaxed
(``[calculator] relax``; ``atoms.info["relax"]`` says which), else the
candidate's supercell at its Vegard lattice constant, rebuilt from the
stored decoration. The calculation is in
``atoms.info`` (``candidate``, ``gap`` in eV, ``status``, ``formula``,
``multiplicity``, ...) and the total energy (eV) on a
``SinglePointCalculator``, so ``ase.io.read(file, ":")`` gives it back as
``atoms.get_potential_energy()``. The GPAW keyword arguments of the
calculation are ``atoms.info["parameters"]``, their canonical JSON text.
Missing values (the gap of a failed calculation, an empty error, parameters
not recorded) are left out of a frame rather than written as ``nan`` or an
empty string. ``-`` as the target writes to standard output.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import IO

import numpy as np

from activemat.errors import InputError
from activemat.store.files import open_exclusive
from activemat.store.query import StoreView, plain_values
from activemat.store.read import read_store
from activemat.store.timestamps import with_iso_times

FORMATS = {".extxyz": "extxyz", ".xyz": "extxyz", ".csv": "csv"}
# Calculation columns copied into each frame's info (when present), and the k-point vectors (when not NaN).
FRAME_KEYS = ("row", "candidate", "attempt", "formula", "n_{b}", "x_{b}", "multiplicity", "status", "gap", "direct",
              "vbm", "cbm", "ks_gap", "discontinuity", "preset", "iteration", "reason", "scf_iterations", "kpts",
              "wall_time", "error", "test", "parameters", "ranks", "relax", "relax_steps", "relax_fmax", "relax_from",
              "unrelaxed_gap", "grid_gap", "cbm_character", "band_check", "soc_gap", "relax_gap",
              "gap_gamma", "gap_delta", "gap_x", "gap_l")
FRAME_VECTORS = ("vbm_k", "cbm_k")


def _format(out: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS.values():
            raise InputError(f"unknown export format {fmt!r}; use one of {', '.join(sorted(set(FORMATS.values())))}")
        return fmt
    found = FORMATS.get(out.suffix.lower())
    if found is None:
        raise InputError(f"cannot export to {out}: unknown file type {out.suffix or '(none)'}; "
                         f"use a name ending in {', '.join(FORMATS)} (or give --format)")
    return found


def _stream(out: Path) -> bool:
    """Whether ``out`` is a stream to write straight into (a terminal, a pipe, /dev/stdout), not a file."""
    try:
        return out.exists() and not out.is_file() and not out.is_dir()
    except OSError:
        return False


def export_store(path: str | Path, out: str | Path, fmt: str | None = None, **filters) -> int:
    """Write the store's calculations (filtered as in :meth:`StoreView.mask`) to ``out``; return the row count.

    The format is ``fmt`` (``"extxyz"`` or ``"csv"``) or follows the suffix: ``.extxyz``/``.xyz``
    (extended XYZ, one frame per calculation) or ``.csv`` (every column of ``activemat query``). ``out``
    ``"-"`` is standard output, and a stream such as ``/dev/stdout`` or a named pipe is written as it is
    (extended XYZ unless ``fmt`` says otherwise). A file is written beside its final name and renamed into
    place, so a failed export never leaves half a file.
    """
    if str(out) == "-" or _stream(Path(out)):
        fmt = fmt or (FORMATS.get(Path(str(out)).suffix.lower()) if str(out) != "-" else None) or "extxyz"
        view = read_store(path)
        rows = view.select(**filters)
        if str(out) == "-":
            _write(view, rows, fmt, sys.stdout)
            sys.stdout.flush()
        else:
            with open(out, "w", newline="") as fh:
                _write(view, rows, fmt, fh)
        return len(rows["row"])
    out = Path(out)
    fmt = _format(out, fmt)
    view = read_store(path)
    rows = view.select(**filters)
    n = len(rows["row"])
    if out.is_dir():
        raise InputError(f"cannot export to {out}: it is a folder; give a file name such as {out / 'calculations.extxyz'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # as `run` creates its store's folder
    except OSError as exc:
        raise InputError(f"cannot export to {out}: cannot create folder {out.parent} ({exc.strerror or exc})") from None
    tmp = out.with_name(out.name + ".part")
    fd = open_exclusive(tmp, Path(path))  # never through a planted symlink, never over a file it did not make
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            _write(view, rows, fmt, fh)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def _write(view: StoreView, rows: dict[str, np.ndarray], fmt: str, fh) -> None:
    if fmt == "csv":
        write_csv(rows, fh)
    else:
        import ase.io

        ase.io.write(fh, frames(view, rows), format="extxyz")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(value) if isinstance(value, float) else str(value)


def write_csv(table: dict[str, np.ndarray], file: IO) -> None:
    """Write a (filtered) calculations table as CSV: a header of column names, then one line per row (NaN and
    missing values empty, booleans 1/0, floats at full precision, ``parameters`` as its JSON text, times as ISO 8601
    in UTC each followed by its Unix seconds: :func:`~activemat.store.timestamps.with_iso_times`)."""
    table = with_iso_times(table)
    writer = csv.writer(file, lineterminator="\n")
    names = list(table)
    writer.writerow(names)
    cols = [plain_values(np.asarray(table[k])) for k in names]
    writer.writerows([[_cell(v) for v in row] for row in zip(*cols)])


def frames(view: StoreView, rows: dict[str, np.ndarray]) -> list:
    """ASE Atoms, one per row of a (filtered) calculations table, with the calculation in ``info``."""
    from ase.calculators.singlepoint import SinglePointCalculator

    pool = view.pool()
    keys = [k.format(b=view.b) for k in FRAME_KEYS]
    cols = {k: np.asarray(rows[k]).tolist() for k in keys}
    energy = np.asarray(rows["energy"]).tolist()
    calc = view.calculations
    positions, cells = calc["positions"][rows["row"]], calc["cell"][rows["row"]]
    vectors = {k: calc[k][rows["row"]] for k in FRAME_VECTORS if k in calc}
    out = []
    for i, cand in enumerate(np.asarray(rows["candidate"]).tolist()):
        atoms = pool.atoms(cand)
        if np.isfinite(cells[i]).all() and np.isfinite(positions[i]).all():  # the structure it was computed on
            atoms.set_cell(cells[i], scale_atoms=False)
            atoms.positions = positions[i]
        for k in keys:
            v = cols[k][i]
            if v is None or v == "" or (isinstance(v, float) and v != v):
                continue  # extxyz cannot round-trip an empty value, and None or NaN means "none"
            atoms.info[k] = v
        for k, values in vectors.items():
            if np.isfinite(values[i]).all():
                atoms.info[k] = values[i].tolist()
        if energy[i] == energy[i]:
            atoms.calc = SinglePointCalculator(atoms, energy=energy[i])
        out.append(atoms)
    return out
