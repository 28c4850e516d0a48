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
from activemat.learn.models import GPRegressor
from activemat.learn.strategies import Context, choose, make_strategy
from activemat.space.matching import Matcher, load_labels
from activemat.space.pool import build_pool, site_permutations
from tests.conftest import synthetic_gaps


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

CAMPAIGN = """
[campaign]
seed = 5
[space]
supercell = [2, 2, 2]
[model]
restarts = 0
[strategy]
kind = "max_std"
n_seed = 4
"""


def test_replay_curve_learns_and_reaches_targets(pool):
    config = parse_campaign(CAMPAIGN)
    sub = subpool(pool, np.arange(0, len(pool), 3))  # 134 candidates, all compositions
    gaps = synthetic_gaps(sub)
    y = np.array([gaps[i] for i in range(len(sub))])
    make = model_factory(config.model, 0)  # scaled by its own training data
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
