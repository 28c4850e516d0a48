"""Tests for activemat.space (lattice, formula, symmetry, features, sampling, pool): enumeration, symmetry,
features, formulas, validation."""

import math

import numpy as np
import pytest
from ase.build import bulk
from ase.neighborlist import neighbor_list

from activemat.errors import SpaceError
from activemat.space.features import DEFAULT_CUTOFFS, structure_features
from activemat.space.formula import parse_formula
from activemat.space.lattice import LATTICE_CONSTANTS, reference_sites
from activemat.space.pool import build_pool
from activemat.space.symmetry import canonical_codes, decoration_codes, site_permutations

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


def test_build_pool_twice_gives_the_same_pool():
    first, again = build_pool(SIGE, (2, 2, 2)), build_pool(SIGE, (2, 2, 2))
    assert np.array_equal(first.decorations, again.decorations) and np.array_equal(first.features, again.features)


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
    sp = build_pool(SIGE, (3, 3, 3), mode="sampled", samples_per_composition=200, seed=3)
    assert sp.n_sites == 54
    canon = canonical_codes(decoration_codes(sp.decorations), site_permutations(SIGE, (3, 3, 3)))
    assert len(np.unique(canon)) == len(sp)  # one row per symmetry class
    counts = np.bincount(sp.n_b, minlength=55)
    assert counts[0] == counts[1] == counts[53] == counts[54] == 1  # one class each: single atoms are equivalent
    assert 1 < counts[2] < 10 and np.all(counts[8:47] == 200)  # a few pair classes; mid-range draws all distinct
    # multiplicity counts the draws of each class: 200 per composition in all
    assert np.all(np.bincount(sp.n_b, weights=sp.multiplicity, minlength=55) == 200)
    assert sp.multiplicity[sp.n_b == 1] == [200] and sp.features.shape == (len(sp), 5)
    again = build_pool(SIGE, (3, 3, 3), mode="sampled", samples_per_composition=200, seed=3)
    assert np.array_equal(again.decorations, sp.decorations)
    for i in (0, 1000, len(sp) - 1):
        assert np.allclose(structure_features(sp.atoms(i), SIGE), sp.features[i])


def test_sampled_1e5_candidates():
    # how long this takes is measured by benchmarks/featurize.py, not asserted here (a loaded machine fails it)
    sp = build_pool(SIGE, (4, 4, 4), mode="sampled", samples_per_composition=800)
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
    from activemat.space.features import cluster_orbits

    orbits = cluster_orbits(("Si", "Ge"), (2, 2, 2))
    by_size = {k: [o for o in orbits if o.shape[1] == k] for k in (2, 3, 4)}
    assert [len(by_size[k]) for k in (2, 3, 4)] == [4, 6, 19]
    for k, group in by_size.items():  # the orbits partition all k-site clusters of the 16-site cell
        assert sum(len(o) for o in group) == math.comb(16, k)
    assert orbit_pool.features.shape == (402, 30)
    assert orbit_pool.feature_names[:2] == ("x_ge", "pair1") and orbit_pool.feature_names[-1] == "quad19"


def test_orbit_features_are_symmetry_invariant_and_extend_the_shell_pairs(pool, orbit_pool):
    from activemat.space.features import _orbit_features, cluster_orbits
    from activemat.space.symmetry import site_permutations

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


# -- features = "icet": cluster vectors of icet's ClusterSpace on the diamond parent lattice ---------

@pytest.fixture(scope="module")
def icet_pool():
    return build_pool(features="icet")


def _icet_space(cutoffs=DEFAULT_CUTOFFS):
    import warnings

    from icet import ClusterSpace

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Set OLD_ERROR_HANDLING", DeprecationWarning)  # spglib, called by icet
        return ClusterSpace(bulk("Si", "diamond", a=LATTICE_CONSTANTS["Si"]), list(cutoffs), ["Si", "Ge"])


def test_icet_features_are_icets_cluster_vector(icet_pool, pool):
    cs = _icet_space()
    assert icet_pool.features.shape == (402, len(cs) - 1)
    assert icet_pool.feature_names[:3] == ("x_ge", "pair 2.35 A", "pair 3.84 A")
    assert len(set(icet_pool.feature_names)) == len(icet_pool.feature_names)
    assert np.array_equal(icet_pool.decorations, pool.decorations)  # same candidates, other features
    for i in (0, 7, 150, 333, 401):
        atoms = reference_sites(SIGE, (2, 2, 2))
        atoms.set_chemical_symbols(np.array(SIGE)[icet_pool.decorations[i]])
        cv = cs.get_cluster_vector(atoms)
        x = icet_pool.x_b[i]
        assert cv[1] == pytest.approx(2 * x - 1)  # icet's point term; the pool keeps x_B in its place
        assert icet_pool.features[i, 0] == pytest.approx(x)
        assert np.allclose(icet_pool.features[i, 1:], cv[2:], atol=1e-12)
        # any structure file of the candidate (Vegard cell, shuffled, moved) gives the same vector
        moved = icet_pool.atoms(i)[np.random.default_rng(i).permutation(16)]
        moved.translate([0.3, -1.1, 2.0])
        moved.wrap()
        assert np.allclose(structure_features(moved, SIGE, features="icet"), icet_pool.features[i], atol=1e-10)
        assert np.allclose(icet_pool.featurize(moved), icet_pool.features[i], atol=1e-10)


def _layered(cell, supercell, period):
    """All-Si sites of a cell with Ge on (001) atomic planes: plane index (z in a/4) mod period < period / 2."""
    atoms = reference_sites(SIGE, supercell, cell)
    plane = np.round(4 * atoms.positions[:, 2] / LATTICE_CONSTANTS["Si"]).astype(int)
    atoms.symbols[plane % period < period // 2] = "Ge"
    return atoms


@pytest.mark.parametrize("pattern", ["Si", "Ge", "layers 1+1", "layers 2+2"])
def test_icet_features_are_the_same_in_any_cell(pattern):
    vectors = []
    for cell, supercell in (("primitive", (2, 2, 2)), ("primitive", (2, 2, 4)), ("cubic", (1, 1, 1)),
                            ("cubic", (2, 2, 2))):
        if pattern in ("Si", "Ge"):
            atoms = reference_sites(SIGE, supercell, cell)
            atoms.symbols[:] = pattern
        else:
            atoms = _layered(cell, supercell, 2 if pattern == "layers 1+1" else 4)
        vectors.append(structure_features(atoms, SIGE, features="icet"))
    assert len(reference_sites(SIGE, (2, 2, 4))) == 32 and len(reference_sites(SIGE, (2, 2, 2), "cubic")) == 64
    for v in vectors[1:]:
        assert np.allclose(v, vectors[0], atol=1e-12)
    x = {"Si": 0.0, "Ge": 1.0}.get(pattern, 0.5)
    assert vectors[0][0] == pytest.approx(x)


def test_icet_pool_rebuilt_from_names_infers_its_features(icet_pool):
    import dataclasses

    stored = dataclasses.replace(icet_pool, feature_set=None, cutoffs=None)  # as a store gives it back
    assert stored.feature_kind == "icet"
    assert _icet_space(stored.cluster_cutoffs).as_list == _icet_space().as_list  # the same clusters
    assert np.allclose(stored.featurize(icet_pool.atoms(200)), icet_pool.features[200])
    orbit_like = dataclasses.replace(stored, feature_names=("x_ge",) + tuple(f"pair{k}" for k in range(12)))
    with pytest.raises(SpaceError, match="orbits"):
        orbit_like.featurize(icet_pool.atoms(0))


@pytest.mark.parametrize("cutoffs", [[], [7.0, -1.0], [7.0, 4.5, 4.0, 4.0], "7.0", [True], [float("nan")]])
def test_icet_cutoffs_are_validated(cutoffs):
    with pytest.raises(SpaceError, match=r"space\.cutoffs must be 1 to 3 positive distances") as info:
        build_pool(features="icet", cutoffs=cutoffs)
    assert "\n" not in str(info.value)


def test_icet_cutoff_below_nearest_neighbours():
    with pytest.raises(SpaceError, match="no pair fits within 2.0 A") as info:
        build_pool(features="icet", cutoffs=[2.0])
    assert "\n" not in str(info.value)


def test_icet_structure_features_reject_off_lattice_structures():
    # no neighbour counts: the atoms are put on the parent's sites; an fcc crystal is not a cell of it, and says so
    with pytest.raises(SpaceError, match=r"fcc \(Fm-3m\) lattice; the campaign's parent is diamond \(Fd-3m\)"):
        structure_features(bulk("Si", "fcc", a=5.431), SIGE, features="icet")
    with pytest.raises(SpaceError, match="orbits"):
        structure_features(bulk("Si", "diamond", a=5.431), SIGE, features="orbits")


def test_cubic_64_atom_sampled_pool_with_icet_features_and_matching():
    from activemat.space.matching import Matcher

    sp = build_pool(SIGE, (2, 2, 2), mode="sampled", samples_per_composition=3, seed=1, features="icet",
                    cell="cubic")
    assert sp.n_sites == 64 and sp.cell == "cubic" and len(sp) > 150
    assert sp.atoms(0).get_volume() == pytest.approx(64 * LATTICE_CONSTANTS["Si"] ** 3 / 8)
    assert sp.features.shape[1] == len(_icet_space()) - 1
    matcher = Matcher(sp)
    rng = np.random.default_rng(0)
    for i in (5, 90, len(sp) - 5):
        atoms = sp.atoms(i)[rng.permutation(64)]
        atoms.translate(atoms.positions[7] * -1.0)
        atoms.wrap()
        cand, how = matcher.match(atoms)  # a sampled pool may hold a symmetry class twice: the first answers
        assert how == "sites" and np.allclose(sp.features[cand], sp.features[i]) and (cand == i or i > 90)
        assert np.allclose(sp.featurize(atoms), sp.features[i])


def test_cubic_cell_enumerates_like_the_primitive_cell():
    cubic = build_pool(SIGE, (1, 1, 1), cell="cubic", features="icet")
    assert cubic.n_sites == 8 and cubic.multiplicity.sum() == 2**8
    for i in range(len(cubic)):
        assert np.allclose(structure_features(cubic.atoms(i), SIGE, features="icet"), cubic.features[i])
    with pytest.raises(SpaceError, match="space.cell"):
        build_pool(cell="hexagonal")


# -- campaign identity: stores made before cutoffs/cell/icet keep theirs ------------------------

@pytest.mark.parametrize(("text", "identity"), [
    ("", "830baceadb506e90"),
    ("[space]\nsupercell = [2, 2, 2]\n", "830baceadb506e90"),
    ('[space]\nfeatures = "orbits"\n[calculator]\npreset = "gpaw-pbe-pw"\n', "6cb79e70ca18a395"),
    ('[space]\nsupercell = [3, 3, 3]\nmode = "sampled"\nsamples_per_composition = 200\nelements = ["Ge", "Si"]\n',
     "cc40adedb865a548"),
])
def test_identity_of_unchanged_campaign_files_is_unchanged(text, identity):
    from activemat.campaign.config import parse_campaign

    assert parse_campaign(text).identity() == identity  # hashes from before the icet/cutoffs/cell keys


def test_icet_cutoffs_and_cell_in_the_campaign_identity():
    from activemat.campaign.config import parse_campaign
    from activemat.errors import InputError

    def ident(space):
        return parse_campaign("[space]\n" + space).identity()

    base = ident("")
    assert ident("cutoffs = [8.0, 5.0]\n") == base  # cutoffs only matter to icet features
    assert ident('cell = "primitive"\n') == base
    icet = ident('features = "icet"\n')
    assert icet != base and ident('features = "icet"\ncutoffs = [7, 6, 5]\n') == icet
    assert ident('features = "icet"\ncutoffs = [8.0, 6.0, 5.0]\n') != icet
    assert ident('cell = "cubic"\n') != base
    for bad in ("cutoffs = []\n", "cutoffs = [7.0, 0.0]\n", "cutoffs = [7, 6, 5, 4]\n"):
        with pytest.raises(InputError, match="space.cutoffs: .*1 to 3 positive distances") as info:
            ident(bad)
        assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def sqs_pools():
    """An enumerated and a sampled pool of the 4-site cell with icet's SQS (about 2 s of annealing per SQS)."""
    return (build_pool(SIGE, (1, 1, 2), features="icet", sqs=True),
            build_pool(SIGE, (1, 1, 2), mode="sampled", samples_per_composition=2, seed=4, features="icet",
                       sqs=True))


def test_sqs_pool_marks_one_sqs_per_composition_closest_to_the_random_alloy(sqs_pools):
    from activemat.learn.acquisition import representative

    enumerated, sampled = sqs_pools
    plain = build_pool(SIGE, (1, 1, 2), features="icet")
    assert np.array_equal(enumerated.decorations, plain.decorations)  # the enumeration holds every SQS already
    assert np.array_equal(enumerated.multiplicity, plain.multiplicity) and plain.sqs is None
    for pool in sqs_pools:
        assert np.array_equal(np.bincount(pool.n_b[pool.sqs], minlength=5), np.ones(5))
        for k in range(5):
            assert pool.sqs[representative(pool, k)]  # the SQS is the composition's seed
            # its pair and triplet correlations are as close to the random alloy's (2x - 1)^order as any class's
            x, idx = k / 4, np.flatnonzero(pool.n_b == k)
            order = np.array([int(n.startswith("pair")) * 2 + int(n.startswith("triplet")) * 3
                              + int(n.startswith("quadruplet")) * 4 for n in pool.feature_names[1:]])
            miss = np.abs(pool.features[idx, 1:] - (2 * x - 1) ** order).sum(axis=1)
            assert miss[pool.sqs[idx]][0] <= miss.min() + 1e-9
    # sampled: draws counted per class; an SQS not drawn joins as one draw
    assert np.bincount(sampled.n_b, weights=sampled.multiplicity, minlength=5)[1:4].min() >= 2


def test_sqs_pool_is_stored_and_read_back(sqs_pools, tmp_path):
    from activemat.store.read import read_store
    from activemat.store.write import CampaignStore

    _, sampled = sqs_pools
    CampaignStore.create(tmp_path / "s.h5", campaign_text="", identity="x", pool=sampled, presets={}).close()
    back = read_store(tmp_path / "s.h5").pool()
    assert np.array_equal(back.sqs, sampled.sqs) and np.array_equal(back.decorations, sampled.decorations)


def test_sqs_in_the_campaign_identity():
    from activemat.campaign.config import parse_campaign

    def ident(space):
        return parse_campaign("[space]\n" + space).identity()

    assert ident("sqs = false\n") == ident("")  # stores from before SQS resume
    assert ident("sqs = true\n") != ident("") and ident("sqs = true\n") != ident("sqs = true\ncutoffs = [7, 5]\n")


def test_orbits_are_the_complete_four_body_expansion_icet_reaches_only_with_far_more_columns(pool):
    """Why "orbits" stays beside "icet" for 16-atom cells: its 30 columns span every 2-4-site cluster of the
    supercell, which icet's parent-lattice cluster vector spans only from cutoffs [12, 8, 7] on (175 columns);
    icet's default cutoffs give a strict subspace."""
    orbits = build_pool(features="orbits")
    big = build_pool(features="icet", cutoffs=(12.0, 8.0, 7.0))
    default = build_pool(features="icet")

    def rank(*blocks):
        A = np.column_stack([np.ones(len(pool)), *blocks])
        return np.linalg.matrix_rank(A, tol=1e-8)

    r_orbits = rank(orbits.features)
    assert orbits.features.shape[1] == 30 and big.features.shape[1] > 150
    assert rank(orbits.features, big.features) == rank(big.features) == r_orbits  # the same span
    assert rank(default.features) < r_orbits == rank(orbits.features, default.features)  # a strict subspace


def test_supercell_as_a_3x3_matrix(tmp_path):
    """A 3x3 matrix of the primitive cell: the conventional cubic cell is [[-1, 1, 1], [1, -1, 1], [1, 1, -1]]
    (8 sites), with the same symmetry classes as cell = "cubic", supercell = [1, 1, 1]; a diagonal matrix is its
    repeats; a singular or left-handed one is refused in one line; the store keeps the matrix."""
    from activemat.campaign.config import parse_campaign
    from activemat.errors import InputError
    from activemat.store.read import read_store
    from activemat.store.write import CampaignStore

    P = [[-1, 1, 1], [1, -1, 1], [1, 1, -1]]
    matrix = build_pool(SIGE, P, features="icet")
    cubic = build_pool(SIGE, (1, 1, 1), cell="cubic", features="icet")
    assert matrix.n_sites == 8 and matrix.supercell == tuple(map(tuple, P))
    assert np.array_equal(np.sort(matrix.multiplicity), np.sort(cubic.multiplicity))
    assert np.allclose(np.sort(matrix.features, axis=0), np.sort(cubic.features, axis=0))
    atoms = matrix.atoms(int(np.argmax(matrix.n_b == 4)))
    assert len(atoms) == 8 and np.allclose(atoms.cell.lengths(), atoms.cell.lengths()[0])  # a cube
    assert np.allclose(structure_features(atoms, SIGE, features="icet"), matrix.features[np.argmax(matrix.n_b == 4)])
    assert build_pool(SIGE, [[2, 0, 0], [0, 2, 0], [0, 0, 2]]).supercell == (2, 2, 2)
    ident = parse_campaign("[space]\nsupercell = [[2, 0, 0], [0, 2, 0], [0, 0, 2]]\n").identity()
    assert ident == parse_campaign("").identity()
    for bad in ("[[1, 0, 0], [0, 1, 0], [1, 0, 0]]", "[[0, 1, 0], [1, 0, 0], [0, 0, 1]]", "[2, 2, 0]"):
        with pytest.raises(InputError, match="space.supercell: .*3x3 integer matrix with positive determinant") as e:
            parse_campaign(f"[space]\nsupercell = {bad}\n")
        assert "\n" not in str(e.value)
    CampaignStore.create(tmp_path / "m.h5", campaign_text="", identity="x", pool=matrix, presets={}).close()
    back = read_store(tmp_path / "m.h5").pool()
    assert back.supercell == matrix.supercell and np.allclose(back.atoms(3).positions, matrix.atoms(3).positions)


def test_space_and_acquisition_doctests():
    """The examples in the docstrings (supercell spellings, formulas, feature classes, the composition-averaging
    operator) are run."""
    import doctest

    from activemat.learn import acquisition
    from activemat.space import features, formula, lattice, pool, sampling, symmetry

    for module in (lattice, formula, symmetry, features, sampling, pool, acquisition):
        assert doctest.testmod(module).failed == 0, module.__name__
