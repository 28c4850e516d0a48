"""Tests for the store (activemat.store.write, read, migrate, schema and status) on real HDF5 files."""

import hashlib
import json
import math
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from activemat import __version__
from activemat.store import rows as rows_module
from activemat.store import schema as S
from activemat.campaign.config import parse_campaign
from activemat.errors import InputError, StoreError
from activemat.compute.presets import load_preset
from activemat.compute.records import CalculationRecord
from activemat.space.pool import build_pool
from activemat.store.status import driver_running, summarize
from activemat.errors import StoreLocked
from activemat.store.read import read_store
from activemat.store.write import CampaignStore
from tests.conftest import campaign_toml

CAMPAIGN = campaign_toml({}, name="tiny", space={"supercell": [1, 1, 2]}, calculator={"preset": "gpaw-fast"})


@pytest.fixture(scope="module")
def pool():
    return build_pool(supercell=(1, 1, 2))


@pytest.fixture(scope="module")
def config():
    return parse_campaign(CAMPAIGN)


@pytest.fixture(scope="module")
def presets():
    return {"gpaw-fast": load_preset("gpaw-fast").model_dump(mode="json")}


@pytest.fixture
def make_store(tmp_path, pool, config, presets):
    """Create a store in tmp_path; returns the open CampaignStore (closed at teardown)."""
    opened = []

    def make(name="camp.h5"):
        store = CampaignStore.create(tmp_path / name, campaign_text=CAMPAIGN, identity=config.identity(),
                                     pool=pool, presets=presets)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _record(candidate, attempt=0, status="ok", gap=0.5, **kw):
    return CalculationRecord(candidate=candidate, attempt=attempt, preset="gpaw-fast", status=status, gap=gap, **kw)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line(exc):
    msg = str(exc.value)
    assert msg and "\n" not in msg, f"not one line: {msg!r}"
    return msg


def _downgrade(f, version):
    """Make an open store file look written by schema `version`: drop every group and column added later."""
    for group in S.GROUPS:
        if group.since > version:
            del f[group.path]
            continue
        for column in group.columns:
            if column.since > version:
                del f[group.path_of(column.name)]
    f.attrs[S.ATTR_SCHEMA] = version


def _run(script, *args, timeout=60):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


# -- round trip ----------------------------------------------------------------

def test_round_trip(make_store, pool, presets):
    store = make_store()
    t0 = time.time()
    row = store.add_attempt(3, 0, "gpaw-fast", 0, "seed", score=0.25)
    assert row == 0
    rec = _record(3, gap=0.4321, direct=True, vbm=5.1, cbm=5.5321, energy=-81.25, scf_iterations=17,
                  kpts=(2, 2, 2), started=t0, finished=t0 + 12.5, host="node01", worker="tcp://127.0.0.1:1234",
                  versions="gpaw 26.7.0 ase 3.25", parameters={"ecut": 200})
    store.finish_attempt(row, rec)
    row2 = store.add_attempt(5, 1, "gpaw-fast", 1, "max_std", score=0.75)
    assert row2 == 1
    store.finish_attempt(row2, _record(5, attempt=1, status="failed", gap=float("nan"), error="SCF did not converge",
                                       scratch="/scratch/c5a1", fallback=1))
    rng = np.random.default_rng(0)
    mean, std = rng.random(len(pool)).astype("f4"), rng.random(len(pool)).astype("f4")
    store.add_snapshot({"iteration": 1, "time": t0, "n_train": 1, "cv_mae": 0.05, "cv_rmse": 0.07, "cv_r2": 0.9,
                        "baseline_mae": 0.2, "max_std": float(std.max()), "mean_std": float(std.mean()),
                        "model": "gp: 1**2 * Matern(length_scale=1, nu=2.5)"}, mean, std)
    store.close()

    data = read_store(store.path)
    # candidates
    assert np.array_equal(data.candidates["decoration"], pool.decorations)
    assert np.array_equal(data.candidates["n_b"], pool.n_b)
    assert np.array_equal(data.candidates["multiplicity"], pool.multiplicity)
    assert np.allclose(data.candidates["features"], pool.features)
    assert np.allclose(data.candidates["x_b"], pool.x_b)
    assert not data.candidates["test"].any()
    # calculations
    c = data.calculations
    assert data.n_calculations == 2
    assert c["candidate"].tolist() == [3, 5] and c["attempt"].tolist() == [0, 1]
    assert c["status"].tolist() == ["ok", "failed"]  # decoded to str
    assert c["preset"].tolist() == ["gpaw-fast", "gpaw-fast"]
    assert c["reason"].tolist() == ["seed", "max_std"]
    assert c["iteration"].tolist() == [0, 1]
    assert c["score"].tolist() == [0.25, 0.75]
    assert c["gap"][0] == pytest.approx(0.4321) and math.isnan(c["gap"][1])
    assert c["direct"].tolist() == [1, 0]
    assert c["vbm"][0] == pytest.approx(5.1) and c["cbm"][0] == pytest.approx(5.5321)
    assert c["energy"][0] == pytest.approx(-81.25)
    assert c["scf_iterations"][0] == 17
    assert c["fallback"].tolist() == [0, 1]
    assert c["kpts"].tolist()[0] == [2, 2, 2]
    assert c["finished"][0] - c["started"][0] == pytest.approx(12.5)
    assert t0 - 1 <= c["submitted"][0] <= time.time()
    assert c["host"][0] == "node01" and c["worker"][0] == "tcp://127.0.0.1:1234"
    assert c["versions"][0] == "gpaw 26.7.0 ase 3.25"
    assert c["error"].tolist() == ["", "SCF did not converge"]
    assert c["scratch"][1] == "/scratch/c5a1"
    assert data.parameters == {c["parameters"][0]: {"ecut": 200}} and c["parameters"][1] == ""
    assert math.isnan(c["ks_gap"][0]) and math.isnan(c["discontinuity"][0])
    assert data.completed() == {3: pytest.approx(0.4321)}
    assert data.status_mask("failed").tolist() == [False, True]
    # snapshots
    s = data.snapshots
    assert s["iteration"].tolist() == [1] and s["n_train"].tolist() == [1]
    assert s["cv_mae"][0] == pytest.approx(0.05) and s["baseline_mae"][0] == pytest.approx(0.2)
    assert math.isnan(s["test_mae"][0])  # not given: filled with NaN
    assert s["model"][0].startswith("gp: ")
    assert s["pool_mean"].shape == (1, len(pool)) and s["pool_std"].shape == (1, len(pool))
    assert np.array_equal(s["pool_mean"][0], mean) and np.array_equal(s["pool_std"][0], std)
    assert data.presets == presets


def test_root_attributes(make_store, config, pool):
    store = make_store()
    store.close()
    data = read_store(store.path)
    a = data.attrs
    assert a["schema_version"] == S.SCHEMA_VERSION
    assert a["creator"] == "activemat"
    assert a["creator_version"] == __version__
    time.strptime(a["created"], "%Y-%m-%dT%H:%M:%S%z")  # raises if malformed
    assert a["campaign_toml"] == CAMPAIGN
    assert a["campaign_identity"] == config.identity()
    assert list(a["supercell"]) == [1, 1, 2]
    assert [str(n.decode() if isinstance(n, bytes) else n) for n in a["feature_names"]] == list(pool.feature_names)
    with h5py.File(store.path, "r") as f:
        assert f["calculations/gap"].attrs["units"] == "eV"
        assert f[S.SNAPSHOTS.path_of("pool_mean")].attrs["units"] == "eV"


def test_long_strings_are_truncated_to_schema_width(make_store):
    store = make_store()
    row = store.add_attempt(1, 0, "gpaw-fast", 0, "seed")
    store.finish_attempt(row, _record(1, status="failed", error="E" * 1000))
    store.close()
    err = read_store(store.path).calculations["error"][0]
    assert err == "E" * S.CALCULATIONS["error"].width


def test_non_ascii_string_at_width_limit_keeps_store_readable(make_store):
    store = make_store()
    row = store.add_attempt(1, 0, "gpaw-fast", 0, "seed")
    # an ASE/GPAW message with a non-ASCII unit (Angstrom) straddling the 400-byte limit
    store.finish_attempt(row, _record(1, status="failed", error="x" * 399 + "\u00c5"))
    store.close()
    data = read_store(store.path)
    assert data.calculations["error"][0].startswith("x" * 399)


def test_rows_are_appended_after_reopen(make_store, config):
    store = make_store()
    store.finish_attempt(store.add_attempt(0, 0, "gpaw-fast", 0, "seed"), _record(0, gap=0.6))
    store.close()
    with CampaignStore.open(store.path, config.identity()) as again:
        assert again.add_attempt(6, 0, "gpaw-fast", 1, "max_std") == 1
    assert read_store(store.path).calculations["candidate"].tolist() == [0, 6]


def test_mark_test(make_store, pool):
    store = make_store()
    store.mark_test(np.array([4, 1]))
    store.close()
    assert np.flatnonzero(read_store(store.path).candidates["test"]).tolist() == [1, 4]


def test_older_schema_is_read_and_migrated_on_open(make_store, config):
    store = make_store()
    store.finish_attempt(store.add_attempt(2, 0, "gpaw-fast", 0, "seed"), _record(2, gap=0.33))
    store.close()
    with h5py.File(store.path, "r+") as f:  # make it a version-1 file: no fallback column (nor later additions)
        _downgrade(f, 1)
        assert "calculations/fallback" not in f
    assert S.SCHEMA_VERSION >= 2
    old = read_store(store.path)
    assert old.attrs["schema_version"] == 1
    assert old.calculations["fallback"].tolist() == [0]  # filled in memory, file untouched
    with CampaignStore.open(store.path, config.identity()) as again:
        row = again.add_attempt(4, 1, "gpaw-fast", 1, "resubmit")
        again.finish_attempt(row, _record(4, attempt=1, gap=0.21, fallback=1))
    new = read_store(store.path)
    assert new.attrs["schema_version"] == S.SCHEMA_VERSION
    assert new.calculations["fallback"].tolist() == [0, 1]
    assert new.calculations["gap"].tolist() == pytest.approx([0.33, 0.21])
    assert new.attrs["campaign_toml"] == CAMPAIGN
    with h5py.File(store.path, "r") as f:
        assert "fallback" in f["calculations"]


# -- the schema declaration --------------------------------------------------------

def test_schema_doctests():
    import doctest

    from activemat.store import schema_types

    assert doctest.testmod(S).failed == 0
    assert doctest.testmod(schema_types).failed == 0


def test_store_is_laid_out_exactly_as_the_schema_declares(make_store, pool):
    store = make_store()
    store.close()
    sizes = {S.SITE: pool.decorations.shape[1], S.FEATURE: pool.features.shape[1], S.CANDIDATE: len(pool)}
    with h5py.File(store.path, "r") as f:
        assert set(f.attrs) == {a.name for a in S.ROOT_ATTRIBUTES}
        assert json.loads(f.attrs[S.ATTR_UNITS]) == S.UNITS
        assert set(f) == {g.path for g in S.GROUPS}
        for group in S.GROUPS:
            g = f[group.path]
            assert set(g) == set(group.names) | set(group.dimensions), group.path
            for column in group.columns:
                ds = g[column.name]
                assert ds.dtype == np.dtype(column.dtype), column.name
                rows = len(pool) if not group.appendable else 0
                assert ds.shape == (rows, *column.shape(sizes)), column.name
                assert ds.maxshape[0] == (None if group.appendable else rows), column.name
                assert ds.attrs.get("units", "") == column.unit, column.name
                assert "unit" not in ds.attrs, column.name
                assert (ds.attrs.get("_Encoding") == "utf-8") == (ds.dtype.kind == "S"), column.name
                # every axis has its named dimension scale, the group's coordinate of that name
                assert [d.label for d in ds.dims] == [""] * ds.ndim
                assert [d[0].name for d in ds.dims] == [f"/{group.path}/{n}" for n in group.dimensions_of(column)]
            for name in group.dimensions:
                assert h5py.h5ds.is_scale(g[name].id), name
    assert S.CALCULATIONS.since == S.CANDIDATES.since == 1 and S.PARAMETERS.since == 3 and S.SCHEMA_VERSION == 8
    assert [c.name for c in S.CANDIDATES.columns if c.since == 4] == ["sqs"]
    assert [c.name for c in S.SNAPSHOTS.columns if c.since == 5] == ["hyperparameters"]
    assert [c.name for c in S.CALCULATIONS.columns if c.since == 3] == ["parameters", "ks_gap", "discontinuity"]


def test_new_store_is_readable_by_hdf5_1_10(make_store, pool, tmp_path):
    """Every object of a new store fits the HDF5 1.10 file format (Debian's h5dump reads it)."""
    store = make_store()
    store.finish_attempt(store.add_attempt(1, 0, "gpaw-fast", 0, "seed"), _record(1, parameters={"xc": "PBE"}))
    store.add_snapshot({"iteration": 1}, np.zeros(len(pool), "f4"), np.zeros(len(pool), "f4"))
    store.close()
    with h5py.File(store.path, "r") as src, h5py.File(tmp_path / "v110.h5", "w", libver=("v110", "v110")) as dst:
        for name in src:
            src.copy(src[name], dst, name=name)  # raises "... version out of bounds" for a newer format


# -- GPAW parameters -----------------------------------------------------------------

PBE = {"mode": {"name": "pw", "ecut": 300.0}, "xc": "PBE", "kpts": {"size": (2, 2, 2), "gamma": True},
       "occupations": {"name": "fermi-dirac", "width": 0.01}, "nbands": 40, "convergence": {"bands": 36},
       "maxiter": 300}


def _as_json(params):
    return json.loads(json.dumps(params))  # tuples -> lists, as plain data comes back


def test_parameters_are_stored_once_per_distinct_set(make_store):
    store = make_store()
    fast = {**PBE, "mode": {"name": "pw", "ecut": 200.0}}
    for cand, params in ((0, PBE), (1, fast), (2, PBE), (3, {}), (4, dict(reversed(list(PBE.items()))))):
        store.finish_attempt(store.add_attempt(cand, 0, "gpaw-fast", 0, "seed"), _record(cand, parameters=params))
    store.close()
    data = read_store(store.path)
    keys = data.calculations["parameters"]
    assert keys[0] == keys[2] == keys[4] != keys[1] and keys[3] == ""  # key order does not matter; {} = not recorded
    assert all(len(k) == 16 for k in keys[[0, 1]])
    assert data.parameters == {keys[0]: _as_json(PBE), keys[1]: _as_json(fast)}
    assert keys[0] == S.parameters_key(S.parameters_json(PBE))
    with h5py.File(store.path, "r") as f:
        assert f[S.PARAMETERS.path_of("key")].shape == (2,)  # two distinct sets, one row each


def test_gllbsc_results_are_columns_not_parameters(make_store):
    store = make_store()
    gllb = {**PBE, "xc": "GLLBSC", "legacy_gpaw": True}
    for cand, (ks, dxc) in enumerate(((0.61, 0.43), (0.55, 0.40))):
        store.finish_attempt(store.add_attempt(cand, 0, "gpaw-fast", 0, "seed"), _record(
            cand, gap=ks + dxc, parameters={**gllb, "gllbsc": {"ks_gap": ks, "discontinuity": dxc}}))
    store.finish_attempt(store.add_attempt(2, 0, "gpaw-fast", 0, "seed"), _record(2, parameters=PBE))
    store.close()
    data = read_store(store.path)
    c = data.calculations
    assert c["ks_gap"][:2].tolist() == [0.61, 0.55] and c["discontinuity"][:2].tolist() == [0.43, 0.40]
    assert math.isnan(c["ks_gap"][2]) and math.isnan(c["discontinuity"][2])
    assert c["parameters"][0] == c["parameters"][1]  # the same settings: one set, the results are per row
    assert data.parameters[c["parameters"][0]] == _as_json(gllb)
    assert len(data.parameters) == 2


def test_a_parameter_set_longer_than_a_row_is_split_and_joined(make_store):
    store = make_store()
    big = {**PBE, "setups": {f"site{i}": "paw" for i in range(120)}, "note": "\u00c5ngstr\u00f6m"}
    assert len(S.parameters_json(big)) > 3 * S.PARAMETERS_PART
    store.finish_attempt(store.add_attempt(0, 0, "gpaw-fast", 0, "seed"), _record(0, parameters=big))
    store.finish_attempt(store.add_attempt(1, 0, "gpaw-fast", 0, "seed"), _record(1, parameters=big))
    store.close()
    data = read_store(store.path)
    assert data.parameters == {data.calculations["parameters"][0]: _as_json(big)}
    with h5py.File(store.path, "r") as f:
        n = f[S.PARAMETERS.path_of("key")].shape[0]
    assert n == -(-len(S.parameters_json(big)) // S.PARAMETERS_PART)  # its parts, stored once


def test_parameters_survive_reopen_and_are_not_stored_again(make_store, config):
    store = make_store()
    store.finish_attempt(store.add_attempt(0, 0, "gpaw-fast", 0, "seed"), _record(0, parameters=PBE))
    store.close()
    with CampaignStore.open(store.path, config.identity()) as again:
        again.finish_attempt(again.add_attempt(1, 0, "gpaw-fast", 1, "max_std"), _record(1, parameters=PBE))
    data = read_store(store.path)
    assert len(set(data.calculations["parameters"])) == 1 and len(data.parameters) == 1
    with h5py.File(store.path, "r") as f:
        assert f[S.PARAMETERS.path_of("key")].shape == (1,)


def test_status_is_written_last(make_store, monkeypatch):
    """A row reads as finished only once all its results are in (a killed writer leaves it 'running')."""
    store = make_store()
    row = store.add_attempt(0, 0, "gpaw-fast", 0, "seed")
    seen = []
    real = rows_module.stored  # every value a write puts in a row goes through it, in the order written

    def spy(column, value):
        seen.append(column.name)
        return real(column, value)

    monkeypatch.setattr(rows_module, "stored", spy)
    store.finish_attempt(row, _record(0, parameters=PBE))
    assert seen[:2] == list(S.PARAMETERS.names)  # the new parameter set first
    assert seen[-1] == "status"
    assert set(seen[2:]) == {c.name for c in S.CALCULATIONS.columns if c.source == S.RESULT}


def test_half_appended_row_of_a_killed_writer_is_overwritten(make_store, config):
    store = make_store()
    store.finish_attempt(store.add_attempt(0, 0, "gpaw-fast", 0, "seed"), _record(0, gap=0.6))
    store.close()
    with h5py.File(store.path, "r+") as f:  # a writer killed after appending the first column of row 1
        ds = f[S.CALCULATIONS.path_of("candidate")]
        ds.resize((2,))
        ds[1] = 5
    assert read_store(store.path).n_calculations == 1  # readers see whole rows only
    with CampaignStore.open(store.path, config.identity()) as again:
        assert again.add_attempt(6, 0, "gpaw-fast", 1, "max_std") == 1
    data = read_store(store.path)
    assert data.calculations["candidate"].tolist() == [0, 6]
    assert data.calculations["status"].tolist() == ["ok", "running"]
    with h5py.File(store.path, "r") as f:
        assert {f[S.CALCULATIONS.path_of(n)].shape[0] for n in S.CALCULATIONS.names} == {2}
        assert f[S.CALCULATIONS.path][S.CALCULATION][()].tolist() == [0, 1]  # its coordinate too


def test_unknown_column_is_refused(make_store, pool):
    store = make_store()
    with pytest.raises(ValueError, match="snapshots has no column cv_maee"):
        store.add_snapshot({"iteration": 1, "cv_maee": 0.1}, np.zeros(len(pool), "f4"), np.zeros(len(pool), "f4"))


# -- refusals --------------------------------------------------------------------

def test_open_with_other_identity_refused_without_writing(make_store):
    store = make_store()
    store.close()
    before = _sha(store.path)
    with pytest.raises(StoreError) as exc:
        CampaignStore.open(store.path, "0123456789abcdef")
    assert "different campaign" in _one_line(exc)
    assert _sha(store.path) == before


def test_identity_from_other_supercell_refused(make_store):
    store = make_store()
    store.close()
    other = parse_campaign(campaign_toml({}, name="tiny", space={"supercell": [1, 2, 2]},
                                         calculator={"preset": "gpaw-fast"}))
    with pytest.raises(StoreError):
        CampaignStore.open(store.path, other.identity())


def test_newer_schema_refused(make_store, config):
    store = make_store()
    store.close()
    with h5py.File(store.path, "r+") as f:
        f.attrs[S.ATTR_SCHEMA] = S.SCHEMA_VERSION + 1
    before = _sha(store.path)
    with pytest.raises(StoreError) as exc:
        read_store(store.path)
    assert "newer" in _one_line(exc)
    with pytest.raises(StoreError) as exc:
        CampaignStore.open(store.path, config.identity())
    assert "newer" in _one_line(exc)
    assert _sha(store.path) == before


def test_foreign_hdf5_file_refused(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(StoreError) as exc:
        read_store(path)
    assert "not an activemat store" in _one_line(exc)


def test_missing_store(tmp_path, config):
    path = tmp_path / "absent.h5"
    with pytest.raises(StoreError) as exc:
        read_store(path)
    assert str(path) in _one_line(exc)
    with pytest.raises(StoreError):
        CampaignStore.open(path, config.identity())
    assert not path.exists()
    assert issubclass(StoreError, InputError)


def test_random_bytes_file(tmp_path):
    path = tmp_path / "noise.h5"
    path.write_bytes(np.random.default_rng(0).bytes(8192))
    with pytest.raises(StoreError) as exc:
        read_store(path)
    assert str(path) in _one_line(exc)


def test_truncated_file(make_store, tmp_path):
    store = make_store()
    store.finish_attempt(store.add_attempt(2, 0, "gpaw-fast", 0, "seed"), _record(2))
    store.close()
    cut = tmp_path / "cut.h5"
    shutil.copy(store.path, cut)
    with open(cut, "r+b") as fh:
        fh.truncate(cut.stat().st_size // 2)
    # in a subprocess: a hang must not hang the test suite
    proc = _run("""
        import sys
        from activemat.errors import StoreError
        from activemat.store.read import read_store
        try:
            read_store(sys.argv[1])
        except StoreError as exc:
            msg = str(exc)
            print("ONE-LINE" if "\\n" not in msg else "MULTI-LINE", msg)
        else:
            print("NO-ERROR")
        """, cut, timeout=60)  # imports alone take seconds at load 6
    assert proc.stdout.startswith("ONE-LINE"), proc.stdout + proc.stderr


# -- locking ---------------------------------------------------------------------

def test_second_writer_is_refused(make_store, config, pool, presets):
    store = make_store()
    with pytest.raises(StoreLocked) as exc:
        CampaignStore.open(store.path, config.identity())
    assert "in use" in _one_line(exc)
    before = _sha(store.path)
    with pytest.raises(StoreLocked):
        CampaignStore.create(store.path, campaign_text=CAMPAIGN, identity=config.identity(), pool=pool,
                             presets=presets)
    assert _sha(store.path) == before
    store.close()
    with CampaignStore.open(store.path, config.identity()):
        pass


def test_driver_running_in_process(make_store):
    store = make_store()
    assert driver_running(store.path)
    store.close()
    assert not driver_running(store.path)


def test_driver_running_and_lock_across_processes(make_store, config):
    store = make_store()
    store.close()
    assert not driver_running(store.path)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys
            from activemat.store.write import CampaignStore
            s = CampaignStore.open(sys.argv[1], sys.argv[2])
            print("ready", flush=True)
            sys.stdin.readline()
            s.close()
            """), str(store.path), config.identity()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready", holder.stderr.read()
        assert driver_running(store.path)
        assert summarize(read_store(store.path))["driver_running"] is True  # readers work while a driver holds it
        with pytest.raises(StoreLocked):
            CampaignStore.open(store.path, config.identity())
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.communicate(timeout=30)
    assert holder.returncode == 0
    assert not driver_running(store.path)


# -- crash recovery ----------------------------------------------------------------

def test_resume_after_sigkill(tmp_path, config):
    path = tmp_path / "crash.h5"
    proc = _run("""
        import os, signal, sys
        from activemat.campaign.config import parse_campaign
        from activemat.compute.presets import load_preset
        from activemat.compute.records import CalculationRecord
        from activemat.space.pool import build_pool
        from activemat.store.write import CampaignStore
        text = sys.argv[2]
        s = CampaignStore.create(sys.argv[1], campaign_text=text, identity=parse_campaign(text).identity(),
                                 pool=build_pool(supercell=(1, 1, 2)),
                                 presets={"gpaw-fast": load_preset("gpaw-fast").model_dump(mode="json")})
        row = s.add_attempt(3, 0, "gpaw-fast", 0, "seed")
        s.finish_attempt(row, CalculationRecord(candidate=3, attempt=0, preset="gpaw-fast", status="ok", gap=0.42,
                                                parameters={"xc": "PBE", "kpts": [1, 1, 2]}))
        s.add_attempt(5, 1, "gpaw-fast", 1, "max_std", score=0.3)
        os.kill(os.getpid(), signal.SIGKILL)
        """, path, CAMPAIGN)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # the killed writer left HDF5's consistency flags set: a plain writer open fails
    with pytest.raises(OSError):
        h5py.File(path, "r+").close()
    # readers still work
    data = read_store(path)
    assert data.calculations["status"].tolist() == ["ok", "running"]
    assert data.parameters[data.calculations["parameters"][0]] == {"xc": "PBE", "kpts": [1, 1, 2]}
    assert summarize(data)["interrupted"] == 1 and summarize(data)["running"] == 0

    with CampaignStore.open(path, config.identity()) as store:
        assert store.interrupt_running() == [(5, 1)]
        assert store.interrupt_running() == []
        row = store.add_attempt(5, 2, "gpaw-fast", 2, "resubmit")
        store.finish_attempt(row, _record(5, attempt=2, gap=0.11, parameters={"kpts": [1, 1, 2], "xc": "PBE"}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crash.h5", "crash.h5.lock"]  # no temporary left
    data = read_store(path)
    c = data.calculations
    assert c["candidate"].tolist() == [3, 5, 5]
    assert c["status"].tolist() == ["ok", "interrupted", "ok"]
    assert c["gap"][0] == pytest.approx(0.42) and c["gap"][2] == pytest.approx(0.11)
    assert data.attrs["campaign_toml"] == CAMPAIGN
    assert len(data.candidates["n_b"]) == 7
    assert "gpaw-fast" in data.presets
    assert c["parameters"][0] == c["parameters"][2] != "" and len(data.parameters) == 1  # known set, not stored again
    # the recovered file is a normal store again: plain writers can open it
    h5py.File(path, "r+").close()


# -- status --------------------------------------------------------------------------

def _populated(make_store):
    store = make_store()
    for cand, status, gap in ((0, "ok", 0.7), (6, "ok", 0.1), (3, "failed", float("nan"))):
        store.finish_attempt(store.add_attempt(cand, 0, "gpaw-fast", 0, "seed"), _record(cand, status=status, gap=gap))
    store.add_attempt(2, 0, "gpaw-fast", 1, "max_std")
    assert store.interrupt_running() == [(2, 0)]
    store.add_attempt(4, 0, "gpaw-fast", 1, "max_std")  # still running
    store.add_snapshot({"iteration": 1, "n_train": 2, "cv_mae": 0.03, "baseline_mae": 0.3, "max_std": 0.2,
                        "model": "linear: intercept +0.7000"}, np.zeros(7, "f4"), np.full(7, 0.2, "f4"))
    return store


def test_summarize_while_driver_runs(make_store):
    store = _populated(make_store)
    s = summarize(read_store(store.path))
    assert s["driver_running"] is True
    assert s["schema_version"] == S.SCHEMA_VERSION
    assert s["candidates"] == 7 and s["attempts"] == 5
    assert (s["completed"], s["failed"], s["running"], s["interrupted"]) == (2, 1, 1, 1)
    assert s["failed_candidates"] == 1 and s["retried"] == 0
    assert [f["candidate"] for f in s["failures"]] == [3]
    assert s["gap_min"] == pytest.approx(0.1) and s["gap_max"] == pytest.approx(0.7)
    assert s["n_train"] == 2 and s["cv_mae"] == pytest.approx(0.03) and s["baseline_mae"] == pytest.approx(0.3)
    assert s["cv_rmse"] is None  # NaN -> None
    assert s["max_std"] == pytest.approx(0.2)
    assert s["model"] == "linear: intercept +0.7000"


def test_summarize_after_driver_stopped_counts_running_as_interrupted(make_store):
    store = _populated(make_store)
    store.close()
    s = summarize(read_store(store.path))
    assert s["driver_running"] is False
    assert (s["completed"], s["failed"], s["running"], s["interrupted"]) == (2, 1, 0, 2)


def test_summarize_empty_store(make_store):
    store = make_store()
    store.close()
    s = summarize(read_store(store.path))
    assert (s["attempts"], s["completed"], s["failed"], s["running"], s["interrupted"]) == (0, 0, 0, 0, 0)
    assert s["gap_min"] is None and s["gap_max"] is None
    assert s["n_train"] == 0 and s["cv_mae"] is None and s["max_std"] is None


def test_summarize_empty_store_has_no_model(make_store):
    store = make_store()
    store.close()
    assert summarize(read_store(store.path))["model"] is None


# -- one store, many names: symlinks and hard links ------------------------------------

KILLED_WRITER = """
    import os, signal, sys
    from activemat.campaign.config import parse_campaign
    from activemat.compute.presets import load_preset
    from activemat.compute.records import CalculationRecord
    from activemat.space.pool import build_pool
    from activemat.store.write import CampaignStore
    text = sys.argv[2]
    s = CampaignStore.create(sys.argv[1], campaign_text=text, identity=parse_campaign(text).identity(),
                             pool=build_pool(supercell=(1, 1, 2)),
                             presets={"gpaw-fast": load_preset("gpaw-fast").model_dump(mode="json")})
    s.finish_attempt(s.add_attempt(3, 0, "gpaw-fast", 0, "seed"),
                     CalculationRecord(candidate=3, attempt=0, preset="gpaw-fast", status="ok", gap=0.42))
    os.kill(os.getpid(), signal.SIGKILL)
    """


def _killed_store(path):
    """A store whose writer was killed (HDF5's consistency flags left set), with one completed row."""
    proc = _run(KILLED_WRITER, path, CAMPAIGN)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with pytest.raises(OSError):
        h5py.File(path, "r+").close()
    return path


@pytest.mark.parametrize("alias", ["symlink", "hardlink"])
def test_second_writer_through_an_alias_is_refused(make_store, config, tmp_path, alias):
    store = make_store("real.h5")
    store.finish_attempt(store.add_attempt(0, 0, "gpaw-fast", 0, "seed"), _record(0, gap=0.6))
    other = tmp_path / "other.h5"
    (other.symlink_to if alias == "symlink" else other.hardlink_to)(store.path)
    inode = store.path.stat().st_ino
    with pytest.raises(StoreLocked) as exc:
        CampaignStore.open(other, config.identity())
    msg = _one_line(exc)
    assert "in use" in msg and str(other) in msg
    if alias == "symlink":
        assert str(store.path) in msg  # the file it resolves to
        assert other.is_symlink()
    assert store.path.stat().st_ino == inode == other.stat().st_ino  # nothing replaced the live file
    assert driver_running(other)
    store.finish_attempt(store.add_attempt(1, 0, "gpaw-fast", 1, "max_std"), _record(1, gap=0.5))
    store.close()
    assert not driver_running(other)
    assert read_store(other).calculations["candidate"].tolist() == [0, 1]
    with CampaignStore.open(other, config.identity()):  # free again
        pass


def test_first_writer_through_an_alias_refuses_the_real_path(make_store, config, tmp_path):
    store = make_store("real.h5")
    store.close()
    link = tmp_path / "link.h5"
    link.symlink_to("real.h5")
    with CampaignStore.open(link, config.identity()):
        with pytest.raises(StoreLocked) as exc:
            CampaignStore.open(store.path, config.identity())
        assert str(link) in _one_line(exc)  # the holder says which name it opened
        assert driver_running(store.path)
    assert link.is_symlink()


def test_recovery_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path, config):
    real = _killed_store(tmp_path / "data" / "real.h5")
    link = tmp_path / "link.h5"
    link.symlink_to(real)
    with CampaignStore.open(link, config.identity()) as store:
        store.finish_attempt(store.add_attempt(4, 0, "gpaw-fast", 1, "max_std"), _record(4, gap=0.3))
    assert link.is_symlink() and link.resolve() == real
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "link.h5"]
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.h5", "real.h5.lock"]
    assert read_store(link).calculations["candidate"].tolist() == [3, 4]
    h5py.File(real, "r+").close()  # recovered in place of the target


def test_recovery_of_a_store_with_hard_links_is_refused(tmp_path, config):
    real = _killed_store(tmp_path / "real.h5")
    other = tmp_path / "backup.h5"
    other.hardlink_to(real)
    before = _sha(real)
    with pytest.raises(StoreError) as exc:
        CampaignStore.open(real, config.identity())
    msg = _one_line(exc)
    assert "hard link" in msg and str(real) in msg
    assert _sha(real) == before and real.stat().st_ino == other.stat().st_ino
    other.unlink()
    with CampaignStore.open(real, config.identity()):
        pass


def test_store_path_that_is_a_directory(tmp_path, config, pool, presets):
    path = tmp_path / "x.h5"
    path.mkdir()
    for action in (lambda: read_store(path), lambda: CampaignStore.open(path, config.identity()),
                   lambda: CampaignStore.create(path, campaign_text=CAMPAIGN, identity=config.identity(),
                                                pool=pool, presets=presets)):
        with pytest.raises(StoreError) as exc:
            action()
        assert _one_line(exc) == f"{path} is a directory; give a file path (e.g. {path / 'campaign.h5'})"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]


def test_store_in_a_missing_directory_creates_it(tmp_path, pool, config, presets):
    path = tmp_path / "a" / "b" / "camp.h5"
    CampaignStore.create(path, campaign_text=CAMPAIGN, identity=config.identity(), pool=pool,
                         presets=presets).close()
    assert read_store(path).n_calculations == 0


def test_store_where_writing_is_not_permitted(tmp_path, pool, config, presets, monkeypatch):
    """Root is never refused by permissions: the refusal is simulated where the store opens its lock file."""
    import os as _os

    real_open = _os.open

    def refuse(path, *args, **kw):
        if str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kw)

    monkeypatch.setattr("os.open", refuse)
    path = tmp_path / "camp.h5"
    with pytest.raises(StoreError) as exc:
        CampaignStore.create(path, campaign_text=CAMPAIGN, identity=config.identity(), pool=pool, presets=presets)
    msg = _one_line(exc)
    assert msg.startswith(f"{path}: ") and "permission" in msg.lower() and str(tmp_path) in msg


def test_band_edge_results_round_trip(make_store):
    store = make_store()
    row = store.add_attempt(2, 0, "pbe-relaxed", 0, "seed")
    store.finish_attempt(row, _record(2, gap=0.55, grid_gap=0.69, vbm_k=(0.0, 0.0, 0.0), cbm_k=(0.85, 0.0, 0.0),
                                      cbm_character="Delta", band_check=-1e-4, soc_gap=0.535, relax_gap=0.56,
                                      gap_delta=0.55, gap_x=0.69, gap_l=1.5))
    other = store.add_attempt(3, 0, "gpaw-fast", 0, "seed")
    store.finish_attempt(other, _record(3))  # a grid preset: no edges
    store.close()
    calc = read_store(store.path).calculations
    assert calc["cbm_character"].tolist() == ["Delta", ""]
    assert np.allclose(calc["cbm_k"][0], (0.85, 0, 0)) and np.isnan(calc["cbm_k"][1]).all()
    assert (calc["grid_gap"][0], calc["soc_gap"][0], calc["relax_gap"][0]) == (0.69, 0.535, 0.56)
    assert calc["band_check"][0] == -1e-4 and np.isnan(calc["grid_gap"][1])
    assert (calc["gap_delta"][0], calc["gap_x"][0], calc["gap_l"][0]) == (0.55, 0.69, 1.5)
    assert np.isnan(calc["gap_gamma"][0]) and np.isnan(calc["gap_l"][1])


def test_band_edge_results_are_exported_with_each_frame(make_store, tmp_path):
    import ase.io

    from activemat.store.export import export_store

    store = make_store()
    row = store.add_attempt(2, 0, "pbe-relaxed", 0, "seed")
    store.finish_attempt(row, _record(2, gap=0.55, cbm_k=(0.85, 0.0, 0.0), cbm_character="Delta", soc_gap=0.535,
                                      gap_delta=0.55, gap_l=1.5))
    store.close()
    out = tmp_path / "edges.extxyz"
    assert export_store(store.path, out) == 1
    info = ase.io.read(out).info
    assert info["cbm_character"] == "Delta" and info["soc_gap"] == 0.535
    assert (info["gap_delta"], info["gap_l"]) == (0.55, 1.5) and "gap_gamma" not in info  # NaN: not written
    assert np.allclose(info["cbm_k"], (0.85, 0, 0)) and "vbm_k" not in info


def test_relaxed_structure_is_found_for_a_later_level(make_store, pool):
    store = make_store()
    positions, cell = np.random.default_rng(1).random((pool.decorations.shape[1], 3)), np.eye(3) * 10.9
    row = store.add_attempt(4, 0, "pbe-relaxed", 0, "seed")
    store.finish_attempt(row, _record(4, gap=0.6, soc_gap=0.58, relax="positions", positions=positions, cell=cell))
    unrelaxed = store.add_attempt(5, 0, "pbe-relaxed", 0, "seed")
    store.finish_attempt(unrelaxed, _record(5, gap=0.6))
    found = store.relaxed_structure(4, "pbe-relaxed")
    assert np.array_equal(found["positions"], positions) and np.array_equal(found["cell"], cell)
    assert (found["gap"], found["soc_gap"]) == (0.6, 0.58)
    assert store.relaxed_structure(4, "gpaw-fast") is None and store.relaxed_structure(5, "pbe-relaxed") is None
