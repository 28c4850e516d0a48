"""Any substitutional alloy (issue 30): a parent with per-site species, and SiGe exactly as before."""

from __future__ import annotations

import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from activemat.campaign.config import load_campaign, parse_campaign
from activemat.errors import InputError, SpaceError
from activemat.space.features import structure_features
from activemat.space.formula import format_formula, parse_formula
from activemat.space.lattice import mixing_sites, reference_sites
from activemat.space.parents import parent_from_keys
from activemat.space.matching import Matcher
from activemat.space.pool import build_pool

CAMPAIGNS = Path(__file__).parents[2] / "campaigns"
ALGAAS = parent_from_keys(lattice="zincblende", chemical_symbols=[["Ga", "Al"], ["As"]])

# The identity of every shipped campaign, as it was before other parents existed (main at 73372b6): a SiGe
# store resumes only if its campaign's identity is unchanged. A new campaign file adds a line here.
IDENTITIES = {
    "algaas16-fast.toml": "cc297efa72f58041",
    "algaas16-pbe-fast.toml": "00faf5fc247467e3",
    "demo.toml": "830baceadb506e90",
    "multi-fidelity.toml": "42c07fdbd2d6d8cc",
    "reference-32-fast.toml": "5e21dd3619082470",
    "reference-32-sqs.toml": "d780f1c1c8781b81",
    "reference-fast-all.toml": "830baceadb506e90",
    "reference-fast.toml": "830baceadb506e90",
    "reference-pbe.toml": "1d092257b858714a",
    "reference-tb09.toml": "d9342d2dc0e5b798",
    "seed-tutorial-active.toml": "37821f5468ce1879",
    "seed-tutorial.toml": "37821f5468ce1879",
    "sige16-accurate.toml": "9b19de5fd9c5fa97",
    "sige16-pbe-nystroem.toml": "6cb79e70ca18a395",
    "sige16-pbe.toml": "2e96690fc8e75134",
    "sige32-fast.toml": "c06bdcff4a3fc4c9",
    "sige32-pbe-fast.toml": "26231ff327377d58",
    "transfer-tb09.toml": "d9342d2dc0e5b798",
}


@pytest.mark.parametrize("name", sorted(p.name for p in CAMPAIGNS.glob("*.toml")))
def test_campaign_identities_are_pinned(name):
    assert load_campaign(CAMPAIGNS / name)[0].identity() == IDENTITIES[name]


def test_sige_spelled_as_a_diamond_parent_is_the_same_space_and_identity():
    plain = parse_campaign('[space]\nelements = ["Si", "Ge"]\n')
    spelled = parse_campaign('[space]\nlattice = "diamond"\nchemical_symbols = [["Si", "Ge"], ["Si", "Ge"]]\n')
    assert plain.space.parent() == spelled.space.parent()
    assert plain.identity() == spelled.identity() == IDENTITIES["demo.toml"]  # the space, not its spelling
    other = parse_campaign('[space]\nelements = ["Si", "Ge"]\nlattice_constants = {Si = 5.43}\n')
    assert other.identity() != plain.identity()  # another lattice constant is other data


def test_algaas_pool_cation_decorations():
    cfg, _ = load_campaign(CAMPAIGNS / "algaas16-fast.toml")
    parent = cfg.space.parent()
    assert parent == ALGAAS and parent.elements == ("Ga", "Al") and parent.name == "Ga(1-x)Al(x)As"
    pool = build_pool(parent, (2, 2, 2), features="icet")
    assert pool.n_sites == 8 and len(pool) == 16 and pool.multiplicity.sum() == 2 ** 8
    assert np.bincount(pool.n_b).tolist() == [1, 1, 2, 2, 4, 2, 2, 1, 1]
    assert pool.feature_names[0] == "x_al"
    i = int(np.flatnonzero(pool.n_b == 3)[0])
    atoms = pool.atoms(i)
    assert pool.formula(i) == "Ga5Al3As8" and atoms.get_chemical_formula() == "Al3As8Ga5"
    symbols = np.array(atoms.get_chemical_symbols())
    assert set(symbols[mixing_sites(parent, (2, 2, 2))]) == {"Ga", "Al"}
    assert np.all(np.delete(symbols, mixing_sites(parent, (2, 2, 2))) == "As")
    a = (5 / 8) * 5.6533 + (3 / 8) * 5.6611  # Vegard between GaAs and AlAs
    assert atoms.get_volume() == pytest.approx(16 * a ** 3 / 8)
    # the cation sublattice alone with full cubic symmetry (fcc) has no more classes than zincblende's Td
    fcc = parent_from_keys(lattice="fcc", chemical_symbols=[["Ga", "Al"]], lattice_constants={"Ga": 4.0, "Al": 4.0})
    assert len(build_pool(fcc, (2, 2, 2), features="orbits")) <= len(pool)


def test_algaas_features_of_any_cell_and_matching():
    pool = build_pool(ALGAAS, (2, 2, 2), features="icet")
    matcher = Matcher(pool)
    rng = np.random.default_rng(0)
    for i in (1, 7, 12):
        atoms = pool.atoms(i)[rng.permutation(16)]
        atoms.translate(-atoms.positions[3])
        atoms.wrap()
        assert np.allclose(structure_features(atoms, ALGAAS, features="icet"), pool.features[i], atol=1e-10)
        assert matcher.match(atoms) == (i, "sites")
    # another parent lattice: refused in one line naming both
    rocksalt = bulk("GaAs", "rocksalt", a=5.6).repeat((1, 1, 2))
    cand, why = matcher.match(rocksalt)
    assert cand is None and "rocksalt (Fm-3m)" in why and "zincblende (F-43m)" in why
    with pytest.raises(SpaceError, match=r"rocksalt \(Fm-3m\) lattice; the campaign's parent is zincblende"):
        structure_features(rocksalt, ALGAAS, features="icet")
    # species the space does not have
    assert "not in the space's" in matcher.match(bulk("Si", "diamond", a=5.43).repeat((2, 2, 2)))[1]


def test_algaas_formulas_with_and_without_the_fixed_species():
    assert format_formula(ALGAAS, 5, 3) == "Ga5Al3As8"
    for text in ("Ga5Al3As8", "Ga5Al3", "Al0.375Ga0.625As", "Ga0.625Al0.375As1"):
        assert parse_formula(text, ALGAAS, 8) == 3, text
    with pytest.raises(SpaceError, match="As is fixed at 1 per mixing site"):
        parse_formula("Ga5Al3As4", ALGAAS, 8)
    assert format_formula(("Si", "Ge"), 4, 12) == "Si4Ge12"


def test_algaas_sqs_and_orbits():
    pool = build_pool(ALGAAS, (2, 2, 2), features="orbits", sqs=True, cutoffs=[6.0])
    assert pool.sqs is not None and pool.sqs.sum() == 9 and len(pool) == 16
    assert pool.n_b[pool.sqs].tolist() == list(range(9))


def test_shells_are_the_diamond_lattices():
    with pytest.raises(SpaceError, match="features = \"shells\" are the diamond lattice's"):
        build_pool(ALGAAS, (1, 1, 2))


def test_lattice_constants_missing_entry_names_the_key():
    with pytest.raises(InputError, match=r"no lattice constant for InN on the zincblende lattice; add it to the "
                                         r"campaign file: \[space\] lattice_constants = \{InN = <Angstrom>\}") as e:
        parse_campaign('[space]\nlattice = "zincblende"\nchemical_symbols = [["Ga", "In"], ["N"]]\n'
                       'lattice_constants = {GaN = 4.50}\n')
    assert "\n" not in str(e.value)
    cfg = parse_campaign('[space]\nlattice = "zincblende"\nchemical_symbols = [["Ga", "In"], ["N"]]\n'
                         'lattice_constants = {GaN = 4.50, InN = 4.98}\nfeatures = "icet"\n')
    assert cfg.space.parent().constants == (4.50, 4.98) and cfg.space.elements == ("Ga", "In")


@pytest.mark.parametrize("space, expected", [
    ('chemical_symbols = [["Ga", "Al"], ["As"]]', "needs its parent"),
    ('lattice = "zincblende"', "needs space.chemical_symbols"),
    ('lattice = "zincblende"\nchemical_symbols = [["Ga", "Al"]]', "has 1 site lists; the zincblende primitive"),
    ('lattice = "zincblende"\nchemical_symbols = [["Ga", "Al"], ["As", "P"]]', "two species on one sublattice"),
    ('lattice = "zincblende"\nelements = ["Al", "Ga"]\nchemical_symbols = [["Ga", "Al"], ["As"]]',
     "must be the mixing pair"),
    ('lattice = "chalcopyrite"\nchemical_symbols = [["Ga", "Al"], ["As"]]', "space.lattice"),
    ('lattice = "wurtzite"\nchemical_symbols = [["Ga", "Al"], ["As"]]', "the wurtzite primitive cell has 4 sites"),
])
def test_bad_parent_keys_are_one_line_input_errors(space, expected):
    with pytest.raises(InputError, match=expected) as info:
        parse_campaign(f"[space]\n{space}\n")
    assert "\n" not in str(info.value)


def test_structure_file_parent_is_the_named_lattice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ase.io.write("GaAs.vasp", bulk("GaAs", "zincblende", a=5.6533), format="vasp")
    cfg = parse_campaign('[space]\nstructure = "GaAs.vasp"\nchemical_symbols = [["Ga", "Al"], ["As"]]\n'
                         'features = "icet"\nsupercell = [2, 2, 2]\n'
                         'lattice_constants = {GaAs = 5.6533, AlAs = 5.6611}\n')
    from_file = build_pool(cfg.space.parent(), (2, 2, 2), features="icet")
    named = build_pool(ALGAAS, (2, 2, 2), features="icet")
    assert np.array_equal(from_file.decorations, named.decorations)
    assert np.allclose(from_file.features, named.features)
    assert np.allclose(from_file.atoms(5).positions, named.atoms(5).positions)
    assert len(cfg.identity()) == 16
    with pytest.raises(InputError, match="structure: file not found"):
        parse_campaign('[space]\nstructure = "nowhere.cif"\nchemical_symbols = [["Ga", "Al"], ["As"]]\n')


def test_reference_sites_of_the_diamond_pair_are_unchanged():
    ref = reference_sites(("Si", "Ge"), (2, 2, 2))
    assert len(ref) == 16 and set(ref.get_chemical_symbols()) == {"Si"}
    assert mixing_sites(("Si", "Ge"), (2, 2, 2)).tolist() == list(range(16))


def test_sampled_cubic_and_rocksalt_pools():
    sampled = build_pool(ALGAAS, (2, 2, 4), mode="sampled", samples_per_composition=5, features="icet", seed=1)
    assert sampled.n_sites == 16 and len(sampled.atoms(3)) == 32
    assert set(np.unique(sampled.n_b)) == set(range(17))
    cubic = build_pool(ALGAAS, (1, 1, 1), cell="cubic", features="orbits")
    assert cubic.n_sites == 4 and cubic.multiplicity.sum() == 16 and len(cubic.atoms(0)) == 8
    pbsn = parent_from_keys(lattice="rocksalt", chemical_symbols=[["Pb", "Sn"], ["Te"]],
                            lattice_constants={"SnTe": 6.32})
    pool = build_pool(pbsn, (2, 2, 2), features="icet", cutoffs=[7.0, 5.0])
    assert pool.parent.name == "Pb(1-x)Sn(x)Te" and pool.multiplicity.sum() == 2 ** 8
    assert pool.formula(3).endswith("Te8")


def test_wurtzite_and_perovskite_parents_enumerate_and_build_their_sublattices():
    # wurtzite: ASE's 4-site hexagonal cell (cation, anion, cation, anion), ideal c/a and u = 3/8
    gan = parent_from_keys(lattice="wurtzite", chemical_symbols=[["Ga", "Al"], ["N"], ["Ga", "Al"], ["N"]],
                           lattice_constants={"GaN": 3.189, "AlN": 3.112})
    pool = build_pool(gan, (1, 1, 2), features="icet", cutoffs=[5.0])
    assert pool.parent.name == "Ga(1-x)Al(x)N" and pool.n_sites == 4 and pool.multiplicity.sum() == 2 ** 4
    assert pool.n_b.tolist() == [0, 1, 2, 2, 3, 4]  # two symmetry-distinct Ga2Al2 decorations
    for i in range(len(pool)):
        atoms = pool.atoms(i)
        symbols = np.array(atoms.get_chemical_symbols())
        assert len(atoms) == 8 and (symbols == "N").sum() == 4 and (symbols == "Al").sum() == pool.n_b[i]
        assert set(symbols[gan.site_index(atoms) % 2 == 0]) <= {"Ga", "Al"}  # cations only on cation sites
    assert pool.atoms(0).cell.cellpar()[:3] == pytest.approx([3.189, 3.189, 2 * 3.189 * np.sqrt(8 / 3)])
    with pytest.raises(SpaceError, match="wurtzite lattice is hexagonal"):
        gan.cell_atoms("cubic")
    # perovskite ABX3 (Pm-3m): B at the origin, A at the body centre, X on the faces; halides mix on X
    halide = parent_from_keys(lattice="perovskite",
                              chemical_symbols=[["Pb"], ["Cs"], ["I", "Br"], ["I", "Br"], ["I", "Br"]],
                              lattice_constants={"PbCsI3": 6.29, "PbCsBr3": 5.87})
    pool = build_pool(halide, (2, 1, 1), features="icet", cutoffs=[6.5])
    assert pool.n_sites == 6 and pool.multiplicity.sum() == 2 ** 6
    atoms = pool.atoms(int(np.flatnonzero(pool.n_b == 3)[0]))
    symbols = np.array(atoms.get_chemical_symbols())
    assert (symbols == "Pb").sum() == (symbols == "Cs").sum() == 2 and (symbols == "Br").sum() == 3
    assert set(symbols[halide.site_index(atoms) >= 2]) == {"I", "Br"}
    assert atoms.cell.cellpar()[0] == pytest.approx(2 * (6.29 + 5.87) / 2)  # Vegard at x = 1/2


def test_a_structure_file_parent_is_recorded_so_the_store_reads_anywhere(tmp_path, monkeypatch):
    """Issue 30: the store records the parent it computed on; status, predict and export work from a folder
    without the structure file (they used to re-read it there, and failed)."""
    from activemat.campaign.setup import build_campaign_pool
    from activemat.campaign.stored import open_campaign
    from activemat.compute.records import CalculationRecord
    from activemat.store.write import CampaignStore
    from tests.conftest import cli

    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir(), elsewhere.mkdir()
    monkeypatch.chdir(home)
    ase.io.write("GaAs.vasp", bulk("GaAs", "zincblende", a=5.6533), format="vasp")
    text = ('[campaign]\nstore = "c.h5"\n[space]\nstructure = "GaAs.vasp"\nchemical_symbols = [["Ga", "Al"], '
            '["As"]]\nsupercell = [1, 1, 2]\nmode = "configurations"\nfeatures = "icet"\n'
            'lattice_constants = {GaAs = 5.6533, AlAs = 5.6611}\n[calculator]\npreset = "gpaw-fast"\n')
    cfg = parse_campaign(text)
    pool = build_campaign_pool(cfg)
    store = CampaignStore.create("c.h5", campaign_text=text, identity=cfg.identity(), pool=pool, presets={})
    for i in range(len(pool.n_b)):  # rows written directly: this test is about reading, not computing
        row = store.add_attempt(i, 0, "gpaw-fast", 0, "seed")
        store.finish_attempt(row, CalculationRecord(candidate=i, attempt=0, preset="gpaw-fast", status="ok",
                                                    gap=1.4 + 0.6 * pool.x_b[i], started=1.0, finished=2.0))
    store.close()
    parent, identity = cfg.space.parent(), cfg.identity()

    monkeypatch.chdir(elsewhere)
    view = open_campaign(home / "c.h5")
    assert view.parent == parent and view.config().space.parent() == parent
    assert view.config().identity() == identity
    code, out, err = cli("status", home / "c.h5", "--json")
    assert code == 0 and json.loads(out)["completed"] == len(pool.n_b), err
    ase.io.write("cell.extxyz", pool.atoms(1))  # a structure file is matched on the recorded parent
    code, out, err = cli("predict", home / "c.h5", "GaAlAs2", "cell.extxyz", "--json")
    assert code == 0, err
    rows = json.loads(out)["predictions"]
    print(rows)
    assert abs(rows[0]["gap"] - 1.7) < 0.1 and abs(rows[1]["gap"] - (1.4 + 0.6 * pool.x_b[1])) < 0.1
    code, _, err = cli("export", home / "c.h5", "-o", "out.extxyz")
    assert code == 0, err
    frames = ase.io.read("out.extxyz", ":")
    assert len(frames) == len(pool.n_b) and {"Ga", "As"} <= set(frames[0].get_chemical_symbols())
