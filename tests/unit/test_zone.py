"""The edge pass on any parent (activemat.compute.zone): supercell matrices, special points, folding, valleys."""

from __future__ import annotations

import doctest
import hashlib

import numpy as np
import pytest
from ase.build import bulk, make_supercell
from scipy.spatial.transform import Rotation

from activemat.campaign.scheduler import Scheduler
from activemat.compute import edges, zone
from activemat.compute.presets import load_preset
from activemat.compute.zone import (FCC_PRIMITIVE, PARENT_ATOMS, PARENT_CELL, PRIMITIVE_POINTS, edge_kpoints,
                                    parent_zone, supercell_matrix, wrapped)
from activemat.space.lattice import as_parent, primitive_cell, reference_sites
from activemat.space.parents import parent_from_keys
from activemat.space.pool import build_pool
from tests.conftest import cli

ALGAAS = parent_from_keys(lattice="zincblende", chemical_symbols=[["Ga", "Al"], ["As"]])
GAN = parent_from_keys(lattice="wurtzite", chemical_symbols=[["Ga", "Al"], ["N"]] * 2,
                       lattice_constants={"GaN": 3.189, "AlN": 3.112})

# The edge pass's k-points on Si-Ge cells before other parents existed (main at ca88fda): the first 16 hex digits
# of the SHA-256 of the k-point array, so a Si-Ge store's results keep their meaning bit for bit.
SIGE_KPOINTS = {
    "prim": (bulk("Si", "diamond", a=5.431), "7eb5177bb16a18fa"),
    "2x2x2": (bulk("Si", "diamond", a=5.5).repeat(2), "fb185a0a6d5fd40f"),
    "2x2x4": (bulk("Si", "diamond", a=5.6).repeat((2, 2, 4)), "6a1ac9001d1a1ca0"),
    "cubic": (bulk("Si", "diamond", a=5.431, cubic=True), "d6287f7cd55dc9ba"),
    "cubic2": (bulk("Si", "diamond", a=5.431, cubic=True).repeat(2), "bdc0864d8074ee1b"),
    "3x3x3": (bulk("Ge", "diamond", a=5.658).repeat(3), "cc5ed112609ede7f"),
    "skew": (make_supercell(bulk("Si", "diamond", a=5.431), [[1, 1, 0], [0, 2, 1], [1, 0, 3]]), "c59001d7391215e1"),
}


def _sha(kpoints: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(kpoints).tobytes()).hexdigest()[:16]


def _with_parent(atoms, parent):
    cell, n = primitive_cell(parent)
    atoms.info.update({PARENT_CELL: cell.tolist(), PARENT_ATOMS: n})
    return atoms


def _same_points(a: np.ndarray, b: np.ndarray) -> bool:
    """Two sets of fractional k-points equal modulo reciprocal-lattice vectors and time reversal."""
    def key(k):
        return min(tuple(wrapped(s * k).round(6)) for s in (1, -1))
    return sorted(map(key, a)) == sorted(map(key, b))


@pytest.mark.parametrize("name", SIGE_KPOINTS)
def test_sige_cells_fold_onto_the_same_kpoints_bit_for_bit(name):
    atoms, sha = SIGE_KPOINTS[name]
    assert _sha(edge_kpoints(supercell_matrix(atoms))[0]) == sha  # no parent given: the diamond lattice
    atoms = _with_parent(atoms.copy(), as_parent(("Si", "Ge")))  # as the campaign's scheduler sends it
    assert _sha(edge_kpoints(supercell_matrix(atoms), parent_zone(primitive_cell(as_parent(("Si", "Ge")))[0]))[0]) \
        == sha


def test_the_fcc_table_is_ases_special_points_with_their_stars():
    special = {k: v for k, v in bulk("Si", "diamond", a=5.431).cell.bandpath(npoints=0).special_points.items()}
    points, labels = zone._stars(FCC_PRIMITIVE, {"X": special["X"], "L": special["L"]})
    for label in ("X", "L"):
        ours = np.array([k for name, k in PRIMITIVE_POINTS.items() if name[0] == label])
        assert _same_points(ours, np.array([points[n] for n in points if labels[n] == label]))
    assert len(ours) == 4 and sum(v == "X" for v in labels.values()) == 3


def test_zincblende_and_rocksalt_keep_the_fcc_points_and_valleys():
    pool = build_pool(ALGAAS, supercell=(2, 2, 2), mode="compositions", features="icet", cutoffs=(5.0,))
    atoms = _with_parent(pool.atoms(3), ALGAAS)
    z = parent_zone(atoms.info[PARENT_CELL])
    assert z.lattice == "FCC" and z.valleys == ("Gamma", "Delta", "X", "L") and z.to_standard is None
    assert supercell_matrix(atoms).tolist() == (2 * np.eye(3, dtype=int)).tolist()
    k, names = edge_kpoints(supercell_matrix(atoms), z)
    assert len(k) == 4 and names[0] == ["Gamma", "Xx", "Xy", "Xz", "L1", "L2", "L3", "L4"]
    salt = bulk("NaCl", "rocksalt", a=5.64)
    assert parent_zone(salt.cell).lattice == "FCC"
    assert z.character(PRIMITIVE_POINTS["Xy"]) == "X" and z.character(0.5 * PRIMITIVE_POINTS["Xz"]) == "Delta"


def test_an_fcc_cell_in_another_basis_and_orientation_names_the_same_valleys():
    prim = bulk("GaAs", "zincblende", a=5.65).cell.array
    rotation = Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_matrix()
    other = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]]) @ prim @ rotation.T
    z = parent_zone(other)
    assert z.lattice == "FCC" and z.to_standard is not None
    for name, k in z.points.items():
        assert z.character(k) == name.rstrip("xyz1234"), name
    # the same points in Cartesian space: rotate this cell's points back onto the standard cell's
    recip, recip0 = np.linalg.inv(other).T, np.linalg.inv(prim).T
    back = np.array([k @ recip @ rotation for k in z.points.values()]) @ np.linalg.inv(recip0)
    assert _same_points(back, np.array(list(PRIMITIVE_POINTS.values())))
    # a supercell of it folds as the standard 16-atom cell does: Gamma and the three Delta points
    atoms = make_supercell(bulk("GaAs", "zincblende", a=5.65), np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]]))
    atoms.set_cell(atoms.cell.array @ rotation.T, scale_atoms=True)
    sc = atoms.repeat(2)
    k, names = edge_kpoints(supercell_matrix(sc, (other, 2)), z)
    assert len(k) == 4 and sorted(n[0] for n in names) == ["Deltax", "Deltay", "Deltaz", "Gamma"]


def test_wurtzite_gets_the_hexagonal_points_and_folds_them():
    cell, n = primitive_cell(GAN)
    z = parent_zone(cell)
    assert (z.lattice, n, z.valleys) == ("HEX", 4, ("Gamma", "A", "H", "K", "L", "M"))
    assert sum(label == "M" for label in z.labels.values()) == 3 and sum(v == "K" for v in z.labels.values()) == 1
    # 2x2x1: the three M fold onto Gamma, the three L onto A; K and H stay apart
    k, names = edge_kpoints(supercell_matrix(bulk("GaN", "wurtzite", a=3.189).repeat((2, 2, 1)), (cell, n)), z)
    assert names == [["Gamma", "M1", "M2", "M3"], ["A", "L1", "L2", "L3"], ["H"], ["K"]]
    assert np.allclose(k[3], [2 / 3, 2 / 3, 0])
    # 3x3x2: K folds onto Gamma (3 x 1/3), A onto Gamma (2 x 1/2), H onto Gamma too; each L onto an M
    k, names = edge_kpoints(np.diag([3, 3, 2]), z)
    assert set(names[0]) == {"Gamma", "A", "H", "K"} and len(k) == 4
    assert [sorted(n[0] for n in group) for group in names[1:]] == [["L", "M"]] * 3
    assert z.character([0.5, 0.5, 0.0]) == "M" and z.character([0.25, 0.0, 0.0]) == "other"
    assert z.reduced([0.5, 0.5, 0.0]).tolist() == [0.5, 0.0, 0.0]  # ASE's representative of M
    assert z.reduced([0.75, 0.0, 0.1]).round(6).tolist() == [-0.25, 0.0, 0.1]


def test_a_cell_off_the_parent_lattice_is_refused_with_the_matrix():
    gan = bulk("GaN", "wurtzite", a=3.189)
    with pytest.raises(ValueError, match="5-atom cell is not a supercell of the parent's 4-atom") as err:
        supercell_matrix(gan.repeat((1, 1, 2))[:5], (gan.cell.array, 4))
    assert "\n" not in str(err.value)
    squashed = bulk("Si", "diamond", a=5.431).repeat(2)
    squashed.set_cell(squashed.cell.array @ np.diag([1.0, 1.0, 1.3]), scale_atoms=True)
    with pytest.raises(ValueError, match="not an integer matrix"):
        supercell_matrix(squashed)


def test_a_structure_file_in_a_conventional_cell_folds_on_its_primitive_cell(tmp_path):
    import ase.io

    cubic = bulk("GaAs", "zincblende", a=5.65, cubic=True)
    cubic.rotate(25, "z", rotate_cell=True)
    ase.io.write(tmp_path / "gaas.extxyz", cubic)  # keeps the rotated orientation
    parent = parent_from_keys(structure="gaas.extxyz", base=tmp_path, lattice_constants={"GaAs": 5.65, "AlAs": 5.66},
                              chemical_symbols=[["Ga", "Al"] if s == "Ga" else ["As"] for s in cubic.symbols])
    cell, n = primitive_cell(parent)
    assert n == 2 and parent_zone(cell).lattice == "FCC"
    assert np.allclose(parent.cell_atoms().cell.array, cubic.cell.array)
    matrix = supercell_matrix(reference_sites(parent, (1, 1, 2)), (cell, n))
    assert round(abs(np.linalg.det(matrix))) == 8
    # the same points fold together as in the unrotated cubic cell of the diamond lattice: the stars' members
    # may swap names with the basis, so compare how many of each star fold onto each k-point
    def groups(names):
        return sorted(sorted(name.rstrip("xyz1234") for name in group) for group in names)
    standard = edge_kpoints(supercell_matrix(bulk("Si", "diamond", a=5.43, cubic=True).repeat((1, 1, 2))))[1]
    assert groups(edge_kpoints(matrix, parent_zone(cell))[1]) == groups(standard) and len(standard) == 5


def test_the_scheduler_sends_the_parents_primitive_cell_with_the_structure(tmp_path):
    pool = build_pool(GAN, supercell=(2, 2, 1), mode="compositions", features="icet", cutoffs=(5.0,))
    preset = load_preset("pbe-fast")
    atoms = Scheduler(None, None, None, pool, [preset], scratch=str(tmp_path))._structure(1, preset)
    assert atoms.info[PARENT_ATOMS] == 4 and np.allclose(atoms.info[PARENT_CELL], primitive_cell(GAN)[0])
    assert supercell_matrix(atoms).tolist() == [[2, 0, 0], [0, 2, 0], [0, 0, 1]]


def test_a_folded_edges_preset_on_a_wurtzite_campaign_loads(campaign_file, tmp_path):
    path = campaign_file(space={"lattice": "wurtzite", "chemical_symbols": [["Ga", "Al"], ["N"]] * 2,
                                "lattice_constants": {"GaN": 3.189, "AlN": 3.112}, "supercell": [2, 2, 1],
                                "features": "icet", "cutoffs": [5.0], "elements": None},
                         calculator={"preset": "pbe-fast"})
    code, out, err = cli("run", "--dry-run", str(path), "--store", str(tmp_path / "w.h5"))
    assert code == 0, err
    assert not (tmp_path / "w.h5").exists()


def test_doctests():
    for module in (zone, edges):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_the_cbm_valley_is_the_one_with_most_summed_weight_not_the_heaviest_point():
    from activemat.compute.edges import dominant_valley
    # a Gamma-L mixture as in Al-rich 2x2x2 AlGaAs cells: Gamma the heaviest point, L four points of 0.15
    mixed = {"Gamma": 0.3, "L": 4 * 0.15, "other": 0.1}
    assert dominant_valley([mixed]) == "L"
    # degenerate CBM states count together: one leaning X, one Delta, and Delta wins on the sum
    assert dominant_valley([{"X": 0.6, "Delta": 0.4}, {"X": 0.1, "Delta": 0.9}]) == "Delta"
    assert dominant_valley([{"Gamma": 1.0}]) == "Gamma"
