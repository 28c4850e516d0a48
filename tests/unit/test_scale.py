"""Issue 19, scale: the loop refits once per batch of results and fills every free slot in one step; batch
selection; the scalable model; predictions and selection in chunks; the refit schedule."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from rich.console import Console
from sklearn.preprocessing import StandardScaler

from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import CampaignLoop, create_or_open
from activemat.campaign.progress import Reporter
from activemat.campaign.scheduler import Scheduler, submission_slots
from activemat.campaign.setup import model_factory, prepare
from activemat.compute.records import CalculationRecord
from activemat.errors import InputError
from activemat.learn.acquisition import believer_batch
from activemat.learn.gp import GPRegressor
from activemat.learn.refit import RefitSchedule
from activemat.learn.scalable import NystroemGP, pool_basis, predict_chunked
from activemat.learn.strategies import Context, choose, choose_batch, make_strategy
from activemat.space.pool import build_pool
from activemat.store.read import read_store
from tests.conftest import campaign_toml, synthetic_gaps


@pytest.fixture(scope="module")
def pool():
    return build_pool(("Si", "Ge"), (2, 2, 2))  # 402 configurations


def _labels(pool, noise=0.005, seed=0):
    rng = np.random.default_rng(seed)
    return np.array(list(synthetic_gaps(pool).values())) + noise * rng.normal(size=len(pool))


class FakeClient:
    """Stands in for a Dask client: ``workers`` one-thread workers; submissions are remembered, never run."""

    def __init__(self, workers: int):
        self.workers = workers
        self.submitted = []
        self._ids = itertools.count()

    def nthreads(self):
        return {f"w{i}": 1 for i in range(self.workers)}

    def submit(self, *args, **kwargs):
        self.submitted.append(args)
        return next(self._ids)


def _loop(tmp_path, workers):
    text = campaign_toml({}, store=tmp_path / "scale.h5", seed=2, space={"supercell": [2, 2, 2]},
                         strategy={"kind": "max_std", "n_seed": 4}, stop={"budget": 200})
    config = parse_campaign(text)
    pool, presets, fixed = prepare(config)
    store = create_or_open(config, text, pool, presets)
    loop = CampaignLoop(config, pool, presets, fixed, store, Reporter(200, Console(file=io.StringIO())))
    loop.load(read_store(store.path))
    loop.scheduler = Scheduler(FakeClient(workers), lambda *a: None, store, pool, presets, scratch=str(tmp_path))
    return loop, store


def _finish(loop, jobs, gaps):
    done = []
    for future, job in list(loop.scheduler.running.items()):
        if job in jobs:
            loop.scheduler.running.pop(future)
            done.append((job, CalculationRecord(candidate=job.key.candidate, attempt=job.attempt, preset="gpaw-fast",
                                                status="ok", gap=gaps[job.key.candidate], started=1.0,
                                                finished=2.0)))
    return done


def test_the_loop_refits_once_for_k_results_and_submits_k_candidates(tmp_path, pool):
    loop, store = _loop(tmp_path, workers=12)
    gaps = synthetic_gaps(loop.pool)
    writes = []
    real = store.add_attempts
    store.add_attempts = lambda items: (writes.append(len(items)), real(items))[1]
    with store:
        loop.fill()
        assert len(loop.scheduler) == 12 and writes == [12]  # every slot, one batch of rows
        for k in (12, 5, 1, 7):
            jobs = list(loop.scheduler.running.values())[:k]
            fits, snaps = loop.learner.fits, len(read_store(store.path).snapshots["iteration"])
            loop.collect_many(_finish(loop, jobs, gaps))
            assert loop.learner.fits == fits + 1  # one refit for k results
            assert len(read_store(store.path).snapshots["iteration"]) == snaps + 1
            writes.clear()
            loop.fill()
            assert writes == [k] and len(loop.scheduler) == 12  # k new candidates, one batch of rows
        calc = read_store(store.path).calculations
        assert len(set(calc["candidate"].tolist())) == len(calc["candidate"])  # nothing picked twice
        assert set(calc["reason"][12:]) == {"max_std"}
        assert loop.timings.results == 25 and loop.timings.refits == 4


def _context(pool, model, y, train, running=(), free=None):
    X = pool.features
    if free is None:
        free = np.ones(len(X), bool)
        free[train] = False
        free[list(running)] = False
    mean, std = model.predict(X, return_std=True)
    return Context(pool=pool, free=free[None], rng=np.random.default_rng(0), model=model, X_train=X[train],
                   y_train=y[train], running=[X[list(running)]], predictions=(mean, std))


@pytest.fixture(scope="module")
def fitted(pool):
    y = _labels(pool)
    train = np.random.default_rng(1).choice(len(pool), 40, replace=False)
    model = GPRegressor(scaler=StandardScaler().fit(pool.features)).fit(pool.features[train], y[train])
    return model, y, train


def test_batch_selection_starts_with_the_single_pick_and_spreads(pool, fitted):
    model, y, train = fitted
    strategy = make_strategy("max_std")
    ctx = _context(pool, model, y, train)
    single, _ = choose(strategy, ctx, n_seed=4, n_started=40)
    picks, why = choose_batch(strategy, ctx, 16, n_seed=4, n_started=40)
    assert why == "" and len(picks) == 16 and picks[0].candidate == single.candidate
    chosen = [p.candidate for p in picks]
    assert len(set(chosen)) == 16 and not set(chosen) & set(train.tolist())
    # each pick's believed std is below the one before (a kriging believer never raises a std)
    scores = [p.score for p in picks]
    assert all(a >= b - 1e-12 for a, b in zip(scores, scores[1:]))
    # plain top-16 by std would crowd: the believer batch differs from it
    top = np.argsort(-np.where(ctx.top_free, ctx.predictions[1], -np.inf))[:16]
    assert set(top.tolist()) != set(chosen)


def test_batch_selection_with_running_calculations_avoids_them(pool, fitted):
    model, y, train = fitted
    strategy = make_strategy("max_std")
    first = [p.candidate for p in choose_batch(strategy, _context(pool, model, y, train), 8, n_seed=4,
                                               n_started=40)[0]]
    # the same 8 running: the next batch picks other candidates, and scores below the first batch's best
    ctx = _context(pool, model, y, train, running=first)
    again, _ = choose_batch(strategy, ctx, 8, n_seed=4, n_started=48)
    assert not {p.candidate for p in again} & set(first)


@pytest.mark.parametrize("shortlist", [8, 40, 5000])
def test_shortlisted_batch_equals_the_whole_pool_batch(pool, fitted, shortlist):
    """The shortlist grows until every pick is provably the pool's best: same picks as with the whole pool."""
    model, y, train = fitted
    free = np.ones(len(pool), bool)
    free[train] = False
    mean, std = model.predict(pool.features, return_std=True)
    running = pool.features[[3, 200]]
    whole = believer_batch(model, pool.features, mean, std, free, running, 20, lambda m, s: s, shortlist=10**6)
    short = believer_batch(model, pool.features, mean, std, free, running, 20, lambda m, s: s, shortlist=shortlist)
    assert [i for i, _ in short] == [i for i, _ in whole]
    np.testing.assert_allclose([s for _, s in short], [s for _, s in whole], rtol=1e-9)


def test_batch_of_ucb_and_random_and_seeds(pool, fitted):
    model, y, train = fitted
    settings = parse_campaign("[strategy]\nkind='ucb'\ntarget_gap=0.3\n").strategy
    picks, _ = choose_batch(make_strategy("ucb", settings), _context(pool, model, y, train), 10, n_seed=4,
                            n_started=40)
    assert len({p.candidate for p in picks}) == 10
    picks, _ = choose_batch(make_strategy("random"), _context(pool, model, y, train), 10, n_seed=4, n_started=40)
    assert len({p.candidate for p in picks}) == 10 and {p.reason for p in picks} == {"random"}
    # no model yet: every pick is a space-filling seed, all distinct
    ctx = Context(pool=pool, free=np.ones((1, len(pool)), bool), rng=np.random.default_rng(0))
    picks, _ = choose_batch(make_strategy("max_std"), ctx, 30, n_seed=4, n_started=0)
    assert len({p.candidate for p in picks}) == 30 and {p.reason for p in picks} == {"seed"}
    assert len(set(pool.n_b[[p.candidate for p in picks]])) == 17  # every composition


def test_a_batch_larger_than_the_free_pool_takes_what_is_left(pool, fitted):
    model, y, train = fitted
    free = np.zeros(len(pool), bool)
    free[[5, 50, 150]] = True
    picks, why = choose_batch(make_strategy("max_std"), _context(pool, model, y, train, free=free), 10, n_seed=4,
                              n_started=40)
    assert sorted(p.candidate for p in picks) == [5, 50, 150] and why == "pool exhausted"


@pytest.mark.parametrize("make", [
    lambda pool: GPRegressor(scaler=StandardScaler().fit(pool.features)),
    lambda pool: NystroemGP(n_components=64, scaler=StandardScaler().fit(pool.features),
                            basis=pool_basis(pool.features, 0)),
])
def test_chunked_predictions_equal_unchunked(pool, make):
    y = _labels(pool)
    model = make(pool).fit(pool.features[::5], y[::5])
    mean, std = model.predict(pool.features, return_std=True)
    for chunk in (1, 37, 10**6):
        m, s = predict_chunked(model, pool.features, chunk=chunk)
        np.testing.assert_allclose(m, mean, rtol=1e-7, atol=1e-9)  # BLAS blocks sum in another order
        # the scalable std is a difference of near-equal variances: single-threaded BLAS moves it by ~3e-7
        np.testing.assert_allclose(s, std, rtol=1e-6, atol=1e-9)


def _nystroem(pool, **kw):
    return NystroemGP(scaler=StandardScaler().fit(pool.features), basis=pool_basis(pool.features, 0), **kw)


def test_nystroem_std_shrinks_near_training_points(pool):
    y = _labels(pool)
    train = np.flatnonzero(pool.n_b <= 8)  # the Si-rich half only
    model = _nystroem(pool).fit(pool.features[train], y[train])
    _, std = model.predict(pool.features, return_std=True)
    far = pool.n_b >= 13
    assert np.median(std[train]) < 0.5 * np.median(std[far])
    assert np.all(std > 0)


def test_nystroem_std_is_calibrated_on_a_held_out_split(pool):
    y = _labels(pool, noise=0.01, seed=3)
    order = np.random.default_rng(4).permutation(len(pool))
    train, test = order[:150], order[150:]
    model = _nystroem(pool).fit(pool.features[train], y[train])
    mean, std = model.predict(pool.features[test], return_std=True)
    z = (y[test] - mean) / std
    inside = np.mean(np.abs(z) < 1.96)
    assert 0.88 <= inside <= 0.995, inside  # the 95 % interval holds about 95 % of the held-out labels
    assert 0.7 < np.std(z) < 1.3
    assert np.mean(np.abs(y[test] - mean)) < 0.02  # and it predicts


def test_nystroem_refit_reuses_length_scales_and_state_round_trips(pool):
    y = _labels(pool)
    first = _nystroem(pool).fit(pool.features[:100], y[:100])
    warm = _nystroem(pool, warm_start=first.kernel_).fit(pool.features[:200], y[:200])
    assert warm.kernel_ is first.kernel_  # no search between full ones
    again = _nystroem(pool).with_state(first.state()).fit(pool.features[:100], y[:100])
    np.testing.assert_allclose(again.predict(pool.features), first.predict(pool.features), rtol=1e-10)
    with pytest.raises(ValueError):
        _nystroem(pool).with_state({"kind": "gp"})


def test_gp_campaign_switches_to_the_scalable_model_above_a_size(pool):
    section = parse_campaign("[model]\nscalable_above = 50\n").model
    make = model_factory(section, 0, pool)
    assert isinstance(make(n_train=50), GPRegressor) and isinstance(make(n_train=51), NystroemGP)
    assert make.kind(51) == "nystroem" and make.kind(10) == "gp"
    never = model_factory(parse_campaign("[model]\nscalable_above = 50\nkind = 'linear'\n").model, 0, pool)
    assert never.kind(10**6) == "linear"


def test_full_searches_follow_the_work_not_the_refits():
    """However the results are batched, full searches run at about the same training sizes."""
    def searches(batch):
        s = RefitSchedule()
        return [n for n in range(2, 5000, batch) if s.full(n) and s.done(n)]

    one, many = searches(1), searches(37)
    assert len(one) < 70  # every 10th refit would be 500 full searches by 5000 results
    assert len(many) <= len(one)  # batching only merges refits
    assert all(b / a < 1.25 for a, b in zip(one[-10:], one[-9:]))  # geometric: about 10 % apart


def test_ivr_with_the_scalable_model_matches_its_covariance(pool):
    """Integrated variance reduction from the Nystroem model's feature covariance, checked against its joint
    posterior covariance."""
    from activemat.learn.acquisition import ivr_scores

    y = _labels(pool)
    model = _nystroem(pool, n_components=64).fit(pool.features[::7], y[::7])
    free = np.ones(len(pool), bool)
    free[::7] = False
    scores = ivr_scores(model, pool.features, free, n_reference=10**6)
    _, cov = model.latent_cov(pool.features)
    noisy = np.diag(cov) + model.noise_std() ** 2
    expected = np.sum(cov ** 2, axis=0) / noisy
    np.testing.assert_allclose(scores[free], expected[free], rtol=1e-6)
    assert np.all(np.isneginf(scores[~free]))


@pytest.mark.parametrize("workers, prefetch, slots", [(2, "auto", 2), (15, "auto", 15), (16, "auto", 17),
                                                       (256, "auto", 272), (1024, "auto", 1088), (4, 3, 7), (256, 0, 256)])
def test_prefetch_auto_queues_a_sixteenth_of_the_workers_and_nothing_for_small_campaigns(workers, prefetch, slots):
    assert submission_slots(workers, prefetch) == slots


def test_prefetch_is_auto_by_default_and_checked():
    assert parse_campaign("").cluster.prefetch == "auto"
    assert parse_campaign("[cluster]\nprefetch = 4\n").cluster.prefetch == 4
    for bad in ("-1", '"some"', "1.5"):
        with pytest.raises(InputError, match="prefetch"):
            parse_campaign(f"[cluster]\nprefetch = {bad}\n")
