"""The band-gap task: a plain function (Atoms, preset) -> CalculationRecord.

It knows nothing about Dask or the store, so it runs the same in a test, a
local worker or a SLURM job (the dispatch layer stamps the worker's name on
the record). GPAW objects never leave this function (they
cannot be pickled); only the plain record does.
"""

from __future__ import annotations

import functools
import math
import shutil
import socket
import time

import numpy as np
from ase import Atoms
from ase.calculators.calculator import kptdensity2monkhorstpack

from activemat.compute.edges import Edges, edge_pass
from activemat.compute.faults import SetupMissing, record_failure
from activemat.compute.presets import GpawSettings, Preset
from activemat.compute.records import VALLEY_COLUMNS, CalculationRecord
from activemat.compute.relax import RelaxationNotConverged, last_geometry, relax, scratch_folder

# GPAW's C code holds the GIL and BLAS threads fight over cores: one process per
# calculation, one thread each (set in every worker's environment).
BANDS_REFERENCE_ATOMS = 16  # a preset's extra_bands and converge_bands are for cells of up to this many atoms
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

def kpoint_grid(atoms: Atoms, settings: GpawSettings) -> tuple[int, int, int]:
    """Gamma-centred Monkhorst-Pack size from the preset's k-point density."""
    return tuple(int(n) for n in kptdensity2monkhorstpack(atoms, settings.kpts_density, False))


def gpaw_parameters(atoms: Atoms, settings: GpawSettings) -> dict:
    """Plain-data GPAW keyword arguments (JSON-serialisable; recorded with the result)."""
    n_occupied = int(round(sum(_valence(atoms, settings)))) // 2
    scale = band_scale(atoms)
    params = {
        "mode": {"name": "pw", "ecut": settings.ecut},
        "xc": settings.xc if isinstance(settings.xc, str) else dict(settings.xc),
        "kpts": {"size": kpoint_grid(atoms, settings), "gamma": True},
        "occupations": {"name": "fermi-dirac", "width": settings.smearing},
        "nbands": n_occupied + math.ceil(settings.extra_bands * scale),
        "convergence": {**settings.convergence, "bands": n_occupied + math.ceil(settings.converge_bands * scale)},
        "maxiter": settings.maxiter,
    }
    if settings.mixer is not None:
        params["mixer"] = {"beta": settings.mixer[0], "nmaxold": settings.mixer[1], "weight": settings.mixer[2]}
    if settings.legacy:
        params["legacy_gpaw"] = True  # explicit: GPAW 26.7 would also fall back to it silently for TB09/GLLB-SC
    return params


def band_scale(atoms: Atoms) -> float:
    """How many times a preset's unoccupied bands a cell gets: N/16 for a cell of N > 16 atoms, else 1.

    A supercell folds more conduction states onto each k-point (Si64, cubic 2x2x2, Gamma only: 1.11 eV with 6
    extra bands, 0.69 eV with 24). The folded edge pass sizes its own bands by construction, at least this many.
    """
    return max(1.0, len(atoms) / BANDS_REFERENCE_ATOMS)


def _occupied(calc) -> int:
    """Occupied bands of a converged calculator (two electrons each)."""
    return int(round(calc.get_number_of_electrons())) // 2


def _valence(atoms: Atoms, settings: GpawSettings) -> list[int]:
    """Valence electrons of each atom in the PAW setups GPAW reads for the preset's functional."""
    xc = settings.xc if isinstance(settings.xc, str) else settings.xc["name"]
    return [valence_electrons(symbol, xc) for symbol in atoms.get_chemical_symbols()]


@functools.lru_cache(maxsize=None)
def valence_electrons(symbol: str, xc: str = "PBE") -> int:
    """Valence electrons of ``symbol`` in GPAW's PAW setup for ``xc`` (gpaw-data's ``<symbol>.<xc>`` file).

    A functional without setups of its own (TB09, read with LDA setups) counts those of PBE: gpaw-data's LDA, PBE
    and GLLB-SC setups of an element share one valence configuration (Si 4, Ge 4, Ga 3, Al 3, As 5).
    Raises :class:`~activemat.compute.faults.SetupMissing` when GPAW's setup paths hold no setup of the element
    (no gpaw-data on this host, ``GPAW_SETUP_PATH`` at an empty folder): an infrastructure fault, not the
    calculation's failure.
    """
    from gpaw.setup_data import SetupData

    names = list(dict.fromkeys((xc, "PBE")))
    for name in names:
        try:
            return int(SetupData(symbol, name, "paw").Nv)
        except (RuntimeError, FileNotFoundError, OSError):
            continue
    raise SetupMissing(f"{symbol}.{names[0]}")


def band_edges(eigenvalues: np.ndarray, n_occupied: int) -> tuple[float, float, float, bool]:
    """Gap, VBM, CBM and directness from eigenvalues of shape (k-points, bands).

    >>> eps = np.array([[-1.0, 0.5], [-0.5, 0.2]])
    >>> band_edges(eps, 1)
    (0.7, -0.5, 0.2, True)
    """
    valence, conduction = eigenvalues[:, n_occupied - 1], eigenvalues[:, n_occupied]
    k_v, k_c = int(np.argmax(valence)), int(np.argmin(conduction))
    vbm, cbm = float(valence[k_v]), float(conduction[k_c])
    # Overlapping bands mean a (semi)metal: gap 0, as ase.dft.bandgap reports.
    return round(max(cbm - vbm, 0.0), 12), vbm, cbm, k_v == k_c


def gllbsc_discontinuity(calc) -> tuple[float, float]:
    """(Kohn-Sham gap, derivative discontinuity) in eV from a converged legacy GLLB-SC calculator.

    GPAW's recipe: the discontinuity potential is built from the HOMO and LUMO
    of the self-consistent k-points, so both band edges must lie on that grid.
    """
    homo, lumo = calc.get_homo_lumo()
    response = calc.hamiltonian.xc.response
    potential = response.calculate_discontinuity_potential(homo, lumo)
    ks_gap, dxc = response.calculate_discontinuity(potential)
    return float(ks_gap), float(dxc)


def kohn_sham_edges(calc) -> tuple[float, float, float, bool]:
    """Gap, VBM, CBM and directness from a converged calculator's self-consistent k-points."""
    eps = np.array([calc.get_eigenvalues(kpt=k) for k in range(len(calc.get_ibz_k_points()))])
    return band_edges(eps, _occupied(calc))


def folded_edges(calc, atoms: Atoms, settings: GpawSettings, folder, *, spinorbit: bool) -> Edges:
    """The edge pass (:func:`activemat.compute.edges.edge_pass`) of a converged calculator."""
    return edge_pass(calc, atoms, _occupied(calc), math.ceil(settings.extra_bands * band_scale(atoms)),
                     txt=str(folder / "edges.txt"), spinorbit=spinorbit)


def _relax_with_forces_of(atoms: Atoms, preset: Preset, record: CalculationRecord, folder, world) -> float:
    """Relax ``atoms`` with the forces of the ``[relax] forces`` preset; its gap at the relaxed structure.

    Returns the spin-orbit shift of that preset's gap there (NaN unless this
    preset asks for spin-orbit): TB09 on GPAW's legacy calculator has no
    spin-orbit step, so its spin-orbit term is the PBE one on the same structure.
    """
    from gpaw import GPAW

    settings = preset.forces_gpaw
    params = gpaw_parameters(atoms, settings)
    params["convergence"].setdefault("forces", preset.relax.fmax / 10)
    atoms.calc = GPAW(**params, txt=str(folder / "relax-gpaw.txt"))
    _relax_checked(atoms, preset, record, folder, world)
    if settings.edges == "folded":
        edges = folded_edges(atoms.calc, atoms, settings, folder, spinorbit=preset.gpaw.spinorbit)
        record.relax_gap = edges.gap
        return edges.soc_shift
    record.relax_gap = kohn_sham_edges(atoms.calc)[0]
    return float("nan")


def _relax_checked(atoms: Atoms, preset: Preset, record: CalculationRecord, folder, world) -> None:
    relaxed = relax(atoms, preset.relax, folder, comm=world if world.size > 1 else None)
    record.relax_steps, record.relax_fmax = relaxed.steps, relaxed.fmax
    if not relaxed.converged:
        raise RelaxationNotConverged(f"largest force {relaxed.fmax:.3f} eV/A after {relaxed.steps} steps "
                                     f"(fmax {preset.relax.fmax}); the retry continues from here")


def _close_log_quietly(calc) -> None:
    """Close a GPAW calculator's log now, ignoring a full disk: GPAW closes it in ``__del__``, where the failed
    flush would print an 'Exception ignored' traceback on the worker's stderr."""
    log = getattr(calc, "log", None)
    if callable(getattr(log, "close", None)):
        try:
            log.close()
        except OSError:
            pass


def compute_gap(candidate: int, attempt: int, atoms: Atoms, preset: Preset, scratch_root: str) -> CalculationRecord:
    """Run one GPAW calculation and return its record; never raises for a failed calculation.

    The gap is read from the self-consistent k-points, then, with
    ``edges = "folded"``, from the edge pass (:mod:`activemat.compute.edges`)
    at the k-points where the band edges fold. With ``gap = "gllbsc"`` the
    derivative discontinuity is added to the Kohn-Sham gap and to the CBM;
    ``parameters["gllbsc"]`` keeps the Kohn-Sham gap and the discontinuity.
    The edge pass also gives the gap to each conduction valley
    (:func:`activemat.compute.edges.valley_gaps`: ``gap_gamma``, ``gap_delta``,
    ``gap_x``, ``gap_l``; on a parent that is not fcc only ``gap_gamma``,
    its other valleys being other points). The parent's primitive cell comes
    in ``atoms.info`` (:mod:`activemat.compute.zone`; without it, the diamond
    lattice's).

    With ``[relax] forces`` another preset's forces relax it, and TB09 (no
    forces) computes on that structure; a structure that preset already
    relaxed in the same campaign comes in with ``atoms.info["relaxed_by"]``
    (set by the scheduler, with ``relax_gap`` and ``relax_soc_shift``) and is
    not relaxed again.

    With ``preset.relax`` the structure is relaxed first (:mod:`activemat.compute.relax`),
    starting from the last geometry an earlier, interrupted attempt left in
    the scratch root; the record keeps the relaxed positions and cell, the
    steps, the largest remaining force and the gap at the ideal structure.

    The scratch folder (GPAW log, relaxation trajectory) is removed on
    success and kept on failure. A file system that refuses to write the
    scratch folder (full, over quota, read-only, failing) makes the attempt an
    infrastructure fault (:mod:`activemat.compute.faults`), not a failed
    calculation: the record says so, and nothing escapes this function.
    """
    import ase
    import gpaw

    from gpaw.mpi import world

    record = CalculationRecord(candidate=candidate, attempt=attempt, preset=preset.name, status="failed",
                               host=socket.gethostname(), started=time.time(), ranks=world.size,
                               versions=f"gpaw {gpaw.__version__}; ase {ase.__version__}")
    folder = scratch_folder(scratch_root, candidate, attempt)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _calculate(record, atoms, preset, scratch_root, folder, world)
        record.status = "ok"
    except Exception as exc:  # a failed calculation is data: keep reason and scratch (a full disk: a fault)
        record_failure(record, exc, folder)
    finally:
        record.finished = time.time()
    if record.ok:
        shutil.rmtree(folder, ignore_errors=True)
    return record


def _calculate(record: CalculationRecord, atoms: Atoms, preset: Preset, scratch_root: str, folder, world) -> None:
    """The steps of one attempt, each filling ``record``: parameters, structure, relaxation, SCF, gap."""
    from gpaw import GPAW

    params = _attempt_parameters(atoms, preset, world)
    record.parameters, record.kpts = params, tuple(params["kpts"]["size"])
    atoms = _start_structure(atoms, preset, record, scratch_root)
    other_forces = preset.relax is not None and preset.relax.forces is not None
    soc_shift = _relax_elsewhere(atoms, preset, record, folder, world) if other_forces else float("nan")
    atoms.calc = calc = GPAW(**params, txt=str(folder / "gpaw.txt"))
    try:
        _converge(calc, atoms, preset, record, folder, world, soc_shift, other_forces)
    except OSError:
        _close_log_quietly(calc)  # a full disk: GPAW's own close in __del__ would print a traceback
        raise


def _converge(calc, atoms: Atoms, preset: Preset, record: CalculationRecord, folder, world, soc_shift: float,
              other_forces: bool) -> None:
    """The SCF, the relaxation where the preset asks for one, and the gap read off the converged ``calc``."""
    record.energy = float(atoms.get_potential_energy())
    if preset.relax is not None and not other_forces:
        if record.relax_from < 0:  # the first SCF was at the ideal structure: its gap comes (nearly) for free
            record.unrelaxed_gap = (folded_edges(calc, atoms, preset.gpaw, folder, spinorbit=False).gap
                                    if preset.gpaw.edges == "folded" else kohn_sham_edges(calc)[0])
        _relax_checked(atoms, preset, record, folder, world)
        record.energy = float(atoms.get_potential_energy())
    record.positions, record.cell = atoms.get_positions(), atoms.cell.array.copy()
    _read_gap(calc, atoms, preset, record, folder, soc_shift)
    record.scf_iterations = int(calc.get_number_of_iterations())


def _attempt_parameters(atoms: Atoms, preset: Preset, world) -> dict:
    """The preset's GPAW keyword arguments for ``atoms``, with what a relaxation or several ranks need."""
    params = gpaw_parameters(atoms, preset.gpaw)
    other_forces = preset.relax is not None and preset.relax.forces is not None
    if preset.relax is not None and not other_forces and "forces" not in params["convergence"]:
        # SCF forces converged well below fmax: an energy/density criterion alone leaves force noise
        # near 0.05 eV/A at cheap settings, and the optimizer stalls there (16-atom gpaw-fast: 100 steps)
        params["convergence"]["forces"] = preset.relax.fmax / 10
    if world.size > 1 and params["kpts"]["size"] == (1, 1, 1):
        # GPAW 26.7's new calculator splits a Gamma-only cell over ranks only with ScaLAPACK (an assertion
        # in its BLACS matrices otherwise); the legacy one distributes plane waves without it
        params["legacy_gpaw"] = True
    return params


def _start_structure(atoms: Atoms, preset: Preset, record: CalculationRecord, scratch_root: str) -> Atoms:
    """A copy of ``atoms`` to compute on; a relaxation continues from an interrupted attempt's last geometry."""
    atoms = atoms.copy()
    if preset.relax is not None:
        record.relax = preset.relax.kind
        earlier = last_geometry(scratch_root, record.candidate, record.attempt)
        if earlier is not None:  # an interrupted attempt's last geometry, not the ideal one
            record.relax_from = earlier[0]
            atoms.set_cell(earlier[1].cell, scale_atoms=False)
            atoms.positions = earlier[1].positions
    return atoms


def _relax_elsewhere(atoms: Atoms, preset: Preset, record: CalculationRecord, folder, world) -> float:
    """Relax with the ``[relax] forces`` preset (TB09 has no forces), or reuse its relaxation; the spin-orbit shift.

    A structure another level of the campaign already relaxed comes in with ``atoms.info["relaxed_by"]``
    (the scheduler passes it, with ``relax_gap`` and ``relax_soc_shift``) and is not relaxed again.
    """
    if atoms.info.get("relaxed_by") == preset.relax.forces:
        record.relax, record.relax_steps = preset.relax.kind, 0
        record.relax_gap = float(atoms.info.get("relax_gap", float("nan")))
        return float(atoms.info.get("relax_soc_shift", float("nan")))
    return _relax_with_forces_of(atoms, preset, record, folder, world)


def _read_gap(calc, atoms: Atoms, preset: Preset, record: CalculationRecord, folder, soc_shift: float) -> None:
    """Gap and band edges of the converged ``calc`` into ``record``: the self-consistent k-points, then the
    folded edges, the GLLB-SC discontinuity and the spin-orbit gap where the preset asks for them."""
    record.gap, record.vbm, record.cbm, record.direct = kohn_sham_edges(calc)
    record.grid_gap = record.gap
    if preset.gpaw.edges == "folded":
        spinorbit = preset.gpaw.spinorbit and not preset.gpaw.legacy
        edges = folded_edges(calc, atoms, preset.gpaw, folder, spinorbit=spinorbit)
        record.gap, record.vbm, record.cbm, record.direct = edges.gap, edges.vbm, edges.cbm, edges.direct
        record.vbm_k, record.cbm_k = tuple(edges.vbm_k), tuple(edges.cbm_k)
        record.cbm_character, record.band_check = edges.cbm_character, edges.band_check
        # the columns name the fcc valleys; another lattice's valleys are other points: only its Gamma is stored
        columns = VALLEY_COLUMNS if edges.lattice == "FCC" else {"Gamma": VALLEY_COLUMNS["Gamma"]}
        for valley, gap in edges.valleys.items():
            if valley in columns:
                setattr(record, columns[valley], gap)
        if spinorbit:
            soc_shift = edges.soc_shift
    if preset.gpaw.gap == "gllbsc":
        # Quasiparticle gap = KS gap + discontinuity: the CBM moves up by it, the VBM stays. The discontinuity
        # comes from the HOMO and LUMO of the self-consistent grid (GPAW's recipe) and shifts every
        # conduction state alike, so it is added to the folded edges too.
        _, dxc = gllbsc_discontinuity(calc)
        record.parameters = {**record.parameters, "gllbsc": {"ks_gap": record.gap, "discontinuity": dxc}}
        for name in VALLEY_COLUMNS.values():
            setattr(record, name, getattr(record, name) + dxc)
        record.gap, record.cbm = record.gap + dxc, record.cbm + dxc
    if preset.gpaw.spinorbit and math.isfinite(soc_shift):
        record.soc_gap = max(record.gap + soc_shift, 0.0)
