"""Tests for activemat.learn.acquisition and activemat.learn.strategies: seeding, acquisition scores, selection,
and the registry."""

from types import SimpleNamespace

import numpy as np
import pytest

from activemat.learn.acquisition import _spread, best_available, representative, space_filling
from activemat.learn.strategies import (
    STRATEGIES,
    Context,
    Pick,
    Strategy,
    campaign_kinds,
    make_strategy,
    reasons,
    register,
)
from activemat.space.pool import build_pool


@pytest.fixture(scope="module")
def pool():
    return build_pool(("Si", "Ge"), (2, 2, 2))  # 402 configurations, 17 compositions


def _fake_pool(n_b, multiplicity, n_sites):
    return SimpleNamespace(n_b=np.asarray(n_b), multiplicity=np.asarray(multiplicity), n_sites=n_sites)


# -- _spread ---------------------------------------------------------------------

@pytest.mark.parametrize("n_sites, n, expected", [
    (16, 1, [8]),
    (16, 2, [0, 16]),
    (16, 3, [0, 16, 8]),
    (16, 4, [0, 16, 5, 11]),
    (16, 5, [0, 16, 8, 4, 12]),
    (16, 9, [0, 16, 8, 4, 12, 2, 6, 10, 14]),
    (4, 5, [0, 4, 2, 1, 3]),
])
def test_spread_order(n_sites, n, expected):
    assert _spread(n_sites, n) == expected


@pytest.mark.parametrize("n", range(1, 20))
def test_spread_is_a_permutation_of_the_even_grid(n):
    out = _spread(16, n)
    assert len(out) == n
    grid = [int(round(v)) for v in np.linspace(0, 16, n)] if n > 1 else [8]
    assert sorted(out) == sorted(grid)
    if n > 1:
        assert out[:2] == [0, 16]  # end members first


# -- representative -----------------------------------------------------------------

def test_representative_picks_max_multiplicity(pool):
    for n_b in range(pool.n_sites + 1):
        i = representative(pool, n_b)
        assert pool.n_b[i] == n_b
        assert pool.multiplicity[i] == pool.multiplicity[pool.n_b == n_b].max()


def test_representative_first_on_ties_and_respects_excluded():
    fake = _fake_pool([0, 1, 1, 1, 2], [1, 3, 5, 5, 1], 2)
    assert representative(fake, 1) == 2  # first of the two largest
    excluded = np.array([False, False, True, False, False])
    assert representative(fake, 1, excluded) == 3
    excluded[3] = True
    assert representative(fake, 1, excluded) == 1
    excluded[1] = True
    assert representative(fake, 1, excluded) is None
    assert representative(fake, 7) is None


# -- space filling -------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 4, 5, 9, 17])
def test_space_filling_distinct_compositions_with_end_members(pool, n):
    excluded = np.zeros(len(pool), bool)
    picks = space_filling(pool, n, excluded)
    assert len(picks) == n
    comps = pool.n_b[picks].tolist()
    assert len(set(comps)) == n  # one per composition
    assert 0 in comps and pool.n_sites in comps
    for i in picks:  # the most probable configuration of its composition
        assert pool.multiplicity[i] == pool.multiplicity[pool.n_b == pool.n_b[i]].max()
    assert not excluded.any()  # the caller's mask is not modified


def test_space_filling_five_follows_spread(pool):
    picks = space_filling(pool, 5, np.zeros(len(pool), bool))
    assert pool.n_b[picks].tolist() == [0, 16, 8, 4, 12]


def test_space_filling_respects_excluded(pool):
    rng = np.random.default_rng(0)
    inner = (pool.n_b >= 2) & (pool.n_b <= pool.n_sites - 2)
    excluded = inner & (rng.random(len(pool)) < 0.5)  # half of the mixed configurations already taken
    excluded[(pool.n_b == 0) | (pool.n_b == pool.n_sites)] = True  # both end members already computed
    excluded[[representative(pool, k) for k in range(2, pool.n_sites - 1)]] = True  # and every mixed favourite
    picks = space_filling(pool, 6, excluded)
    assert len(picks) == 6 and len(set(picks)) == 6
    assert not excluded[picks].any()
    comps = pool.n_b[picks]
    assert 0 not in comps and pool.n_sites not in comps
    assert {1, pool.n_sites - 1} <= set(comps.tolist())  # nearest free compositions to the ends
    for i in picks:  # the most probable free configuration of its composition
        free = (pool.n_b == pool.n_b[i]) & ~excluded
        assert pool.multiplicity[i] == pool.multiplicity[free].max()


def test_space_filling_more_picks_than_compositions(pool):
    picks = space_filling(pool, 20, np.zeros(len(pool), bool))
    assert len(picks) == 20 and len(set(picks)) == 20
    assert set(pool.n_b[picks].tolist()) == set(range(17))


def test_space_filling_runs_out_gracefully():
    fake = _fake_pool([0, 1, 2], [1, 2, 1], 2)
    assert sorted(space_filling(fake, 5, np.zeros(3, bool))) == [0, 1, 2]
    assert space_filling(fake, 3, np.ones(3, bool)) == []


# -- scores ------------------------------------------------------------------------------

def _ctx(mean, std, y_train=np.array([]), free=None, seed=0):
    pool = SimpleNamespace(features=np.zeros((len(mean), 1)))
    free = np.ones(len(mean), bool) if free is None else free
    return Context(pool=pool, free=free[None], rng=np.random.default_rng(seed), model=object(),
                   y_train=y_train, predictions=(mean, std))


def scores(kind, mean, std, y_train, *, target_gap=None, beta=2.0, tradeoff=0.0):
    settings = SimpleNamespace(target_gap=target_gap, beta=beta, tradeoff=tradeoff)
    return make_strategy(kind, settings).scores(_ctx(mean, std, y_train))


def test_max_std_scores_are_std():
    rng = np.random.default_rng(1)
    mean, std = rng.random(50), rng.random(50)
    out = scores("max_std", mean, std, np.array([0.3]))
    assert np.array_equal(out, std)


def test_random_picks_are_seeded_and_free():
    mean, std = np.zeros(40), np.ones(40)
    free = np.arange(40) % 3 == 0
    random = make_strategy("random")
    a = [random.select(_ctx(mean, std, free=free, seed=s)).candidate for s in range(20)]
    b = [random.select(_ctx(mean, std, free=free, seed=s)).candidate for s in range(20)]
    assert a == b and all(free[a]) and len(set(a)) > 3


@pytest.mark.parametrize("kind", ["ei", "ucb", "pi"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_target_scores_prefer_mean_nearest_target(kind, seed):
    rng = np.random.default_rng(seed)
    mean = rng.uniform(0.0, 1.2, 60)
    std = np.full(60, 0.05)
    target = 0.55
    y_train = rng.uniform(0.0, 1.2, 4)
    s = scores(kind, mean, std, y_train, target_gap=target, beta=2.0, tradeoff=0.0)
    assert s.shape == (60,)
    assert np.all(np.isfinite(s))
    assert int(np.argmax(s)) == int(np.argmin(np.abs(mean - target)))
    # with equal std, ranking is by closeness to the target (ties aside)
    order = np.argsort(np.abs(mean - target))
    assert np.all(np.diff(s[order]) <= 1e-12)


@pytest.mark.parametrize("kind", ["ei", "ucb"])
def test_target_scores_reward_uncertainty(kind):
    mean = np.array([0.5, 0.5])
    std = np.array([0.01, 0.3])
    s = scores(kind, mean, std, np.array([0.2]), target_gap=0.5)
    assert s[1] > s[0]


def test_target_scores_without_training_data():
    mean = np.array([0.1, 0.45, 0.9])
    s = scores("ei", mean, np.full(3, 0.1), np.array([]), target_gap=0.5)
    assert int(np.argmax(s)) == 1


def test_unknown_strategy():
    with pytest.raises(ValueError, match="thompson"):
        make_strategy("thompson")


# -- the registry ----------------------------------------------------------------------------

def test_registry_names_everything_that_names_a_strategy():
    from activemat.analysis.plots import REASON_ORDER
    from activemat.campaign.config import parse_campaign
    from activemat.campaign.ledger import RETRY, TEST
    from activemat.cli import build_parser

    assert set(campaign_kinds()) == {"max_std", "ivr", "ivr_curve", "ei", "ucb", "pi", "random", "fixed"}
    assert "ivr/cost" in STRATEGIES and "ivr/cost" not in campaign_kinds()  # multi-fidelity only
    assert set(REASON_ORDER) == set(reasons()) | {RETRY, TEST}
    for kind in campaign_kinds():
        extra = "target_gap = 0.5\n" if STRATEGIES[kind].needs_target_gap else ""
        extra += "fixed = ['Si8Ge8']\n" if kind == "fixed" else ""
        assert parse_campaign(f"[strategy]\nkind = '{kind}'\n{extra}").strategy.kind == kind
    args = build_parser().parse_args(["replay", "c.toml", "--oracle", "o.extxyz", "--strategy", *campaign_kinds()])
    assert args.strategy == list(campaign_kinds())


def test_a_registered_strategy_is_usable_everywhere(monkeypatch, pool):
    """Adding a strategy is one class: once registered, campaign files, replay and the CLI accept it."""
    from activemat.analysis.replay import replay_curve
    from activemat.campaign.config import parse_campaign
    from activemat.campaign.setup import model_factory
    from tests.conftest import campaign_toml, synthetic_gaps

    class LowestIndex(Strategy):
        name = "lowest"
        description = "the free candidate with the lowest index (a toy)"

        def select(self, ctx):
            free = np.flatnonzero(ctx.top_free)
            return Pick(int(free[0]), self.name) if len(free) else None

    monkeypatch.setitem(STRATEGIES, "lowest", None)  # restores the registry afterwards; register() fills it
    register(LowestIndex)
    assert "lowest" in campaign_kinds() and "lowest" in reasons()
    config = parse_campaign(campaign_toml({}, strategy={"kind": "lowest", "n_seed": 2}, model={"restarts": 0}))
    gaps = synthetic_gaps(pool)
    y = np.array([gaps[i] for i in range(len(pool))])
    run = replay_curve(pool, y, config.strategy, model_factory(config.model, 0, pool), seed=0, budget=6)
    seeds = run["picks"][:2]
    assert run["picks"][2:] == [i for i in range(len(pool)) if i not in seeds][:4]


# -- best_available --------------------------------------------------------------------------

def test_best_available_never_picks_unavailable():
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = rng.normal(size=30)
        available = rng.random(30) < 0.3
        got = best_available(values, available)
        if not available.any():
            assert got is None
            continue
        i, v = got
        assert available[i]
        assert v == values[i] == values[available].max()


def test_best_available_first_on_ties_and_none_when_empty():
    values = np.array([5.0, 1.0, 3.0, 3.0, 2.0])
    assert best_available(values, np.array([False, True, True, True, True])) == (2, 3.0)
    assert best_available(values, np.array([True, False, False, False, False])) == (0, 5.0)
    assert best_available(values, np.zeros(5, bool)) is None


def test_best_available_with_minus_inf_scores():
    values = np.array([-np.inf, -np.inf, -np.inf])
    available = np.array([False, True, True])
    i, _ = best_available(values, available)
    assert available[i]
