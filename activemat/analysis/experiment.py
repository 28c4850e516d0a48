"""Measured band gaps of alloys, one data file per system, and model-vs-experiment deviations.

Each system's measured gap is a TOML file in ``experiments/`` (format: the
comments of ``experiments/SiGe.toml`` and ``experiments/AlGaAs.toml``), read
by :func:`load_measured` into a :class:`Measured`: per conduction-band valley
a branch (a polynomial in x, or end-member gaps with a bowing polynomial,
each with its uncertainty), or measured points; the correction terms that
turn the measurement into what a static-lattice, scalar-relativistic
Kohn-Sham gap is compared with (:class:`Correction`); and a measured valley
crossover. The gap is the lowest branch; the crossover of the branches is
where the lowest changes valley. A store finds its file by its mixing pair
and fixed species (:func:`measured_for_parent`).

The first system is Si(1-x)Ge(x): the low-temperature fit of Weber and
Alonso, Phys. Rev. B 40, 5683 (1989), for unstrained bulk alloys:

- Si-like (Delta) branch: E(x) = 1.155 - 0.43 x + 0.206 x^2 eV;
- Ge-like (L) branch:     E(x) = 2.010 - 1.270 x eV;

the conduction-band minimum crosses from Delta to L near x = 0.85
(:data:`CROSSOVER_X`). The functions named for it (:func:`weber_alonso_gap`,
:func:`comparable_gap`, :func:`parse_corrections`, ...) read its file.

>>> round(float(weber_alonso_gap(0.0)), 3)   # Si: the Si-like branch
1.155
>>> round(float(weber_alonso_gap(1.0)), 3)   # Ge: min(0.931, 0.740)
0.74
>>> round(CROSSOVER_X, 3)
0.843

What a computed gap is compared with
------------------------------------
The curve is kept exactly as measured. A correction term is a
:class:`Correction` of the system's file, and nothing is applied unless
named. Si-Ge's (4.2 K photoluminescence: the *excitonic* gap of a
vibrating, spin-orbit split crystal) are:

- ``exciton``: free-exciton binding energy E_x > 0 (band gap = PL gap + E_x);
- ``zpr``: zero-point renormalisation of the gap by electron-phonon coupling,
  ZPR < 0 (static-lattice gap = band gap - ZPR);
- ``soc``: spin-orbit coupling raises the valence-band maximum by
  Delta_so/3, so a scalar-relativistic gap is higher by Delta_so/3
  (scalar-relativistic gap = gap + Delta_so/3).

>>> round(float(comparable_gap(0.0)), 4)                   # no terms: as measured
1.155
>>> round(float(comparable_gap(0.0, "exciton")), 4)        # + E_x(Si)
1.1697
>>> parse_corrections("all")
('exciton', 'zpr', 'soc')
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from activemat.errors import InputError

#: Measured gaps, one TOML file per system (format: the comments of ``experiments/SiGe.toml``).
EXPERIMENTS = Path(__file__).with_name("experiments")

CITATION = "Weber and Alonso, Phys. Rev. B 40, 5683 (1989)"
CITATION_SHORT = "Weber & Alonso, PRB 40, 5683 (1989)"
ELEMENTS = ("Si", "Ge")  # the curve is for Si(1-x)Ge(x): x is the Ge fraction

SI_BRANCH = (1.155, -0.43, 0.206)  # eV: c0 + c1 x + c2 x^2
GE_BRANCH = (2.010, -1.270)  # eV: c0 + c1 x


def si_like_gap(x):
    """Si-like (Delta) branch in eV: 1.155 - 0.43 x + 0.206 x^2."""
    x = np.asarray(x, float)
    return SI_BRANCH[0] + SI_BRANCH[1] * x + SI_BRANCH[2] * x ** 2


def ge_like_gap(x):
    """Ge-like (L) branch in eV: 2.010 - 1.270 x."""
    x = np.asarray(x, float)
    return GE_BRANCH[0] + GE_BRANCH[1] * x


def weber_alonso_gap(x):
    """Measured low-temperature gap (eV) of Si(1-x)Ge(x) at Ge fraction ``x``: the lower branch."""
    return np.minimum(si_like_gap(x), ge_like_gap(x))


def _crossover() -> float:
    # 0.206 x^2 + (1.270 - 0.43) x + (1.155 - 2.010) = 0, the positive root
    a, b, c = SI_BRANCH[2], SI_BRANCH[1] - GE_BRANCH[1], SI_BRANCH[0] - GE_BRANCH[0]
    return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)


CROSSOVER_X = _crossover()  # ~0.843: Delta-like below, L-like above


def _between(x, at_0: float, at_1: float):
    """Linear in ``x``: ``at_0`` at x = 0, ``at_1`` at x = 1."""
    x = np.asarray(x, float)
    return (1.0 - x) * at_0 + x * at_1


@dataclass(frozen=True)
class Correction:
    """One term between the measured gap and a static-lattice, scalar-relativistic Kohn-Sham gap.

    ``at_0`` and ``at_1`` are the physical quantity in eV for the two end
    members (x = 0 and x = 1; e.g. ZPR < 0), linearly interpolated in x
    between them (:meth:`value`); an alloy's own value is rarely measured,
    so the interpolation is an assumption, good to about the difference of
    the end members. ``direction`` (+1 or -1) turns the quantity into the
    shift added to the measured curve (:meth:`shift`). ``convention`` says
    so in words, ``citation`` where the numbers come from and
    ``uncertainty_0``/``uncertainty_1`` (eV) how well they are known.

    >>> c = sige().correction("zpr")
    >>> float(c.value(0.0)), float(c.shift(0.0))   # ZPR of Si is negative; the reference goes up
    (-0.059, 0.059)
    """

    name: str
    label: str
    at_0: float
    at_1: float
    uncertainty_0: float
    uncertainty_1: float
    direction: int
    convention: str
    citation: str

    def value(self, x):
        """The quantity (eV) at ``x``: (1 - x) at_0 + x at_1.

        >>> round(float(sige().correction("exciton").value(0.5)), 6)   # (14.7 + 4.15) / 2 meV
        0.009425
        """
        return _between(x, self.at_0, self.at_1)

    def shift(self, x):
        """What this term adds (eV) to the measured gap at ``x``: ``direction * value(x)``.

        >>> round(float(sige().correction("soc").shift(1.0)), 4)       # Delta_so(Ge)/3
        0.0967
        """
        return self.direction * self.value(x)

    def uncertainty(self, x):
        """Uncertainty (eV) of :meth:`value` at ``x``, interpolated like the value."""
        return _between(x, self.uncertainty_0, self.uncertainty_1)


@dataclass(frozen=True)
class Branch:
    """One conduction-band valley's measured gap as a polynomial in x (``coefficients`` c0, c1, ... eV).

    ``ends`` and ``bowing`` keep the file's end-member form where it was given that way: E(x) = (1-x) E0 +
    x E1 - x(1-x) C(x), C(x) = C0 + C1 x + ...; ``uncertainty`` (eV, or None) and ``note`` say how well it
    is known.
    """

    valley: str
    coefficients: tuple[float, ...]
    uncertainty: float | None = None
    note: str = ""
    ends: tuple[float, float] | None = None
    bowing: tuple[float, ...] = ()

    def gap(self, x):
        """The branch's gap (eV) at ``x``."""
        x = np.asarray(x, float)
        return sum(c * x ** k for k, c in enumerate(self.coefficients)) + np.zeros_like(x)


def _polynomial(ends, bowing) -> tuple[float, ...]:
    """Coefficients of (1-x) E0 + x E1 - x(1-x) (C0 + C1 x + ...).

    >>> _polynomial((1.0, 2.0), (0.5,))
    (1.0, 0.5, 0.5)
    """
    P = np.polynomial.polynomial
    line = np.array([ends[0], ends[1] - ends[0]], float)
    bowed = P.polymul([0.0, 1.0, -1.0], np.asarray(bowing, float)) if len(bowing) else np.zeros(1)
    return tuple(float(c) for c in P.polysub(line, bowed))


@dataclass(frozen=True)
class Measured:
    """A system's measured gap from its data file (:func:`load_measured`).

    >>> m = measured_for(("Si", "Ge"))
    >>> m.short, round(float(m.gap(1.0)), 3), round(m.crossover(), 3), m.crossover_valleys()
    ('Weber & Alonso, PRB 40, 5683 (1989)', 0.74, 0.843, ('Delta', 'L'))
    """

    system: str
    elements: tuple[str, str]
    fixed: tuple[str, ...]
    reference: str
    short: str
    temperature: float | None
    quantity: str
    branches: tuple[Branch, ...]
    points: tuple[tuple[float, float, str], ...]  # (x, gap, reference)
    path: str
    corrections: tuple[Correction, ...] = ()
    measured_crossover: dict | None = None  # lower, upper, x, uncertainty, temperature, reference

    @property
    def axis(self) -> str:
        """The composition axis in words, e.g. ``Al fraction x in Al(x)Ga(1-x)As``."""
        return f"{self.elements[1]} fraction x in {self.system}"

    def branch_gaps(self, x) -> dict[str, np.ndarray]:
        """Each branch's gap (eV) at ``x``, by valley."""
        return {b.valley: b.gap(x) for b in self.branches}

    def gap(self, x):
        """The measured gap (eV) at ``x``: the lowest branch, else the points interpolated linearly."""
        x = np.asarray(x, float)
        if self.branches:
            return np.min(np.stack(list(self.branch_gaps(x).values())), axis=0)
        xs, gaps = np.array([p[0] for p in self.points]), np.array([p[1] for p in self.points])
        order = np.argsort(xs)
        return np.interp(x, xs[order], gaps[order])

    def _lowest(self, x) -> np.ndarray:
        return np.argmin(np.stack(list(self.branch_gaps(np.atleast_1d(x)).values())), axis=0)

    def crossover(self) -> float:
        """Where the lowest branch changes valley (the first change on a fine grid, refined by bisection); NaN
        with fewer than two branches or no change."""
        if len(self.branches) < 2:
            return float("nan")
        grid = np.linspace(0, 1, 1001)
        which = self._lowest(grid)
        change = np.flatnonzero(np.diff(which))
        if not len(change):
            return float("nan")
        lo, hi = grid[change[0]], grid[change[0] + 1]
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self._lowest(mid)[0] == which[change[0]] else (lo, mid)
        return float((lo + hi) / 2)

    def crossover_valleys(self) -> tuple[str, str] | None:
        """The valleys whose crossover matters: the file's ``[crossover]`` pair, else the lowest branch at
        x = 0 and at x = 1; None when the minimum never changes valley."""
        if self.measured_crossover:
            return self.measured_crossover["lower"], self.measured_crossover["upper"]
        if len(self.branches) < 2:
            return None
        at = self._lowest(np.array([0.0, 1.0]))
        return None if at[0] == at[1] else (self.branches[at[0]].valley, self.branches[at[1]].valley)

    @property
    def correction_names(self) -> tuple[str, ...]:
        """The names of the file's correction terms, in its order."""
        return tuple(c.name for c in self.corrections)

    def correction(self, name: str) -> Correction:
        """The correction term called ``name`` (InputError if the file has none of that name)."""
        return self._terms([name])[0]

    def parse_corrections(self, spec=None) -> tuple[str, ...]:
        """The correction names ``spec`` asks for, in the file's order: ``None``, ``""`` or ``"none"`` (no
        term), ``"all"``, a comma-separated string or an iterable of names; InputError for a name the file
        has not."""
        if spec is None:
            return ()
        names = [n.strip().lower() for n in (spec.split(",") if isinstance(spec, str) else spec)]
        names = [n for n in names if n and n != "none"]
        if "all" in names:
            return self.correction_names
        unknown = [n for n in names if n not in self.correction_names]
        if unknown:
            have = f"choose from {', '.join(self.correction_names)}, all or none" if self.corrections else \
                "it has none: use none"
            raise InputError(f"unknown correction {', '.join(unknown)} for {self.system} ({Path(self.path).name}); "
                             f"{have}")
        return tuple(n for n in self.correction_names if n in names)

    def _terms(self, terms) -> list[Correction]:
        chosen = self.parse_corrections(terms)
        return [c for c in self.corrections if c.name in chosen]

    def correction_shift(self, x, terms=()):
        """Sum (eV) of the named terms' shifts at ``x``; 0 for no terms."""
        x = np.asarray(x, float)
        return sum((c.shift(x) for c in self._terms(terms)), np.zeros_like(x))

    def comparable_gap(self, x, terms=()):
        """The measured gap plus the named terms' shifts (eV); with no terms (the default) the measured gap."""
        return self.gap(x) + self.correction_shift(x, terms)

    def describe_corrections(self, terms=()) -> list[dict]:
        """One dict per named term, for output: ``name``, ``label``, ``shift_at_0``/``shift_at_1`` (eV added to
        the measured gap at x = 0 / 1), the quantity ``value_at_0``/``value_at_1`` with its
        ``uncertainty_at_0``/``uncertainty_at_1``, ``convention`` and ``citation``."""
        return [{"name": c.name, "label": c.label, "shift_at_0": float(c.shift(0.0)), "shift_at_1": float(c.shift(1.0)),
                 "value_at_0": c.at_0, "value_at_1": c.at_1, "uncertainty_at_0": c.uncertainty_0,
                 "uncertainty_at_1": c.uncertainty_1, "convention": c.convention, "citation": c.citation}
                for c in self._terms(terms)]

    def deviations(self, x, gap, terms=()) -> dict:
        """Model minus experiment (eV) of a composition-averaged curve given at compositions ``x``.

        ``mean_signed`` and ``mean_abs`` average over the given compositions; ``at_0`` and ``at_1`` are the
        deviations at the end members (NaN when the curve does not reach them). ``terms``: corrections
        applied to the measured curve first (default none), listed again under ``corrections``.
        """
        x, gap = np.asarray(x, float), np.asarray(gap, float)
        d = gap - self.comparable_gap(x, terms)

        def at(x0: float) -> float:
            hit = np.flatnonzero(np.isclose(x, x0, atol=1e-9))
            return float(d[hit[0]]) if len(hit) else float("nan")

        return {"mean_signed": float(np.mean(d)), "mean_abs": float(np.mean(np.abs(d))),
                "max_abs": float(np.max(np.abs(d))), "at_0": at(0.0), "at_1": at(1.0),
                "n_compositions": int(len(x)), "corrections": list(self.parse_corrections(terms))}


def _branch(b: dict) -> Branch:
    if "coefficients" in b:
        coefficients, ends, bowing = tuple(float(c) for c in b["coefficients"]), None, ()
    else:
        ends, bowing = tuple(float(e) for e in b["ends"]), tuple(float(c) for c in b.get("bowing", ()))
        if len(ends) != 2:
            raise ValueError("'ends' (two end-member gaps)")
        coefficients = _polynomial(ends, bowing)
    uncertainty = b.get("uncertainty")
    return Branch(str(b["valley"]), coefficients, None if uncertainty is None else float(uncertainty),
                  str(b.get("note", "")), ends, bowing)


def _correction(c: dict) -> Correction:
    scale = float(c.get("scale", 1.0))
    (v0, v1), (u0, u1) = c["values"], c["uncertainties"]
    direction = int(c["direction"])
    if direction not in (-1, 1):
        raise ValueError("'direction' (+1 or -1)")
    return Correction(str(c["name"]).lower(), str(c["label"]), scale * float(v0), scale * float(v1),
                      abs(scale) * float(u0), abs(scale) * float(u1), direction, str(c["convention"]),
                      str(c["citation"]))


def _crossover_table(data: dict) -> dict | None:
    c = data.get("crossover")
    if c is None:
        return None
    return {"lower": str(c["lower"]), "upper": str(c["upper"]), "x": float(c["x"]),
            "uncertainty": float(c["uncertainty"]), "temperature": c.get("temperature"),
            "reference": str(c["reference"])}


def load_measured(path: str | Path) -> Measured:
    """Read one system's measured-gap file (TOML; the format is described in ``experiments/SiGe.toml``)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: not a readable measured-gap file ({exc})") from None
    try:
        branches = tuple(_branch(b) for b in data.get("branch", []))
        points = tuple((float(p["x"]), float(p["gap"]), str(p.get("reference", data.get("reference", ""))))
                       for p in data.get("point", []))
        elements = tuple(str(e) for e in data["elements"])
        if len(elements) != 2 or not (branches or points):
            raise ValueError("needs two elements and at least one branch or point")
        return Measured(str(data["system"]), elements, tuple(data.get("fixed", [])), str(data["reference"]),
                        str(data.get("short", data["reference"])), data.get("temperature"),
                        str(data.get("quantity", "band gap")), branches, points, str(path),
                        tuple(_correction(c) for c in data.get("correction", [])), _crossover_table(data))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: measured-gap file lacks or mistypes {exc}; see experiments/SiGe.toml for the "
                         "format (system, elements, reference, [[branch]] or [[point]])") from None


@functools.lru_cache(maxsize=None)
def _shipped() -> tuple[Measured, ...]:
    return tuple(load_measured(p) for p in sorted(EXPERIMENTS.glob("*.toml")))


def measured_for(elements, fixed=()) -> Measured | None:
    """The shipped measured gap of the system whose mixing pair is ``elements`` (host first) and whose fixed
    sublattices hold ``fixed``, or None when none is shipped."""
    for m in _shipped():
        if m.elements == tuple(elements) and sorted(m.fixed) == sorted(fixed):
            return m
    return None


def fixed_species(parent) -> tuple[str, ...]:
    """The species of a parent's fixed sublattices (sites allowing one species), sorted: ``('As',)``."""
    return tuple(sorted({s[0] for s in parent.chemical_symbols if len(s) == 1}))


def measured_for_parent(parent, *, required: bool = False) -> Measured | None:
    """The shipped measured gap of a store's system (:class:`activemat.space.lattice.Parent`: its mixing pair
    and fixed species). With ``required``, no file is an InputError naming the system and the fix."""
    measured = measured_for(parent.elements, fixed_species(parent))
    if measured is None and required:
        raise InputError(f"no measured gap is shipped for {parent.name}: add a file to activemat/analysis/"
                         "experiments/ (format: SiGe.toml or AlGaAs.toml there) or leave out the comparison with "
                         "experiment")
    return measured


def sige() -> Measured:
    """Si(1-x)Ge(x)'s measured gap (Weber and Alonso) and its correction terms, from ``experiments/SiGe.toml``."""
    return measured_for(ELEMENTS)


def __getattr__(name: str):
    # CORRECTIONS and CORRECTION_NAMES: Si-Ge's terms, read from its file when first asked for
    if name == "CORRECTIONS":
        return {c.name: c for c in sige().corrections}
    if name == "CORRECTION_NAMES":
        return sige().correction_names
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_corrections(spec=None) -> tuple[str, ...]:
    """Si-Ge's correction names ``spec`` asks for (:meth:`Measured.parse_corrections`).

    >>> parse_corrections(None), parse_corrections("soc,exciton")
    ((), ('exciton', 'soc'))
    """
    return sige().parse_corrections(spec)


def correction_shift(x, terms=()):
    """Sum (eV) of Si-Ge's named terms' shifts at ``x``; 0 for no terms.

    >>> round(float(correction_shift(1.0, "all")), 4)   # Ge: 4.15 + 50 + 96.7 meV
    0.1508
    """
    return sige().correction_shift(x, terms)


def comparable_gap(x, terms=()):
    """Si-Ge's measured gap plus the named terms (eV): exciton (E_x: Si 14.7, Ge 4.15 meV), zpr (-ZPR: Si 59, Ge
    50 meV), soc (Delta_so/3: Si 14.7, Ge 96.7 meV); none by default.

    >>> round(float(comparable_gap(1.0, ["zpr", "soc"])), 4)   # 0.740 + 0.050 + 0.0967
    0.8867
    """
    return sige().comparable_gap(x, terms)


def describe_corrections(terms=()) -> list[dict]:
    """:meth:`Measured.describe_corrections` of Si-Ge's terms.

    >>> [(d["name"], round(d["shift_at_0"], 4)) for d in describe_corrections("exciton")]
    [('exciton', 0.0147)]
    """
    return sige().describe_corrections(terms)


def deviations(x, gap, terms=()) -> dict:
    """:meth:`Measured.deviations` against Si-Ge's measured gap."""
    return sige().deviations(x, gap, terms)
