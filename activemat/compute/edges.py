"""Band edges where they are: a fixed-density pass on the k-points onto which the band edges fold.

A supercell's self-consistent grid rarely holds the primitive cell's band
edges: Si's conduction-band minimum lies at about 0.85 of Γ-X (the Δ
valley), which no affordable supercell grid contains. After the
self-consistent calculation, :func:`edge_pass` diagonalises the converged
Hamiltonian again (GPAW's ``fixed_density``) on the supercell k-points onto
which the parent's primitive-cell special points fold (:func:`edge_kpoints`,
from the supercell matrix :func:`supercell_matrix` and the parent's zone
:func:`~activemat.compute.zone.parent_zone`: on an fcc parent Γ, X, L and
Δ, on any other ASE's special points of its Bravais lattice), reads the gap
there, and finds where the edges come from by unfolding (Popescu and
Zunger, PRB 85, 085201 (2012)): the weight of each primitive k-point in the
band-edge state's plane waves (:func:`unfold_weights`), classified by valley
(fcc: Γ, Δ, X, L or other, :func:`character`; other lattices: the special
point's name or other). The lowest conduction state of each valley
(:func:`valley_gaps`) tells how far the other valleys lie above the
minimum, so where an alloy's minimum changes valley can be located from
computed energies rather than from the characters alone.

Points and numbers measured here (2-atom cells, PW 300 eV, GPAW 26.7):
on the Δ line the PBE and TB09 conduction bands of Si have their minimum
near 0.84 Γ-X, and 0.85 lies within 0.4 meV of it, so one Δ point per
direction suffices.

The number of unoccupied bands is set by construction: a supercell k-point
receives ``det(M)`` primitive k-points, so the pass computes at least
``det(M) / 2 + 8`` conduction bands (converging all but the top
:data:`BUFFER_BANDS`), and every calculation checks it: the conduction-band
minimum is recomputed at its k-point with twice as many bands
(``band_check``, eV; a change beyond :data:`BAND_TOLERANCE` fails the
attempt).

TB09 is a potential functional: GPAW's legacy calculator keeps the
self-consistent kinetic-energy density fixed in a fixed-density pass, and
the pass is given the self-consistent ``c`` (a fresh TB09 kernel would
start from c = 1 and, with the density fixed, never update it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from activemat.compute.zone import (DELTA_FRACTION, FCC_PRIMITIVE, FCC_VALLEYS, PRIMITIVE_POINTS,  # noqa: F401
                                    Zone, character, edge_kpoints, parent_primitive, parent_zone, reduced,
                                    supercell_matrix, wrapped)

#: Unoccupied bands above the converged ones, so the highest converged band converges.
BUFFER_BANDS = 4
#: eV: the conduction-band minimum may move by at most this when the band count doubles.
BAND_TOLERANCE = 0.005
#: eV above the conduction-band minimum within which conduction states are unfolded for :func:`valley_gaps`.
VALLEY_WINDOW = 1.5
#: The conduction valleys :func:`valley_gaps` reports on an fcc parent (others: :attr:`Zone.valleys`), in order.
VALLEYS = FCC_VALLEYS


class BandsNotConverged(RuntimeError):
    """More unoccupied bands moved the conduction-band minimum: the band count was too short."""


def unfold_weights(u: np.ndarray, kpoint: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Popescu-Zunger weights of one supercell state over the primitive k-points that fold onto ``kpoint``.

    ``u`` is the periodic part of the (pseudo) wave function on the
    supercell's real-space grid. Its plane wave K + G (G a supercell
    reciprocal vector, integer fractional n) belongs to the primitive
    k-point ``inv(M) @ (K + n)`` mod 1. Returns the primitive k-points
    (fractional, in [0, 1)) and their weights (summing to 1).
    """
    c = np.fft.fftn(u)
    power = (np.abs(c) ** 2).ravel()
    n = np.stack(np.meshgrid(*[np.fft.fftfreq(s, 1.0 / s) for s in u.shape], indexing="ij"), -1).reshape(-1, 3)
    primitive = wrapped((kpoint + n) @ np.linalg.inv(matrix).T)
    keys, inverse = np.unique(np.round(primitive, 6), axis=0, return_inverse=True)
    weights = np.bincount(inverse.ravel(), weights=power, minlength=len(keys))
    return keys, weights / weights.sum()


@dataclass
class Edges:
    """The band edges found by the fixed-density pass. Energies in eV; k-points as :meth:`Zone.reduced` writes
    them (fcc: Cartesian, units 2π/a, sorted; other lattices: fractional in the primitive reciprocal cell)."""

    gap: float
    vbm: float
    cbm: float
    direct: bool
    vbm_k: np.ndarray
    cbm_k: np.ndarray
    cbm_character: str
    band_check: float  # CBM with twice the bands minus CBM (eV)
    soc_shift: float = float("nan")  # what spin-orbit coupling adds to the gap (eV); NaN if not computed
    valleys: dict = field(default_factory=dict)  # valley -> its lowest conduction state minus the VBM (eV)
    lattice: str = "FCC"  # the parent's Bravais lattice (ASE's name): it names the valleys


def conduction_bands(matrix: np.ndarray, extra_bands: int) -> int:
    """Unoccupied bands of the pass: at least det(M)/2 + 8 (each k-point holds det(M) primitive ones).

    >>> conduction_bands(2 * np.eye(3, dtype=int), 8), conduction_bands(np.diag([4, 4, 2]), 8)
    (12, 24)
    """
    return max(int(extra_bands), math.ceil(round(abs(np.linalg.det(matrix))) / 2) + 8)


def _fixed_density(calc, kpts: np.ndarray, n_bands: int, n_converged: int, txt):
    """GPAW's fixed-density pass at ``kpts`` with ``n_bands`` bands, converging the lowest ``n_converged``."""
    # Davidson: 1.75x faster than GPAW 26.7's default (PPCG) for this pass on a 16-atom cell, same eigenvalues
    kwargs = {"kpts": kpts, "symmetry": "off", "nbands": n_bands, "convergence": {"bands": n_converged},
              "eigensolver": "davidson", "txt": txt}
    legacy = isinstance(getattr(calc, "parameters", None), dict)  # the new calculator keeps a Parameters object
    xc = calc.parameters.get("xc") if legacy else None
    if isinstance(xc, dict) and str(xc.get("name", "")).upper().startswith("TB09") and "c" not in xc:
        # TB09's c is computed from the density during an SCF; a fixed-density pass never updates it, so give
        # it the converged value (GPAW's legacy fixed_density keeps the kinetic-energy density itself fixed)
        calc.parameters["xc"] = {**xc, "c": float(calc.hamiltonian.xc.kernel.c)}
    return calc.fixed_density(**kwargs)


def _eigenvalues(calc) -> np.ndarray:
    return np.array([calc.get_eigenvalues(kpt=k) for k in range(len(calc.get_ibz_k_points()))])


def _unfolded(calc, kpt: int, band: int, matrix: np.ndarray) -> dict[tuple, float]:
    """One state's unfolded weight per primitive k-point (fractional, as a tuple)."""
    u = calc.get_pseudo_wave_function(band=band, kpt=kpt, periodic=True)
    keys, weights = unfold_weights(u, calc.get_ibz_k_points()[kpt], matrix)
    out: dict[tuple, float] = {}
    for key, w in zip(map(tuple, keys), weights):
        out[key] = out.get(key, 0.0) + float(w)
    return out


def _by_valley(weights: dict[tuple, float], zone: Zone) -> dict[str, float]:
    """Unfolded weights summed by valley (:meth:`Zone.character` of each primitive k-point)."""
    out: dict[str, float] = {}
    for key, w in weights.items():
        valley = zone.character(np.array(key))
        out[valley] = out.get(valley, 0.0) + w
    return out


def dominant_valley(weights: list[dict[str, float]]) -> str:
    """The valley holding most of the summed weight of one or more (degenerate) states.

    Summed over a valley's points, not read at its single heaviest point: a state spread over L's four
    inequivalent points is L even when Γ, folded onto the same supercell k-point, holds the largest single share.
    """
    total: dict[str, float] = {}
    for state in weights:
        for valley, w in state.items():
            total[valley] = total.get(valley, 0.0) + w
    return max(total, key=total.get)


def valley_gaps(calc, eps: np.ndarray, n_occupied: int, n_converged: int, matrix: np.ndarray, vbm: float,
                window: float = VALLEY_WINDOW, zone: Zone | None = None) -> dict[str, float]:
    """The gap to each conduction valley (eV): its lowest state minus the VBM.

    Every converged conduction state at the pass's k-points up to ``window``
    above the conduction-band minimum is unfolded and assigned to the valley
    holding most of its weight (the ``zone``'s valleys, None: the diamond
    lattice's Γ, Δ, X and L; states mostly elsewhere count for none). The
    window stops below the highest converged band of any k-point, so no
    state below it was left out; a valley with no state in it is absent (it
    lies higher).
    """
    zone = zone or parent_zone(FCC_PRIMITIVE)
    cbm = float(eps[:, n_occupied].min())
    top = min(cbm + window, float(eps[:, n_converged - 1].min()))
    found: dict[str, float] = {}
    for kpt in range(len(eps)):
        for band in range(n_occupied, n_converged):
            if eps[kpt, band] > top:
                break
            valley = dominant_valley([_by_valley(_unfolded(calc, kpt, band, matrix), zone)])
            if valley in zone.valleys:
                found[valley] = min(found.get(valley, math.inf), float(eps[kpt, band]) - vbm)
    return {v: round(found[v], 12) for v in zone.valleys if v in found}


def _heaviest(states: list[dict[tuple, float]]) -> np.ndarray:
    """The primitive k-point (fractional) with the most weight summed over the given (degenerate) states."""
    total: dict[tuple, float] = {}
    for state in states:
        for key, w in state.items():
            total[key] = total.get(key, 0.0) + w
    return np.array(max(total, key=total.get))


def edge_pass(calc, atoms: Atoms, n_occupied: int, extra_bands: int, *, txt=None, spinorbit: bool = False,
              degenerate: float = 0.005, conduction: int | None = None, buffer: int = BUFFER_BANDS) -> Edges:
    """Band edges of a converged calculator at the points where they fold (the module docstring says how).

    The parent's primitive cell comes with ``atoms`` (:func:`parent_primitive`:
    the diamond lattice's without it). ``conduction`` and ``buffer`` override
    the converged unoccupied bands (:func:`conduction_bands`) and the
    unconverged ones above them.
    """
    matrix = supercell_matrix(atoms)
    zone = parent_zone(parent_primitive(atoms)[0])
    kpts, _ = edge_kpoints(matrix, zone)
    n_conduction = conduction_bands(matrix, extra_bands) if conduction is None else conduction
    n_bands = n_occupied + n_conduction + buffer
    nscf = _fixed_density(calc, kpts, n_bands, n_bands - buffer, txt)
    eps = _eigenvalues(nscf)
    valence, lowest = eps[:, n_occupied - 1], eps[:, n_occupied]
    k_v, k_c = int(np.argmax(valence)), int(np.argmin(lowest))
    vbm, cbm = float(valence[k_v]), float(lowest[k_c])
    band_check = check_bands(calc, nscf.get_ibz_k_points()[k_c], n_occupied, cbm, 2 * n_conduction, buffer, txt)
    top = [b for b in range(n_occupied) if valence[k_v] - eps[k_v, b] < degenerate]
    bottom = [b for b in range(n_occupied, n_bands - buffer) if eps[k_c, b] - cbm < degenerate]
    cbm_states = [_unfolded(nscf, k_c, b, matrix) for b in bottom]  # unfolded once: the k-point and the valley
    edges = Edges(gap=round(max(cbm - vbm, 0.0), 12), vbm=vbm, cbm=cbm, direct=k_v == k_c,
                  vbm_k=zone.reduced(_heaviest([_unfolded(nscf, k_v, b, matrix) for b in top])),
                  cbm_k=zone.reduced(_heaviest(cbm_states)),
                  cbm_character=dominant_valley([_by_valley(w, zone) for w in cbm_states]), band_check=band_check,
                  valleys=valley_gaps(nscf, eps, n_occupied, n_bands - buffer, matrix, vbm, zone=zone),
                  lattice=zone.lattice)
    if spinorbit:
        edges.soc_shift = spinorbit_gap(nscf, n_occupied) - (cbm - vbm)
    return edges


def check_bands(calc, kpoint: np.ndarray, n_occupied: int, cbm: float, n_conduction: int,
                buffer: int = BUFFER_BANDS, txt=None) -> float:
    """Recompute the CBM at ``kpoint`` with ``n_conduction`` converged unoccupied bands; return new - ``cbm`` (eV).

    Raises :class:`BandsNotConverged` when the new minimum lies more than
    :data:`BAND_TOLERANCE` below ``cbm``: the count that gave ``cbm`` missed
    states (as Si64's Γ-only SCF did with 6 unoccupied bands: 1.11 eV, the
    1/2 Γ-X states, instead of the X states at 0.69 eV).
    """
    n_bands = n_occupied + n_conduction + buffer
    more = _fixed_density(calc, np.atleast_2d(kpoint), n_bands, n_bands - buffer, txt)
    change = float(_eigenvalues(more)[0, n_occupied]) - cbm
    if change < -BAND_TOLERANCE:
        raise BandsNotConverged(f"the conduction-band minimum moved by {change * 1000:.0f} meV with "
                                f"{n_conduction} converged unoccupied bands; raise the preset's extra_bands")
    return change


def spinorbit_gap(calc, n_occupied: int) -> float:
    """The gap (eV) with spin-orbit coupling added non-self-consistently (``gpaw.spinorbit.soc_eigenstates``).

    Spinor bands come in pairs: the VBM is band 2 n_occupied - 1 of the
    doubled set. Not clipped at zero: where spin-orbit closes a gap (PBE's
    Ge) the shift stays readable. Raises NotImplementedError on GPAW's
    legacy calculator (TB09), as GPAW does.
    """
    from gpaw.spinorbit import soc_eigenstates

    eps = soc_eigenstates(calc).eigenvalues()
    return float(eps[:, 2 * n_occupied].min() - eps[:, 2 * n_occupied - 1].max())
