"""Measured band gap of Si(1-x)Ge(x), and model-vs-experiment deviations.

The reference is the low-temperature fit of Weber and Alonso,
Phys. Rev. B 40, 5683 (1989), for unstrained bulk Si(1-x)Ge(x) alloys:

- Si-like (Delta) branch: E(x) = 1.155 - 0.43 x + 0.206 x^2 eV;
- Ge-like (L) branch:     E(x) = 2.010 - 1.270 x eV;

the gap is the lower of the two, so the conduction-band minimum crosses from
Delta to L near x = 0.85 (:data:`CROSSOVER_X`).

>>> round(float(weber_alonso_gap(0.0)), 3)   # Si: the Si-like branch
1.155
>>> round(float(weber_alonso_gap(1.0)), 3)   # Ge: min(0.931, 0.740)
0.74
>>> round(CROSSOVER_X, 3)
0.843

What a computed gap is compared with
------------------------------------
The curve is kept exactly as measured. It is a 4.2 K photoluminescence fit,
so it is the *excitonic* gap of a real (vibrating, spin-orbit split) crystal;
a Kohn-Sham gap of a static lattice without spin-orbit coupling differs from
it by three terms, each a :class:`Correction` in :data:`CORRECTIONS`:

- ``exciton``: free-exciton binding energy E_x > 0 (band gap = PL gap + E_x);
- ``zpr``: zero-point renormalisation of the gap by electron-phonon coupling,
  ZPR < 0 (static-lattice gap = band gap - ZPR);
- ``soc``: spin-orbit coupling raises the valence-band maximum by
  Delta_so/3, so a scalar-relativistic gap is higher by Delta_so/3
  (scalar-relativistic gap = gap + Delta_so/3).

:func:`comparable_gap` adds the named terms to the measured curve; with no
terms (the default) it is the measured curve. Nothing is applied unless named:

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


@dataclass(frozen=True)
class Correction:
    """One term between the measured gap and a static-lattice, scalar-relativistic Kohn-Sham gap.

    ``si`` and ``ge`` are the physical quantity in eV for pure Si and pure
    Ge (e.g. ZPR < 0), linearly interpolated in the Ge fraction x between
    them (:meth:`value`); an alloy's own value is not measured, so the
    interpolation is an assumption, good to about the difference of the end
    members. ``direction`` (+1 or -1) turns the quantity into the shift
    added to the measured curve (:meth:`shift`): the reference a DFT gap of
    a static lattice without spin-orbit coupling should be compared with is
    the measured gap plus the shifts of the terms applied. ``convention``
    says so in words, ``citation`` where the numbers come from and
    ``si_uncertainty``/``ge_uncertainty`` (eV) how well they are known.

    >>> c = CORRECTIONS["zpr"]
    >>> float(c.value(0.0)), float(c.shift(0.0))   # ZPR of Si is negative; the reference goes up
    (-0.059, 0.059)
    """

    name: str
    label: str
    si: float
    ge: float
    si_uncertainty: float
    ge_uncertainty: float
    direction: int
    convention: str
    citation: str

    def value(self, x):
        """The quantity (eV) at Ge fraction ``x``: (1 - x) Si + x Ge.

        >>> round(float(CORRECTIONS["exciton"].value(0.5)), 6)   # (14.7 + 4.15) / 2 meV
        0.009425
        """
        return _between(x, self.si, self.ge)

    def shift(self, x):
        """What this term adds (eV) to the measured gap at ``x``: ``direction * value(x)``.

        >>> round(float(CORRECTIONS["soc"].shift(1.0)), 4)       # Delta_so(Ge)/3
        0.0967
        """
        return self.direction * self.value(x)

    def uncertainty(self, x):
        """Uncertainty (eV) of :meth:`value` at ``x``, interpolated like the value."""
        return _between(x, self.si_uncertainty, self.ge_uncertainty)


def _between(x, at_si: float, at_ge: float):
    """Linear in the Ge fraction ``x``: ``at_si`` at x = 0, ``at_ge`` at x = 1."""
    x = np.asarray(x, float)
    return (1.0 - x) * at_si + x * at_ge


DELTA_SO = {"Si": 0.044, "Ge": 0.29}  # eV, spin-orbit splitting of the valence band at Gamma (Delta_0)

CORRECTIONS = {c.name: c for c in (
    Correction(
        name="exciton", label="free-exciton binding", si=0.0147, ge=0.00415,
        si_uncertainty=0.0005, ge_uncertainty=0.0005, direction=+1,
        convention="E_x > 0; the photoluminescence gap is the band gap minus E_x, so band gap = PL gap + E_x",
        citation="Si 14.7 meV: Shaklee and Nahory, Phys. Rev. Lett. 24, 942 (1970); Ge 4.15 meV, the indirect "
                 "(L) exciton, whose 1s state is split by 1.01 +/- 0.03 meV (Frova, Thomas, Miller and Kane, "
                 "Phys. Rev. Lett. 34, 1572 (1975)); +/- 0.5 meV each (Ge: half that splitting; Si: estimate)"),
    Correction(
        name="zpr", label="zero-point renormalisation", si=-0.059, ge=-0.050,
        si_uncertainty=0.005, ge_uncertainty=0.010, direction=-1,
        convention="ZPR < 0 (zero-point motion narrows the gap); static-lattice gap = band gap - ZPR",
        citation="isotope effect: Si -59 meV from the excitonic gap extrapolated to infinite isotope mass, "
                 "1213.8 +/- 1.2 meV (Tsoi et al., Phys. Rev. B 70, 193201 (2004)), against 1155 meV measured; "
                 "determinations spread from -57 to -64 meV (Cardona and Thewalt, Rev. Mod. Phys. 77, 1173 "
                 "(2005)): +/- 5 meV. Ge about -50 meV, +/- 10 meV (isotope effect on the indirect gap, "
                 "Etchegoin et al., Solid State Commun. 83, 843 (1992); Cardona and Thewalt (2005))"),
    Correction(
        name="soc", label="spin-orbit coupling (Delta_so/3)", si=DELTA_SO["Si"] / 3, ge=DELTA_SO["Ge"] / 3,
        si_uncertainty=0.001, ge_uncertainty=0.003, direction=+1,
        convention="spin-orbit coupling raises the valence-band maximum by Delta_so/3, which a "
                   "scalar-relativistic calculation misses; scalar-relativistic gap = gap + Delta_so/3",
        citation="Delta_so Si 0.044 eV, Ge 0.29 eV (0.29-0.30 eV reported): Levinshtein, Rumyantsev and Shur "
                 "(eds.), Handbook Series on Semiconductor Parameters, vol. 1 (World Scientific, 1996); "
                 "+/- 1 meV (Si) and +/- 3 meV (Ge) on Delta_so/3"),
)}
CORRECTION_NAMES = tuple(CORRECTIONS)


def parse_corrections(spec=None) -> tuple[str, ...]:
    """The correction names ``spec`` asks for, in :data:`CORRECTION_NAMES` order.

    ``spec`` is ``None``, ``""`` or ``"none"`` (no term), ``"all"``, a
    comma-separated string or an iterable of names.

    >>> parse_corrections(None), parse_corrections("soc,exciton")
    ((), ('exciton', 'soc'))

    Raises
    ------
    InputError
        A name that is not a correction.
    """
    if spec is None:
        return ()
    names = [n.strip().lower() for n in (spec.split(",") if isinstance(spec, str) else spec)]
    names = [n for n in names if n and n != "none"]
    if "all" in names:
        return CORRECTION_NAMES
    unknown = [n for n in names if n not in CORRECTIONS]
    if unknown:
        raise InputError(f"unknown correction {', '.join(unknown)}; choose from {', '.join(CORRECTION_NAMES)}, "
                         "all or none")
    return tuple(n for n in CORRECTION_NAMES if n in names)


def correction_shift(x, terms=()):
    """Sum (eV) of the named terms' shifts at ``x``; 0 for no terms.

    >>> round(float(correction_shift(1.0, "all")), 4)   # Ge: 4.15 + 50 + 96.7 meV
    0.1508
    """
    x = np.asarray(x, float)
    return sum((CORRECTIONS[n].shift(x) for n in parse_corrections(terms)), np.zeros_like(x))


def comparable_gap(x, terms=()):
    """The measured gap turned into what a static-lattice, scalar-relativistic DFT gap is compared with (eV).

    ``terms`` names the corrections to apply (see :func:`parse_corrections`;
    default none: the measured curve itself). Each goes one way:

    - ``exciton``: band gap = PL gap + E_x (E_x > 0), so the reference goes
      up by E_x (Si 14.7, Ge 4.15 meV);
    - ``zpr``: static-lattice gap = band gap - ZPR (ZPR < 0), so it goes up
      by -ZPR (Si 59, Ge 50 meV);
    - ``soc``: scalar-relativistic gap = gap + Delta_so/3, so it goes up by
      Delta_so/3 (Si 14.7, Ge 96.7 meV).

    >>> round(float(comparable_gap(1.0, ["zpr", "soc"])), 4)   # 0.740 + 0.050 + 0.0967
    0.8867
    """
    return weber_alonso_gap(x) + correction_shift(x, terms)


def describe_corrections(terms=()) -> list[dict]:
    """One dict per named term, for output: ``name``, ``label``, ``shift_at_0``/``shift_at_1`` (eV added to
    the measured gap at pure Si / Ge), the quantity ``value_at_0``/``value_at_1`` with its
    ``uncertainty_at_0``/``uncertainty_at_1``, ``convention`` and ``citation``.

    >>> [(d["name"], round(d["shift_at_0"], 4)) for d in describe_corrections("exciton")]
    [('exciton', 0.0147)]
    """
    out = []
    for name in parse_corrections(terms):
        c = CORRECTIONS[name]
        out.append({"name": name, "label": c.label, "shift_at_0": float(c.shift(0.0)),
                    "shift_at_1": float(c.shift(1.0)), "value_at_0": c.si, "value_at_1": c.ge,
                    "uncertainty_at_0": c.si_uncertainty, "uncertainty_at_1": c.ge_uncertainty,
                    "convention": c.convention, "citation": c.citation})
    return out


def deviations(x, gap, terms=()) -> dict:
    """Model minus experiment (eV) of a composition-averaged curve given at compositions ``x``.

    ``mean_signed`` and ``mean_abs`` average over the given compositions (for
    a supercell pool these are evenly spaced over [0, 1], e.g. x = k/16);
    ``at_0`` and ``at_1`` are the deviations at pure Si and pure Ge (NaN when
    the curve does not reach them). ``terms``: corrections applied to the
    measured curve first (:func:`comparable_gap`; default none), listed
    again under ``corrections``.
    """
    x, gap = np.asarray(x, float), np.asarray(gap, float)
    d = gap - comparable_gap(x, terms)

    def at(x0: float) -> float:
        hit = np.flatnonzero(np.isclose(x, x0, atol=1e-9))
        return float(d[hit[0]]) if len(hit) else float("nan")

    return {"mean_signed": float(np.mean(d)), "mean_abs": float(np.mean(np.abs(d))),
            "max_abs": float(np.max(np.abs(d))), "at_0": at(0.0), "at_1": at(1.0), "n_compositions": int(len(x)),
            "corrections": list(parse_corrections(terms))}


@dataclass(frozen=True)
class Measured:
    """A system's measured gap from its data file (:func:`load_measured`): branches and/or points.

    >>> m = measured_for(("Si", "Ge"))
    >>> m.short, round(float(m.gap(1.0)), 3), round(m.crossover(), 3)
    ('Weber & Alonso, PRB 40, 5683 (1989)', 0.74, 0.843)
    """

    system: str
    elements: tuple[str, str]
    fixed: tuple[str, ...]
    reference: str
    short: str
    temperature: float | None
    quantity: str
    branches: tuple[tuple[str, tuple[float, ...]], ...]  # (valley, polynomial coefficients c0, c1, ...)
    points: tuple[tuple[float, float, str], ...]  # (x, gap, reference)
    path: str

    def branch_gaps(self, x) -> dict[str, np.ndarray]:
        """Each branch's gap (eV) at ``x``, by valley."""
        x = np.asarray(x, float)
        return {v: sum(c * x ** k for k, c in enumerate(coef)) + np.zeros_like(x) for v, coef in self.branches}

    def gap(self, x):
        """The measured gap (eV) at ``x``: the lowest branch, else the points interpolated linearly."""
        x = np.asarray(x, float)
        if self.branches:
            return np.min(np.stack(list(self.branch_gaps(x).values())), axis=0)
        xs, gaps = np.array([p[0] for p in self.points]), np.array([p[1] for p in self.points])
        order = np.argsort(xs)
        return np.interp(x, xs[order], gaps[order])

    def crossover(self) -> float:
        """Where the lowest branch changes valley (the first change on a fine grid, refined by bisection); NaN
        with fewer than two branches or no change."""
        if len(self.branches) < 2:
            return float("nan")

        def lowest(x):
            gaps = self.branch_gaps(np.atleast_1d(x))
            return np.argmin(np.stack(list(gaps.values())), axis=0)

        grid = np.linspace(0, 1, 1001)
        which = lowest(grid)
        change = np.flatnonzero(np.diff(which))
        if not len(change):
            return float("nan")
        lo, hi = grid[change[0]], grid[change[0] + 1]
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if lowest(mid)[0] == which[change[0]] else (lo, mid)
        return float((lo + hi) / 2)


def load_measured(path: str | Path) -> Measured:
    """Read one system's measured-gap file (TOML; the format is described in ``experiments/SiGe.toml``)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: not a readable measured-gap file ({exc})") from None
    try:
        branches = tuple((str(b["valley"]), tuple(float(c) for c in b["coefficients"])) for b in data.get("branch", []))
        points = tuple((float(p["x"]), float(p["gap"]), str(p.get("reference", data.get("reference", ""))))
                       for p in data.get("point", []))
        elements = tuple(str(e) for e in data["elements"])
        if len(elements) != 2 or not (branches or points):
            raise ValueError("needs two elements and at least one branch or point")
        return Measured(str(data["system"]), elements, tuple(data.get("fixed", [])), str(data["reference"]),
                        str(data.get("short", data["reference"])), data.get("temperature"),
                        str(data.get("quantity", "band gap")), branches, points, str(path))
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
