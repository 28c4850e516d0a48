"""A preset given by path (issue 29, item 6), and limits on names and values (item 5).

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
from tests.conftest import synthetic_gaps


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


def test_a_preset_given_by_path_runs_resumes_and_reads_back(in_tmp, client, capsys):
    preset = _preset_file(in_tmp / "presets", "my-fast")
    text = (f'[campaign]\nstore = "runs/p.h5"\nseed = 3\n[space]\nsupercell = [2, 2, 2]\n'
            f'[calculator]\npreset = "{preset}"\n[strategy]\nn_seed = 4\n[stop]\nbudget = {{budget}}\n'
            '[cluster]\nworkers = 2\n')
    for budget in (4, 6):  # a run, then a resume that extends it
        config = parse_campaign(text.format(budget=budget))
        oracle = ReplayOracle(synthetic_gaps(build_campaign_pool(config)), delay=0.01)
        summary = run_campaign(config, text.format(budget=budget), client=client, task=oracle,
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
