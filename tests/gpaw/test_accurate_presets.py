"""The accurate-gap presets (gpaw-tb09, gpaw-gllbsc) on 2-atom Si and Ge, against published values.

Reference gaps (eV, DESIGN.md "GPAW facts"): TB09 Si 1.25, Ge 0.85; GLLB-SC
Si 1.04-1.05, Ge 0.21. Measured here (GPAW 26.7, 8x8x8, PW 300 eV): TB09 Si
1.247, Ge 0.877; GLLB-SC Si 1.108 (KS 0.755 + discontinuity 0.353).
Tolerances: TB09 +-0.05 eV (the measured spread to the reference is <= 0.03);
GLLB-SC +-0.1 eV, because the 8x8x8 grid samples 0.75 of Gamma-X rather than
Si's Delta minimum at ~0.85 (the reference is at the minimum), which puts
the Kohn-Sham gap ~0.06 eV high.
"""

from __future__ import annotations

import pytest
from ase.build import bulk

from activemat.compute.bandgap import compute_gap
from activemat.compute.presets import load_preset

pytest.importorskip("gpaw")

# Debian's libxc is built without --disable-fhc; GPAW warns on every meta-GGA
# (TB09) setup. The preset's stencil and mixer are what make the SCF converge anyway.
LIBXC_FHC = "ignore:libxc should be compiled with --disable-fhc:UserWarning"

SI = dict(name="Si", crystalstructure="diamond", a=5.431)
GE = dict(name="Ge", crystalstructure="diamond", a=5.658)


def _run(preset_name, structure, tmp_path, kpts=(8, 8, 8)):
    preset = load_preset(preset_name)
    record = compute_gap(0, 0, bulk(**structure), preset, str(tmp_path))
    assert record.ok, record.error
    assert record.parameters["legacy_gpaw"] is True
    assert record.kpts == kpts
    assert record.cbm - record.vbm == pytest.approx(record.gap)
    return record


@pytest.mark.filterwarnings(LIBXC_FHC)
def test_tb09_silicon_gap_matches_reference(tmp_path):
    record = _run("gpaw-tb09", SI, tmp_path)
    assert record.gap == pytest.approx(1.25, abs=0.05)
    assert not record.direct  # VBM at Gamma, CBM on Gamma-X
    assert record.parameters["xc"] == {"name": "TB09", "stencil": 1}


@pytest.mark.filterwarnings(LIBXC_FHC)
def test_tb09_germanium_gap_matches_reference(tmp_path):
    record = _run("gpaw-tb09", GE, tmp_path)
    assert record.gap == pytest.approx(0.85, abs=0.05)  # PBE: ~0.09; experiment 0.74 (no spin-orbit here)
    assert not record.direct  # CBM at L, as in experiment (PBE wrongly puts it at Gamma)


@pytest.mark.filterwarnings(LIBXC_FHC)
@pytest.mark.parametrize("structure, expect", [(SI, 1.39), (GE, 0.95)])
def test_tb09_coarse_gaps_sit_on_the_coarse_grid(tmp_path, structure, expect):
    """gpaw-tb09-coarse: 4x4x4 on 2 atoms (= 2x2x2 on 16) holds X but not Si's Delta minimum: Si ~0.14 eV high."""
    record = _run("gpaw-tb09-coarse", structure, tmp_path, kpts=(4, 4, 4))
    assert record.gap == pytest.approx(expect, abs=0.02)
    accurate = {"Si": 1.25, "Ge": 0.85}[structure["name"]]
    assert record.gap > accurate  # the coarse grid misses the conduction-band minimum: the gap lands above


def test_gllbsc_silicon_gap_is_ks_plus_discontinuity_and_indirect(tmp_path):
    record = _run("gpaw-gllbsc", SI, tmp_path)
    assert record.gap == pytest.approx(1.045, abs=0.1)
    assert not record.direct
    parts = record.parameters["gllbsc"]
    assert record.gap == pytest.approx(parts["ks_gap"] + parts["discontinuity"])
    assert 0.25 < parts["discontinuity"] < 0.5  # ~0.35 eV for Si
    assert 0.6 < parts["ks_gap"] < 0.85  # a PBE-like Kohn-Sham gap


@pytest.mark.parametrize("settings, expect", [
    ('xc = { name = "TB09", stencil = 1 }', "set legacy = true"),
    ('xc = "PBE"\ngap = "gllbsc"', "needs a GLLB functional"),
    ('xc = { stencil = 1 }', 'needs a string "name"'),
])
def test_inconsistent_accurate_settings_are_input_errors(tmp_path, settings, expect):
    from activemat.errors import InputError

    path = tmp_path / "bad.toml"
    path.write_text(f"[gpaw]\necut = 300.0\nkpts_density = 1.0\n{settings}\n")
    with pytest.raises(InputError, match=expect):
        load_preset(str(path))
