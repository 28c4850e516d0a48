"""Tests for activemat.campaign.config (campaign files) and activemat.compute.presets (DFT presets)."""

from pathlib import Path

import pytest

from activemat.campaign.config import CampaignConfig, load_campaign, parse_campaign
from activemat.compute.presets import available_presets, load_preset
from activemat.errors import InputError
from tests.conftest import campaign_toml

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "campaigns" / "demo.toml"


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg, f"error message is not one line: {msg!r}"
    return msg


def _write(tmp_path: Path, text: str, name: str = "campaign.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- campaign files ------------------------------------------------------------

def test_demo_campaign_parses():
    config, text = load_campaign(DEMO)
    assert isinstance(config, CampaignConfig)
    assert text == DEMO.read_text()
    assert config.campaign.name == "demo"
    assert config.space.elements == ("Si", "Ge")
    assert config.space.supercell == (2, 2, 2)
    assert config.space.mode == "configurations"
    assert config.calculator.preset == "gpaw-fast"
    assert config.model.kind == "gp"
    assert config.strategy.kind == "max_std" and config.strategy.n_seed == 4
    assert config.stop.budget == 10
    assert config.cluster.kind == "local" and config.cluster.workers == 2


@pytest.mark.parametrize("path", sorted((ROOT / "campaigns").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_campaign_parses(path):
    # sige16-pbe-nystroem.toml stopped parsing when [model] options were tightened, and nothing noticed
    config, _ = load_campaign(path)
    assert config.campaign.name and config.stop.budget > 0


def test_empty_campaign_gives_defaults():
    config = parse_campaign("")
    assert config == CampaignConfig()
    assert config.space.supercell == (2, 2, 2)


def test_unknown_key_is_one_line_error_naming_file_and_key(tmp_path):
    path = _write(tmp_path, DEMO.read_text().replace("budget = 10", "budgett = 3"))
    with pytest.raises(InputError) as exc:
        load_campaign(path)
    msg = _one_line(exc)
    assert str(path) in msg
    assert "stop.budgett" in msg


def test_unknown_section_is_error(tmp_path):
    path = _write(tmp_path, "[stopp]\nbudget = 3\n")
    with pytest.raises(InputError) as exc:
        load_campaign(path)
    msg = _one_line(exc)
    assert str(path) in msg and "stopp" in msg


def test_bad_toml_syntax_is_one_line_input_error(tmp_path):
    path = _write(tmp_path, "[stop]\nbudget = = 3\n")
    with pytest.raises(InputError) as exc:
        load_campaign(path)
    msg = _one_line(exc)
    assert str(path) in msg and "TOML" in msg


def test_wrong_type_names_the_key(tmp_path):
    path = _write(tmp_path, "[stop]\nbudget = \"ten\"\n")
    with pytest.raises(InputError) as exc:
        load_campaign(path)
    assert "stop.budget" in _one_line(exc)


@pytest.mark.parametrize("kind", ["ei", "ucb", "pi"])
def test_target_strategies_need_target_gap(kind):
    with pytest.raises(InputError) as exc:
        parse_campaign(f'[strategy]\nkind = "{kind}"\n', "c.toml")
    msg = _one_line(exc)
    assert "target_gap" in msg and "c.toml" in msg
    # ... and are accepted with one
    config = parse_campaign(f'[strategy]\nkind = "{kind}"\ntarget_gap = 0.3\n')
    assert config.strategy.target_gap == 0.3


def test_fixed_strategy_needs_a_list():
    with pytest.raises(InputError) as exc:
        parse_campaign('[strategy]\nkind = "fixed"\n')
    assert "fixed" in _one_line(exc)
    config = parse_campaign('[strategy]\nkind = "fixed"\nfixed = ["Si4Ge12", "Si8Ge8"]\n')
    assert config.strategy.fixed == ["Si4Ge12", "Si8Ge8"]


def test_missing_file_is_input_error(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(InputError) as exc:
        load_campaign(path)
    assert str(path) in _one_line(exc)


def test_out_of_range_value_is_error():
    with pytest.raises(InputError) as exc:
        parse_campaign("[stop]\nbudget = 0\n")
    assert "stop.budget" in _one_line(exc)


def test_identity_ignores_budget_strategy_model_cluster():
    base = parse_campaign(DEMO.read_text())
    other = parse_campaign(DEMO.read_text()
                           .replace("budget = 10", "budget = 50")
                           .replace('kind = "max_std"', 'kind = "ucb"\ntarget_gap = 0.4')
                           .replace('kind = "gp"', 'kind = "linear"')
                           .replace("workers = 2", "workers = 7"))
    assert other.stop.budget == 50 and other.strategy.kind == "ucb"
    assert base.identity() == other.identity()
    assert len(base.identity()) == 16


def test_identity_changes_with_space_or_calculator():
    text = DEMO.read_text()
    base = parse_campaign(text).identity()
    supercell = parse_campaign(text.replace("supercell = [2, 2, 2]", "supercell = [1, 1, 2]")).identity()
    preset = parse_campaign(text.replace('preset = "gpaw-fast"', 'preset = "gpaw-pbe-pw"')).identity()
    assert len({base, supercell, preset}) == 3


# -- presets -------------------------------------------------------------------

def test_shipped_presets_are_available():
    assert {"gpaw-fast", "gpaw-pbe-pw"} <= set(available_presets())


def test_gpaw_fast_preset_values():
    p = load_preset("gpaw-fast")
    assert p.name == "gpaw-fast"
    assert p.gpaw.ecut == 200.0
    assert p.gpaw.xc == "PBE"
    assert p.gpaw.kpts_density == pytest.approx(0.9)
    assert p.gpaw.smearing == pytest.approx(0.01)
    assert p.gpaw.maxiter == 200
    assert p.gpaw.convergence["energy"] == pytest.approx(0.001)


def test_gpaw_pbe_pw_preset_values():
    p = load_preset("gpaw-pbe-pw")
    assert p.name == "gpaw-pbe-pw"
    assert p.gpaw.ecut == 300.0
    assert p.gpaw.xc == "PBE"
    assert p.gpaw.kpts_density == pytest.approx(1.8)
    assert p.gpaw.extra_bands == 8 and p.gpaw.converge_bands == 4


def test_unknown_preset_lists_known_ones():
    with pytest.raises(InputError) as exc:
        load_preset("gpaw-nonexistent")
    msg = _one_line(exc)
    assert "gpaw-nonexistent" in msg
    assert "gpaw-fast" in msg and "gpaw-pbe-pw" in msg


def test_preset_by_path(tmp_path):
    path = _write(tmp_path, "[gpaw]\necut = 250.0\nkpts_density = 1.0\n", "my-preset.toml")
    p = load_preset(str(path))
    assert p.name == "my-preset" and p.gpaw.ecut == 250.0 and p.gpaw.xc == "PBE"


@pytest.mark.parametrize("text, expect", [
    ("[gpaw]\necut = 250.0\n", "kpts_density"),                      # missing required key
    ("[gpaw]\necut = 250.0\nkpts_density = 1.0\ncutof = 3\n", "cutof"),  # unknown key
    ("[gpaw]\necut = -5\nkpts_density = 1.0\n", "ecut"),              # out of range
    ("[gpaw\necut = 250.0\n", "TOML"),                                 # syntax
])
def test_bad_preset_file_is_one_line_input_error(tmp_path, text, expect):
    path = _write(tmp_path, text, "bad.toml")
    with pytest.raises(InputError) as exc:
        load_preset(str(path))
    msg = _one_line(exc)
    assert str(path) in msg and expect in msg


MULTI = {"calculator": {"preset": "gpaw-tb09-coarse", "cost": 150, "cheaper": [{"preset": "gpaw-pbe-pw", "cost": 60}]},
         "strategy": {"kind": "ivr"}}


def test_multi_fidelity_lists_presets_cheap_to_accurate_and_costs_leave_identity_alone():
    config = parse_campaign(campaign_toml(MULTI))
    assert config.calculator.presets == ["gpaw-pbe-pw", "gpaw-tb09-coarse"]
    assert config.calculator.costs == [60.0, 150.0]
    remeasured = parse_campaign(campaign_toml(MULTI, calculator={"cheaper": [{"preset": "gpaw-pbe-pw", "cost": 45}]}))
    assert remeasured.identity() == config.identity()
    single = parse_campaign('[calculator]\npreset = "gpaw-tb09-coarse"\n')
    assert single.identity() != config.identity()  # the cheaper presets define data


@pytest.mark.parametrize("edit, expect", [
    ({"calculator": {"cost": None}}, "needs `cost`"),
    ({"calculator": {"cheaper": [{"preset": "gpaw-tb09-coarse", "cost": 60}]}}, "each preset may appear once"),
    ({"strategy": {"kind": "max_std"}}, 'kind = "ivr"'),
    ({"model": {"kind": "linear"}}, 'kind = "gp"'),
    ({"model": {"transfer_from": "x.h5"}}, "not both"),
    ({"calculator": {"cheaper": [{"preset": "gpaw-pbe-pw", "cost": 0}]}}, "cheaper.0.cost"),
])
def test_bad_multi_fidelity_settings_are_one_line_errors(edit, expect):
    with pytest.raises(InputError) as exc:
        parse_campaign(campaign_toml(MULTI, **edit))
    assert expect in _one_line(exc)


def test_transfer_needs_a_gp():
    with pytest.raises(InputError) as exc:
        parse_campaign('[model]\nkind = "linear"\ntransfer_from = "cheap.h5"\n')
    assert 'kind = "gp"' in _one_line(exc)


def test_relax_keys_reach_the_presets_and_the_identity():
    from activemat.campaign.setup import with_relax
    from activemat.compute.presets import load_preset

    plain = parse_campaign("[calculator]\npreset = 'gpaw-fast'\n")
    relaxed = parse_campaign("[calculator]\npreset = 'gpaw-fast'\nrelax = 'positions'\nrelax_fmax = 0.02\n")
    assert plain.calculator.relax_settings() is None
    assert relaxed.calculator.relax_settings() == {"kind": "positions", "fmax": 0.02}
    assert relaxed.identity() != plain.identity()  # relaxed gaps are other data
    preset = with_relax(load_preset("gpaw-fast"), relaxed.calculator.relax_settings())
    assert (preset.relax.kind, preset.relax.fmax, preset.relax.steps) == ("positions", 0.02, 100)
    assert with_relax(preset, {}).relax is None  # relax = "none" turns a preset's relaxation off
    with pytest.raises(InputError, match="relax_fmax and relax_steps need relax"):
        parse_campaign("[calculator]\nrelax = 'none'\nrelax_steps = 3\n")
    with pytest.raises(InputError, match="does not relax"):
        with_relax(load_preset("gpaw-fast"), {"steps": 3})


def test_expected_duration_errs_long_and_falls_back_to_the_declared_cost():
    import numpy as np

    from activemat.campaign.ledger import Ledger

    ledger = Ledger(np.zeros(4, bool), levels=1, max_attempts=3)
    assert ledger.expected_duration(0, None) is None and ledger.expected_duration(0, 30.0) == 30.0
    ledger.wall_times[0] += [10.0, 12.0]
    assert ledger.expected_duration(0, 30.0) == 12.0  # the longest while fewer than 3
    ledger.wall_times[0] += [11.0, 20.0]
    assert 12.0 < ledger.expected_duration(0, 30.0) <= 20.0  # the 90th percentile
