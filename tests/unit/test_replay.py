"""Replay: matching labelled structures by symmetry, the lean sequential replay, the ivr strategy.

Labels here come from tests.conftest.synthetic_gaps, a smooth synthetic
function of the features (not physics), unless said otherwise.
"""

from __future__ import annotations

import ase.io
from types import SimpleNamespace

import numpy as np
import pytest
from ase import Atoms

from activemat.analysis.replay import labels_to_reach, replay, replay_curve, subpool
from activemat.campaign.config import parse_campaign
from activemat.campaign.setup import model_factory
from activemat.errors import InputError
from activemat.learn.acquisition import curve_ivr_scores, ivr_scores
from activemat.learn.gp import GPRegressor
from activemat.learn.strategies import Context, choose, make_strategy
from activemat.space.matching import Matcher, load_labels
from activemat.space.pool import build_pool
from activemat.space.symmetry import site_permutations
from tests.conftest import campaign_toml, synthetic_gaps


@pytest.fixture(scope="module")
def pool():
    return build_pool(("Si", "Ge"), (2, 2, 2))


@pytest.fixture(scope="module")
def matcher(pool):
    return Matcher(pool)


def scrambled(atoms: Atoms, rng: np.random.Generator, scale: float = 1.0) -> Atoms:
    """The same crystal with shuffled site order, a shifted origin, a rescaled and re-chosen cell basis."""
    out = atoms.copy()
    out = out[rng.permutation(len(out))]
    out.translate(rng.normal(size=3))
    # another basis of the same lattice: cyclic permutation of the vectors plus a shear by one of them
    basis = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]]) + np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0]]) @ np.roll(
        np.eye(3, dtype=int), 1, axis=0)
    assert round(abs(np.linalg.det(basis))) == 1
    out.set_cell(basis @ out.cell.array, scale_atoms=False)
    out.wrap()
    out.set_cell(out.cell.array * scale, scale_atoms=True)
    return out


def test_scrambled_structures_match_their_candidate(pool, matcher):
    rng = np.random.default_rng(0)
    for i in rng.choice(len(pool), 40, replace=False):
        atoms = scrambled(pool.atoms(int(i)), rng, scale=rng.uniform(0.97, 1.05))
        assert matcher.match(atoms) == (int(i), "sites")


def test_symmetry_images_match_the_same_candidate(pool, matcher):
    # Any decoration of the 2^16 (not only the stored representative) maps to its class.
    perms = site_permutations(pool.elements, pool.supercell)
    rng = np.random.default_rng(1)
    for i in rng.choice(len(pool), 20, replace=False):
        dec = pool.decorations[i][np.argsort(perms[rng.integers(len(perms))])]  # a symmetry image
        atoms = pool.atoms(int(i))
        atoms.set_chemical_symbols(np.array(pool.elements)[dec])
        assert matcher.match(scrambled(atoms, rng))[0] == int(i)


def test_distinct_candidates_never_collide(pool, matcher):
    found = [matcher.match(pool.atoms(i))[0] for i in range(len(pool))]
    assert found == list(range(len(pool)))


def test_unmatched_structures_say_why(pool, matcher):
    small = build_pool(("Si", "Ge"), (1, 1, 2)).atoms(1)
    assert matcher.match(small) == (None, "4 atoms; the space's cells have 16")
    tin = pool.atoms(5)
    tin[0].symbol = "Sn"
    cand, why = matcher.match(tin)
    assert cand is None and "Sn" in why
    broken = pool.atoms(7)
    broken.positions[3] += [0.9, 0.0, 0.0]  # not a diamond lattice any more
    cand, why = matcher.match(broken)
    assert cand is None and why
    comp = build_pool(("Si", "Ge"), (2, 2, 2), mode="compositions")
    other = next(i for i in range(len(pool)) if pool.n_b[i] == 8
                 and not np.array_equal(pool.decorations[i], comp.decorations[8]))
    cand, why = Matcher(comp).match(pool.atoms(other))
    assert cand is None and "not in the pool" in why
    assert Matcher(comp).match(scrambled(pool.atoms(int(np.flatnonzero(
        (pool.decorations == comp.decorations[8]).all(axis=1))[0])), np.random.default_rng(2)))[0] == 8


def test_load_labels_reports_unmatched_skipped_and_duplicates(tmp_path, pool):
    rng = np.random.default_rng(3)
    gaps = synthetic_gaps(pool)
    frames = []
    for i in (0, 17, 200, 401):
        atoms = scrambled(pool.atoms(i), rng)
        atoms.info["gap"] = gaps[i]
        frames.append(atoms)
    dup = scrambled(pool.atoms(17), rng)
    dup.info["gap"] = 9.9
    nogap = pool.atoms(3)
    stranger = build_pool(("Si", "Ge"), (1, 1, 2)).atoms(2)
    stranger.info["gap"] = 0.5
    path = tmp_path / "labels.extxyz"
    ase.io.write(path, frames + [dup, nogap, stranger], format="extxyz")
    labels = load_labels(path, pool)
    assert labels.frames == 7
    assert labels.gaps == pytest.approx({i: gaps[i] for i in (0, 17, 200, 401)})
    assert labels.duplicates == 1 and len(labels.skipped) == 1
    assert [u["frame"] for u in labels.unmatched] == [6] and "4 atoms" in labels.unmatched[0]["reason"]
    with pytest.raises(InputError, match="not found"):
        load_labels(tmp_path / "missing.extxyz", pool)


def test_labels_to_reach():
    assert labels_to_reach(np.array([np.nan, np.nan, 0.2, 0.01, 0.005]), 0.01) == 3
    assert labels_to_reach(np.array([np.nan, np.nan, 0.2]), 0.01) is None


# -- ivr -----------------------------------------------------------------------------

def test_ivr_pick_is_the_brute_force_best_variance_reduction():
    """The closed form must rank candidates as refitting with each one added and summing the variances does."""
    rng = np.random.default_rng(4)
    X = rng.uniform(-1, 1, size=(60, 2))
    y = np.sin(2 * X[:, 0]) + 0.3 * X[:, 1]
    train = [0, 1, 2, 3, 4]
    model = GPRegressor(restarts=0).fit(X[train], y[train])
    free = np.ones(60, bool)
    free[train] = False
    values = ivr_scores(model, X, free)
    assert np.all(np.isneginf(values[train]))
    total = []
    for c in np.flatnonzero(free):
        # the posterior variance does not depend on the label: any value will do
        fantasy = model.with_fixed_kernel().fit(X[train + [c]], np.append(y[train], 0.0))
        total.append(np.sum(fantasy.predict(X, return_std=True)[1] ** 2))
    best = np.flatnonzero(free)[int(np.argmin(total))]
    assert int(np.argmax(values)) == best
    # and the ordering agrees overall
    order = np.argsort(values[free])
    assert np.corrcoef(values[free][order], -np.array(total)[order])[0, 1] > 0.99


def test_curve_ivr_pick_is_the_brute_force_best_reduction_of_the_curves_variance():
    """ivr_curve must rank candidates as adding each one and summing the variance of every composition's
    multiplicity-weighted average (from the full posterior covariance) does."""
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, size=(60, 3))
    n_b = np.repeat(np.arange(6), 10)
    X[:, 0] = n_b / 5  # composition is a feature, as x_B is
    y = np.sin(2 * X[:, 0]) + 0.3 * X[:, 1] * X[:, 2]
    pool = SimpleNamespace(features=X, n_b=n_b, multiplicity=rng.integers(1, 5, 60))
    train = [0, 11, 25, 38, 52]
    model = GPRegressor(restarts=0).fit(X[train], y[train])
    free = np.ones(60, bool)
    free[train] = False
    values = curve_ivr_scores(model, pool, free)
    assert np.all(np.isneginf(values[train]))
    weights = np.zeros((6, 60))
    for k in range(6):
        weights[k, n_b == k] = pool.multiplicity[n_b == k] / pool.multiplicity[n_b == k].sum()
    total = []
    for c in np.flatnonzero(free):
        fantasy = model.with_fixed_kernel().fit(X[train + [c]], np.append(y[train], 0.0))
        cov = fantasy.gp_.predict(fantasy.scaler_.transform(X), return_cov=True)[1]
        total.append(np.trace(weights @ cov @ weights.T))
    assert int(np.argmax(values)) == np.flatnonzero(free)[int(np.argmin(total))]
    assert np.corrcoef(values[free], -np.array(total))[0, 1] > 0.99
    # not the pool-wide ivr: the two rank candidates differently
    assert int(np.argmax(values)) != int(np.argmax(ivr_scores(model, X, free))) or not np.allclose(
        np.argsort(values[free]), np.argsort(ivr_scores(model, X, free)[free]))


def test_ivr_strategy_avoids_running_and_trained(pool):
    cfg = parse_campaign("[strategy]\nkind = 'ivr'\nn_seed = 2\n")
    gaps = synthetic_gaps(pool)
    y = np.array([gaps[i] for i in range(len(pool))])
    trained = [0, 401, 200]
    model = GPRegressor(restarts=0).fit(pool.features[trained], y[trained])
    free = np.ones(len(pool), bool)
    free[trained] = False
    strategy = make_strategy(cfg.strategy.kind, cfg.strategy)

    def pick(running):
        ctx = Context(pool=pool, free=free[None], rng=np.random.default_rng(0), model=model,
                      X_train=pool.features[trained], y_train=y[trained], running=[pool.features[running]])
        return choose(strategy, ctx, n_seed=2, n_started=len(trained) + len(running))

    first, stop = pick([])
    assert first.reason == "ivr" and stop == "" and free[first.candidate]
    free[first.candidate] = False
    second, _ = pick([first.candidate])
    assert second.candidate != first.candidate and free[second.candidate]


# -- replay --------------------------------------------------------------------------

REPLAY = {"campaign": {"seed": 5}, "space": {"supercell": [2, 2, 2]}, "model": {"restarts": 0},
          "strategy": {"kind": "max_std", "n_seed": 4}}
CAMPAIGN = campaign_toml(REPLAY)


def test_replay_curve_learns_and_reaches_targets(pool):
    config = parse_campaign(CAMPAIGN)
    sub = subpool(pool, np.arange(0, len(pool), 3))  # 134 candidates, all compositions
    gaps = synthetic_gaps(sub)
    y = np.array([gaps[i] for i in range(len(sub))])
    # scaled by its own training data: no pool, so no cluster classes either (they need the pool's feature names)
    make = model_factory(config.model.model_copy(update={"ard": False}), 0)
    run = replay_curve(sub, y, config.strategy, make, seed=0, budget=40)
    assert len(run["picks"]) == 40 == len(set(run["picks"]))
    mae = run["mae"]
    assert np.isnan(mae[:2]).all() and np.isfinite(mae[2:]).all()
    assert mae[-1] < mae[4] / 3  # learns
    assert labels_to_reach(mae, 0.005) is not None  # the smooth synthetic function is easy
    stopped = replay_curve(sub, y, config.strategy, make, seed=0, budget=40, stop_at=(0.01, 0.05))
    n = len(stopped["picks"])
    assert stopped["picks"] == run["picks"][:n]  # same run, cut where both targets were reached
    assert stopped["mae"][-1] <= 0.01 or np.nanmin(stopped["mae"]) <= 0.01


def test_replay_end_to_end_on_a_written_oracle(tmp_path, pool):
    rng = np.random.default_rng(6)
    gaps = synthetic_gaps(pool)
    frames = []
    for i in range(0, len(pool), 4):  # 101 labelled candidates
        atoms = scrambled(pool.atoms(i), rng)
        atoms.info["gap"] = gaps[i]
        frames.append(atoms)
    path = tmp_path / "oracle.extxyz"
    ase.io.write(path, frames, format="extxyz")
    config = parse_campaign(CAMPAIGN)
    result = replay(config, path, ("max_std", "random", "fixed"), repeats=2, budget=25)
    assert result["matched"] == 101 and not result["unmatched"] and not result["complete"]
    fixed = result["strategies"]["fixed"]
    assert fixed["repeats"] == 1 and len(fixed["picks"][0]) == 6  # the tutorial's six compositions
    sub_n_b = pool.n_b[np.arange(0, len(pool), 4)]
    assert sorted(sub_n_b[fixed["picks"][0]].tolist()) == [2, 4, 6, 8, 10, 14]
    active, rand = result["strategies"]["max_std"], result["strategies"]["random"]
    assert rand["picks"][0] != rand["picks"][1]  # seeds differ between repeats
    assert np.median(active["final_mae"]) < fixed["final_mae"][0]
    assert len(active["mae"]["mean"]) == 26
    spread = replay(config, path, ("max_std", "random", "fixed"), repeats=2, budget=25, jobs=2)
    for name, one in result["strategies"].items():  # two processes give the runs one process gives, in order
        assert spread["strategies"][name]["picks"] == one["picks"]
        assert spread["strategies"][name]["final_mae"] == pytest.approx(one["final_mae"])
    with pytest.raises(InputError, match="unknown strategy"):
        replay(config, path, ("greedy",))
    with pytest.raises(InputError, match="--jobs"):
        replay(config, path, ("random",), jobs=0)
    with pytest.raises(InputError, match="target_gap"):
        replay(config, path, ("ei",))


def test_replay_of_a_sampled_space_takes_the_oracles_structures_as_its_pool(tmp_path):
    """A sampled pool cannot hold every labelled structure: the oracle's own structures of the campaign's cell
    are the pool, one row per symmetry class; held-out structures are never picked; the curve and b are
    tracked against the labels' own curve."""
    from activemat.space.matching import load_labelled_pool
    from activemat.space.pool import build_pool as bp

    big = bp(("Si", "Ge"), (2, 2, 3), mode="sampled", samples_per_composition=6, seed=9, features="icet")
    gaps = synthetic_gaps(big)
    rng = np.random.default_rng(2)
    frames = []
    for i in range(len(big)):
        atoms = scrambled(big.atoms(i), rng)
        atoms.info["gap"] = gaps[i]
        frames.append(atoms)
    twin = scrambled(big.atoms(5), rng)  # a symmetry image of a structure already there
    twin.info["gap"] = gaps[5] + 0.002
    sixteen = bp(("Si", "Ge"), (2, 2, 2), mode="compositions").atoms(8)  # another cell: reported, not used
    sixteen.info["gap"] = 0.5
    path = tmp_path / "o.extxyz"
    ase.io.write(path, frames + [twin, sixteen], format="extxyz")
    pool, labels = load_labelled_pool(path, ("Si", "Ge"), (2, 2, 3), features="icet")
    assert len(pool) == len(big) and labels.duplicates == 1 and len(labels.unmatched) == 1
    assert "24-site cell" in labels.unmatched[0]["reason"]
    (row,) = np.flatnonzero(pool.multiplicity == 2)  # the twin's class, its gap the mean of the two
    assert labels.gaps[row] == pytest.approx(gaps[5] + 0.001)
    assert np.allclose(pool.features[row], big.features[5])

    text = campaign_toml(REPLAY, space={"supercell": [2, 2, 3], "mode": "sampled", "samples_per_composition": 3,
                                        "features": "icet"})
    result = replay(parse_campaign(text), path, ("ivr_curve", "random"), repeats=2, budget=20, held_out=0.25)
    assert result["complete"] and result["labelled_pool"] == len(pool) and result["held_out"] == round(
        0.25 * len(pool))
    for name, s in result["strategies"].items():
        for r, picks in enumerate(s["picks"]):
            test = s["runs"]["test_mae"][r]
            assert len(picks) == 20 and np.isfinite(test[2:]).all()
        curve = np.array(s["runs"]["curve_mae"])
        assert np.all(curve[:, -1] < curve[:, 2])  # the curve is learned
        assert np.all(np.abs(np.array(s["runs"]["b"])[:, -1] - result["b"]) < 0.2)
    # the held-out set is the same for every strategy in a repeat and never picked
    picked = set(result["strategies"]["ivr_curve"]["picks"][0]) | set(result["strategies"]["random"]["picks"][0])
    assert len(picked) <= len(pool) - result["held_out"]
    with pytest.raises(InputError, match="--held-out"):
        replay(parse_campaign(text), path, ("random",), held_out=0.95)


def test_replay_with_transfer_from_a_store_of_another_cell(tmp_path, pool):
    """[model] transfer_from a 16-atom store pretrains a 24-atom replay through the icet cluster vectors: with the
    same (synthetic) function behind both, the pretrained model starts far better than the plain one."""
    from activemat.campaign.config import parse_campaign as pc
    from activemat.store.write import CampaignStore
    from activemat.compute.records import CalculationRecord
    from activemat.space.pool import build_pool as bp

    small = bp(("Si", "Ge"), (2, 2, 2), features="icet")
    small_text = campaign_toml(REPLAY, space={"features": "icet"})
    preset = pc(small_text).calculator.preset
    gaps16 = synthetic_gaps(small)
    with CampaignStore.create(tmp_path / "s.h5", campaign_text=small_text, identity=pc(small_text).identity(),
                              pool=small, presets={}) as store:
        for i in range(0, len(small), 3):
            row = store.add_attempt(i, 0, preset, 0, "random")
            store.finish_attempt(row, CalculationRecord(candidate=i, attempt=0, preset=preset, status="ok",
                                                        gap=gaps16[i]))
    big = bp(("Si", "Ge"), (2, 2, 3), mode="sampled", samples_per_composition=4, seed=1, features="icet")
    gaps = synthetic_gaps(big)
    frames = [big.atoms(i) for i in range(len(big))]
    for atoms, i in zip(frames, range(len(big))):
        atoms.info["gap"] = gaps[i]
    ase.io.write(tmp_path / "o.extxyz", frames, format="extxyz")
    space = {"supercell": [2, 2, 3], "mode": "sampled", "samples_per_composition": 4, "features": "icet"}
    plain = campaign_toml(REPLAY, space=space)
    transfer = campaign_toml(REPLAY, space=space, model={"transfer_from": tmp_path / "s.h5"})
    kw = dict(repeats=1, budget=6, held_out=0.2)
    a = replay(pc(plain), tmp_path / "o.extxyz", ("random",), **kw)["strategies"]["random"]["runs"]["test_mae"][0]
    b = replay(pc(transfer), tmp_path / "o.extxyz", ("random",), **kw)["strategies"]["random"]["runs"]["test_mae"][0]
    assert b[2] < a[2] / 2
    with pytest.raises(InputError, match="co-kriging"):
        replay(pc(transfer), tmp_path / "o.extxyz", ("ivr",), **kw)
