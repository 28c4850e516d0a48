"""The Python API (``activemat.Store``) and its notebook-style docs page, which runs here as a doctest.

The page reads ``runs/reference-pbe.h5``: the shipped reference store (402 PBE calculations, schema 2),
copied into a temporary folder and given one snapshot by the campaign's own Learner, as the loop writes
after every result (the store is migrated to schema 5 on that open), so its latest snapshot holds the
hyperparameters exactly.
"""

from __future__ import annotations

import doctest
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase.build import bulk
from test_query_stores import stores

import activemat
from activemat.errors import SpaceError, StoreError
from activemat.store.read import read_store

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "benchmarks" / "data" / "reference-pbe.h5"
PAGE = ROOT / "docs" / "howto" / "python.md"


def learner_snapshot(path: Path) -> None:
    """One snapshot of the campaign's model on every result, written as the loop writes it."""
    from activemat.campaign.learner import Learner
    from activemat.campaign.model import CampaignModel, stored_model_state
    from activemat.campaign.stored import open_campaign
    from activemat.store.write import CampaignStore

    view = open_campaign(path)
    config, pool = view.config(), view.pool()
    ledger = view.ledger()
    # as the loop resumes the store: a file without `mean` keeps the mean of its stored model
    model = CampaignModel.of(config, pool, stored=stored_model_state(view))
    learner = Learner(model, pool, iteration=len(view.snapshots["iteration"]))
    free = np.ones(len(pool), bool)
    free[view.training_set()[0]] = False
    learner.fit(ledger, free)
    with CampaignStore.open(path, config.identity()) as store:
        store.add_snapshot(learner.snapshot(ledger), learner.mean.astype("f4"), learner.std.astype("f4"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A folder holding runs/reference-pbe.h5 as the docs page reads it."""
    root = tmp_path_factory.mktemp("api")
    (root / "runs").mkdir()
    shutil.copy(REFERENCE, root / "runs" / "reference-pbe.h5")
    learner_snapshot(root / "runs" / "reference-pbe.h5")
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return stores(tmp_path_factory)


def _cells(page: Path) -> str:
    """The page's ```pycon cells, joined: the doctest of the page."""
    cells = re.findall(r"^```pycon\n(.*?)^```", page.read_text(), flags=re.S | re.M)
    assert len(cells) >= 8, "the page lost its code cells"
    return "\n".join(cells)


def test_the_python_docs_page_runs_as_written(reference, monkeypatch):
    monkeypatch.chdir(reference)
    pd.set_option("display.width", 120)
    test = doctest.DocTestParser().get_doctest(_cells(PAGE), {}, "docs/howto/python.md", str(PAGE), 0)
    out = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=out.append)
    assert result.failed == 0, "".join(out)
    assert result.attempted >= 20


def test_one_import_is_light_and_gives_the_store_class():
    # neither `import activemat` nor the command line's parser (every verb pays for it) loads the heavy libraries
    code = ("import sys, activemat, activemat.cli; activemat.cli.build_parser(); "
            "heavy = [m for m in ('pandas', 'sklearn', 'h5py') if m in sys.modules]; "
            "assert not heavy, heavy; from activemat import Store; print(Store.__module__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0 and proc.stdout.strip() == "activemat.analysis.api", proc.stderr
    assert activemat.Store is activemat.analysis.api.Store and "Store" in activemat.__all__
    with pytest.raises(AttributeError, match="no attribute 'Stor'"):
        activemat.Stor


def test_calculations_are_a_dataframe_with_units_dates_and_missing_values(store):
    s = activemat.Store(store["configs"])
    data = read_store(store["configs"])
    calcs = s.calculations
    assert len(calcs) == data.n_calculations and calcs.index.name == "calculation"
    assert str(calcs["finished"].dtype) == "datetime64[ns, UTC]"
    assert calcs.attrs["units"]["gap"] == "eV" and calcs.attrs["units"]["wall_time"] == "s"
    assert calcs.attrs["units"]["submitted"] == "UTC"
    ok = calcs.status == "ok"
    seconds = (calcs["started"][ok] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    np.testing.assert_allclose(seconds, data.calculations["started"][data.calculations["status"] == "ok"],
                               atol=1e-6)
    failed = calcs[calcs.status == "failed"]
    assert len(failed) and failed.gap.isna().all() and failed.direct.isna().all()
    assert str(calcs.direct.dtype) == "boolean" and str(calcs.scf_iterations.dtype) == "Int64"
    assert calcs.kpts.map(lambda k: k is None or (isinstance(k, tuple) and len(k) == 3)).all()
    # pandas' own tools on it
    assert calcs.groupby("formula").gap.mean().notna().any()
    assert pd.DataFrame(calcs.to_dict("records")).shape == calcs.shape


def test_candidates_features_snapshots(store):
    s = activemat.Store(store["configs"])
    cands = s.candidates
    assert len(cands) == 402 and cands.index.name == "candidate" and cands.multiplicity.sum() == 2 ** 16
    done = read_store(store["configs"]).completed("gpaw-fast")
    assert cands.gap.notna().sum() == len(done)
    assert cands.loc[list(done), "gap"].tolist() == pytest.approx(list(done.values()))
    assert s.features.shape == (402, 5) and s.features.index.name == "candidate"
    snaps = s.snapshots
    assert str(snaps["time"].dtype) == "datetime64[ns, UTC]" and snaps.index.name == "snapshot"
    assert snaps.hyperparameters.iloc[-1]["kind"] == "gp"
    pool = s.pool_predictions()
    assert pool.shape == (402, 2) and pool.attrs["snapshot"] == len(snaps) - 1
    with pytest.raises(IndexError, match="no snapshot"):
        activemat.Store(store["empty"]).pool_predictions()


def test_model_predict_and_curve(store, tmp_path):
    s = activemat.Store(store["configs"])
    model = s.model()
    assert model is s.model() and model.stored  # built once, from the stored hyperparameters
    pool = model.pool
    atoms = pool.atoms(7)
    path = tmp_path / "two.extxyz"
    import ase.io

    ase.io.write(path, [atoms, pool.atoms(9)])
    table = s.predict(["Si8Ge8", "SiGe", "Si0.5Ge0.5", atoms, path])
    assert list(table.spec) == ["Si8Ge8", "SiGe", "Si0.5Ge0.5", "atoms[3]", str(path), str(path)]
    assert table.gap.iloc[0] == table.gap.iloc[1] == table.gap.iloc[2]  # the same composition three ways
    mean, std = model.predict(atoms)
    assert table.gap.iloc[3] == pytest.approx(mean[0]) and table.model_std.iloc[3] == pytest.approx(std[0])
    assert np.allclose(model.predict([atoms])[0], model.predict(pool.features[[7]])[0])
    from activemat.analysis.predict import predict

    (direct,) = predict(store["configs"], [atoms])["predictions"]  # the function too takes Atoms, not only paths
    assert direct["gap"] == pytest.approx(mean[0]) and direct["spec"] == "atoms[0]"
    assert table.attrs["units"]["gap"] == "eV" and "stored" in table.attrs["hyperparameters"]
    with pytest.raises(SpaceError, match="not a composition of the 16-site cell"):
        s.predict("SiGe2")
    curve = s.curve()
    assert len(curve) == 17 and {"mean", "model_std", "spread"} <= set(curve.columns)
    assert curve.attrs["bowing"]["b_std"] is not None and curve.attrs["units"]["mean"] == "eV"
    assert s.card()["fitted"] == model.hyperparameters


def test_refresh_sees_new_rows_and_errors_are_one_line(store, tmp_path):
    from test_query_stores import copy_store

    from activemat.compute.records import CalculationRecord
    from activemat.store.write import CampaignStore

    path = copy_store(store["configs"], tmp_path / "live.h5")
    s = activemat.Store(path)
    n = len(s.calculations)
    with CampaignStore.open(path, s.config().identity()) as writer:
        writer.finish_attempt(writer.add_attempt(200, 0, "gpaw-fast", 99, "retry"),
                              CalculationRecord(200, 0, "gpaw-fast", "ok", gap=0.42))
    assert len(s.calculations) == n and len(s.refresh().calculations) == n + 1
    with pytest.raises(StoreError, match="store not found") as err:
        activemat.Store(tmp_path / "missing.h5")
    assert "\n" not in str(err.value)


def test_a_fresh_store_reads_with_pandas_and_xarray(store):
    """pandas and xarray on a store the loop wrote (schema 5), every group."""
    xr = pytest.importorskip("xarray")
    path = store["configs"]
    s = activemat.Store(path)
    for frame in (s.calculations, s.candidates, s.snapshots, s.features):
        assert isinstance(frame, pd.DataFrame) and len(frame)
    with xr.open_dataset(path, engine="h5netcdf", group="calculations") as ds:
        frame = ds.to_dataframe()  # xarray's own route to pandas: named dimensions become the index
        assert {"calculation", "k_axis"} <= set(frame.index.names)
        assert ds.status.values.tolist() == s.calculations.status.tolist()
