"""A real two-fidelity campaign through the CLI (real GPAW on 4-atom cells, real LocalCluster), then
transfer from its cheap results, and structure files as a fixed list."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TINY, campaign_toml
from tests.e2e.test_cli import activemat, sha

MULTI = campaign_toml(TINY, store="runs/multi.h5", strategy={"kind": "ivr"}, stop={"budget": 7}, calculator={
    "preset": "gpaw-pbe-pw", "cost": 3.0, "cheaper": [{"preset": "gpaw-fast", "cost": 1.0}]})


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    (root / "multi.toml").write_text(MULTI)
    result = activemat("run", "multi.toml", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    return root, json.loads(result.stdout.strip().splitlines()[-1])


def test_both_fidelities_are_computed_and_kept_apart(multi):
    root, summary = multi
    fid = summary["fidelities"]
    assert set(fid) == {"gpaw-fast", "gpaw-pbe-pw"}
    assert fid["gpaw-fast"]["completed"] >= 2 and fid["gpaw-pbe-pw"]["completed"] >= 2  # seeds at each
    assert fid["gpaw-fast"]["completed"] + fid["gpaw-pbe-pw"]["completed"] == 7
    status = json.loads(activemat("status", "runs/multi.h5", "--json", cwd=root).stdout)
    assert {p: v["completed"] for p, v in status["presets"].items()} == {p: v["completed"] for p, v in fid.items()}
    assert status["model"].startswith("co-kriging")
    rows = json.loads(activemat("query", "runs/multi.h5", "--preset", "gpaw-fast", "--status", "ok",
                                "--format", "json", cwd=root).stdout)
    assert len(rows) == fid["gpaw-fast"]["completed"] and {r["preset"] for r in rows} == {"gpaw-fast"}
    # the same structure at two fidelities: the cheaper one (Gamma only, 200 eV) gives a different gap
    both = json.loads(activemat("query", "runs/multi.h5", "--status", "ok", "--format", "json", cwd=root).stdout)
    by = {}
    for r in both:
        by.setdefault(r["candidate"], {})[r["preset"]] = r["gap"]
    pairs = [v for v in by.values() if len(v) == 2]
    assert pairs and all(abs(v["gpaw-fast"] - v["gpaw-pbe-pw"]) > 1e-3 for v in pairs)


def test_transfer_campaign_pretrains_on_the_cheap_results(multi, tmp_path):
    root, _ = multi
    text = campaign_toml(TINY, store="runs/tuned.h5", calculator={"preset": "gpaw-pbe-pw"},
                         model={"transfer_from": "runs/multi.h5"}, strategy={"kind": "ivr"}, stop={"budget": 3})
    (root / "tuned.toml").write_text(text)
    before = sha(root / "runs/multi.h5")
    result = activemat("run", "tuned.toml", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    assert sha(root / "runs/multi.h5") == before  # the pretraining store is only read
    status = json.loads(activemat("status", "runs/tuned.h5", "--json", cwd=root).stdout)
    assert list(status["presets"]) == ["gpaw-pbe-pw"] and status["completed"] == 3
    assert status["model"].startswith("co-kriging")


def test_a_fixed_list_from_a_structure_file_recomputes_those_configurations(multi):
    root, _ = multi
    assert activemat("export", "runs/multi.h5", "--preset", "gpaw-fast", "--status", "ok", "-o", "cheap.extxyz",
                     cwd=root).returncode == 0
    cheap = json.loads(activemat("query", "runs/multi.h5", "--preset", "gpaw-fast", "--status", "ok",
                                 "--format", "json", cwd=root).stdout)
    text = campaign_toml(TINY, store="runs/again.h5", strategy={"kind": "fixed", "fixed": ["cheap.extxyz"]},
                         stop={"budget": 10})
    (root / "again.toml").write_text(text)
    result = activemat("run", "again.toml", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["stop_reason"] == "fixed list done"
    again = json.loads(activemat("query", "runs/again.h5", "--format", "json", cwd=root).stdout)
    assert [r["candidate"] for r in again] == [r["candidate"] for r in cheap]  # same configurations, same order
    # same preset, same structures: the same gaps
    assert [r["gap"] for r in again] == pytest.approx([r["gap"] for r in cheap], abs=1e-4)


def test_predict_and_inspect_use_the_campaigns_cokriging_model(multi):
    root, _ = multi
    result = activemat("inspect", "runs/multi.h5", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    card = json.loads(result.stdout)
    assert card["model"].startswith("co-kriging") and len(card["hyperparameters"]["rho"]) == 1
    assert card["n_train"] == len(json.loads(activemat("query", "runs/multi.h5", "--preset", "gpaw-pbe-pw",
                                                        "--status", "ok", "--format", "json", cwd=root).stdout))
    assert activemat("inspect", "runs/multi.h5", cwd=root).returncode == 0  # the table renders without CV rows
    result = activemat("predict", "runs/multi.h5", "Si2Ge2", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    item = json.loads(result.stdout)["predictions"][0]
    assert 0.0 < item["gap"] < 2.0 and item["model_std"] >= 0.0
