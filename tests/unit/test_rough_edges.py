"""The command line's rough edges, each as a user meets it: formulas as typed, out-of-range filters, closed
pipes, standard output as a target, piped replay output, units on the model card, a reference store of
another preset. Bad input: one line naming the thing and the fix, exit code 2, the store untouched.
"""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from test_query_stores import stores

from activemat.errors import SpaceError
from activemat.space.formula import parse_formula
from tests.conftest import campaign_toml, cli, one_line_error

SIGE = ("Si", "Ge")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return stores(tmp_path_factory)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- formulas as a user types them -------------------------------------------------------------------

@pytest.mark.parametrize("text, n_ge", [("SiGe", 8), ("Si0.5Ge0.5", 8), ("SiGe3", 12), ("Si3Ge", 4), ("Ge", 16),
                                        ("Si", 0), ("Si2Ge2", 8), ("Si.25Ge.75", 12), ("Si4Ge12", 12)])
def test_formulas_that_mean_a_composition_of_the_cell_are_accepted(text, n_ge):
    assert parse_formula(text, SIGE, 16) == n_ge


@pytest.mark.parametrize("text, message", [
    ("SiGe2", "formula 'SiGe2' is x_Ge = 0.6667, not a composition of the 16-site cell (x_Ge in steps of 1/16); "
              "nearest: Si5Ge11 (x_Ge = 0.6875), Si6Ge10 (x_Ge = 0.625)"),
    ("Si0.3Ge0.7", "nearest: Si5Ge11 (x_Ge = 0.6875), Si4Ge12 (x_Ge = 0.75)"),
    ("Si0.5Ge0.4", "fractions must sum to 1 (they sum to 0.9)"),
    ("Si20Ge12", "has 32 atoms but the supercell has 16 sites; write its composition as Si10Ge6"),
    ("Si4Ge13", "17 atoms but the supercell has 16 sites"),
])
def test_formulas_the_cell_cannot_hold_are_refused_precisely(text, message):
    with pytest.raises(SpaceError) as err:
        parse_formula(text, SIGE, 16)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_predict_reads_formulas_never_as_missing_files(store):
    code, out, err = cli("predict", store["configs"], "SiGe", "Si0.5Ge0.5", "Si8Ge8")
    assert code == 0, err
    lines = out.splitlines()[1:]
    assert lines[0].startswith("SiGe (Si8Ge8): x_ge = 0.5000") and lines[1].startswith("Si0.5Ge0.5 (Si8Ge8):")
    assert len({line.split("predicted gap")[1] for line in lines}) == 1  # the same composition, three ways
    before = _sha(store["configs"])
    for spec in ("Si0.3Ge0.7", "SiGe2"):
        line = one_line_error(*cli("predict", store["configs"], spec)[::2])
        assert "not a composition of the 16-site cell" in line and "not found" not in line, line
    line = one_line_error(*cli("predict", store["configs"], "missing.cif")[::2])
    assert "structure file not found: missing.cif" in line
    assert _sha(store["configs"]) == before


def test_query_composition_takes_the_same_formulas(store):
    code, out, _ = cli("query", store["configs"], "--composition", "SiGe", "--format", "json")
    same = cli("query", store["configs"], "--composition", "Si8Ge8", "--format", "json")[1]
    assert code == 0 and json.loads(out) == json.loads(same) and json.loads(out)


# -- filters outside their range ----------------------------------------------------------------------

@pytest.mark.parametrize("verb", ["query", "export"])
@pytest.mark.parametrize("flag, message", [
    (["--x-ge", "2"], "--x-ge '2' is outside 0..1 (the Ge fraction)"),
    (["--x-ge", "0.5:1.5"], "is outside 0..1"),
    (["--x-ge=-0.1:"], "is outside 0..1"),
    (["--ge-count", "17"], "--ge-count '17' is outside 0..16 (the number of Ge atoms in the 16-site cell)"),
])
def test_out_of_range_filters_are_one_line_errors(store, tmp_path, verb, flag, message):
    before = _sha(store["configs"])
    extra = ["-o", tmp_path / "out.csv"] if verb == "export" else []
    code, out, err = cli(verb, store["configs"], *flag, *extra)
    assert message in one_line_error(code, err) and out == ""
    assert _sha(store["configs"]) == before and not (tmp_path / "out.csv").exists()
    assert cli("query", store["configs"], "--x-ge", "0:1", "--ge-count", "0:16")[0] == 0  # the full range is fine


# -- standard output: a closed pipe, and "-" as the export target ----------------------------------

def test_a_closed_pipe_ends_quietly():
    """`activemat query STORE --format csv | head -1`: the reader goes away after one line."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "activemat.cli", "query",
                             str(root / "benchmarks" / "data" / "reference-pbe.h5"), "--format", "csv"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"PYTHONPATH": str(root)})
    assert proc.stdout.readline().startswith(b"row,candidate,formula")
    proc.stdout.close()  # more than a pipe's buffer (64 KiB) is still to come
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err


def test_export_to_standard_output(store, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    import ase.io

    code, out, err = cli("export", store["configs"], "-o", "-", "--status", "ok")
    assert code == 0 and "to standard output" in err
    frames = ase.io.read(io.StringIO(out), ":", format="extxyz")
    assert len(frames) > 0 and all(f.info["status"] == "ok" for f in frames) and f"wrote {len(frames)} calculations" in err
    code, out, _ = cli("export", store["configs"], "-o", "-", "--format", "csv")
    assert code == 0 and out.startswith("row,candidate,formula")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "activemat.cli", "export", str(store["configs"]), "-o", "/dev/stdout",
                           "--format", "csv"], capture_output=True, text=True, env={"PYTHONPATH": str(root)},
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("row,candidate,formula"), proc.stderr
    assert not list(tmp_path.iterdir())  # nothing written beside


# -- replay's tables piped into a file -------------------------------------------------------------

def test_replay_output_is_not_cut_when_piped(tmp_path, monkeypatch):
    import ase.io

    from activemat.analysis.replay import render, replay
    from activemat.campaign.config import parse_campaign
    from activemat.campaign.setup import build_campaign_pool

    text = campaign_toml({}, seed=0, space={"supercell": [2, 2, 2], "mode": "compositions"})
    config = parse_campaign(text)
    pool = build_campaign_pool(config)
    frames = []
    for i in range(len(pool)):
        atoms = pool.atoms(i)
        atoms.info["gap"] = 0.6 - 0.5 * pool.x_b[i] + 0.1 * pool.x_b[i] ** 2
        frames.append(atoms)
    ase.io.write(tmp_path / "oracle.extxyz", frames)
    result = replay(config, tmp_path / "oracle.extxyz", ("max_std", "ivr", "random", "fixed"), repeats=1, budget=8)
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)  # not a terminal, as in `activemat replay ... > file`
    render(result)
    lines = out.getvalue().splitlines()
    assert max(map(len, lines)) > 80 and "…" not in out.getvalue()
    header = next(line for line in lines if "strategy" in line and "final b (eV)" in line)
    assert "final curve MAE (eV)" in header  # every column heading whole, on one line
    assert sum(line.startswith("oracle ") for line in lines) == 1


# -- the model card's units --------------------------------------------------------------------------

def test_model_card_prints_every_hyperparameter_with_its_unit(store):
    for name in ("configs", "tutorial"):
        code, out, err = cli("inspect", store[name], "--json")
        hp = json.loads(out)["hyperparameters"]
        shown = [k for k in hp if k not in ("note", "units")]
        assert set(shown) <= set(hp["units"]), shown
    assert hp["units"]["intercept"] == "eV" and hp["units"]["residual_std"] == "eV"
    code, out, err = cli("inspect", store["configs"])
    text = " ".join(out.split())
    assert "std(gap)" in text and "var(gap)" in text and "pool-standardised feature units" in text
    gp = json.loads(cli("inspect", store["configs"], "--json")[1])["hyperparameters"]
    assert gp["amplitude_ev"] == pytest.approx(gp["amplitude"] * gp["gap_std"])
    assert gp["noise_std_ev"] == pytest.approx(gp["noise_level"] ** 0.5 * gp["gap_std"])
    assert f"{gp['amplitude_ev']:.4g} eV" in text


# -- a reference store of another preset -----------------------------------------------------------

@pytest.fixture(scope="module")
def pbe_reference(store, tmp_path_factory):
    """A store over the same 402 candidates whose gaps come from gpaw-pbe-pw, not the campaign's gpaw-fast."""
    from activemat.campaign.config import parse_campaign
    from activemat.campaign.setup import prepare
    from activemat.compute.records import CalculationRecord
    from activemat.store.read import read_store
    from activemat.store.write import CampaignStore

    from test_query_stores import campaign_text

    path = tmp_path_factory.mktemp("ref") / "pbe.h5"
    text = campaign_text("pbe", path, calculator={"preset": "gpaw-pbe-pw"})
    config = parse_campaign(text)
    pool, (preset,), _ = prepare(config)
    done = read_store(store["configs"]).completed("gpaw-fast")
    with CampaignStore.create(path, campaign_text=text, identity=config.identity(), pool=pool,
                              presets={preset.name: preset.model_dump(mode="json")}) as s:
        for c, g in done.items():
            s.finish_attempt(s.add_attempt(c, 0, "gpaw-pbe-pw", 0, "seed"),
                             CalculationRecord(c, 0, "gpaw-pbe-pw", "ok", gap=g + 0.1))
    return path


def test_inspect_warns_when_the_reference_has_another_preset(store, pbe_reference):
    code, out, err = cli("inspect", store["configs"], "--reference", pbe_reference, "--json")
    ref = json.loads(out)["reference"]
    assert code == 0 and ref["preset"] == "gpaw-pbe-pw" and ref["model_preset"] == "gpaw-fast"
    assert err.startswith("activemat: warning: reference ") and "gpaw-pbe-pw gaps" in err and len(
        err.splitlines()) == 1
    assert "gpaw-pbe-pw" in ref["warning"] and ref["mae"] > 0.05  # the presets' 0.1 eV offset shows
    code, out, err = cli("inspect", store["configs"], "--reference", pbe_reference)
    assert "presets differ" in " ".join(out.split()) and "warning" in err
    code, out, err = cli("inspect", store["configs"], "--reference", store["configs"], "--json")
    assert code == 0 and err == "" and json.loads(out)["reference"]["warning"] is None  # same preset: no warning


def test_plot_legend_names_the_reference_preset(store, pbe_reference, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    legends = {}
    real = Figure.savefig

    def keep(fig, path, *args, **kwargs):
        legend = fig.axes[0].get_legend() if fig.axes else None
        legends[str(path)] = [t.get_text() for t in legend.get_texts()] if legend else []
        return real(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    code, out, err = cli("plot", store["configs"], "-o", tmp_path, "--figures", "gap_vs_x", "--reference",
                         pbe_reference)
    assert code == 0 and "warning" in err and "gpaw-pbe-pw" in err
    (labels,) = legends.values()
    assert any(t.startswith("reference: pbe.h5 (gpaw-pbe-pw,") for t in labels), labels
    assert any(t.startswith("computed (gpaw-fast)") for t in labels), labels


def test_a_missing_file_named_like_a_formula_is_named_both_ways(store):
    line = one_line_error(*cli("predict", store["configs"], "POSCAR")[::2])
    assert "element 'P'" in line and "if 'POSCAR' is a structure file, it was not found" in line
