"""The typed result of one calculation attempt; failure is data, not an exception."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

#: Entries of ``CalculationRecord.parameters`` that are results of the run, not settings it ran with.
RESULT_PARAMETERS = ("gllbsc",)
#: The record field holding the gap to each conduction valley of :data:`activemat.compute.edges.VALLEYS`.
VALLEY_COLUMNS = {"Gamma": "gap_gamma", "Delta": "gap_delta", "X": "gap_x", "L": "gap_l"}


@dataclass
class CalculationRecord:
    """Everything one attempt produced. Energies in eV, times in seconds (unix epoch).

    ``parameters`` holds the GPAW keyword arguments the attempt ran with
    (plain data), plus, for a GLLB-SC gap, ``"gllbsc"``: the Kohn-Sham gap
    and the derivative discontinuity (eV).
    """

    candidate: int
    attempt: int
    preset: str
    status: str  # "ok" | "failed"
    gap: float = float("nan")
    direct: bool = False
    vbm: float = float("nan")
    cbm: float = float("nan")
    energy: float = float("nan")
    scf_iterations: int = -1
    fallback: int = 0
    kpts: tuple[int, int, int] = (0, 0, 0)
    started: float = float("nan")
    finished: float = float("nan")
    host: str = ""
    worker: str = ""
    versions: str = ""
    error: str = ""
    scratch: str = ""
    parameters: dict = field(default_factory=dict)
    ranks: int = 1  # MPI ranks the calculation ran on
    # relaxation (activemat.compute.relax); empty/NaN/None for an unrelaxed calculation
    relax: str = ""  # "positions" | "cell"
    relax_steps: int = -1  # optimizer steps of this attempt
    relax_fmax: float = float("nan")  # largest remaining force at the end, eV/Angstrom
    relax_from: int = -1  # attempt whose last geometry this one continued (-1: the ideal structure)
    unrelaxed_gap: float = float("nan")  # gap at the ideal starting structure (computed on the way), eV
    # band edges where they are (activemat.compute.edges); grid presets leave them empty
    grid_gap: float = float("nan")  # gap on the self-consistent k-points alone, eV
    vbm_k: tuple[float, float, float] = (float("nan"),) * 3  # primitive k of the edge, 2pi/a, kx>=ky>=kz>=0
    cbm_k: tuple[float, float, float] = (float("nan"),) * 3
    cbm_character: str = ""  # "Gamma" | "Delta" | "X" | "L" | "other"
    band_check: float = float("nan")  # CBM with twice the unoccupied bands minus the CBM, eV
    soc_gap: float = float("nan")  # gap with spin-orbit coupling added non-self-consistently, eV
    relax_gap: float = float("nan")  # gap of the [relax] forces preset at the relaxed structure, eV
    # gap to the lowest conduction state of each valley (activemat.compute.edges.valley_gaps), eV
    gap_gamma: float = float("nan")
    gap_delta: float = float("nan")
    gap_x: float = float("nan")
    gap_l: float = float("nan")
    positions: np.ndarray | None = None  # (atoms, 3) Angstrom: the structure the gap was computed on
    cell: np.ndarray | None = None  # (3, 3) Angstrom

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def wall_time(self) -> float:
        return self.finished - self.started

    @property
    def settings(self) -> dict:
        """The GPAW keyword arguments the attempt ran with: ``parameters`` without its results.

        >>> CalculationRecord(0, 0, "p", "ok", parameters={"xc": "GLLBSC", "gllbsc": {"ks_gap": 0.6}}).settings
        {'xc': 'GLLBSC'}
        """
        return {k: v for k, v in self.parameters.items() if k not in RESULT_PARAMETERS}

    @property
    def ks_gap(self) -> float:
        """GLLB-SC: the Kohn-Sham gap (eV) before the derivative discontinuity; NaN otherwise."""
        return float(self.parameters.get("gllbsc", {}).get("ks_gap", float("nan")))

    @property
    def discontinuity(self) -> float:
        """GLLB-SC: the derivative discontinuity (eV) added to the Kohn-Sham gap; NaN otherwise."""
        return float(self.parameters.get("gllbsc", {}).get("discontinuity", float("nan")))

    def as_dict(self) -> dict:
        return asdict(self)
