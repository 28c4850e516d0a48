"""The edge pass on parents other than diamond, with real GPAW on 2-, 4- and 8-atom cells (activemat.compute.zone)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from activemat.compute.bandgap import compute_gap
from activemat.compute.edges import edge_pass
from activemat.compute.presets import load_preset
from activemat.compute.zone import PARENT_ATOMS, PARENT_CELL, supercell_matrix, wrapped
from activemat.space.lattice import primitive_cell
from activemat.space.parents import parent_from_keys

pytest.importorskip("gpaw")
pytestmark = pytest.mark.filterwarnings("ignore:.*libxc should be compiled with --disable-fhc.*")

ALGAAS = parent_from_keys(lattice="zincblende", chemical_symbols=[["Ga", "Al"], ["As"]])


def _on_parent(atoms, parent):
    cell, n = primitive_cell(parent)
    atoms.info.update({PARENT_CELL: cell.tolist(), PARENT_ATOMS: n})
    return atoms


@pytest.fixture(scope="module")
def fast():
    return load_preset("pbe-fast")


def test_gaas_has_its_conduction_minimum_at_gamma(tmp_path, fast):
    record = compute_gap(0, 0, _on_parent(bulk("GaAs", "zincblende", a=5.6533), ALGAAS), fast, str(tmp_path))
    assert record.ok, record.error
    assert record.cbm_character == "Gamma" and record.direct and record.cbm_k == pytest.approx((0, 0, 0))
    # PBE at the measured lattice constant: 0.58 eV (measured 1.519 eV at 0 K: PBE's known underestimate); X and L
    # above it, stored in the fcc valley columns as for Si-Ge
    assert 0.3 < record.gap < 0.9 and record.gap_gamma == pytest.approx(record.gap)
    assert record.gap_l - record.gap > 0.2 and record.gap_x - record.gap > 0.5


def test_alas_has_its_conduction_minimum_at_x(tmp_path, fast):
    record = compute_gap(0, 0, _on_parent(bulk("AlAs", "zincblende", a=5.6611), ALGAAS), fast, str(tmp_path))
    assert record.ok, record.error
    # PBE puts AlAs's minimum at X (1.41 eV here), Gamma 0.65 eV above it, as measured (X 2.24, Gamma 3.099 eV at 0 K)
    assert record.cbm_character == "X" and not record.direct and record.cbm_k == pytest.approx((1, 0, 0))
    assert record.gap_x == pytest.approx(record.gap) and record.gap_gamma - record.gap_x > 0.3
    assert 1.0 < record.gap < 1.8


def _unfolded_grid(matrix: np.ndarray, n: int) -> np.ndarray:
    """The primitive k-points (fractional) onto which a supercell's Gamma-centred n x n x n grid unfolds."""
    det = round(abs(np.linalg.det(matrix)))
    shifts = np.array(np.meshgrid(*[np.arange(-det, det + 1)] * 3, indexing="ij")).reshape(3, -1).T
    grid = np.array(np.meshgrid(*[np.arange(n) / n] * 3, indexing="ij")).reshape(3, -1).T
    points = wrapped(((grid[:, None, :] + shifts[None]) @ np.linalg.inv(matrix).T).reshape(-1, 3))
    return np.unique(points.round(8), axis=0)


def _pbe(atoms, kpts, n_bands):
    from gpaw import GPAW

    atoms.calc = GPAW(mode={"name": "pw", "ecut": 200}, xc="PBE", kpts=kpts, nbands=n_bands,
                      occupations={"name": "fermi-dirac", "width": 0.01}, convergence={"bands": "occupied"},
                      txt=None)
    atoms.get_potential_energy()
    return atoms.calc


def test_an_8_atom_gaas_cell_reproduces_the_2_atom_gap(tmp_path):
    # the cubic cell's 2x2x2 grid and the 2-atom cell's same 32 primitive k-points: the same density, so the two
    # edge passes must agree to the basis's difference alone
    cubic = _on_parent(bulk("GaAs", "zincblende", a=5.6533, cubic=True), ALGAAS)
    matrix = supercell_matrix(cubic)
    points = _unfolded_grid(matrix, 2)
    assert len(points) == 32
    n_occ_8, n_occ_2 = 16, 4  # Ga 3 + As 5 valence electrons per pair
    big = edge_pass(_pbe(cubic, {"size": (2, 2, 2), "gamma": True}, n_occ_8 + 8), cubic, n_occ_8, 8)
    prim = _on_parent(bulk("GaAs", "zincblende", a=5.6533), ALGAAS)
    small = edge_pass(_pbe(prim, points, n_occ_2 + 4), prim, n_occ_2, 8)
    assert big.cbm_character == small.cbm_character == "Gamma"
    assert abs(big.gap - small.gap) < 0.01, (big.gap, small.gap)
    assert big.valleys["X"] == pytest.approx(small.valleys["X"], abs=0.01)


def test_wurtzite_gan_edges_are_named_by_the_hexagonal_points(tmp_path, fast):
    gan = parent_from_keys(lattice="wurtzite", chemical_symbols=[["Ga", "Al"], ["N"]] * 2,
                           lattice_constants={"GaN": 3.189, "AlN": 3.112})
    atoms = _on_parent(bulk("GaN", "wurtzite", a=3.189, c=5.185), gan)
    record = compute_gap(0, 0, atoms, fast.model_copy(update={"gpaw": fast.gpaw.model_copy(
        update={"kpts_density": 1.2})}), str(tmp_path))
    assert record.ok, record.error
    # GaN's edges are both at Gamma (direct); the other valleys have no store column on a hexagonal parent. The gap
    # itself (0.33 eV) is not GaN's PBE gap: 200 eV and Ga without its 3d shell are far from converged for GaN
    assert record.cbm_character == "Gamma" and record.direct and record.gap_gamma == pytest.approx(record.gap)
    assert record.cbm_k == pytest.approx((0, 0, 0)) and record.vbm_k == pytest.approx((0, 0, 0))
    assert np.isnan(record.gap_x) and np.isnan(record.gap_l) and np.isnan(record.gap_delta)
    assert record.gap > 0.1 and abs(record.band_check) < 0.005
