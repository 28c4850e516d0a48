"""Relaxation before the gap: an ASE optimizer on GPAW forces, restartable from its trajectory.

:func:`relax` moves the atoms (``kind = "positions"``, at the fixed Vegard
cell) or atoms and cell (``kind = "cell"``, through
``ase.filters.FrechetCellFilter``) until every force is below ``fmax``, for
at most ``steps`` optimizer steps. Every step is appended to
``relax.traj`` in the attempt's scratch folder, so an attempt that is
interrupted (lost worker, time limit, step limit) leaves its last geometry
behind: :func:`last_geometry` finds it and the next attempt starts from
there rather than from the ideal structure.

Under MPI every rank runs the optimizer on the same forces; only rank 0
writes the trajectory and the log (ASE's ``master``/``comm``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from activemat.compute.presets import RelaxSettings

TRAJECTORY = "relax.traj"
LOG = "relax.log"
#: Angstrom. An atom moved further than this from where the attempt started means the structure is not
#: being relaxed but destroyed (seen with gpaw-fast's 200 eV on Si4Ge12: energy down 10 eV in 60 steps).
MAX_DISPLACEMENT = 0.5


class RelaxationNotConverged(RuntimeError):
    """The optimizer reached its step limit with forces above fmax (a retry continues from the last geometry)."""


class RelaxationUnstable(RuntimeError):
    """An atom moved more than MAX_DISPLACEMENT: the settings cannot hold the structure (a retry starts afresh)."""


@dataclass
class Relaxed:
    """What a relaxation did: steps taken, the largest remaining force (eV/Angstrom), whether it converged."""

    steps: int
    fmax: float
    converged: bool


def scratch_folder(scratch_root: str | Path, candidate: int, attempt: int) -> Path:
    """The scratch folder of one attempt (its GPAW log and relaxation trajectory)."""
    return Path(scratch_root) / f"cand{candidate:06d}-try{attempt}"


def last_geometry(scratch_root: str | Path, candidate: int, attempt: int) -> tuple[int, Atoms] | None:
    """The last geometry an earlier attempt at ``candidate`` wrote, and that attempt's number; None if none did.

    Looks at the trajectories of attempts before ``attempt`` in
    ``scratch_root``, newest first; a frame cut off by a kill is skipped.
    """
    from ase.io import Trajectory

    pattern = re.compile(rf"cand{candidate:06d}-try(\d+)$")
    earlier = []
    for folder in Path(scratch_root).glob(f"cand{candidate:06d}-try*"):
        match = pattern.match(folder.name)
        if match and int(match.group(1)) < attempt and (folder / TRAJECTORY).is_file():
            earlier.append((int(match.group(1)), folder / TRAJECTORY))
    for number, path in sorted(earlier, reverse=True):
        try:
            with Trajectory(str(path)) as traj:
                for index in range(len(traj) - 1, -1, -1):
                    try:
                        return number, traj[index]
                    except Exception:  # a frame half-written when the attempt was killed
                        continue
        except Exception:  # noqa: BLE001  an unreadable trajectory: try an older attempt
            continue
    return None


def max_force(atoms_or_filter) -> float:
    """Largest force (eV/Angstrom) on an Atoms or an ASE filter (which includes the cell's generalised force)."""
    forces = atoms_or_filter.get_forces()
    return float(np.sqrt((forces ** 2).sum(axis=1).max())) if len(forces) else 0.0


def relax(atoms: Atoms, settings: RelaxSettings, folder: Path, *, comm=None) -> Relaxed:
    """Relax ``atoms`` (with a calculator attached) in place; append every step to ``folder/relax.traj``.

    ``comm`` is the MPI communicator the calculator runs on (rank 0 writes
    files); None: serial.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS, FIRE

    optimizer = {"BFGS": BFGS, "FIRE": FIRE}[settings.optimizer]
    target = FrechetCellFilter(atoms) if settings.kind == "cell" else atoms
    parallel = {} if comm is None else {"master": comm.rank == 0, "comm": comm}
    # appended: a restarted attempt writes its own folder, but a trajectory is never overwritten
    start = atoms.get_scaled_positions(wrap=False)
    converged = False
    with optimizer(target, logfile=str(folder / LOG), trajectory=str(folder / TRAJECTORY), append_trajectory=True,
                   **parallel) as opt:
        for converged in opt.irun(fmax=settings.fmax, steps=settings.steps):
            moved = float(np.linalg.norm((atoms.get_scaled_positions(wrap=False) - start) @ atoms.cell, axis=1).max())
            if moved > MAX_DISPLACEMENT:
                (folder / TRAJECTORY).unlink(missing_ok=True)  # no later attempt may start from this geometry
                raise RelaxationUnstable(f"an atom moved {moved:.2f} A (more than {MAX_DISPLACEMENT} A) after "
                                         f"{opt.get_number_of_steps()} steps: the structure falls apart at these "
                                         "settings; relax with a converged preset (e.g. gpaw-pbe-pw)")
        steps = int(opt.get_number_of_steps())
    return Relaxed(steps=steps, fmax=max_force(target), converged=bool(converged))
