"""The parent lattice: a parent structure with the species allowed on each site, lattice constants (Vegard),
cells and supercells.

Every pool decorates the *mixing sites* of one supercell of a parent
structure: a named lattice (:data:`LATTICES`: ASE's ``bulk``) or a structure
file, whose primitive-cell sites each allow one species (a fixed sublattice)
or two (the mixing sublattice: host A, alloying B), as icet's per-site
``chemical_symbols``. The original space is the diamond lattice with both
species on every site: :func:`as_parent` turns an element pair ``("Si",
"Ge")`` into it, so every function that takes a parent also takes the pair.

The cell (the 2-atom primitive cell or ASE's conventional cubic cell) is
repeated by three integers or transformed by a 3x3 integer matrix. Its site
order (:func:`reference_sites`) numbers the sites; the mixing sites among
them, in that order (:func:`mixing_sites`), are the decoration columns of
every pool. Lattice constants follow Vegard's law between the two end
members, from :data:`LATTICE_CONSTANTS` extended by the campaign file.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import spglib
from ase import Atoms
from ase.build import bulk
from ase.spacegroup import crystal
from ase.data import atomic_numbers
from ase.formula import Formula

from activemat.errors import SpaceError

__all__ = ["LATTICES", "LATTICE_CONSTANTS", "LATTICE_CONSTANTS_BY_LATTICE", "CELLS", "Parent", "as_parent",
           "check_elements", "supercell_atoms", "primitive_cell",
           "check_supercell", "check_cell", "reference_sites", "mixing_sites", "site_types", "diamond_supercell", "named_cell",
           "vegard_constant", "lattice_name"]

#: Named parent lattices: ASE ``bulk`` crystal structure -> a formula ASE builds it from (its sites' order);
#: ``wurtzite`` with the ideal c/a = sqrt(8/3) and u = 3/8, ``perovskite`` (cubic ABX3, Pm-3m) from
#: ``ase.spacegroup.crystal`` (B at the origin, A at the body centre, X at the face centres: :func:`named_cell`).
LATTICES: dict[str, str] = {"diamond": "Si", "zincblende": "GaAs", "rocksalt": "NaCl", "cesiumchloride": "CsCl",
                            "fluorite": "CaF2", "fcc": "Cu", "bcc": "Fe", "wurtzite": "ZnO", "perovskite": "SrTiO3"}
#: Lattice constants (Angstrom, room temperature) of end members, per named lattice, keyed by the end member's
#: reduced formula. III-V: Vurgaftman, Meyer and Ram-Mohan, J. Appl. Phys. 89, 5815 (2001). A campaign file
#: adds or replaces entries with ``[space] lattice_constants``.
LATTICE_CONSTANTS_BY_LATTICE: dict[str, dict[str, float]] = {
    "diamond": {"Si": 5.431, "Ge": 5.658, "C": 3.567, "Sn": 6.489},
    "zincblende": {"GaAs": 5.6533, "AlAs": 5.6611, "InAs": 6.0583, "GaP": 5.4505, "AlP": 5.4672, "InP": 5.8697,
                   "GaSb": 6.0959, "AlSb": 6.1355, "InSb": 6.4794, "ZnS": 5.409, "ZnSe": 5.668, "CdTe": 6.481},
    "rocksalt": {"MgO": 4.212, "CaO": 4.811, "NaCl": 5.640, "KCl": 6.293, "PbS": 5.936, "PbSe": 6.124,
                 "PbTe": 6.462},
}
#: Diamond-structure lattice constants (Angstrom): the original table of the Si-Ge space.
LATTICE_CONSTANTS: dict[str, float] = LATTICE_CONSTANTS_BY_LATTICE["diamond"]
CELLS = ("primitive", "cubic")  # supercell repeats the primitive cell or ASE's conventional cubic cell


@dataclass(frozen=True)
class Parent:
    """A parent structure and the species allowed on each of its primitive cell's sites.

    Attributes
    ----------
    lattice
        A name of :data:`LATTICES`, or the structure file the parent was read from.
    chemical_symbols
        Per site of the primitive cell, the species allowed there (icet's per-site ``chemical_symbols``). The
        sites that allow two species are the mixing sublattice, all with the same two (host A first, alloying
        B); every other site holds one species.
    constants
        Lattice constants (Angstrom) of the two end members (A, then B, on every mixing site); Vegard's law
        interpolates between them. A structure-file parent's cell is A's; it is scaled by their ratio.
    cell, scaled_positions
        A structure-file parent's cell (Angstrom) and fractional positions; None for a named lattice.
    """

    lattice: str
    chemical_symbols: tuple[tuple[str, ...], ...]
    constants: tuple[float, float]
    cell: tuple[tuple[float, float, float], ...] | None = None
    scaled_positions: tuple[tuple[float, float, float], ...] | None = None

    @property
    def elements(self) -> tuple[str, str]:
        """The mixing pair (host A, alloying B); the composition axis x is B's fraction of the mixing sites."""
        return next(s for s in self.chemical_symbols if len(s) == 2)

    @property
    def mixing(self) -> tuple[bool, ...]:
        """Per primitive-cell site: does it mix A and B."""
        return tuple(len(s) == 2 for s in self.chemical_symbols)

    @property
    def is_diamond_pair(self) -> bool:
        """The original space: the diamond lattice with A and B on both sites."""
        return self.lattice == "diamond" and all(self.mixing)

    def to_json(self) -> str:
        """This parent as JSON (the store's ``parent`` attribute); :meth:`from_json` reads it back."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Parent:
        """A parent written by :meth:`to_json`."""
        d = json.loads(text)
        rows = {k: None if d[k] is None else tuple(tuple(r) for r in d[k])
                for k in ("chemical_symbols", "cell", "scaled_positions")}
        return cls(str(d["lattice"]), constants=tuple(d["constants"]), **rows)

    def end_member(self, k: int) -> str:
        """Reduced formula of end member ``k`` (0: A on every mixing site, 1: B), e.g. ``GaAs``.

        >>> as_parent(("Si", "Ge")).end_member(1)
        'Ge'
        """
        symbols = "".join(s[k] if len(s) == 2 else s[0] for s in self.chemical_symbols)
        return str(Formula(symbols).reduce()[0])

    @property
    def name(self) -> str:
        """The alloy, host end member first, as people write it: ``Ga(1-x)Al(x)As``, ``Si(1-x)Ge(x)``."""
        a, b = self.elements
        fixed = str(Formula("".join(s[0] for s in self.chemical_symbols if len(s) == 1)).reduce()[0]) \
            if not all(self.mixing) else ""
        return f"{a}(1-x){b}(x){fixed}"

    def constant(self, x: float) -> float:
        """Lattice constant (Angstrom) at fraction ``x`` of B on the mixing sites, by Vegard's law."""
        return (1 - x) * self.constants[0] + x * self.constants[1]

    def cell_atoms(self, cell: str = "primitive", x: float = 0.0) -> Atoms:
        """The ``cell`` (``"primitive"`` or ``"cubic"``) of the host end member at Vegard's constant for ``x``."""
        if self.cell is None:
            atoms = named_cell(self.lattice, self.constant(x), cubic=cell == "cubic")
        else:
            if cell != "primitive":
                raise SpaceError(f"a structure-file parent ({self.lattice}) repeats its own cell: set space.cell = "
                                 "\"primitive\" (the default) and give the supercell in units of the file's cell")
            atoms = Atoms(cell=np.array(self.cell) * self.constant(x) / self.constants[0],
                          scaled_positions=self.scaled_positions, pbc=True,
                          numbers=np.ones(len(self.chemical_symbols), int))
        hosts = np.array([s[0] for s in self.chemical_symbols])
        atoms.set_chemical_symbols(hosts[self.site_index(atoms)])
        return atoms

    def site_index(self, atoms: Atoms) -> np.ndarray:
        """For each atom of a cell of this lattice (host end member's geometry, any lattice constant), the
        primitive-cell site it sits on."""
        prim = _primitive_geometry(self)
        scale = (abs(np.linalg.det(prim[0])) / len(prim[1]) / (atoms.get_volume() / len(atoms))) ** (1 / 3)
        frac = atoms.positions * scale @ np.linalg.inv(prim[0])  # in the primitive cell's lattice
        d = frac[:, None, :] - prim[1][None, :, :]
        on = np.all(np.abs(d - np.round(d)) < 1e-4, axis=-1)
        if not np.all(on.sum(axis=1) == 1):
            raise SpaceError(f"a cell of the {self.lattice} parent does not map onto its primitive cell's sites")
        return on.argmax(axis=1)


def named_cell(lattice: str, a: float, *, cubic: bool = False) -> Atoms:
    """The primitive (or ASE's conventional cubic) cell of a named lattice with its formula's species.

    >>> named_cell("perovskite", 3.9).get_chemical_symbols(), named_cell("wurtzite", 3.2).get_chemical_symbols()
    (['Ti', 'Sr', 'O', 'O', 'O'], ['Zn', 'O', 'Zn', 'O'])
    """
    if lattice == "perovskite":  # cubic: the primitive cell is the cubic one
        return crystal(["Ti", "Sr", "O"], basis=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0, 0)], spacegroup=221,
                       cellpar=[a, a, a, 90, 90, 90], primitive_cell=True)
    if lattice == "wurtzite" and cubic:
        raise SpaceError("the wurtzite lattice is hexagonal: set space.cell = \"primitive\" (the default)")
    return bulk(LATTICES[lattice], lattice, a=a, cubic=cubic)


@functools.lru_cache(maxsize=32)
def _primitive_geometry(parent: Parent) -> tuple[np.ndarray, np.ndarray]:
    """(cell, fractional positions) of the parent's primitive cell at A's lattice constant."""
    if parent.cell is None:
        prim = named_cell(parent.lattice, parent.constants[0])
        return prim.cell.array, prim.get_scaled_positions(wrap=False)
    return np.array(parent.cell), np.array(parent.scaled_positions)


@functools.lru_cache(maxsize=32)
def primitive_cell(parent: Parent) -> tuple[np.ndarray, int]:
    """The parent's primitive cell (rows, Angstrom, at A's constant) and its atoms: a named lattice's as ASE builds
    it; a structure file's reduced by spglib to the smallest cell repeating its sites, in the file's orientation.

    >>> from activemat.space.parents import parent_from_keys
    >>> primitive_cell(parent_from_keys(lattice="wurtzite", chemical_symbols=[["Ga", "Al"], ["N"]] * 2,
    ...                                 lattice_constants={"GaN": 3.19, "AlN": 3.11}))[1]
    4
    """
    cell, frac = _primitive_geometry(parent)
    if parent.cell is None:
        return cell, len(frac)
    kinds = list(dict.fromkeys(parent.chemical_symbols))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Set OLD_ERROR_HANDLING", DeprecationWarning)
        data = spglib.get_symmetry_dataset((cell, frac, [kinds.index(s) for s in parent.chemical_symbols]))
    if data is None:
        return cell, len(frac)
    n = round(len(frac) * abs(np.linalg.det(data.primitive_lattice) / np.linalg.det(cell)))
    return (cell, len(frac)) if n >= len(frac) else (np.array(data.primitive_lattice), n)


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
            raise SpaceError(f"unknown element {e!r} in space.elements; known: {known}; for another lattice or "
                             f"elements set space.lattice and space.chemical_symbols (docs: map your own alloy)")
    if elements[0] == elements[1]:
        raise SpaceError(f"space.elements must be two different elements, got {tuple(elements)!r}")
    return (str(elements[0]), str(elements[1]))


@functools.lru_cache(maxsize=32)
def _diamond_pair(elements: tuple[str, str]) -> Parent:
    return Parent("diamond", (elements, elements), (LATTICE_CONSTANTS[elements[0]], LATTICE_CONSTANTS[elements[1]]))


def as_parent(parent: Parent | tuple[str, str] | list[str]) -> Parent:
    """A :class:`Parent`, or two elements (host, alloying) of the original space: the diamond lattice with both
    on every site, lattice constants from :data:`LATTICE_CONSTANTS`.

    >>> as_parent(("Si", "Ge")).chemical_symbols
    (('Si', 'Ge'), ('Si', 'Ge'))
    """
    if isinstance(parent, Parent):
        return parent
    return _diamond_pair(check_elements(parent))


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


def vegard_constant(parent, x: float) -> float:
    """Lattice constant (Angstrom) of the alloy with fraction ``x`` of B on the mixing sites, by Vegard's law.

    >>> round(vegard_constant(("Si", "Ge"), 0.5), 4)
    5.5445
    """
    return as_parent(parent).constant(x)


def supercell_atoms(parent, supercell: tuple, cell: str = "primitive", x: float = 0.0) -> Atoms:
    """The supercell (checked) of the host end member at Vegard's lattice constant for ``x``, in the site order
    of :func:`reference_sites`."""
    return _supercell_of(as_parent(parent).cell_atoms(cell, x), supercell)


def reference_sites(parent, supercell: tuple[int, int, int], cell: str = "primitive") -> Atoms:
    """Return the undecorated supercell: every site of the ``parent`` (a :class:`Parent` or two elements of the
    diamond lattice) with its host species (A on the mixing sites), at A's lattice constant.

    ``supercell`` repeats the primitive cell (``cell="primitive"``: 2 atoms
    for diamond) or ASE's conventional cubic cell (``cell="cubic"``: 8 atoms
    for diamond; ``[2, 2, 2]`` gives 64 sites), or is a 3x3 integer matrix
    whose rows are the supercell's vectors in units of that cell's
    (``[[-1, 1, 1], [1, -1, 1], [1, 1, -1]]`` of the primitive cell is the
    cubic cell). Its site order numbers the sites; its mixing sites
    (:func:`mixing_sites`), in that order, are the decoration columns of every pool.
    """
    supercell, cell = check_supercell(supercell), check_cell(cell)
    return supercell_atoms(as_parent(parent), supercell, cell)


@functools.lru_cache(maxsize=64)
def _site_index_of(parent: Parent, supercell: tuple, cell: str) -> np.ndarray:
    index = parent.site_index(reference_sites(parent, supercell, cell))
    index.flags.writeable = False
    return index


def mixing_sites(parent, supercell: tuple[int, int, int], cell: str = "primitive") -> np.ndarray:
    """Indices into :func:`reference_sites` of the mixing sites: the decoration columns, in order.

    >>> from activemat.space.parents import parent_from_keys
    >>> mixing_sites(parent_from_keys(lattice="zincblende", chemical_symbols=[["Ga", "Al"], ["As"]]),
    ...              (1, 1, 2)).tolist()
    [0, 2]
    """
    parent = as_parent(parent)
    index = _site_index_of(parent, check_supercell(supercell), check_cell(cell))
    return np.flatnonzero(np.array(parent.mixing)[index])


def site_types(parent, supercell: tuple[int, int, int], cell: str = "primitive") -> np.ndarray:
    """Per site of :func:`reference_sites`, a sublattice number (1, 2, ...): sites with the same allowed species
    share it. Symmetry operations (spglib) map each type onto itself."""
    parent = as_parent(parent)
    kinds = list(dict.fromkeys(parent.chemical_symbols))
    per_site = np.array([1 + kinds.index(s) for s in parent.chemical_symbols])
    return per_site[_site_index_of(parent, check_supercell(supercell), check_cell(cell))]


def lattice_name(atoms, parent=None) -> str:
    """The lattice of a structure as a message names it: a name of :data:`~activemat.space.lattice.LATTICES`
    with its space group (``"rocksalt (Fm-3m)"``) when one has the structure's space group and atoms per
    primitive cell, else its space group. With ``parent``, B is read as A first (so an alloy's decoration does
    not lower the symmetry compared).

    >>> from ase.build import bulk
    >>> lattice_name(bulk("NaCl", "rocksalt", a=5.64))
    'rocksalt (Fm-3m)'
    """
    numbers = atoms.numbers.copy()
    if parent is not None:
        a, b = (atomic_numbers[e] for e in as_parent(parent).elements)
        numbers[numbers == b] = a
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Set OLD_ERROR_HANDLING", DeprecationWarning)
        data = spglib.get_symmetry_dataset((atoms.cell.array, atoms.get_scaled_positions(), numbers), symprec=0.1)
    if data is None:
        return "no lattice spglib recognises"
    n_prim = round(len(atoms) * abs(np.linalg.det(data.primitive_lattice)) / abs(atoms.get_volume()))
    name = _named_lattices().get((int(data.number), n_prim))
    return f"{name} ({data.international})" if name else f"space group {data.international}"


@functools.lru_cache(maxsize=1)
def _named_lattices() -> dict[tuple[int, int], str]:
    """(space group number, atoms per primitive cell) -> name, of every named lattice."""
    out = {}
    for name, formula in LATTICES.items():
        ref = named_cell(name, 5.0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Set OLD_ERROR_HANDLING", DeprecationWarning)
            number = spglib.get_symmetry_dataset((ref.cell.array, ref.get_scaled_positions(), ref.numbers)).number
        out[(int(number), len(ref))] = name
    return out
