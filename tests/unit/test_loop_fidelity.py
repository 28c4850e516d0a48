"""Multi-fidelity and transfer campaigns against a ReplayOracle (named fake: answers from per-preset
tables, no DFT) on an in-process Dask client, so dispatch is real and asynchronous."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.campaign.progress import Reporter
from activemat.campaign.setup import build_campaign_pool, campaign_model, pretrain
from activemat.campaign.stored import open_campaign
from activemat.compute.oracle import ReplayOracle
from activemat.errors import InputError
from activemat.store.read import read_store
from tests.conftest import campaign_toml, synthetic_gaps

CHEAP, ACCURATE = "gpaw-pbe-pw", "gpaw-tb09"

# Every campaign here: the 16-atom pool (no [space]), seed 1, 3 space-filling picks, two workers (the dashboard
# as by default).
BASE = {"campaign": {"seed": 1}, "strategy": {"n_seed": 3}, "cluster": {"workers": 2}}


def multi(store: str, *, cost: float, budget: int, **stop) -> str:
    """ACCURATE at ``cost`` CPU-seconds a calculation learning from CHEAP at 1 s, by cost-aware variance reduction."""
    return campaign_toml(BASE, store=store, strategy={"kind": "ivr"}, stop={"budget": budget, **stop},
                         calculator={"preset": ACCURATE, "cost": cost, "cheaper": [{"preset": CHEAP, "cost": 1.0}]})


def single(store: str, preset: str, *, kind: str, budget: int, model: dict | None = None, space: dict | None = None,
           **strategy) -> str:
    """One fidelity, ``preset``; ``model={"transfer_from": ...}`` pretrains on another store."""
    return campaign_toml(BASE, store=store, space=space, calculator={"preset": preset}, model=model or {},
                         strategy={"kind": kind, **strategy}, stop={"budget": budget})


@pytest.fixture(scope="module")
def truth():
    """Cheap gaps with a rough configurational part a few points cannot learn, and accurate ones
    = 0.6 * cheap + 0.55 + 0.1 x (synthetic, not physics)."""
    pool = build_campaign_pool(parse_campaign(multi("x.h5", cost=10, budget=1)))
    f = dict(zip(pool.feature_names, pool.features.T))
    rough = 0.04 * np.cos(9 * f["pair2"] + 7 * f["triplet1"])
    cheap = {i: g + rough[i] for i, g in synthetic_gaps(pool).items()}
    accurate = {i: 0.6 * g + 0.55 + 0.1 * pool.x_b[i] for i, g in cheap.items()}
    return pool, cheap, accurate


def _run(client, text, cheap, accurate):
    oracle = ReplayOracle(accurate, delay=0.01, preset_gaps={CHEAP: cheap})
    return run_campaign(parse_campaign(text), text, client=client, task=oracle,
                        report=Reporter(10, Console(file=io.StringIO())))


def _reader_rebuilds_the_learner(store: str) -> None:
    """The loop's Learner refits on the store's results and writes its snapshot, as the loop does after every
    result; the readers' model (predict, curve, the Python API) is then the same on every candidate to 1e-9, and
    the curve has a joint-posterior std and a bowing std."""
    from activemat.analysis.curve import gap_curve
    from activemat.analysis.model import fit_store_model
    from activemat.campaign.learner import Learner
    from activemat.campaign.model import CampaignModel
    from activemat.store.write import CampaignStore

    view = open_campaign(store)
    config, pool, ledger = view.config(), view.pool(), view.ledger()
    learner = Learner(CampaignModel.of(config, pool), pool, iteration=len(view.snapshots["iteration"]))
    assert learner.fit(ledger, np.ones(len(pool), bool))
    with CampaignStore.open(store, config.identity()) as writer:
        writer.add_snapshot(learner.snapshot(ledger), learner.mean.astype("f4"), learner.std.astype("f4"))
    sm = fit_store_model(store)
    assert sm.kind == "co-kriging" and sm.stored
    mean, std = sm.predict(pool.features)
    np.testing.assert_allclose(mean, learner.mean, rtol=0, atol=1e-9)
    np.testing.assert_allclose(std, learner.std, rtol=0, atol=1e-9)
    curve = gap_curve(sm, n_samples=200)
    assert curve["covariance"].startswith("joint")
    stds = [(c["model_std"], c["model_std_bound"]) for c in curve["compositions"]]
    assert all(0 <= s <= b for s, b in stds) and max(s for s, _ in stds) > 0
    assert curve["bowing"]["b_std"] > 0


def _mae(store, accurate) -> float:
    data = read_store(store)
    truth = np.array([accurate[i] for i in range(len(accurate))])
    return float(np.abs(data.snapshots["pool_mean"][-1] - truth).mean())


def test_multi_fidelity_campaign_spends_on_the_cheap_preset_and_learns_the_accurate_gap(in_tmp, client, truth):
    pool, cheap, accurate = truth
    text = multi("mf.h5", cost=20.0, budget=30)
    summary = _run(client, text, cheap, accurate)
    data = read_store("mf.h5")
    calc = data.calculations
    ok = calc["status"] == "ok"
    presets = calc["preset"][ok]
    n_cheap, n_acc = int((presets == CHEAP).sum()), int((presets == ACCURATE).sum())
    assert n_cheap + n_acc == 30 and summary["completed"] == 30
    # 20x cheaper: at least as many cheap calculations (splits seen: 15/15 to 22/8 cheap/accurate, by the order
    # in which asynchronous results land; issue 26's note)
    assert n_acc >= 3 and n_cheap >= n_acc
    pairs = list(zip(calc["candidate"][ok].tolist(), presets.tolist()))
    assert len(set(pairs)) == len(pairs)  # no (candidate, fidelity) computed twice
    # each fidelity's rows hold that fidelity's answer
    for c, p, g in zip(calc["candidate"][ok], presets, calc["gap"][ok]):
        assert g == pytest.approx((cheap if p == CHEAP else accurate)[int(c)])
    assert set(summary["fidelities"]) == {CHEAP, ACCURATE}
    assert summary["fidelities"][CHEAP]["completed"] == n_cheap
    snap = data.snapshots
    assert snap["model"][-1].startswith("co-kriging") and snap["n_train"][-1] == n_acc
    # it learned the accurate gap: well below its mean absolute deviation (0.026 eV; the model ends at
    # 0.012-0.016 eV, the rough part being beyond 30 results), and below the cheap gaps taken as accurate ones. (Whether it beats accurate results alone at equal cost is the
    # data-efficiency benchmark's question, over repeats: on this rough synthetic truth one loop run against
    # another is a coin flip, 0.012-0.016 eV against 0.010-0.016 eV, measured over 6 runs each.)
    truth = np.array([accurate[i] for i in range(len(accurate))])
    assert _mae("mf.h5", accurate) < 0.7 * float(np.abs(truth - truth.mean()).mean())
    assert _mae("mf.h5", accurate) < float(np.abs(np.array([cheap[i] for i in range(len(cheap))]) - truth).mean())
    # the store keeps fidelities apart: queries select one, and the model's view is the campaign's preset
    view = read_store("mf.h5")
    assert len(view.select(preset=ACCURATE)["gap"]) == n_acc
    assert len(view.select(preset=CHEAP)["gap"]) == n_cheap
    assert len(open_campaign(view).training_set()[0]) == n_acc
    _reader_rebuilds_the_learner("mf.h5")


def test_multi_fidelity_resumes_and_stops_at_its_cost_budget(in_tmp, client, truth):
    pool, cheap, accurate = truth
    _run(client, multi("mf.h5", cost=5.0, budget=10), cheap, accurate)
    first = read_store("mf.h5").n_calculations
    # declared costs until 3 results are measured; the replay answers in ~0.01 s, so measured costs are tiny
    summary = _run(client, multi("mf.h5", cost=5.0, budget=500, cost_budget=0.25), cheap, accurate)
    assert summary["stop_reason"] == "cost budget reached"
    calc = read_store("mf.h5").calculations
    ok = calc["status"] == "ok"
    pairs = list(zip(calc["candidate"][ok].tolist(), calc["preset"][ok].tolist()))
    assert len(set(pairs)) == len(pairs) > first
    for name in (CHEAP, ACCURATE):
        assert 0 < summary["fidelities"][name]["cost"] < 0.25  # measured wall times, not the declared 1 and 5 s


def test_transfer_from_a_cheap_store_beats_accurate_points_alone(in_tmp, client, truth):
    pool, cheap, accurate = truth
    # One length scale, maximum likelihood: the model this margin was set for. With the package defaults (classes,
    # weak prior) the accurate-only model is already better on this rough synthetic truth (0.015 against 0.020 eV)
    # and the transferred one ends at 0.007-0.014 eV depending on which result lands first, so half is not robust.
    # The constant mean too: around the linear mean (the default since issue 28) the accurate-only model is better.
    model = {"ard": False, "prior": "none", "mean": "constant"}
    _run(client, single("cheap.h5", CHEAP, model=model, kind="max_std", budget=80), cheap, accurate)
    alone = single("alone.h5", ACCURATE, model=model, kind="ivr", budget=8)
    _run(client, alone, cheap, accurate)
    tuned = single("tuned.h5", ACCURATE, model={**model, "transfer_from": "cheap.h5"}, kind="ivr", budget=8)
    _run(client, tuned, cheap, accurate)
    data = read_store("tuned.h5")
    assert set(data.calculations["preset"].tolist()) == {ACCURATE}  # the cheap store is only read
    assert data.snapshots["model"][-1].startswith("co-kriging")
    assert _mae("tuned.h5", accurate) < _mae("alone.h5", accurate) / 2
    _reader_rebuilds_the_learner("tuned.h5")


def test_transfer_refuses_a_missing_or_foreign_store_before_creating_its_own(in_tmp, client, truth):
    pool, cheap, accurate = truth
    text = single("t.h5", ACCURATE, model={"transfer_from": "nowhere.h5"}, kind="ivr", budget=4)
    with pytest.raises(InputError, match="nowhere.h5"):
        _run(client, text, cheap, accurate)
    other = single("small.h5", CHEAP, space={"mode": "compositions"}, kind="max_std", budget=3)
    _run(client, other, cheap, accurate)
    # another pool of the same cell: its structures are featurised as this pool's rows ("shells" features)
    pool_args = dict(model={"transfer_from": "small.h5"}, kind="ivr", budget=4)
    pool_text = single("t.h5", ACCURATE, **pool_args)
    config = parse_campaign(pool_text)
    pretrained = pretrain("small.h5", pool, campaign_model(config, pool))
    idx, gaps = open_campaign("small.h5").training_set()
    small = open_campaign("small.h5").pool()
    X = np.array([pool.featurize(small.atoms(int(i))) for i in idx])
    assert pretrained.n_levels == 1 and np.allclose(pretrained.predict(X), gaps, atol=0.05)
    # but "orbits" are defined on the campaign's own supercell sites only
    text = single("t.h5", ACCURATE, space={"features": "orbits"}, **pool_args)
    with pytest.raises(InputError, match="space.*features = .orbits"):
        _run(client, text, cheap, accurate)
    import os
    assert not os.path.exists("t.h5")


def test_transfer_with_a_fixed_list_computes_that_list(in_tmp, client, truth):
    """A transfer campaign keeps a model-free strategy: the fixed list is computed in order, with no seeds, as
    in a single-fidelity campaign (model-driven kinds become cost-aware variance reduction)."""
    pool, cheap, accurate = truth
    _run(client, single("cheap.h5", CHEAP, kind="max_std", budget=20), cheap, accurate)
    fixed = single("listed.h5", ACCURATE, model={"transfer_from": "cheap.h5"}, kind="fixed", budget=5, n_seed=2,
                   fixed=["Si12Ge4", "Si4Ge12", "Si8Ge8"])
    _run(client, fixed, cheap, accurate)
    calc = read_store("listed.h5").calculations
    picked = [pool.formula(c) for c, r in zip(calc["candidate"], calc["reason"]) if r == "fixed"]
    assert picked == ["Si12Ge4", "Si4Ge12", "Si8Ge8"]
    assert set(calc["reason"].tolist()) == {"fixed"}
    summary = _run(client, fixed, cheap, accurate)  # resumed: the list is done
    assert summary["stop_reason"] == "fixed list done" and summary["completed"] == 3
