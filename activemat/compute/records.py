"""The typed result of one calculation attempt; failure is data, not an exception."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class CalculationRecord:
    """Everything one attempt produced. Energies in eV, times in seconds (unix epoch)."""

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

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def wall_time(self) -> float:
        return self.finished - self.started

    def as_dict(self) -> dict:
        return asdict(self)
