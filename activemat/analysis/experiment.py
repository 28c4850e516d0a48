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
"""

from __future__ import annotations

import math

import numpy as np

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


def deviations(x, gap) -> dict:
    """Model minus experiment (eV) of a composition-averaged curve given at compositions ``x``.

    ``mean_signed`` and ``mean_abs`` average over the given compositions (for
    a supercell pool these are evenly spaced over [0, 1], e.g. x = k/16);
    ``at_0`` and ``at_1`` are the deviations at pure Si and pure Ge (NaN when
    the curve does not reach them).
    """
    x, gap = np.asarray(x, float), np.asarray(gap, float)
    d = gap - weber_alonso_gap(x)

    def at(x0: float) -> float:
        hit = np.flatnonzero(np.isclose(x, x0, atol=1e-9))
        return float(d[hit[0]]) if len(hit) else float("nan")

    return {"mean_signed": float(np.mean(d)), "mean_abs": float(np.mean(np.abs(d))),
            "max_abs": float(np.max(np.abs(d))), "at_0": at(0.0), "at_1": at(1.0), "n_compositions": int(len(x))}
