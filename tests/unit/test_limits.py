"""Limits on names and values, and a preset given by path (issue 29, items 5 and 6).

Each case was accepted, truncated or a traceback before: ``budget = 1e23``, ``workers = 100000``,
``target_gap = nan``, ``noise = inf``, ``seed = -1`` (created the store, then a traceback), a preset name longer
than the store's column (stored cut short, so the store could never resume), unknown keys inside a preset's
``convergence`` or ``xc`` table (passed straight to GPAW), a non-integer schema attribute (a traceback on every
command); and a preset given by path ran, but ``status`` refused its store and ``predict`` found no results.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import h5py
import pytest
from rich.console import Console

from activemat import cli
from activemat.campaign.config import parse_campaign
from activemat.campaign.loop import run_campaign
from activemat.campaign.progress import Reporter
from activemat.campaign.setup import build_campaign_pool
from activemat.compute.oracle import ReplayOracle
from activemat.compute.presets import load_preset
from activemat.errors import InputError, StoreError
from activemat.space.pool import build_pool
from activemat.store import schema as S
from activemat.store.read import read_store
from activemat.store.write import CampaignStore
from tests.conftest import campaign_toml, synthetic_gaps


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    print("MESSAGE:", msg)
    assert "\n" not in msg, msg
    return msg


@pytest.mark.parametrize("text, where, says", [
    ("[stop]\nbudget = 1e23", "stop.budget", "integer"),
    ("[stop]\nbudget = 100000000000000000000000", "stop.budget", "less than or equal to 1000000000"),
    ("[cluster]\nworkers = 100000", "cluster.workers", "less than or equal to 1024"),
    ('[strategy]\nkind = "ei"\ntarget_gap = nan', "strategy.target_gap", "finite"),
    ("[model]\nnoise = inf", "model.noise", "finite"),
    ("[stop]\ntarget_std = -inf", "stop.target_std", "finite"),
    ("[campaign]\nseed = -1", "campaign.seed", "greater than or equal to 0"),
    ("[campaign]\nseed = 4294967296", "campaign.seed", "less than or equal to 4294967295"),
    ("[faults]\nmax_attempts = 1000000", "faults.max_attempts", "less than or equal to 100"),
])
def test_numbers_beyond_their_limits_are_one_line_errors(text, where, says):
    with pytest.raises(InputError) as exc:
        parse_campaign(text, "c.toml")
    msg = _one_line(exc)
    assert msg.startswith(f"c.toml: {where}: ") and says in msg, msg


def test_a_negative_seed_creates_no_store(in_tmp, capsys):
    Path("c.toml").write_text('[campaign]\nstore = "runs/c.h5"\nseed = -1\n')
    assert cli.main(["run", "c.toml"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == ["activemat: error: c.toml: campaign.seed: Input should be greater than or equal to 0"]
    assert not Path("runs").exists()
    assert cli.main(["run", "c.toml", "--workers", "100000"]) == 2  # an override passes the same checks


PRESET = """description = "a preset of the test's own"
[gpaw]
ecut = 200.0
kpts_density = 0.9
{gpaw}
"""


def _preset_file(folder: Path, name: str, gpaw: str = 'xc = "PBE"') -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(PRESET.format(gpaw=gpaw))
    return path


def test_a_preset_name_longer_than_the_store_keeps_is_refused(tmp_path):
    width = S.CALCULATIONS["preset"].width
    fits = _preset_file(tmp_path, "p" * width)
    assert parse_campaign(f'[calculator]\npreset = "{fits}"').calculator.name == "p" * width
    long = _preset_file(tmp_path, "p" * (width + 1))
    with pytest.raises(InputError) as exc:
        parse_campaign(f'[calculator]\npreset = "{long}"', "c.toml")
    msg = _one_line(exc)
    assert f"is {width + 1} bytes; the store keeps at most {width}" in msg and "shorter name" in msg


@pytest.mark.parametrize("gpaw, says", [
    ("convergence = { energy = 1e-4, bogus = 1.0 }", "unknown convergence key(s) 'bogus'; known: energy"),
    ('xc = { name = "PBE", kernel_hack = 1 }', "unknown xc key(s) 'kernel_hack'; known: name, stencil, c"),
    ("convergence = { density = nan }", "finite"),
    ("ecut = inf", "finite"),
])
def test_unknown_keys_and_odd_numbers_in_presets_are_refused(tmp_path, gpaw, says):
    path = _preset_file(tmp_path, "odd", gpaw if "ecut" not in gpaw else 'xc = "PBE"')
    if "ecut" in gpaw:
        path.write_text(path.read_text().replace("ecut = 200.0", gpaw))
    assert load_preset(str(_preset_file(tmp_path / "ok", "fine"))).name == "fine"
    with pytest.raises(InputError) as exc:
        load_preset(str(path))
    msg = _one_line(exc)
    assert msg.startswith(f"{path}: gpaw.") and says in msg, msg


@pytest.mark.parametrize("value", ["six", 6.5, True])
def test_a_non_integer_schema_attribute_is_one_line_on_every_read(tmp_path, capsys, value):
    text = campaign_toml({}, name="x", space={"supercell": [1, 1, 2]})
    store = tmp_path / "c.h5"
    with CampaignStore.create(store, campaign_text=text, identity=parse_campaign(text).identity(),
                              pool=build_pool(supercell=(1, 1, 2)), presets={}):
        pass
    with h5py.File(store, "r+") as f:
        f.attrs[S.ATTR_SCHEMA] = value
    with pytest.raises(StoreError) as exc:
        read_store(store)
    msg = _one_line(exc)
    assert msg.startswith(f"{store} is damaged (attribute '{S.ATTR_SCHEMA}' is ") and "not an integer" in msg
    for argv in (["status", str(store)], ["query", str(store)], ["inspect", str(store)]):
        assert cli.main(argv) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert err == [f"activemat: error: {msg}"], err
    with pytest.raises(StoreError):
        CampaignStore.open(store, parse_campaign(text).identity())


def test_a_preset_given_by_path_runs_resumes_and_reads_back(in_tmp, client, capsys):
    preset = _preset_file(in_tmp / "presets", "my-fast")
    for budget in (4, 6):  # a run, then a resume that extends it
        text = campaign_toml({}, store="runs/p.h5", seed=3, space={"supercell": [2, 2, 2]},
                             calculator={"preset": preset}, strategy={"n_seed": 4}, stop={"budget": budget},
                             cluster={"workers": 2})
        config = parse_campaign(text)
        oracle = ReplayOracle(synthetic_gaps(build_campaign_pool(config)), delay=0.01)
        summary = run_campaign(config, text, client=client, task=oracle,
                               report=Reporter(budget, Console(file=io.StringIO())))
        assert summary["completed"] == budget and summary["given_up"] == 0
    calc = read_store("runs/p.h5").calculations
    assert set(calc["preset"]) == {"my-fast"}
    capsys.readouterr()
    assert cli.main(["status", "runs/p.h5", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["completed"] == 6 and status["given_up"] == 0 and status["to_retry"] == 0
    # predict reads the store's results from another directory, where the preset's path does not resolve
    shutil.move("presets", "moved")
    assert cli.main(["predict", "runs/p.h5", "Si8Ge8", "--json"]) == 0
    out = capsys.readouterr().out
    print(out)
    assert '"n_train": 6' in out or '"n_train":6' in out.replace(" ", ""), out


def test_a_scratch_root_too_long_for_the_store_is_refused(in_tmp, client):
    from activemat.campaign.loop import scratch_root

    width = S.CALCULATIONS["scratch"].width
    long = in_tmp / ("s" * (width - len(str(in_tmp)) - 10))
    text = campaign_toml({}, store="runs/s.h5", scratch=long, space={"supercell": [2, 2, 2]}, stop={"budget": 2})
    config = parse_campaign(text)
    with pytest.raises(InputError) as exc:
        run_campaign(config, text, client=client, report=Reporter(2, Console(file=io.StringIO())),
                     task=ReplayOracle(synthetic_gaps(build_campaign_pool(config))))
    msg = _one_line(exc)
    assert msg.startswith(f"scratch folder {long}: ") and f"at most {width}" in msg, msg
    short = parse_campaign('[campaign]\nstore = "runs/s.h5"\n')
    assert scratch_root(short, Path("runs/s.h5"), [load_preset("gpaw-fast")], 402) == str(in_tmp / "runs/s.h5.scratch")
