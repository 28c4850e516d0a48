"""Named DFT presets (``calculators/*.toml``): what to compute, not where."""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from activemat.errors import InputError

#: Presets shipped inside the package: the repository's ``calculators/`` folder, installed as the package
#: data ``activemat.calculators`` (pyproject.toml maps one onto the other).
SHIPPED = "activemat.calculators"
#: Keys GPAW 26.7 knows in ``convergence`` (gpaw/convergence_criteria.py; "bands" is set from ``converge_bands``).
CONVERGENCE_KEYS = ("energy", "density", "eigenstates", "eigenvalues", "forces", "work function",
                    "minimum iterations", "maximum iterations")
#: Keys of an ``xc`` table: the functional's name and the options of the semilocal (meta-)GGA functionals
#: activemat runs (TB09's ``c``, the gradient ``stencil``).
XC_KEYS = ("name", "stencil", "c")


def preset_name(spec: str) -> str:
    """The name of a preset given by name or by path: a path's file name without ``.toml``.

    Every command resolves a campaign's presets through here, so a preset given by path runs, resumes and
    reads back under one name (the one its store rows carry).

    >>> preset_name("calculators/my-fast.toml"), preset_name("gpaw-fast")
    ('my-fast', 'gpaw-fast')
    """
    return Path(spec).stem if spec.endswith(".toml") else spec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class GpawSettings(_Strict):
    """Plane-wave GPAW settings; units eV and Angstrom."""

    ecut: float = Field(gt=0, description="plane-wave cutoff (eV)")
    xc: str | dict[str, str | int | float] = Field(
        "PBE", description='functional: a name ("PBE") or a GPAW xc table ({name = "TB09", stencil = 1})')
    legacy: bool = Field(False, description="run GPAW's legacy calculator (legacy_gpaw=True); needed by TB09 and GLLB-SC")
    gap: Literal["ks", "gllbsc"] = Field(
        "ks", description='"ks": Kohn-Sham CBM - VBM; "gllbsc": Kohn-Sham gap plus the GLLB-SC derivative discontinuity')
    kpts_density: float = Field(gt=0, description="Gamma-centred k-points per reciprocal Angstrom (ASE convention)")
    smearing: float = Field(0.01, ge=0, description="Fermi-Dirac width (eV)")
    extra_bands: int = Field(8, ge=1, description="unoccupied bands computed, for cells of up to 16 atoms; a "
                                                  "larger cell of N atoms gets N/16 times as many")
    converge_bands: int = Field(4, ge=1, description="unoccupied bands converged, so the conduction edge is accurate "
                                                     "(scaled like extra_bands)")
    convergence: dict[str, float] = Field(default_factory=dict)
    maxiter: int = Field(300, ge=1)
    mixer: tuple[float, int, float] | None = Field(None, description="(beta, nmaxold, weight); None: GPAW's default")
    edges: Literal["grid", "folded"] = Field(
        "grid", description='"grid": band edges on the self-consistent k-points only (the first presets); "folded": '
                            "then a fixed-density pass on the supercell k-points onto which the primitive cell's "
                            "Gamma, X, L and Delta (0.85 Gamma-X) fold, with the CBM's character by unfolding "
                            "(activemat.compute.edges)")
    spinorbit: bool = Field(False, description="also the gap with spin-orbit coupling, added non-self-consistently "
                                               '(gpaw.spinorbit); needs edges = "folded"')

    @field_validator("xc")
    @classmethod
    def _xc_has_name(cls, xc):
        if isinstance(xc, dict) and not isinstance(xc.get("name"), str):
            raise ValueError('an xc table needs a string "name", e.g. {name = "TB09", stencil = 1}')
        unknown = sorted(set(xc) - set(XC_KEYS)) if isinstance(xc, dict) else []
        if unknown:
            raise ValueError(f"unknown xc key(s) {', '.join(map(repr, unknown))}; known: {', '.join(XC_KEYS)}")
        return xc

    @field_validator("convergence")
    @classmethod
    def _known_convergence(cls, convergence):
        unknown = sorted(set(convergence) - set(CONVERGENCE_KEYS))
        if unknown:
            raise ValueError(f"unknown convergence key(s) {', '.join(map(repr, unknown))}; known: "
                             f"{', '.join(CONVERGENCE_KEYS)}")
        return convergence

    @property
    def xc_name(self) -> str:
        return self.xc if isinstance(self.xc, str) else self.xc["name"]

    @model_validator(mode="after")
    def _consistent_method(self):
        # In GPAW 26.7 these functionals exist only in the legacy calculator; say so rather than fall back silently.
        if self.xc_name.upper().startswith(("TB09", "GLLB")) and not self.legacy:
            raise ValueError(f"xc {self.xc_name} runs on GPAW's legacy calculator: set legacy = true")
        if self.gap == "gllbsc" and not self.xc_name.upper().startswith("GLLB"):
            raise ValueError(f'gap = "gllbsc" needs a GLLB functional (xc = "GLLBSC"), not {self.xc_name}')
        if self.spinorbit and self.edges != "folded":
            raise ValueError('spinorbit = true needs edges = "folded" (spin-orbit is added on the edge pass)')
        return self


class RelaxSettings(_Strict):
    """Relaxation before the gap: ASE optimizer on GPAW forces (and stress, for the cell)."""

    kind: Literal["positions", "cell"] = Field(
        "positions", description='"positions": internal coordinates at the fixed (Vegard) cell; "cell": also the '
                                 "cell shape and volume (ase.filters.FrechetCellFilter)")
    fmax: float = Field(0.05, gt=0, description="converged when every force is below this (eV/Angstrom); with "
                                                "kind = \"cell\", the stress times the cell volume per atom too")
    steps: int = Field(100, ge=1, description="optimizer steps at most per attempt; an attempt that stops short "
                                              "fails and the retry continues from its last geometry")
    optimizer: Literal["BFGS", "FIRE"] = Field("BFGS", description="ASE optimizer (ase.optimize)")
    forces: str | None = Field(None, description="the preset whose forces relax the structure (a PBE preset for "
                                                 "TB09, which has none); its gap at the relaxed structure is kept "
                                                 "too (relax_gap). None: this preset's own forces")


class Preset(_Strict):
    name: str
    description: str = ""
    gpaw: GpawSettings
    relax: RelaxSettings | None = Field(None, description="relax the structure before the gap; None: the ideal "
                                                          "Vegard structure as built")
    fallbacks: list[dict] = Field(default_factory=list, description="settings to change on each retry after a failure")
    forces_gpaw: GpawSettings | None = Field(None, description="the settings of relax.forces, filled in when the "
                                                               "preset is loaded (a calculation carries them to "
                                                               "its worker)")

    @model_validator(mode="after")
    def _valid_fallbacks(self):
        for k in range(1, len(self.fallbacks) + 1):
            self.with_fallback(k)  # raises on an unknown or invalid key
        return self

    def with_fallback(self, level: int) -> "Preset":
        """This preset with its fallback settings 1..level applied (0: as written)."""
        if level == 0 or not self.fallbacks:
            return self
        settings = self.gpaw.model_dump()
        for change in self.fallbacks[: level]:
            settings.update(change)
        return self.model_copy(update={"gpaw": GpawSettings.model_validate(settings)})


def preset_dirs() -> list[Path]:
    """Where presets are looked up: $ACTIVEMAT_CALCULATORS (colon-separated), then the shipped presets."""
    extra = [Path(p) for p in os.environ.get("ACTIVEMAT_CALCULATORS", "").split(":") if p]
    return [*extra, Path(str(resources.files(SHIPPED)))]


def available_presets() -> list[str]:
    return sorted({p.stem for d in preset_dirs() if d.is_dir() for p in d.glob("*.toml")})


def load_preset(name: str) -> Preset:
    """Load a preset by name (or by path to a .toml file)."""
    candidates = [Path(name)] if name.endswith(".toml") else [d / f"{name}.toml" for d in preset_dirs()]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        known = ", ".join(available_presets()) or "none found"
        raise InputError(f"unknown calculator preset '{name}'; known presets: {known}")
    try:
        data = tomllib.loads(path.read_text())
        preset = Preset.model_validate({"name": preset_name(str(path)), **data})
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc}); fix the preset file") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path}: {where}: {first['msg']}; fix the preset file") from None
    return _with_forces(preset, path)


def _with_forces(preset: Preset, path: Path) -> Preset:
    """The preset with the GPAW settings of the preset whose forces relax it (``[relax] forces``) resolved."""
    forces = preset.relax.forces if preset.relax is not None else None
    if forces is None:
        if preset.gpaw.spinorbit and preset.gpaw.legacy:
            raise InputError(f"{path}: spinorbit = true on GPAW's legacy calculator (which has no spin-orbit "
                             "step): set [relax] forces to a PBE preset, whose spin-orbit shift is used")
        return preset
    if forces == preset.name:
        raise InputError(f"{path}: [relax] forces names the preset itself; leave it out to relax with own forces")
    other = load_preset(forces)
    if other.gpaw.legacy:
        raise InputError(f"{path}: [relax] forces = {forces!r} runs on GPAW's legacy calculator; name a PBE preset")
    return preset.model_copy(update={"forces_gpaw": other.gpaw})
