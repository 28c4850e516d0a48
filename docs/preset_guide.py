"""Generated Markdown for the docs (through :mod:`docs.regenerate`): the preset guide and the campaign defaults.

:func:`preset_table`: every shipped preset with what it is for (:data:`PURPOSE`, the one hand-written part:
a shipped preset without an entry is an error), the campaign files that use it, and its gaps and cost from
``benchmarks/results/end_members.json`` (``python -m benchmarks.end_members --report``), against the
measured gap (:mod:`activemat.analysis.experiment`).

:func:`campaign_defaults`: every key of a campaign file at its default, from the pydantic models of
:mod:`activemat.campaign.config`, with its description as the comment.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
END_MEMBERS = ROOT / "benchmarks" / "results" / "end_members.json"

#: preset -> the question it answers. No numbers here: they come from the measurements.
PURPOSE = {
    "gpaw-fast": "Demos, tests, and the cheap fidelity of multi-fidelity campaigns. Γ only on 16 and 32 atoms, "
                 "so its gaps are not converged PBE gaps: do not quote them.",
    "gpaw-pbe-pw": "PBE maps of the 16-atom space (the reference dataset, `sige16-pbe`). Its 2x2x2 grid reads "
                   "Si's conduction band at X, not at its Δ minimum, so Si-rich gaps come out high.",
    "gpaw-tb09": "Gaps near experiment (TB09 meta-GGA) on the self-consistent grid; Si's minimum is still off the "
                 "grid, and low-symmetry 32-atom cells are expensive.",
    "gpaw-tb09-coarse": "The affordable accurate fidelity: TB09 on the PBE presets' grid, so `gpaw-pbe-pw` → "
                        "`gpaw-tb09-coarse` changes the functional alone (multi-fidelity, transfer).",
    "gpaw-gllbsc": "GLLB-SC with its derivative discontinuity: Si-rich cells only. It keeps PBE's band order "
                   "in Ge and fails there (explanation: physics).",
    "pbe-fast": "PBE of the ideal structure with the band edges where they are (folded Γ/X/L/Δ; on other "
                "parents their lattice's special points): the cheap level of `sige16-accurate`, 32-atom PBE maps, "
                "and AlGaAs's Γ-X crossover.",
    "pbe-relaxed": "Accurate PBE: relaxed positions, folded band edges, spin-orbit beside; the forces that "
                   "relax `tb09-relaxed`'s structures.",
    "tb09-relaxed": "The gap to compare with experiment: TB09 on the PBE-relaxed structure, band edges where "
                    "they are, PBE's spin-orbit shift beside. Orders Ge's valleys right.",
}


def _presets():
    from activemat.compute.presets import available_presets, load_preset

    saved = os.environ.pop("ACTIVEMAT_CALCULATORS", None)  # shipped presets only
    try:
        return [load_preset(name) for name in available_presets()]
    finally:
        if saved is not None:
            os.environ["ACTIVEMAT_CALCULATORS"] = saved


def _used_by() -> dict[str, list[str]]:
    from activemat.campaign.config import parse_campaign

    out: dict[str, list[str]] = {}
    for path in sorted((ROOT / "campaigns").glob("*.toml")):
        config = parse_campaign(path.read_text(), path)
        for preset in dict.fromkeys(config.calculator.presets):
            out.setdefault(preset, []).append(path.stem)
    return out


def _grids(preset) -> str:
    """The Γ-centred grid the preset's k-point density gives on the Si cells of 2, 16 and 32 atoms."""
    from activemat.compute.bandgap import kpoint_grid
    from benchmarks.end_members import structure

    return " / ".join("x".join(map(str, kpoint_grid(structure("Si", n), preset.gpaw))) for n in (2, 16, 32))


def _pair(rows: dict, preset: str, atoms: int, value) -> str:
    """``Si / Ge`` of one quantity, ``-`` where a row is missing or failed."""
    parts = []
    for element in ("Si", "Ge"):
        row = rows.get((preset, element, atoms))
        parts.append("-" if row is None or not row["ok"] or value(row) is None else value(row))
    return " / ".join(parts)


def preset_table() -> list[str]:
    from activemat.analysis.experiment import CITATION, weber_alonso_gap

    presets = _presets()
    missing = [p.name for p in presets if p.name not in PURPOSE]
    if missing:
        raise ValueError(f"docs/preset_guide.py PURPOSE has no entry for the shipped preset(s) {', '.join(missing)}")
    used = _used_by()
    data = json.loads(END_MEMBERS.read_text())
    rows = {(r["preset"], r["element"], r["atoms"]): r for r in data["rows"]}
    measured = {"Si": float(weber_alonso_gap(0.0)), "Ge": float(weber_alonso_gap(1.0))}
    out = ["| preset | what it is for | settings | k-points: 2 / 16 / 32 atoms | used by `campaigns/` |",
           "|---|---|---|---|---|"]
    for p in presets:
        campaigns = ", ".join(f"`{c}`" for c in used.get(p.name, [])) or "none"
        out.append(f"| `{p.name}` | {PURPOSE[p.name]} | {p.description} | {_grids(p)} | {campaigns} |")
    out += ["", "| preset | converged gap, 2 atoms (eV) | minus experiment (eV) | with spin-orbit minus experiment "
                "(eV) | 16 atoms: gap minus converged (eV) | 32 atoms: gap minus converged (eV) | "
                "s per 16-atom calculation | s per 32-atom calculation |", "|---|---|---|---|---|---|---|---|"]

    def gap(row):
        return f"{row['gap']:.3f}"

    def minus(key):
        return lambda row: None if row.get(key) is None else f"{row[key] - measured[row['element']]:+.3f}"

    def shift(row):
        ref = rows.get((row["preset"], row["element"], 2))
        return None if ref is None or not ref["ok"] else f"{row['gap'] - ref['gap']:+.3f}"

    def seconds(row):
        return f"{row['seconds']:.0f}"

    for p in presets:
        if not any(key[0] == p.name for key in rows):
            out.append(f"| `{p.name}` | not measured by `benchmarks.end_members` | | | | | | |")
            continue
        out.append(f"| `{p.name}` | {_pair(rows, p.name, 2, gap)} | {_pair(rows, p.name, 2, minus('gap'))} | "
                   f"{_pair(rows, p.name, 2, minus('soc_gap'))} | {_pair(rows, p.name, 16, shift)} | "
                   f"{_pair(rows, p.name, 32, shift)} | {_pair(rows, p.name, 16, seconds)} | "
                   f"{_pair(rows, p.name, 32, seconds)} |")
    m = data["machine"]
    out += ["", f"Each cell is Si / Ge. Gaps and times: `python -m benchmarks.end_members --report` "
                f"(`benchmarks/results/end_members.json`; the 2-atom cell on a Γ-centred 12x12x12 grid with the "
                f"preset's own settings is its converged gap), measured on a {m['cpus']}-core machine that other "
                f"runs shared (the times are those of a loaded machine, one core per calculation). Experiment: "
                f"{CITATION}, as measured (Si {measured['Si']:.3f} eV, Ge {measured['Ge']:.3f} eV at 4.2 K), "
                f"with no correction terms; a static-lattice Kohn-Sham gap without spin-orbit is not the "
                f"same quantity (explanation: physics, the terms of the comparison)."]
    return out


# --- campaign defaults -------------------------------------------------------------------------------------

def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "model_dump"):
        return _toml(value.model_dump())
    raise TypeError(f"no TOML form for {value!r}")


def campaign_defaults(width: int = 110) -> list[str]:
    from pydantic_core import PydanticUndefined

    from activemat.campaign.config import CampaignConfig

    out = ["```toml"]
    for section, info in CampaignConfig.model_fields.items():
        out.append(f"[{section}]")
        for key, f in info.annotation.model_fields.items():
            default = f.default_factory() if f.default_factory is not None else f.default
            if default is PydanticUndefined:
                line = f"# {key} = (required)"
            elif default is None:
                line = f"# {key} = (unset)"
            else:
                line = f"{key} = {_toml(default)}"
            comment = textwrap.wrap(" ".join((f.description or "").split()), width - 40) or [""]
            out.append(f"{line:<38}  # {comment[0]}".rstrip())
            out += [f"{'':<38}  # {more}" for more in comment[1:]]
        out.append("")
    return out[:-1] + ["```"]
