"""The parent's Brillouin zone: the supercell matrix, the special points where band edges sit, their valleys.

The edge pass (:mod:`activemat.compute.edges`) diagonalises a supercell at
the k-points onto which the parent's primitive-cell special points fold.
Everything it needs of the parent lattice is here:

- the parent's primitive cell travels with the structure in ``atoms.info``
  (:data:`PARENT_CELL`, :data:`PARENT_ATOMS`; the campaign's scheduler sets
  them from its space). A structure without them is taken on the diamond
  lattice's 2-atom fcc cell, the original Si-Ge space, so a bare
  ``bulk("Si")`` or ``bulk("GaAs", "zincblende")`` needs nothing;
- the supercell matrix M, cell = M @ primitive cell (rows), from that cell
  scaled to the structure's volume per atom (:func:`supercell_matrix`: an
  integer matrix, or a one-line error);
- the special points of the parent's Bravais lattice from ASE
  (``Cell.bandpath``, ``ase.lattice.identify_lattice``), each with its star
  (the images under the lattice's point group, spglib; a time-reversal pair
  ±k once) (:func:`parent_zone`).

An fcc parent (diamond, zincblende, rocksalt) keeps the points the edge pass
always had: Γ, the three X, the three Δ points at :data:`DELTA_FRACTION` of
Γ-X and the four L, in that table's order (:data:`PRIMITIVE_POINTS`, which
is ASE's X and L with their stars), so Si-Ge cells fold onto bit-identical
k-points; a state's valley is Gamma, Delta (on Γ-X), X, L or other. Any other
lattice gets every special point ASE names for it (hexagonal, as wurtzite:
Γ, M, K, A, L, H) and its valleys are those names (``G`` read as ``Gamma``).
"""

from __future__ import annotations

import functools
import itertools
import warnings
from dataclasses import dataclass

import numpy as np
from ase import Atoms

#: Fraction of Γ-X at which Si's Δ conduction-band minimum lies (PBE and TB09: about 0.84).
DELTA_FRACTION = 0.85
#: Atoms in the default parent's primitive cell (diamond).
PRIMITIVE_ATOMS = 2
#: The diamond (fcc) primitive cell for a = 1, rows as in ``ase.build.bulk(..., "diamond")``.
FCC_PRIMITIVE = 0.5 * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
#: Its reciprocal vectors in units of 2π/a (rows): k_cartesian = k_fractional @ FCC_RECIPROCAL.
FCC_RECIPROCAL = np.linalg.inv(FCC_PRIMITIVE).T
#: The conduction valleys of an fcc parent, in the order of the store's columns.
FCC_VALLEYS = ("Gamma", "Delta", "X", "L")
#: ``atoms.info`` keys: the parent's primitive cell (rows, Angstrom, any scale) and its number of atoms.
PARENT_CELL, PARENT_ATOMS = "parent_cell", "parent_atoms"
#: Largest distance of cell @ inv(primitive) from an integer matrix (a relaxed cell strains a little).
MATRIX_TOLERANCE = 0.05


def _cartesian_points() -> dict[str, np.ndarray]:
    """Γ, the X and L stars and the Δ points (one per direction; time reversal pairs ±k), in units of 2π/a."""
    axes = np.eye(3)
    points = {"Gamma": np.zeros(3)}
    for i, axis in enumerate("xyz"):
        points[f"X{axis}"] = axes[i]
        points[f"Delta{axis}"] = DELTA_FRACTION * axes[i]
    for i, signs in enumerate([(1, 1, 1), (-1, 1, 1), (1, -1, 1), (1, 1, -1)]):
        points[f"L{i + 1}"] = 0.5 * np.array(signs, float)
    return points


#: An fcc cell's points the edges may sit at, as fractional coordinates of ASE's standard fcc reciprocal cell.
PRIMITIVE_POINTS = {name: k @ np.linalg.inv(FCC_RECIPROCAL) for name, k in _cartesian_points().items()}


def wrapped(k: np.ndarray) -> np.ndarray:
    out = np.mod(np.round(k, 9), 1.0)
    out[np.isclose(out, 1.0)] = 0.0
    return out


def reduced(k_fractional: np.ndarray) -> np.ndarray:
    """An fcc k-point (fractional, standard cell) in Cartesian units of 2π/a, first zone, kx >= ky >= kz >= 0.

    >>> reduced(PRIMITIVE_POINTS["Xz"]).round(3).tolist(), reduced(PRIMITIVE_POINTS["L3"]).round(3).tolist()
    ([1.0, 0.0, 0.0], [0.5, 0.5, 0.5])
    """
    k = np.asarray(k_fractional, float) @ FCC_RECIPROCAL
    shifts = np.array(list(itertools.product((-2, -1, 0, 1, 2), repeat=3))) @ FCC_RECIPROCAL
    k = min(k - shifts, key=lambda v: (round(float(v @ v), 9), tuple(-np.abs(v))))
    return np.sort(np.abs(k))[::-1]


def character(k_fractional: np.ndarray, tolerance: float = 0.02) -> str:
    """The fcc valley of a k-point (fractional, standard cell): ``Gamma``, ``Delta`` (on Γ-X), ``X``, ``L``, ``other``.

    >>> [character(PRIMITIVE_POINTS[p]) for p in ("Gamma", "Deltay", "Xy", "L2")]
    ['Gamma', 'Delta', 'X', 'L']
    """
    k = reduced(k_fractional)
    if np.all(k < tolerance):
        return "Gamma"
    if np.allclose(k, [1, 0, 0], atol=tolerance):
        return "X"
    if np.allclose(k, [0.5, 0.5, 0.5], atol=tolerance):
        return "L"
    if np.all(k[1:] < tolerance):
        return "Delta"
    return "other"


@dataclass(frozen=True, eq=False)
class Zone:
    """The special points of a parent's primitive cell, fractional in its reciprocal basis.

    Attributes
    ----------
    lattice
        ASE's name of the Bravais lattice: ``FCC``, ``HEX``, ``CUB``, ...
    points
        Point name -> fractional k-point; each star's members (time-reversal pairs once), Γ first.
    labels
        Point name -> its valley (``Gamma``, ``X``, ``M``, ...).
    representatives
        Valley -> ASE's special point (fractional, this cell's basis): how a non-fcc edge k-point is written.
    to_standard
        fcc only: fractional k in this cell @ ``to_standard`` = fractional k in ASE's standard fcc cell.
    """

    lattice: str
    points: dict
    labels: dict
    representatives: dict
    to_standard: np.ndarray | None = None

    @property
    def fcc(self) -> bool:
        return self.lattice == "FCC"

    @property
    def valleys(self) -> tuple[str, ...]:
        """The valleys :func:`~activemat.compute.edges.valley_gaps` reports, in order."""
        return FCC_VALLEYS if self.fcc else tuple(self.representatives)

    def _standard(self, k: np.ndarray) -> np.ndarray:
        k = np.asarray(k, float)
        return k if self.to_standard is None else k @ self.to_standard

    def character(self, k: np.ndarray, tolerance: float = 0.02) -> str:
        """The valley of a primitive k-point (fractional): fcc as :func:`character`; else the special point it
        is (``tolerance`` in fractional units), or ``other``."""
        if self.fcc:
            return character(self._standard(k), tolerance)
        for name, p in self.points.items():
            for d in (np.asarray(k) - p, np.asarray(k) + p):
                if np.abs(d - np.round(d)).max() < tolerance:
                    return self.labels[name]
        return "other"

    def reduced(self, k: np.ndarray) -> np.ndarray:
        """How an edge k-point is recorded: fcc as :func:`reduced` (Cartesian, 2π/a, sorted); else ASE's
        representative of its special point, or the fractional k-point wrapped into (-1/2, 1/2]."""
        if self.fcc:
            return reduced(self._standard(k))
        label = self.character(k)
        if label != "other":
            return np.array(self.representatives[label], float)
        out = wrapped(np.asarray(k, float))
        out[out > 0.5] -= 1.0
        return out


def _stars(cell: np.ndarray, special: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Every special point's star under the lattice's point group (spglib on one atom per cell), ±k once."""
    import spglib

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Set OLD_ERROR_HANDLING", DeprecationWarning)
        rotations = spglib.get_symmetry((cell, [[0.0, 0.0, 0.0]], [1]), symprec=1e-4)["rotations"]
    points, labels = {}, {}
    for label, k in special.items():
        star: list[np.ndarray] = []
        for w in rotations:
            image = np.asarray(k, float) @ w
            if not any(np.allclose(wrapped(image), wrapped(s * other)) for other in star for s in (1, -1)):
                star.append(image)
        for i, image in enumerate(star):
            name = label if len(star) == 1 else f"{label}{i + 1}"
            points[name], labels[name] = image, label
    return points, labels


@functools.lru_cache(maxsize=16)
def _zone(key: tuple) -> Zone:
    from ase.cell import Cell
    from ase.lattice import identify_lattice

    cell = Cell(np.reshape(key, (3, 3)))
    lattice, op = identify_lattice(cell, pbc=True)  # this cell = op.T @ ASE's standard cell (ASE's BandPath)
    if lattice.name == "FCC":
        op = np.asarray(op)
        if np.array_equal(op, np.eye(3)):  # ASE's own orientation (every named fcc lattice): the table as it is
            return Zone("FCC", dict(PRIMITIVE_POINTS), {}, {})
        points = {name: k @ op for name, k in PRIMITIVE_POINTS.items()}
        return Zone("FCC", points, {}, {}, to_standard=np.linalg.inv(op))
    special = {("Gamma" if k == "G" else k): np.asarray(v, float)
               for k, v in cell.bandpath(npoints=0).special_points.items()}
    special = {"Gamma": special.pop("Gamma"), **special}
    points, labels = _stars(cell.array, special)
    return Zone(lattice.name, points, labels, special)


def parent_zone(cell) -> Zone:
    """The :class:`Zone` of a parent's primitive cell (rows; any scale).

    >>> from ase.build import bulk
    >>> zone = parent_zone(bulk("ZnO", "wurtzite", a=3.25).cell)
    >>> zone.lattice, zone.valleys
    ('HEX', ('Gamma', 'A', 'H', 'K', 'L', 'M'))
    >>> parent_zone(bulk("GaAs", "zincblende", a=5.65).cell).valleys
    ('Gamma', 'Delta', 'X', 'L')
    """
    cell = np.asarray(cell, float)
    scaled = cell / abs(np.linalg.det(cell)) ** (1 / 3)
    return _zone(tuple(float(v) for v in np.round(scaled, 8).ravel()))


def parent_primitive(atoms: Atoms) -> tuple[np.ndarray, int]:
    """The parent's primitive cell (rows) and its atoms, from ``atoms.info``; the diamond fcc cell without them."""
    if atoms.info.get(PARENT_CELL) is None:
        return FCC_PRIMITIVE, PRIMITIVE_ATOMS
    return np.asarray(atoms.info[PARENT_CELL], float), int(atoms.info[PARENT_ATOMS])


def supercell_matrix(atoms: Atoms, primitive: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """The integer matrix M with cell = M @ primitive cell (rows), for a supercell of the parent.

    ``primitive`` is (cell, atoms) of the parent's primitive cell, at any
    scale: it is scaled to the structure's volume per atom, so a Vegard cell
    of any composition works. None: :func:`parent_primitive` of ``atoms``.

    >>> from ase.build import bulk
    >>> supercell_matrix(bulk("Si", "diamond", a=5.43).repeat((2, 2, 4))).tolist()
    [[2, 0, 0], [0, 2, 0], [0, 0, 4]]
    >>> supercell_matrix(bulk("Si", "diamond", a=5.43, cubic=True)).tolist()
    [[-1, 1, 1], [1, -1, 1], [1, 1, -1]]
    >>> wurtzite = bulk("ZnO", "wurtzite", a=3.25)
    >>> supercell_matrix(wurtzite.repeat((2, 2, 1)), (wurtzite.cell.array, 4)).tolist()
    [[2, 0, 0], [0, 2, 0], [0, 0, 1]]
    """
    cell, n_primitive = parent_primitive(atoms) if primitive is None else primitive
    cell = np.asarray(cell, float)
    scale = (atoms.get_volume() / len(atoms) * n_primitive / abs(np.linalg.det(cell))) ** (1 / 3)
    exact = atoms.cell.array @ np.linalg.inv(scale * cell)
    matrix = np.rint(exact)
    if np.abs(exact - matrix).max() > MATRIX_TOLERANCE or \
            round(abs(np.linalg.det(matrix))) * n_primitive != len(atoms):
        raise ValueError(f"the {len(atoms)}-atom cell is not a supercell of the parent's {n_primitive}-atom "
                         f"primitive cell (cell @ inv(primitive) = {exact.round(2).tolist()}, not an integer matrix)")
    return matrix.astype(int)


def edge_kpoints(matrix: np.ndarray, zone: Zone | None = None) -> tuple[np.ndarray, list[list[str]]]:
    """Supercell k-points (fractional, time-reversal pairs once) onto which the zone's points fold.

    A primitive k-point with fractional coordinates k folds onto the
    supercell k-point ``M @ k`` (mod 1). Returns the k-points and, for each,
    the names of the primitive points that fold onto it. ``zone``: the
    parent's (:func:`parent_zone`); None: the diamond lattice's.

    >>> k, names = edge_kpoints(2 * np.eye(3, dtype=int))
    >>> len(k), names[0]
    (4, ['Gamma', 'Xx', 'Xy', 'Xz', 'L1', 'L2', 'L3', 'L4'])
    """
    points = PRIMITIVE_POINTS if zone is None else zone.points
    found: list[np.ndarray] = []
    names: list[list[str]] = []
    for name, k in points.items():
        folded = wrapped(matrix @ k)
        for i, other in enumerate(found):
            if np.allclose(folded, other) or np.allclose(wrapped(-folded), other):
                names[i].append(name)
                break
        else:
            found.append(folded)
            names.append([name])
    return np.array(found), names
