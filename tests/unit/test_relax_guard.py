"""The relaxation guard: a structure that falls apart fails its attempt instead of being stored as relaxed."""

from __future__ import annotations

import pytest
from ase import Atoms
from ase.calculators.lj import LennardJones

from activemat.compute.presets import RelaxSettings
from activemat.compute.relax import MAX_DISPLACEMENT, TRAJECTORY, RelaxationUnstable, relax


def _pair(distance: float) -> Atoms:
    atoms = Atoms("Ar2", positions=[(0, 0, 0), (distance, 0, 0)], cell=[12, 12, 12], pbc=True)
    atoms.calc = LennardJones(sigma=3.4, epsilon=1.0, rc=5.9)
    return atoms


def test_atoms_pushed_far_from_their_sites_stop_the_relaxation_and_leave_no_trajectory(tmp_path):
    atoms = _pair(2.6)  # far inside the repulsive wall: BFGS pushes both atoms out step after step
    with pytest.raises(RelaxationUnstable, match="moved"):
        relax(atoms, RelaxSettings(kind="positions", fmax=0.01, steps=50), tmp_path)
    assert not (tmp_path / TRAJECTORY).exists()  # a retry must not start from the broken geometry


def test_a_small_relaxation_passes_the_guard(tmp_path):
    atoms = _pair(3.7)  # near the minimum (2^(1/6) sigma = 3.82 A): moves of a few hundredths of an Angstrom
    result = relax(atoms, RelaxSettings(kind="positions", fmax=0.01, steps=50), tmp_path)
    assert result.converged and result.fmax < 0.01
    assert abs(atoms.get_distance(0, 1) - 3.4 * 2 ** (1 / 6)) < 0.05 < MAX_DISPLACEMENT
    assert (tmp_path / TRAJECTORY).exists()
