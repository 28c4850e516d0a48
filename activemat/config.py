"""Campaign files: TOML validated by pydantic into a CampaignConfig.

Every section forbids unknown keys so that a typo is an error, not a
silently ignored setting.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import InputError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CampaignSection(_Section):
    name: str = "campaign"
    store: str = Field("runs/campaign.h5", description="HDF5 store path, relative to the working directory")
    seed: int = 0
    scratch: str | None = Field(None, description="scratch root; default: <store>.scratch/")


class SpaceSection(_Section):
    elements: tuple[str, str] = ("Si", "Ge")
    supercell: tuple[int, int, int] = (2, 2, 2)
    mode: Literal["configurations", "compositions", "sampled"] = "configurations"
    samples_per_composition: int | None = Field(None, gt=0)


class CalculatorSection(_Section):
    preset: str = "gpaw-fast"


class ModelSection(_Section):
    kind: Literal["gp", "linear"] = "gp"
    ard: bool = Field(False, description="one GP length scale per feature")
    restarts: int = Field(2, ge=0, description="GP hyperparameter optimizer restarts")


class StrategySection(_Section):
    kind: Literal["max_std", "ei", "ucb", "pi", "random", "fixed"] = "max_std"
    n_seed: int = Field(4, ge=1, description="space-filling picks over compositions before the model steers")
    target_gap: float | None = Field(None, description="eV; the gap ei/ucb/pi look for")
    beta: float = Field(2.0, gt=0, description="ucb exploration weight")
    tradeoff: float = Field(0.0, ge=0, description="ei/pi exploration margin (eV)")
    fixed: list[str] = Field(default_factory=list, description="formulas for kind='fixed', e.g. 'Si4Ge12'")

    @model_validator(mode="after")
    def _needs(self):
        if self.kind in ("ei", "ucb", "pi") and self.target_gap is None:
            raise ValueError(f"strategy kind '{self.kind}' needs target_gap (eV)")
        if self.kind == "fixed" and not self.fixed:
            raise ValueError("strategy kind 'fixed' needs a non-empty list 'fixed'")
        return self


class StopSection(_Section):
    budget: int = Field(10, ge=1, description="completed calculations")
    target_std: float | None = Field(None, gt=0, description="eV; stop when the pool's max posterior std is below")


class ClusterSection(_Section):
    kind: Literal["local"] = "local"
    workers: int = Field(2, ge=1)
    prefetch: int = Field(0, ge=0, description="extra submissions beyond one per worker")
    dashboard: bool = True


class CampaignConfig(_Section):
    campaign: CampaignSection = CampaignSection()
    space: SpaceSection = SpaceSection()
    calculator: CalculatorSection = CalculatorSection()
    model: ModelSection = ModelSection()
    strategy: StrategySection = StrategySection()
    stop: StopSection = StopSection()
    cluster: ClusterSection = ClusterSection()

    def identity(self) -> str:
        """Hash of what defines the data (space and calculator).

        A store can only be continued by a campaign with the same identity;
        budget, strategy, model and cluster may change between runs.
        """
        spec = {"space": self.space.model_dump(mode="json"),
                "calculator": self.calculator.model_dump(mode="json")}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _one_line(path: Path, err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key; check its spelling against README's campaign reference"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{path}: {where}: {msg}{more}"


def parse_campaign(text: str, source: Path | str = "<campaign>") -> CampaignConfig:
    """Validate campaign TOML text; raise InputError with a one-line message."""
    source = Path(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML ({exc}); fix the syntax") from None
    try:
        return CampaignConfig.model_validate(data)
    except ValidationError as exc:
        raise InputError(_one_line(source, exc)) from None


def load_campaign(path: str | Path) -> tuple[CampaignConfig, str]:
    """Read and validate a campaign file; return the config and its text."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"campaign file not found: {path}; give the path of a .toml file (see campaigns/)")
    text = path.read_text()
    return parse_campaign(text, path), text
