"""The live page's data (activemat.analysis.view.frames) and its store watcher, without a browser: a small
campaign against a ReplayOracle (named fake: answers from a table) on an in-process Dask client."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from activemat.analysis.view.frames import FAILED, TESTED, ok_kind, read_frame
from activemat.analysis.view.server import HOST, StoreWatcher, ViewServer
from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.campaign.progress import Reporter
from activemat.campaign.setup import build_campaign_pool
from activemat.campaign.stored import open_campaign
from activemat.compute.oracle import ReplayOracle
from activemat.errors import InputError
from activemat.store.read import read_store
from tests.conftest import campaign_toml, synthetic_gaps


def campaign(store: str = "runs/view.h5") -> str:
    """Seven results and one held out on the 16-atom pool; the Dask dashboard on, as by default."""
    return campaign_toml(name="view", store=store, seed=4, test_size=1, strategy={"n_seed": 4}, stop={"budget": 7},
                         cluster={"dashboard": None})


@pytest.fixture(scope="module")
def store(client, tmp_path_factory):
    """A finished store: 7 training results, one held-out, the first attempt at Si16 failed."""
    root = tmp_path_factory.mktemp("view")
    config = parse_campaign(campaign(str(root / "view.h5")))
    oracle = ReplayOracle(synthetic_gaps(build_campaign_pool(config)), delay=0.01, fail_attempts={0: 1})
    run_campaign(config, campaign(), client=client, report=Reporter(7, Console(file=io.StringIO())), task=oracle)
    return root / "view.h5"


def test_counts_are_those_of_status(store):
    frame = read_frame(store)
    status = open_campaign(store).status()
    h = frame.header
    assert frame.error is None
    assert (h["completed"], h["failed"], h["given_up"]) == (status["completed"], status["failed"], 0)
    assert h["completed"] == 8 and h["trained"] == 7 and h["tested"] == 1 and h["failed"] == 1
    assert not h["driver_running"] and h["running"] == 0 and h["budget"] == 7
    assert h["progress"] == "██████████"
    assert read_frame(store, budget=14).header["budget"] == 14  # run --budget


def test_computed_points_by_kind(store):
    frame = read_frame(store)
    kinds = frame.sources["computed"]["kind"]
    assert kinds.count(ok_kind("gpaw-fast")) == 7 and kinds.count(TESTED) == 1 and kinds.count(FAILED) == 1
    c = frame.sources["computed"]
    failed = kinds.index(FAILED)
    # a failed calculation has no gap: it is drawn at the model's mean
    assert np.isnan(c["gap"][failed]) and c["y"][failed] == pytest.approx(c["mean"][failed])
    # each point sits within its composition's sideways spread
    assert np.all(np.abs(np.asarray(c["x_plot"]) - np.asarray(c["x"])) <= 0.5 * 0.5 / 16 + 1e-12)


def test_model_comes_from_the_latest_snapshot(store):
    data = read_store(store)
    frame = read_frame(store)
    configs, curve = frame.sources["configs"], frame.sources["curve"]
    assert np.allclose(configs["mean"], data.snapshots["pool_mean"][-1])
    assert np.allclose(np.asarray(configs["upper"]) - configs["mean"], 2 * data.snapshots["pool_std"][-1])
    # the composition average is multiplicity-weighted; its band is the weighted average std (upper bound)
    cand = data.candidates
    k = 8
    idx = np.flatnonzero(cand["n_b"] == k)
    w = cand["multiplicity"][idx] / cand["multiplicity"][idx].sum()
    i = curve["x"].index(0.5)
    assert curve["mean"][i] == pytest.approx(w @ data.snapshots["pool_mean"][-1][idx], rel=1e-6)
    assert curve["bound"][i] == pytest.approx(w @ data.snapshots["pool_std"][-1][idx], rel=1e-6)
    assert len(frame.sources["experiment"]["x"]) > 0  # Si-Ge: the measured curve is drawn


def test_curve_band_is_the_joint_posterior_of_the_stored_model(store):
    """The store keeps its last model's hyperparameters, so the band is the joint posterior std of each
    average (as `activemat predict --curve` gives it, without optimising), strictly inside the bound; a store
    without them (written before schema 5) shows the bound, labelled as such."""
    import h5py

    from activemat.analysis.curve import gap_curve
    from activemat.analysis.model import fit_store_model

    frame = read_frame(store)
    curve = frame.sources["curve"]
    assert frame.header["curve_band"] == "joint"
    sm = fit_store_model(store)
    assert sm.snapshot is not None  # rebuilt from the stored hyperparameters
    expected = {c["x"]: c["model_std"] for c in gap_curve(sm, n_samples=200)["compositions"]}
    for x, mu, upper, bound in zip(curve["x"], curve["mean"], curve["upper"], curve["bound"]):
        assert (upper - mu) / 2 == pytest.approx(expected[x], rel=1e-6, abs=1e-9)
        assert (upper - mu) / 2 <= bound + 1e-12
    assert any((u - m) / 2 < 0.9 * b for m, u, b in zip(curve["mean"], curve["upper"], curve["bound"]))
    older = store.parent / "older.h5"
    older.write_bytes(store.read_bytes())
    with h5py.File(older, "r+") as f:  # as a store without stored hyperparameters
        f["snapshots/hyperparameters"][-1] = b""
    old = read_frame(older)
    assert old.header["curve_band"] == "bound"
    assert np.allclose(np.asarray(old.sources["curve"]["upper"]) - old.sources["curve"]["mean"],
                       2 * np.asarray(old.sources["curve"]["bound"]))


def test_parity_uses_the_model_from_before_each_submission(store):
    data = read_store(store)
    calc, snaps = data.calculations, data.snapshots
    par = read_frame(store).sources["parity"]
    assert len(par["row"]) > 0
    for r, predicted in zip(par["row"], par["predicted"]):
        before = np.flatnonzero(snaps["time"] <= calc["submitted"][r])
        assert len(before), "a seed picked before any model has no prediction"
        assert predicted == pytest.approx(snaps["pool_mean"][before[-1]][calc["candidate"][r]])
        assert snaps["n_train"][before[-1]] < (calc["status"] == "ok").sum()


def test_learning_curve_and_tables(store):
    frame = read_frame(store)
    lc = frame.sources["learning"]
    assert list(lc["n"]) == sorted(set(lc["n"])) and lc["n"][-1] == 7
    assert np.all(np.isfinite(lc["test_mae"][-1:]))  # the held-out error is known at the end
    picks = frame.sources["picks"]
    assert picks["row"][0] == len(read_store(store).calculations["candidate"]) - 1  # newest first
    failures = frame.sources["failures"]
    assert failures["formula"] == ["Si16"] and "no answer" in failures["error"][0]
    assert len(frame.sources["running"]["row"]) == 0  # no driver: nothing runs


def test_missing_and_foreign_files_give_a_message(tmp_path):
    assert "store not found" in read_frame(tmp_path / "nope.h5").error
    (tmp_path / "junk.h5").write_text("not hdf5")
    assert "not a readable HDF5 store" in read_frame(tmp_path / "junk.h5").error


def test_watcher_reads_only_when_the_file_changes(tmp_path, store):
    path = tmp_path / "later.h5"
    watcher = StoreWatcher(path)
    assert watcher.poll()
    frame, version = watcher.latest()
    assert "waiting for" in frame.error
    assert not watcher.poll()  # still missing: nothing new
    path.write_bytes(store.read_bytes())  # the campaign created it
    assert watcher.poll()
    frame, later = watcher.latest()
    assert later == version + 1 and frame.error is None and frame.header["completed"] == 8
    assert not watcher.poll()


def test_server_binds_the_loopback_only_and_refuses_a_busy_port(store):
    import socket

    server = ViewServer(store, port=0).start_in_thread()
    try:
        assert server.port > 0 and server.url == f"http://{HOST}:{server.port}/"
        with socket.create_connection((HOST, server.port), timeout=5):
            pass
        with pytest.raises(InputError, match="in use"):
            ViewServer(store, port=server.port).start_in_thread()
    finally:
        server.close()


def test_run_view_on_a_busy_port_stops_before_anything_is_computed(in_tmp, store, capsys):
    from activemat.cli import main

    (in_tmp / "c.toml").write_text(campaign())
    server = ViewServer(store, port=0).start_in_thread()
    try:
        assert main(["run", "c.toml", "--view", "--view-port", str(server.port)]) == 2
    finally:
        server.close()
    assert "in use" in capsys.readouterr().err
    assert not (in_tmp / "runs").exists()
