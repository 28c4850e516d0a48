"""tests/conftest.py's campaign-file factory: the TOML it writes parses back to what it was given."""

from __future__ import annotations

import doctest
import tomllib
from pathlib import Path

import pytest

import tests.conftest as conftest
from activemat.campaign.config import parse_campaign
from tests.conftest import TEST_DEFAULTS, TINY, campaign_toml


def test_every_value_type_round_trips():
    odd = 'quote " backslash \\ tab \t newline \n cr \r bell \x07 del \x7f é'
    text = campaign_toml({}, campaign={"name": odd, "store": Path("/tmp/a b.h5"), "seed": -3},
                         space={"supercell": [[2, 0, 0], [0, 2, 0], [0, 0, 2]], "cutoffs": (7.0, 4.5),
                                "sqs": True},
                         calculator={"cost": 1e-05, "cheaper": [{"preset": "x", "cost": 1.0}]},
                         strategy={"target_gap": float("inf"), "beta": 1e16, "fixed": []},
                         **{"faults": {"odd key": False}})
    assert tomllib.loads(text) == {
        "campaign": {"name": odd, "store": "/tmp/a b.h5", "seed": -3},
        "space": {"supercell": [[2, 0, 0], [0, 2, 0], [0, 0, 2]], "cutoffs": [7.0, 4.5], "sqs": True},
        "calculator": {"cost": 1e-05, "cheaper": [{"preset": "x", "cost": 1.0}]},
        "strategy": {"target_gap": float("inf"), "beta": 1e16, "fixed": []},
        "faults": {"odd key": False}}


def test_overrides_merge_into_the_defaults_and_none_removes():
    assert tomllib.loads(campaign_toml()) == TEST_DEFAULTS
    data = tomllib.loads(campaign_toml(store="runs/x.h5", seed=3, stop={"budget": 10}, faults={},
                                       cluster={"dashboard": None, "workers": 1}))
    assert data == {"campaign": {"store": "runs/x.h5", "seed": 3}, "space": {"supercell": [2, 2, 2]},
                    "stop": {"budget": 10}, "cluster": {"workers": 1}, "faults": {}}
    assert tomllib.loads(campaign_toml(TINY, space=None, strategy={"kind": "ivr"}))["strategy"] == {
        "kind": "ivr", "n_seed": 2}
    assert "space" not in tomllib.loads(campaign_toml(TINY, space=None))
    assert TINY["strategy"] == {"kind": "max_std", "n_seed": 2}  # the base is not changed
    assert parse_campaign(campaign_toml(TINY)).space.supercell == (1, 1, 2)


def test_sections_in_the_configs_order_and_typos_refused():
    text = campaign_toml({}, faults={}, stop={"budget": 2}, campaign={"seed": 1})
    assert [line for line in text.splitlines() if line.startswith("[")] == ["[campaign]", "[stop]", "[faults]"]
    with pytest.raises(TypeError, match="'stp'"):
        campaign_toml(stp={"budget": 3})
    with pytest.raises(TypeError, match="section 'stop'"):
        campaign_toml(stop=3)
    with pytest.raises(TypeError, match="no TOML form"):
        campaign_toml(stop={"budget": object()})


def test_campaign_file_writes_under_tmp_path(campaign_file, tmp_path):
    path = campaign_file("c.toml", TINY, name="mine", stop={"budget": 3})
    config = parse_campaign(path.read_text())
    assert path == tmp_path / "c.toml" and config.stop.budget == 3 and config.campaign.name == "mine"
    assert campaign_file().name == "campaign.toml"


def test_doctest():
    result = doctest.testmod(conftest)
    assert result.attempted and not result.failed
