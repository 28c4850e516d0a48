"""The parent lattice: diamond lattice constants, the two elements, cells and supercells.

Every pool decorates the sites of one supercell of the diamond lattice:
the 2-atom primitive cell or the 8-atom conventional cubic cell, repeated
by three integers or transformed by a 3x3 integer matrix. Its site order
(:func:`reference_sites`) defines the decoration columns of every pool;
lattice constants follow Vegard's law between the two elements.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk

from activemat.errors import SpaceError

__all__ = ["LATTICE_CONSTANTS", "CELLS", "check_elements", "check_supercell", "check_cell", "reference_sites",
           "diamond_supercell", "vegard_constant"]

#: Diamond-structure lattice constants (Angstrom).
LATTICE_CONSTANTS: dict[str, float] = {"Si": 5.431, "Ge": 5.658, "C": 3.567, "Sn": 6.489}
CELLS = ("primitive", "cubic")  # supercell repeats the 2-atom primitive or the 8-atom conventional cubic cell


def check_elements(elements: tuple[str, str]) -> tuple[str, str]:
    """Two different elements with a known diamond lattice constant, as a tuple (host A, alloying B).

    >>> check_elements(["Si", "Ge"])
    ('Si', 'Ge')
    """
    known = ", ".join(sorted(LATTICE_CONSTANTS))
    if not isinstance(elements, (tuple, list)) or len(elements) != 2:
        raise SpaceError(f"space.elements must be two element symbols (host, alloying), got {elements!r}")
    for e in elements:
        if e not in LATTICE_CONSTANTS:
            raise SpaceError(f"unknown element {e!r} in space.elements; known: {known}")
    if elements[0] == elements[1]:
        raise SpaceError(f"space.elements must be two different elements, got {tuple(elements)!r}")
    return (str(elements[0]), str(elements[1]))


def check_supercell(supercell) -> tuple:
    """Three positive repeats, or a 3x3 integer matrix of positive determinant (a diagonal one becomes its
    repeats, so the two spellings are one supercell).

    >>> check_supercell([[2, 0, 0], [0, 2, 0], [0, 0, 4]])
    (2, 2, 4)
    >>> check_supercell([[-1, 1, 1], [1, -1, 1], [1, 1, -1]])
    ((-1, 1, 1), (1, -1, 1), (1, 1, -1))
    """
    def integer(n):
        return isinstance(n, (int, np.integer)) and not isinstance(n, bool)

    if isinstance(supercell, (tuple, list, np.ndarray)) and len(supercell) == 3:
        if all(integer(n) and n > 0 for n in supercell):
            return tuple(int(n) for n in supercell)
        rows = [r for r in supercell if isinstance(r, (tuple, list, np.ndarray)) and len(r) == 3
                and all(integer(n) for n in r)]
        if len(rows) == 3 and round(np.linalg.det(np.array(rows, dtype=float))) > 0:
            P = tuple(tuple(int(n) for n in r) for r in rows)
            if all(P[i][j] == 0 for i in range(3) for j in range(3) if i != j):
                return tuple(P[i][i] for i in range(3))
            return P
    raise SpaceError(f"space.supercell must be three positive repeats such as [2, 2, 4] or a 3x3 integer matrix "
                     f"with positive determinant such as [[-1, 1, 1], [1, -1, 1], [1, 1, -1]], got {supercell!r}")


def check_cell(cell: str) -> str:
    """One of :data:`CELLS`."""
    if cell not in CELLS:
        raise SpaceError(f"unknown space.cell {cell!r}; use one of {', '.join(CELLS)}")
    return cell


def _supercell_of(atoms: Atoms, supercell: tuple) -> Atoms:
    """``atoms`` repeated (three repeats) or transformed by a 3x3 matrix (rows: new cell vectors in units of the
    old ones, ASE's ``make_supercell``)."""
    if isinstance(supercell[0], tuple):
        from ase.build import make_supercell

        return make_supercell(atoms, np.array(supercell))
    return atoms.repeat(supercell)


def diamond_supercell(element: str, a: float, supercell: tuple, cell: str) -> Atoms:
    """The supercell (already checked: :func:`check_supercell`, :func:`check_cell`) of the diamond ``cell`` of
    ``element`` at lattice constant ``a`` (Angstrom), in the site order of :func:`reference_sites`."""
    return _supercell_of(bulk(element, "diamond", a=a, cubic=cell == "cubic"), supercell)


def vegard_constant(elements: tuple[str, str], x: float) -> float:
    """Lattice constant (Angstrom) of the alloy with fraction ``x`` of B, by Vegard's law.

    >>> round(vegard_constant(("Si", "Ge"), 0.5), 4)
    5.5445
    """
    a_a, a_b = (LATTICE_CONSTANTS[e] for e in elements)
    return (1 - x) * a_a + x * a_b


def reference_sites(elements: tuple[str, str], supercell: tuple[int, int, int], cell: str = "primitive") -> Atoms:
    """Return the undecorated supercell (all A, lattice constant of A).

    ``supercell`` repeats the 2-atom primitive cell (``cell="primitive"``) or
    the 8-atom conventional cubic cell (``cell="cubic"``; ``[2, 2, 2]`` gives 64
    sites), or is a 3x3 integer matrix whose rows are the supercell's vectors in
    units of that cell's (``[[-1, 1, 1], [1, -1, 1], [1, 1, -1]]`` of the
    primitive cell is the 8-atom cubic cell). Its site order defines the decoration columns of every pool.
    """
    elements, supercell, cell = check_elements(elements), check_supercell(supercell), check_cell(cell)
    return diamond_supercell(elements[0], LATTICE_CONSTANTS[elements[0]], supercell, cell)
