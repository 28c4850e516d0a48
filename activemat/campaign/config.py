"""Campaign files: TOML validated by pydantic into a CampaignConfig, and the campaign's identity.

The sections and their keys are :mod:`activemat.campaign.sections`; here they are put together, checked
against each other (multi-fidelity needs a cost-aware strategy and a GP), and hashed into the identity a
store must match to be resumed.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

from pydantic import ValidationError, model_validator

from activemat.campaign.sections import (  # noqa: F401  (the sections are part of this module's API)
    CalculatorSection,
    CampaignSection,
    CheaperFidelity,
    ClusterSection,
    FaultsSection,
    MAX_BUDGET,
    MAX_SEED,
    MAX_WORKERS,
    ModelSection,
    SpaceSection,
    StopSection,
    StrategySection,
    _Section,
)
from activemat.errors import InputError
from activemat.learn.strategies import COST_AWARE
from activemat.space.lattice import LATTICE_CONSTANTS_BY_LATTICE, Parent


class CampaignConfig(_Section):
    campaign: CampaignSection = CampaignSection()
    space: SpaceSection = SpaceSection()
    calculator: CalculatorSection = CalculatorSection()
    model: ModelSection = ModelSection()
    strategy: StrategySection = StrategySection()
    stop: StopSection = StopSection()
    cluster: ClusterSection = ClusterSection()
    faults: FaultsSection = FaultsSection()

    @model_validator(mode="after")
    def _multi_fidelity(self):
        if self.calculator.cheaper:
            if self.strategy.kind not in COST_AWARE:
                raise ValueError("a multi-fidelity campaign picks candidate and fidelity by cost-aware variance "
                                 "reduction: set [strategy] kind = \"ivr\" (the pool) or \"ivr_curve\" (the "
                                 "composition curve)")
            if self.model.transfer_from:
                raise ValueError("use either [calculator] cheaper (multi-fidelity) or [model] transfer_from, not both")
        if (self.calculator.cheaper or self.model.transfer_from) and self.model.kind != "gp":
            raise ValueError("multi-fidelity and transfer models are Gaussian processes: set [model] kind = \"gp\"")
        return self

    def identity(self) -> str:
        """Hash of what defines the data (space and calculator).

        A store can only be continued by a campaign with the same identity;
        budget, strategy, model and cluster may change between runs.
        """
        calculator = {"preset": self.calculator.preset}  # costs may be re-measured; they define no data
        if self.calculator.cheaper:
            calculator["cheaper"] = [f.preset for f in self.calculator.cheaper]
        relax = self.calculator.relax_settings()
        if relax is not None:  # relaxed gaps are other data (absent: the original, unrelaxed campaigns)
            calculator["relax"] = relax
        space = self.space.model_dump(mode="json")
        # Keys added after stores existed leave the hash when at their original meaning, so those stores resume.
        if not space["sqs"]:
            del space["sqs"]  # pools without SQS are the original pools
            if space["features"] != "icet":
                del space["cutoffs"]  # only icet features and SQS use them
        if space["features"] == "shells":
            del space["features"]  # the original feature set
        if space["cell"] == "primitive":
            del space["cell"]  # the original cell
        # The parent enters as what it is, not as spelled: the diamond lattice of the two elements at the shipped
        # constants is the original space (no key); any other parent by its sites, constants and geometry.
        parent = self.space.parent()
        for key in ("lattice", "structure", "chemical_symbols", "lattice_constants"):
            del space[key]
        if not _original_parent(parent):
            space["parent"] = {"lattice": parent.lattice if parent.cell is None else "structure file",
                               "chemical_symbols": [list(s) for s in parent.chemical_symbols],
                               "constants": list(parent.constants)}
            if parent.cell is not None:
                space["parent"]["cell"] = [list(r) for r in parent.cell]
                space["parent"]["scaled_positions"] = [list(r) for r in parent.scaled_positions]
        spec = {"space": space, "calculator": calculator}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _original_parent(parent: Parent) -> bool:
    """The space before other parents existed: the diamond lattice, both elements on every site, shipped constants."""
    table = LATTICE_CONSTANTS_BY_LATTICE["diamond"]
    return parent.is_diamond_pair and parent.cell is None and all(e in table for e in parent.elements) and \
        parent.constants == tuple(table[e] for e in parent.elements)


def _one_line(path: Path, err: ValidationError, overrides: dict[str, str]) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key; check its spelling against the campaign file reference (docs: reference/campaign)"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    option = next((opt for key, opt in overrides.items() if where.startswith(key)), None)
    if option:
        return f"{option}: {where}: {msg}{more}"
    return f"{path}: {where}: {msg}{more}"


def parse_campaign(text: str, source: Path | str = "<campaign>", overrides: dict | None = None,
                   parent: Parent | None = None) -> CampaignConfig:
    """Validate campaign TOML text; raise InputError with a one-line message.

    ``overrides`` maps a dotted key to ``(value, option)``, e.g.
    ``{"stop.budget": (20, "--budget 20")}``: the value replaces the file's
    before validation, so a command-line override passes the same checks as
    the file, and an error names the option. ``parent``: the parent structure
    a store recorded, used instead of building it from ``[space]`` (whose
    structure file may not be where the store is read).
    """
    source = Path(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML ({exc}); fix the syntax") from None
    for key, (value, _) in (overrides or {}).items():
        section, name = key.split(".")
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise InputError(f"{source}: {section}: must be a table [{section}]; fix the file")
        table[name] = value
    try:
        return CampaignConfig.model_validate(data, context={"parent": parent})
    except ValidationError as exc:
        raise InputError(_one_line(source, exc, {k: opt for k, (_, opt) in (overrides or {}).items()})) from None


def load_campaign(path: str | Path, overrides: dict | None = None) -> tuple[CampaignConfig, str]:
    """Read and validate a campaign file (with ``overrides``, see :func:`parse_campaign`); return the config and
    the file's text."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"campaign file not found: {path}; give the path of a .toml file, or write one from a "
                         "template with `activemat init demo` (`activemat init --list` names the templates)")
    text = path.read_text()
    return parse_campaign(text, path, overrides), text
