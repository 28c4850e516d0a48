"""Tests for activemat.space.pool: enumeration, symmetry, features, formulas, validation."""

import math
import time

import numpy as np
import pytest
from ase.build import bulk
from ase.neighborlist import neighbor_list

from activemat.errors import SpaceError
from activemat.space.pool import (
    LATTICE_CONSTANTS,
    build_pool,
    canonical_codes,
    parse_formula,
    reference_sites,
    site_permutations,
    structure_features,
)

SIGE = ("Si", "Ge")


@pytest.fixture(scope="module")
def pool():
    return build_pool(SIGE, (2, 2, 2))


def _codes(dec: np.ndarray) -> np.ndarray:
    return (dec.astype(np.uint64) << np.arange(dec.shape[1], dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


def test_configurations_402_classes_with_multiplicities(pool):
    assert len(pool) == 402 and pool.n_sites == 16
    assert pool.decorations.shape == (402, 16) and pool.decorations.dtype == np.uint8
    assert pool.multiplicity.dtype == np.int64 and pool.multiplicity.sum() == 2**16
    assert np.array_equal(np.unique(pool.n_b), np.arange(17))
    for k in range(17):
        assert pool.multiplicity[pool.n_b == k].sum() == math.comb(16, k)
    assert np.all(np.diff(pool.n_b) >= 0)  # sorted by composition
    assert len(np.unique(_codes(pool.decorations))) == 402
    assert np.allclose(pool.x_b, pool.n_b / 16)
    assert not pool.decorations.flags.writeable


def test_build_pool_is_fast():
    start = time.perf_counter()
    build_pool(SIGE, (2, 2, 2))
    assert time.perf_counter() - start < 5.0


def test_384_symmetry_operations_preserve_neighbours():
    perms = site_permutations(SIGE, (2, 2, 2))
    assert perms.shape == (384, 16)
    assert len(np.unique(perms, axis=0)) == 384
    assert np.all(np.sort(perms, axis=1) == np.arange(16))
    i, j = neighbor_list("ij", reference_sites(SIGE, (2, 2, 2)), 2.6)  # nearest neighbours only
    bonds = np.zeros((16, 16), int)
    np.add.at(bonds, (i, j), 1)
    for p in perms:
        mapped = np.zeros_like(bonds)
        mapped[np.ix_(p, p)] = bonds
        assert np.array_equal(mapped, bonds)


def test_symmetry_related_decorations_share_class(pool):
    perms = site_permutations(SIGE, (2, 2, 2))
    rng = np.random.default_rng(1)
    dec = (rng.random((50, 16)) < 0.4).astype(np.uint8)
    moved = np.zeros_like(dec)
    ops = rng.integers(len(perms), size=50)
    for r, o in enumerate(ops):
        moved[r, perms[o]] = dec[r]
    assert not np.array_equal(_codes(dec), _codes(moved))
    canon = canonical_codes(_codes(dec), perms)
    assert np.array_equal(canon, canonical_codes(_codes(moved), perms))
    # The canonical code is a pool row with the same features as the original decoration.
    rows = {c: r for r, c in enumerate(_codes(pool.decorations))}
    for r in range(50):
        row = rows[canon[r]]
        atoms = reference_sites(SIGE, (2, 2, 2))
        atoms.set_chemical_symbols(np.array(SIGE)[moved[r]])
        assert np.allclose(structure_features(atoms, SIGE), pool.features[row])


def test_pure_rows(pool):
    assert pool.feature_names == ("x_ge", "pair1", "pair2", "pair3", "triplet1")
    assert pool.formula(0) == "Si16" and pool.formula(len(pool) - 1) == "Ge16"
    assert np.allclose(pool.features[0], [0, 1, 1, 1, 1])
    assert np.allclose(pool.features[-1], [1, 1, 1, 1, -1])
    assert pool.multiplicity[0] == pool.multiplicity[-1] == 1


def test_zincblende_correlations_in_any_cell(pool):
    prim = bulk("Si", "diamond", a=5.5)
    prim.set_chemical_symbols(["Si", "Ge"])
    # A/B on alternating FCC sublattices: 1st and 3rd neighbours unlike, 2nd alike.
    expected = [0.5, -1, 1, -1, 0]
    assert np.allclose(structure_features(prim, SIGE), expected)
    assert np.allclose(structure_features(prim.repeat((2, 3, 1)), SIGE), expected)
    assert np.any(np.all(np.isclose(pool.features, expected), axis=1))
    cubic = bulk("Si", "diamond", a=5.431, cubic=True)
    assert np.allclose(structure_features(cubic, SIGE), [0, 1, 1, 1, 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_features_match_shuffled_translated_atoms(pool, seed):
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(pool), size=8, replace=False):
        atoms = pool.atoms(i)
        order = rng.permutation(len(atoms))
        moved = atoms[order]
        moved.translate(rng.normal(size=3))
        moved.wrap()
        assert np.allclose(structure_features(moved, SIGE), pool.features[i], atol=1e-12)


def test_vegard_cell_of_si8ge8(pool):
    i = int(np.flatnonzero(pool.n_b == 8)[0])
    atoms = pool.atoms(i)
    a = 0.5 * LATTICE_CONSTANTS["Si"] + 0.5 * LATTICE_CONSTANTS["Ge"]
    assert atoms.get_volume() == pytest.approx(16 * a**3 / 8)
    assert pool.formula(i) == "Si8Ge8"
    assert np.array_equal(atoms.symbols == "Ge", pool.decorations[i].astype(bool))
    assert atoms.pbc.all()
    ref = reference_sites(SIGE, (2, 2, 2))
    assert set(ref.symbols) == {"Si"} and ref.get_volume() == pytest.approx(2 * 5.431**3)
    diff = atoms.get_scaled_positions() - ref.get_scaled_positions()
    assert np.allclose(diff - np.round(diff), 0)  # same site order


def test_formula_round_trip_and_errors(pool):
    for i in range(len(pool)):
        assert parse_formula(pool.formula(i), SIGE, 16) == pool.n_b[i]
    assert parse_formula("Si4Ge12", SIGE, 16) == 12
    assert parse_formula("Ge16", SIGE, 16) == 16
    assert parse_formula("Si16", SIGE, 16) == 0
    with pytest.raises(SpaceError, match="'Xx'"):
        parse_formula("Xx4Ge12", SIGE, 16)
    with pytest.raises(SpaceError, match="'C'"):
        parse_formula("C4Ge12", SIGE, 16)
    with pytest.raises(SpaceError, match="15 atoms"):
        parse_formula("Si4Ge11", SIGE, 16)
    with pytest.raises(SpaceError, match="cannot parse"):
        parse_formula("silicon", SIGE, 16)


def test_compositions_mode(pool):
    comp = build_pool(SIGE, (2, 2, 2), mode="compositions")
    assert len(comp) == 17 and comp.feature_names == ("x_ge",)
    assert comp.features.shape == (17, 1) and np.allclose(comp.features[:, 0], np.arange(17) / 16)
    assert np.array_equal(comp.multiplicity, [math.comb(16, k) for k in range(17)])
    assert np.array_equal(comp.n_b, np.arange(17))
    for k in range(17):
        rows = np.flatnonzero(pool.n_b == k)
        best = rows[np.argmax(pool.multiplicity[rows])]
        assert np.array_equal(comp.decorations[k], pool.decorations[best])
    assert comp.formula(12) == "Si4Ge12"


def test_sampled_3x3x3():
    start = time.perf_counter()
    sp = build_pool(SIGE, (3, 3, 3), mode="sampled", samples_per_composition=200, seed=3)
    assert time.perf_counter() - start < 5.0
    assert sp.n_sites == 54
    assert len(np.unique(sp.decorations, axis=0)) == len(sp)
    counts = np.bincount(sp.n_b, minlength=55)
    assert counts[0] == counts[54] == 1 and 40 < counts[1] <= 54 and 40 < counts[53] <= 54  # duplicates dropped
    assert np.all(counts[5:50] == 200)
    assert np.all(sp.multiplicity == 1) and sp.features.shape == (len(sp), 5)
    again = build_pool(SIGE, (3, 3, 3), mode="sampled", samples_per_composition=200, seed=3)
    assert np.array_equal(again.decorations, sp.decorations)
    for i in (0, 1000, len(sp) - 1):
        assert np.allclose(structure_features(sp.atoms(i), SIGE), sp.features[i])


def test_sampled_1e5_candidates_fast():
    start = time.perf_counter()
    sp = build_pool(SIGE, (4, 4, 4), mode="sampled", samples_per_composition=800)
    assert time.perf_counter() - start < 15.0
    assert len(sp) > 10**5 - 2000 and sp.n_sites == 128
    assert np.all(np.abs(sp.features[:, 1:]) <= 1 + 1e-12)


def test_other_elements_name_features():
    p = build_pool(("Ge", "Si"), (1, 1, 1))
    assert p.feature_names[0] == "x_si" and [p.formula(i) for i in range(len(p))] == ["Ge2", "Ge1Si1", "Si2"]
    assert p.atoms(2).get_volume() == pytest.approx(LATTICE_CONSTANTS["Si"] ** 3 / 4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"elements": ("Si", "Xx")}, "unknown element 'Xx' in space.elements; known: C, Ge, Si, Sn"),
        ({"elements": ("Si", "Si")}, "two different elements"),
        ({"elements": ("Si",)}, "space.elements"),
        ({"supercell": (2, 2)}, "space.supercell"),
        ({"supercell": (2, 0, 2)}, "space.supercell"),
        ({"supercell": (2, 2.5, 2)}, "space.supercell"),
        ({"mode": "random"}, "space.mode"),
        ({"mode": "sampled"}, "samples_per_composition"),
        ({"mode": "sampled", "samples_per_composition": 0}, "samples_per_composition"),
        ({"supercell": (3, 3, 3)}, 'mode = "sampled"'),
    ],
)
def test_bad_inputs_raise_space_error(kwargs, match):
    with pytest.raises(SpaceError, match=match) as info:
        build_pool(**kwargs)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_structure_features_rejects_bad_structures():
    with pytest.raises(SpaceError, match="Sn"):
        structure_features(bulk("Sn", "diamond", a=6.489), SIGE)
    with pytest.raises(SpaceError, match="not a diamond lattice"):
        structure_features(bulk("Si", "fcc", a=5.431), SIGE)
    atoms = bulk("Si", "diamond", a=5.431)
    atoms.pbc = False
    with pytest.raises(SpaceError, match="periodic"):
        structure_features(atoms, SIGE)


# -- features = "orbits": a complete four-body cluster expansion of the supercell -------------

@pytest.fixture(scope="module")
def orbit_pool():
    return build_pool(features="orbits")


def test_orbit_features_count_every_cluster_once(orbit_pool):
    from activemat.space.pool import cluster_orbits

    orbits = cluster_orbits(("Si", "Ge"), (2, 2, 2))
    by_size = {k: [o for o in orbits if o.shape[1] == k] for k in (2, 3, 4)}
    assert [len(by_size[k]) for k in (2, 3, 4)] == [4, 6, 19]
    for k, group in by_size.items():  # the orbits partition all k-site clusters of the 16-site cell
        assert sum(len(o) for o in group) == math.comb(16, k)
    assert orbit_pool.features.shape == (402, 30)
    assert orbit_pool.feature_names[:2] == ("x_ge", "pair1") and orbit_pool.feature_names[-1] == "quad19"


def test_orbit_features_are_symmetry_invariant_and_extend_the_shell_pairs(pool, orbit_pool):
    from activemat.space.pool import _orbit_features, cluster_orbits, site_permutations

    orbits = cluster_orbits(("Si", "Ge"), (2, 2, 2))
    perms = site_permutations(("Si", "Ge"), (2, 2, 2))
    rng = np.random.default_rng(0)
    dec = orbit_pool.decorations[rng.choice(402, 20, replace=False)]
    for o in rng.choice(len(perms), 5, replace=False):
        image = np.zeros_like(dec)
        image[:, perms[o]] = dec
        assert np.allclose(_orbit_features(image, orbits), _orbit_features(dec, orbits))
    # the most compact pair orbit is the nearest-neighbour shell: same correlation as the shell features
    assert np.allclose(orbit_pool.features[:, 1], pool.features[:, 1])
    assert np.array_equal(orbit_pool.decorations, pool.decorations)  # same candidates, other features


def test_orbit_features_refuse_large_cells_and_unknown_sets():
    with pytest.raises(SpaceError, match="too many"):
        build_pool(supercell=(3, 3, 3), mode="sampled", samples_per_composition=2, features="orbits")
    with pytest.raises(SpaceError, match="unknown space.features"):
        build_pool(features="soap")


def test_orbit_features_are_part_of_the_campaign_identity():
    from activemat.campaign.config import parse_campaign

    shells = parse_campaign("[space]\nsupercell = [2, 2, 2]\n")
    explicit = parse_campaign('[space]\nsupercell = [2, 2, 2]\nfeatures = "shells"\n')
    orbits = parse_campaign('[space]\nsupercell = [2, 2, 2]\nfeatures = "orbits"\n')
    assert shells.identity() == explicit.identity() != orbits.identity()
