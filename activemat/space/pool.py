"""Candidate space: A/B decorations of a diamond-lattice supercell.

A pool is every symmetry-distinct decoration of a small supercell
(``mode="configurations"``), one representative per composition
(``"compositions"``) or random decorations of a large supercell
(``"sampled"``, de-duplicated by symmetry), each with cluster-expansion
features; with ``sqs=True`` it also holds icet's special quasirandom
structure at every composition (the campaign's seeds). Decoration column
``j`` is site ``j`` of :func:`reference_sites`; value 1 means element B.

Feature sets: ``"shells"`` (x_B, pairs in neighbour shells 1-3, the
nearest-neighbour triplet; any cell), ``"orbits"`` (every symmetry-distinct
2-4-site cluster of the supercell; at most 24 sites) and ``"icet"`` (the
cluster vector of icet's ``ClusterSpace`` on the diamond parent lattice with
per-order cutoffs; any cell, the same numbers for the same decoration pattern
in any supercell).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
import spglib
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

from activemat.errors import SpaceError

__all__ = [
    "LATTICE_CONSTANTS", "CandidatePool", "build_pool", "reference_sites",
    "structure_features", "parse_formula", "site_permutations", "canonical_codes", "cluster_orbits",
    "cluster_space", "cluster_vectors", "check_cutoffs", "DEFAULT_CUTOFFS", "decoration_codes", "sqs_decorations",
    "pool_of_decorations", "check_supercell", "feature_classes", "class_names", "CLUSTER_CLASSES",
]

#: Diamond-structure lattice constants (Angstrom).
LATTICE_CONSTANTS: dict[str, float] = {"Si": 5.431, "Ge": 5.658, "C": 3.567, "Sn": 6.489}
MODES = ("configurations", "compositions", "sampled")
FEATURE_SETS = ("shells", "orbits", "icet")
CELLS = ("primitive", "cubic")  # supercell repeats the 2-atom primitive or the 8-atom conventional cubic cell
# Angstrom: pairs, triplets, quadruplets ("icet" features). Leave-one-out MAE on the 402 16-atom PBE labels
# 0.0063 eV (7, 4.5, 4: 0.0108); 10^5 64-atom decorations featurise in 33 s on 2 cores (benchmarks/).
DEFAULT_CUTOFFS = (7.0, 6.0, 5.0)
MAX_CUTOFFS = 3  # up to quadruplets
_ORDER_NAMES = {2: "pair", 3: "triplet", 4: "quadruplet"}
MAX_ORBIT_BODIES = 4  # "orbits": every symmetry-distinct cluster of 2, 3 and 4 sites of the supercell
MAX_EXACT_SITES = 24
MAX_CODE_SITES = 64  # a decoration packs into one uint64 code: symmetry de-duplication up to this many sites
# Diamond neighbour shells in units of a: sqrt(3)/4, sqrt(8)/4, sqrt(11)/4; the 4th is at 1.
_SHELL_EDGES = np.array([np.sqrt(3) + np.sqrt(8), np.sqrt(8) + np.sqrt(11), np.sqrt(11) + 4.0]) / 8
_SHELL_SIZES = np.array([4, 12, 12])
_CHUNK = 1 << 14  # rows per vectorised block: bounds memory for 10^5-row pools


@dataclass(frozen=True, eq=False)
class CandidatePool:
    """Decorated supercells with multiplicities and features.

    Attributes
    ----------
    elements
        (host A, alloying B); decoration value 1 means B.
    supercell
        Repetition of the cell named by ``cell``, or a 3x3 integer matrix of it.
    decorations
        (n, n_sites) uint8, 1 = element B at that site.
    multiplicity
        (n,) int64, number of decorations of the supercell equivalent to this one.
    features
        (n, n_features) float64.
    feature_names
        Names of the feature columns.
    cell
        ``"primitive"`` (2-atom diamond cell) or ``"cubic"`` (8-atom conventional cell).
    feature_set
        ``"shells"``, ``"orbits"`` or ``"icet"``; None: inferred from ``feature_names``
        (pools rebuilt from a store).
    cutoffs
        icet cutoffs (Angstrom) per cluster order; None: inferred from ``feature_names``.
    sqs
        (n,) bool, True for icet's special quasirandom structure of a composition
        (preferred as that composition's seed); None: the pool has none.
    """

    elements: tuple[str, str]
    supercell: tuple[int, int, int]
    decorations: np.ndarray
    multiplicity: np.ndarray
    features: np.ndarray
    feature_names: tuple[str, ...]
    cell: str = "primitive"
    feature_set: str | None = None
    cutoffs: tuple[float, ...] | None = None
    sqs: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.decorations)

    @property
    def n_sites(self) -> int:
        return self.decorations.shape[1]

    @property
    def n_b(self) -> np.ndarray:
        return self.decorations.sum(axis=1, dtype=np.int64)

    @property
    def x_b(self) -> np.ndarray:
        return self.n_b / self.n_sites

    @property
    def feature_kind(self) -> str:
        """``"compositions"`` (x_B only), ``"shells"``, ``"orbits"`` or ``"icet"``."""
        if len(self.feature_names) == 1:
            return "compositions"
        if self.feature_set is not None:
            return self.feature_set
        if tuple(self.feature_names[1:]) == _feature_names(self.elements)[1:]:
            return "shells"
        return "icet" if self.feature_names[1].endswith(" A") else "orbits"

    @property
    def feature_classes(self) -> tuple[int, ...]:
        """The cluster class of each feature (:func:`feature_classes`)."""
        return feature_classes(self.feature_names)

    @property
    def cluster_cutoffs(self) -> tuple[float, ...]:
        """icet cutoffs of an ``"icet"`` pool, given or inferred from its feature names."""
        if self.cutoffs is not None:
            return self.cutoffs
        return _cutoffs_from_names(self.feature_names)

    def featurize(self, atoms: Atoms) -> np.ndarray:
        """Feature vector (n_features,) of any diamond-lattice A/B structure, like this pool's rows.

        ``"shells"`` and ``"icet"`` features are defined on the parent lattice: any cell size or
        shape works. ``"orbits"`` are defined on this supercell's sites only (SpaceError).
        """
        kind = self.feature_kind
        if kind == "compositions":
            return structure_features(atoms, self.elements)[:1]
        if kind == "orbits":
            raise SpaceError("space.features = \"orbits\" is defined on the campaign supercell's sites only; "
                             "give a decoration of that cell, or use features = \"icet\" for any cell")
        return structure_features(atoms, self.elements, features=kind,
                                  cutoffs=self.cluster_cutoffs if kind == "icet" else None)

    def formula(self, i: int) -> str:
        """Return e.g. ``"Si4Ge12"`` (A first; elements with count 0 omitted)."""
        k = int(self.decorations[i].sum())
        return _formula(self.elements, self.n_sites - k, k)

    def atoms(self, i: int) -> Atoms:
        """Return candidate ``i`` as a periodic supercell at the Vegard lattice constant."""
        x = float(self.decorations[i].mean())
        a_a, a_b = (LATTICE_CONSTANTS[e] for e in self.elements)
        atoms = _supercell_of(_cell_atoms(self.elements[0], (1 - x) * a_a + x * a_b, self.cell), self.supercell)
        atoms.set_chemical_symbols(np.array(self.elements)[self.decorations[i]])
        return atoms


#: Cluster classes of the features, by index: composition (x_B), pairs, triplets, quadruplets.
CLUSTER_CLASSES = ("composition", "pair", "triplet", "quadruplet")


def _cluster_class(name: str) -> int:
    """The index into :data:`CLUSTER_CLASSES` of one feature name."""
    for index, prefix in enumerate(("x_", "pair", "triplet", "quad")):
        if name.startswith(prefix):
            return index
    raise SpaceError(f"feature {name!r} is of no cluster class ({', '.join(CLUSTER_CLASSES)})")


def feature_classes(names) -> tuple[int, ...]:
    """The cluster class of each feature name, an index into :data:`CLUSTER_CLASSES` (of every feature set).

    Classes that no feature has are skipped, so the indices run 0 .. (number of classes present) - 1.

    >>> feature_classes(("x_ge", "pair1", "pair2", "triplet1", "quad1"))
    (0, 1, 1, 2, 3)
    >>> feature_classes(("x_ge", "pair 2.35 A", "triplet 3.84 A"))
    (0, 1, 2)
    >>> feature_classes(("x_ge", "pair1", "quad1"))
    (0, 1, 2)
    """
    out = [_cluster_class(name) for name in names]
    present = sorted(set(out))
    return tuple(present.index(c) for c in out)


def class_names(names) -> tuple[str, ...]:
    """The names of the cluster classes the features have, in the order of :func:`feature_classes`' indices.

    >>> class_names(("x_ge", "pair1", "quad1"))
    ('composition', 'pair', 'quadruplet')
    """
    return tuple(CLUSTER_CLASSES[c] for c in sorted({_cluster_class(name) for name in names}))


def _formula(elements: tuple[str, str], n_a: int, n_b: int) -> str:
    return "".join(f"{e}{n}" for e, n in zip(elements, (n_a, n_b)) if n > 0)


def _check_elements(elements: tuple[str, str]) -> tuple[str, str]:
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


def _supercell_of(atoms: Atoms, supercell: tuple) -> Atoms:
    """``atoms`` repeated (three repeats) or transformed by a 3x3 matrix (rows: new cell vectors in units of the
    old ones, ASE's ``make_supercell``)."""
    if isinstance(supercell[0], tuple):
        from ase.build import make_supercell

        return make_supercell(atoms, np.array(supercell))
    return atoms.repeat(supercell)


def _check_cell(cell: str) -> str:
    if cell not in CELLS:
        raise SpaceError(f"unknown space.cell {cell!r}; use one of {', '.join(CELLS)}")
    return cell


def _cell_atoms(element: str, a: float, cell: str) -> Atoms:
    return bulk(element, "diamond", a=a, cubic=cell == "cubic")


def reference_sites(elements: tuple[str, str], supercell: tuple[int, int, int], cell: str = "primitive") -> Atoms:
    """Return the undecorated supercell (all A, lattice constant of A).

    ``supercell`` repeats the 2-atom primitive cell (``cell="primitive"``) or
    the 8-atom conventional cubic cell (``cell="cubic"``; ``[2, 2, 2]`` gives 64
    sites), or is a 3x3 integer matrix whose rows are the supercell's vectors in
    units of that cell's (``[[-1, 1, 1], [1, -1, 1], [1, 1, -1]]`` of the
    primitive cell is the 8-atom cubic cell). Its site order defines the decoration columns of every pool.
    """
    elements, supercell, cell = _check_elements(elements), check_supercell(supercell), _check_cell(cell)
    return _supercell_of(_cell_atoms(elements[0], LATTICE_CONSTANTS[elements[0]], cell), supercell)


def check_cutoffs(cutoffs) -> tuple[float, ...]:
    """Validate icet cutoffs: 1 to MAX_CUTOFFS positive distances (Angstrom) for pairs, triplets, quadruplets.

    >>> check_cutoffs([7, 4.5])
    (7.0, 4.5)
    """
    ok = (isinstance(cutoffs, (tuple, list)) and 1 <= len(cutoffs) <= MAX_CUTOFFS
          and all(isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, bool)
                  and math.isfinite(c) and c > 0 for c in cutoffs))
    if not ok:
        raise SpaceError(f"space.cutoffs must be 1 to {MAX_CUTOFFS} positive distances in Angstrom (pairs, "
                         f"triplets, quadruplets), such as {list(DEFAULT_CUTOFFS)}; got {cutoffs!r}")
    return tuple(float(c) for c in cutoffs)


@functools.lru_cache(maxsize=16)
def _cached_cluster_space(elements: tuple[str, str], cutoffs: tuple[float, ...]):
    from icet import ClusterSpace  # imported on use: icet costs ~0.8 s to import

    prim = bulk(elements[0], "diamond", a=LATTICE_CONSTANTS[elements[0]])
    with warnings.catch_warnings():
        # spglib 2.7-2.x warns on every call unless a process-wide flag is flipped; keep it local.
        warnings.filterwarnings("ignore", "Set OLD_ERROR_HANDLING", DeprecationWarning)
        cs = ClusterSpace(prim, list(cutoffs), list(elements))
    if not any(d["order"] == 2 for d in cs.as_list):
        raise SpaceError(f"space.cutoffs {list(cutoffs)}: no pair fits within {cutoffs[0]} A (nearest neighbours "
                         f"are {np.sqrt(3) / 4 * LATTICE_CONSTANTS[elements[0]]:.2f} A apart); raise the first cutoff")
    return cs


def cluster_space(elements: tuple[str, str] = ("Si", "Ge"), cutoffs=DEFAULT_CUTOFFS):
    """Return icet's ``ClusterSpace`` of the diamond parent lattice (2-atom primitive cell of A at its
    lattice constant) with ``cutoffs`` (Angstrom) per cluster order and the two elements on every site.

    Its cluster vector's point term is ``2 x_B - 1`` for an A/B binary; the
    ``"icet"`` features replace it by x_B (same information, affine) and drop
    the constant zerolet.
    """
    return _cached_cluster_space(_check_elements(elements), check_cutoffs(cutoffs)).copy()


def _icet_names(elements: tuple[str, str], cutoffs: tuple[float, ...]) -> tuple[str, ...]:
    """x_B, then one name per cluster-vector column past the point term: order and the cluster's largest
    distance (e.g. ``"pair 2.35 A"``), ``#2``, ``#3`` on clusters of equal order and size."""
    cs = _cached_cluster_space(elements, cutoffs)
    names, seen = ["x_" + elements[1].lower()], {}
    for row in cs.as_list[2:]:  # skip the zerolet and the point term
        pos = np.array(cs.get_coordinates_of_representative_cluster(row["orbit_index"]))
        size = max(np.linalg.norm(p - q) for p, q in itertools.combinations(pos, 2))
        base = f"{_ORDER_NAMES[row['order']]} {size:.2f} A"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base} #{seen[base]}")
    return tuple(names)


def _cutoffs_from_names(names: tuple[str, ...]) -> tuple[float, ...]:
    """Cutoffs that give exactly the clusters named (largest size per order plus 0.01 A; diamond's
    distances are far more than 0.01 A apart)."""
    largest: dict[int, float] = {}
    orders = {v: k for k, v in _ORDER_NAMES.items()}
    for name in names[1:]:
        m = re.fullmatch(r"(\w+) (\d+\.\d+) A( #\d+)?", name)
        if not m or m.group(1) not in orders:
            raise SpaceError(f"feature {name!r} is not an icet cluster name such as 'pair 2.35 A'")
        k = orders[m.group(1)]
        largest[k] = max(largest.get(k, 0.0), float(m.group(2)))
    return tuple(largest[k] + 0.01 for k in range(2, max(largest) + 1))


def _cv_block(elements: tuple[str, str], cutoffs: tuple[float, ...], sites: Atoms, dec: np.ndarray) -> np.ndarray:
    """Cluster vectors of a block of decorations of ``sites``: a plain loop over icet's public API."""
    cs = _cached_cluster_space(elements, cutoffs)
    numbers = np.array([Atoms(e).numbers[0] for e in elements])
    atoms = sites.copy()
    out = np.empty((len(dec), len(cs) - 1))
    for r, row in enumerate(dec):
        atoms.numbers = numbers[row]
        out[r] = cs.get_cluster_vector(atoms)[1:]  # drop the zerolet (always 1)
    out[:, 0] = dec.mean(axis=1)  # point term 2 x_B - 1 -> x_B
    return out


def cluster_vectors(decorations: np.ndarray, elements: tuple[str, str], sites: Atoms, *,
                    cutoffs=DEFAULT_CUTOFFS, processes: int = 1, block: int = 4096) -> np.ndarray:
    """Return the ``"icet"`` features (m, n_features) of (m, n_sites) 0/1 decorations of ``sites``.

    Columns: x_B, then icet's cluster vector without zerolet and point term
    (:func:`cluster_space`). ``sites`` is an all-A cell on the parent lattice
    at A's lattice constant (:func:`reference_sites`). With ``processes`` > 1
    blocks of ``block`` rows run in that many spawned processes.
    """
    elements, cutoffs = _check_elements(elements), check_cutoffs(cutoffs)
    dec = np.asarray(decorations, dtype=np.uint8)
    starts = range(0, len(dec), block)
    if processes <= 1 or len(dec) <= block:
        parts = [_cv_block(elements, cutoffs, sites, dec[s:s + block]) for s in starts]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as ex:
            parts = list(ex.map(_cv_block, *zip(*[(elements, cutoffs, sites, dec[s:s + block]) for s in starts])))
    if not parts:
        return np.empty((0, len(_icet_names(elements, cutoffs))))
    return np.concatenate(parts)


def _shell_adjacency(atoms: Atoms) -> np.ndarray:
    """Return (3, n, n) counts of periodic neighbours in shells 1-3.

    Entries count bonds to all periodic images, so cells as small as the
    2-atom primitive give the same correlations as any supercell.
    """
    if not np.all(atoms.pbc) or len(atoms) == 0:
        raise SpaceError("structure must be a periodic (pbc=True) diamond-lattice crystal; set atoms.pbc = True")
    n = len(atoms)
    a = (8 * atoms.get_volume() / n) ** (1 / 3)  # 8 atoms per cubic cell; tolerant to Vegard/relaxed cells
    i, j, d = neighbor_list("ijd", atoms, _SHELL_EDGES[2] * a)
    shell = np.searchsorted(_SHELL_EDGES[:2], d / a)
    counts = np.zeros((3, n), dtype=np.int64)
    np.add.at(counts, (shell, i), 1)
    if np.any(counts != _SHELL_SIZES[:, None]):
        raise SpaceError("structure is not a diamond lattice (each atom needs 4/12/12 neighbours in shells 1-3); "
                         "pass an undistorted diamond-lattice cell")
    adj = np.zeros((3, n, n))
    np.add.at(adj, (shell, i, j), 1.0)
    return adj


def _correlations(dec: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """Return (m, 5) features [x_B, pair1-3, triplet1] for (m, n) 0/1 decorations."""
    m, n = dec.shape
    stacked = np.concatenate(adj, axis=1)  # (n, 3n): one matmul gives all shell sums
    out = np.empty((m, 5))
    for s in range(0, m, _CHUNK):
        sigma = 1.0 - 2.0 * dec[s:s + _CHUNK]  # +1 for A, -1 for B
        nb = (sigma @ stacked).reshape(len(sigma), 3, n)  # nb[:, s, i] = sum of sigma over shell-s bonds of i
        out[s:s + _CHUNK, 0] = (1.0 - sigma.mean(axis=1)) / 2
        out[s:s + _CHUNK, 1:4] = np.einsum("mi,msi->ms", sigma, nb) / (n * _SHELL_SIZES)
        # Triplets centred on i over its 6 pairs of nearest-neighbour bonds: (S^2 - sum sigma^2) / 2, sigma^2 = 1.
        out[s:s + _CHUNK, 4] = np.einsum("mi,mi->m", sigma, (nb[:, 0] ** 2 - 4) / 2) / (6 * n)
    return out


def _feature_names(elements: tuple[str, str]) -> tuple[str, ...]:
    return ("x_" + elements[1].lower(), "pair1", "pair2", "pair3", "triplet1")


def cluster_orbits(elements: tuple[str, str], supercell: tuple[int, int, int],
                   cell: str = "primitive") -> list[np.ndarray]:
    """Every symmetry-distinct cluster of 2 to MAX_ORBIT_BODIES sites of the supercell, as orbits.

    Each orbit is an (m, k) array of site indices: all images of one k-site
    cluster under the supercell's space group (:func:`site_permutations`).
    Orbits are ordered by size, then by the cluster's summed minimum-image
    bond length (compact clusters first).
    """
    perms = site_permutations(elements, supercell, cell)
    atoms = reference_sites(elements, supercell, cell)
    dist = atoms.get_all_distances(mic=True)
    orbits = []
    for k in range(2, MAX_ORBIT_BODIES + 1):
        seen: set[tuple[int, ...]] = set()
        found = []
        for cluster in itertools.combinations(range(len(atoms)), k):
            if cluster in seen:
                continue
            images = {tuple(sorted(p[list(cluster)])) for p in perms}
            seen |= images
            size = sum(dist[i, j] for i, j in itertools.combinations(cluster, 2))
            found.append((round(size, 6), sorted(images)))
        orbits += [np.array(images) for _, images in sorted(found, key=lambda f: f[0])]
    return orbits


def _orbit_features(dec: np.ndarray, orbits: list[np.ndarray]) -> np.ndarray:
    """(m, 1 + n_orbits) features [x_B, orbit correlations]: the mean over an orbit of the product of spins."""
    sigma = 1.0 - 2.0 * dec
    out = [dec.mean(axis=1)]
    for orbit in orbits:
        out.append(np.mean(np.prod(sigma[:, orbit], axis=2), axis=1))
    return np.column_stack(out)


def _orbit_names(elements: tuple[str, str], orbits: list[np.ndarray]) -> tuple[str, ...]:
    names, counts = ["x_" + elements[1].lower()], {}
    for orbit in orbits:
        k = orbit.shape[1]
        counts[k] = counts.get(k, 0) + 1
        names.append(f"{ {2: 'pair', 3: 'triplet', 4: 'quad'}[k]}{counts[k]}")
    return tuple(names)


def structure_features(atoms: Atoms, elements: tuple[str, str], *, features: str = "shells",
                       cutoffs=None) -> np.ndarray:
    """Return the pool feature vector (n_features,) of any diamond-lattice A/B structure.

    The cell, site order and origin may be arbitrary; correlations are
    averaged over the whole periodic cell, so they are intensive.
    ``features`` is ``"shells"`` or ``"icet"`` (with ``cutoffs``, default
    :data:`DEFAULT_CUTOFFS`); ``"orbits"`` are defined on one supercell's
    sites only (use :class:`activemat.space.matching.Matcher`). For
    ``"icet"`` the cell is scaled to A's lattice constant (Vegard or other
    uniform scalings are undone) and moved to put an atom at the origin before
    icet's ``get_cluster_vector``; the crystal axes must be those of ASE's
    ``bulk(A, "diamond")`` (a rotated crystal raises SpaceError).
    """
    elements = _check_elements(elements)
    if features not in ("shells", "icet"):
        raise SpaceError(f"structure features are \"shells\" or \"icet\", not {features!r}: "
                         "\"orbits\" are defined on the campaign supercell's sites only")
    symbols = np.array(atoms.get_chemical_symbols())
    if not np.all(np.isin(symbols, elements)):
        bad = sorted(set(symbols) - set(elements))
        raise SpaceError(f"structure contains {', '.join(bad)} but space.elements is {elements}; "
                         "use a structure of those two elements")
    adj = _shell_adjacency(atoms)  # also checks that the structure is a periodic diamond lattice
    dec = (symbols == elements[1])[None].astype(np.uint8)
    if features == "shells":
        return _correlations(dec, adj)[0]
    cutoffs = check_cutoffs(DEFAULT_CUTOFFS if cutoffs is None else cutoffs)
    scaled = atoms.copy()
    a = (8 * atoms.get_volume() / len(atoms)) ** (1 / 3)
    scaled.set_cell(atoms.cell.array * LATTICE_CONSTANTS[elements[0]] / a, scale_atoms=True)
    # Any origin: put atom 0 on its sublattice's site of icet's primitive cell, at 0 or a/4 (1, 1, 1). An atom
    # at 0 has its nearest neighbours at a/4 (+-1, +-1, +-1) with a positive product of signs.
    i, d = neighbor_list("iD", scaled, 0.5 * LATTICE_CONSTANTS[elements[0]])
    on_b = np.prod(np.sign(d[np.flatnonzero(i == 0)[0]])) < 0
    scaled.translate(-scaled.positions[0] + on_b * LATTICE_CONSTANTS[elements[0]] / 4)
    scaled.wrap()
    try:
        return _cv_block(elements, cutoffs, scaled, dec)[0]
    except SpaceError:
        raise
    except Exception as exc:  # icet raises a bare Exception when atoms do not sit on the parent lattice
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpaceError(f"icet cannot map the structure onto the diamond lattice ({first}); "
                         "pass an undistorted diamond-lattice cell") from exc


def parse_formula(text: str, elements: tuple[str, str], n_sites: int) -> int:
    """Return the number of B atoms of a composition of the ``n_sites``-site cell, written as a user types it.

    Accepted: the cell's own formula (``Si4Ge12``); a formula unit whose atoms divide the cell's
    (``SiGe3``, ``SiGe``, ``Si2Ge2``, ``Ge``: scaled up to the cell); fractions that sum to 1
    (``Si0.25Ge0.75``). Anything else is refused in one line that says what it means and the nearest
    compositions the cell holds.

    >>> parse_formula("Si4Ge12", ("Si", "Ge"), 16)
    12
    >>> parse_formula("SiGe3", ("Si", "Ge"), 16), parse_formula("Si0.5Ge0.5", ("Si", "Ge"), 16)
    (12, 8)
    >>> parse_formula("SiGe2", ("Si", "Ge"), 16)
    Traceback (most recent call last):
    ...
    activemat.errors.SpaceError: formula 'SiGe2' is x_Ge = 0.6667, not a composition of the 16-site cell (x_Ge in steps of 1/16); nearest: Si5Ge11 (x_Ge = 0.6875), Si6Ge10 (x_Ge = 0.625)
    """
    elements = _check_elements(elements)
    example = _formula(elements, n_sites // 2, n_sites - n_sites // 2)
    stripped = text.strip() if isinstance(text, str) else ""
    parts = re.findall(r"([A-Z][a-z]?)(\d+(?:\.\d*)?|\.\d+)?", stripped)
    if not parts or "".join(e + c for e, c in parts) != stripped:
        raise SpaceError(f"cannot parse formula {text!r}; write it like {example!r} (or {elements[0]}"
                         f"{elements[1]}3, {elements[0]}0.25{elements[1]}0.75)")
    counts = dict.fromkeys(elements, 0.0)
    fractional = any("." in c for _, c in parts)
    for e, c in parts:
        if e not in counts:
            raise SpaceError(f"element {e!r} in formula {text!r} is not in space.elements {elements}; use only those")
        counts[e] += float(c) if c else 1.0
    a, b = counts[elements[0]], counts[elements[1]]
    total = a + b
    if total <= 0:
        raise SpaceError(f"formula {text!r} has no atoms; write it like {example!r}")
    if fractional:
        if abs(total - 1.0) > 1e-6:
            raise SpaceError(f"formula {text!r}: fractions must sum to 1 (they sum to {total:g}); write e.g. "
                             f"{elements[0]}0.25{elements[1]}0.75, or counts such as {example!r}")
    elif total > n_sites or n_sites % round(total):
        n = round(total)
        scaled = b / total * n_sites
        if abs(scaled - round(scaled)) < 1e-9:  # e.g. Si10Ge6 for 16 sites: its composition, in other counts
            raise SpaceError(f"formula {text!r} has {n} atoms but the supercell has {n_sites} sites; "
                             f"write its composition as {_formula(elements, n_sites - round(scaled), round(scaled))}")
        if total > n_sites / 2:  # the cell's formula with a miscount, most likely
            raise SpaceError(f"formula {text!r} has {n} atoms but the supercell has {n_sites} sites (and its "
                             f"x_{elements[1]} = {b / total:.4f} is not one of the cell's compositions); "
                             f"nearest: {_nearest(b / total, elements, n_sites)}")
    n_b = b / total * n_sites
    if abs(n_b - round(n_b)) > 1e-6:
        raise SpaceError(f"formula {text!r} is x_{elements[1]} = {b / total:.4f}, not a composition of the "
                         f"{n_sites}-site cell (x_{elements[1]} in steps of 1/{n_sites}); nearest: "
                         f"{_nearest(b / total, elements, n_sites)}")
    return int(round(n_b))


def _nearest(x: float, elements: tuple[str, str], n_sites: int) -> str:
    """The one or two compositions of the cell nearest to fraction ``x`` of B, nearest first."""
    near = sorted({int(np.floor(x * n_sites)), int(np.ceil(x * n_sites))}, key=lambda k: abs(k / n_sites - x))
    return ", ".join(f"{_formula(elements, n_sites - k, k)} (x_{elements[1]} = {k / n_sites:g})" for k in near)


def site_permutations(elements: tuple[str, str], supercell: tuple[int, int, int],
                      cell: str = "primitive") -> np.ndarray:
    """Return (n_ops, n_sites) site permutations of the all-A supercell's space group.

    ``perm[o, j]`` is the site that site ``j`` is mapped to by operation ``o``.
    """
    atoms = reference_sites(elements, supercell, cell)
    frac = atoms.get_scaled_positions()
    with warnings.catch_warnings():
        # spglib 2.7-2.x warns on every call unless a process-wide flag is flipped; keep it local.
        warnings.filterwarnings("ignore", "Set OLD_ERROR_HANDLING", DeprecationWarning)
        sym = spglib.get_symmetry((atoms.cell[:], frac, atoms.numbers), symprec=1e-5)
    if sym is None:
        raise RuntimeError(f"spglib found no symmetry for the {supercell} supercell")
    perms = []
    for s in range(0, len(sym["rotations"]), 64):  # blocks of operations bound memory (1536 ops on 64 sites)
        new = np.einsum("oab,jb->oja", sym["rotations"][s:s + 64], frac) + sym["translations"][s:s + 64, None, :]
        diff = new[:, :, None, :] - frac[None, None, :, :]
        match = np.all(np.abs(diff - np.round(diff)) < 1e-4, axis=-1)  # (ops, j, target)
        assert np.all(match.sum(axis=2) == 1), "symmetry operation does not map sites onto sites"
        perms.append(match.argmax(axis=2))
    return np.concatenate(perms)


def canonical_codes(codes: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """Return the minimum over ``perms`` of each decoration code (bit j = site j is B).

    Bits are permuted a byte at a time via lookup tables, so each
    operation costs a few gathers per code.
    """
    codes = np.asarray(codes, dtype=np.uint64)
    n_ops, n = perms.shape
    n_bytes = -(-n // 8)
    padded = np.full((n_ops, 8 * n_bytes), -1)
    padded[:, :n] = perms
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1  # (256, 8)
    weight = np.where(padded >= 0, np.uint64(1) << np.maximum(padded, 0).astype(np.uint64), np.uint64(0))
    table = np.einsum("vk,obk->obv", bits.astype(np.uint64), weight.reshape(n_ops, n_bytes, 8))
    out = np.empty_like(codes)
    for s in range(0, len(codes), 1 << 20):
        chunk = codes[s:s + (1 << 20)]
        parts = [((chunk >> np.uint64(8 * b)) & np.uint64(255)).astype(np.intp) for b in range(n_bytes)]
        best = np.full(len(chunk), np.iinfo(np.uint64).max, dtype=np.uint64)
        for o in range(n_ops):
            image = table[o, 0][parts[0]]
            for b in range(1, n_bytes):
                image |= table[o, b][parts[b]]
            np.minimum(best, image, out=best)
        out[s:s + len(chunk)] = best
    return out


def _codes_to_decorations(codes: np.ndarray, n: int) -> np.ndarray:
    return ((codes[:, None] >> np.arange(n, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)


def _enumerate(elements: tuple[str, str], supercell: tuple[int, int, int], n: int, cell: str):
    """Return (decorations, multiplicity) of all symmetry classes, sorted by (n_b, code)."""
    if n > MAX_EXACT_SITES:
        raise SpaceError(f"space.supercell {list(supercell)} of the {cell} cell has {n} sites, too many for exact "
                         f"enumeration (max {MAX_EXACT_SITES}); use mode = \"sampled\" with samples_per_composition")
    codes = np.arange(1 << n, dtype=np.uint64)
    canon = canonical_codes(codes, site_permutations(elements, supercell, cell))
    reps = np.flatnonzero(canon == codes).astype(np.uint64)
    mult = np.bincount(canon.astype(np.intp), minlength=1 << n)[reps.astype(np.intp)].astype(np.int64)
    dec = _codes_to_decorations(reps, n)
    order = np.lexsort((reps, dec.sum(axis=1)))
    return dec[order], mult[order]


def decoration_codes(decorations: np.ndarray) -> np.ndarray:
    """One uint64 per decoration (bit j = site j is B), for cells of at most MAX_CODE_SITES sites."""
    dec = np.asarray(decorations)
    return (dec.astype(np.uint64) << np.arange(dec.shape[1], dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


def _class_keys(dec: np.ndarray, perms: np.ndarray | None) -> np.ndarray:
    """One key per row, equal for rows of one class: equivalent by ``perms`` (canonical codes), or, without
    them, identical (the packed row)."""
    if perms is not None:
        return canonical_codes(decoration_codes(dec), perms)
    packed = np.ascontiguousarray(np.packbits(dec, axis=1))
    return packed.view(np.dtype((np.void, packed.shape[1]))).ravel()


def _unique_rows(dec: np.ndarray, perms: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The classes of the rows of ``dec`` (:func:`_class_keys`), numbered in order of first appearance.

    Returns the index of each class's first row, the number of rows in each, and each row's class.
    """
    _, first, inverse, counts = np.unique(_class_keys(dec, perms), return_index=True, return_inverse=True,
                                          return_counts=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], counts[order], rank[inverse.ravel()]


def _sample(n: int, per_comp: int, seed: int, perms: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Random decorations, ``per_comp`` draws per composition, one row per class drawn.

    Returns (decorations, draws): a class drawn several times (equivalent by
    ``perms``, or identical without them) keeps its first draw and counts its
    draws, so draw-weighted averages stay those of the random alloy.
    """
    rng = np.random.default_rng(seed)
    blocks, counts = [], []
    for k in range(n + 1):
        cols = np.argsort(rng.random((per_comp, n)), axis=1)[:, :k]  # k distinct random sites per row
        dec = np.zeros((per_comp, n), dtype=np.uint8)
        np.put_along_axis(dec, cols, 1, axis=1)
        first, draws, _ = _unique_rows(dec, perms)
        blocks.append(dec[first])  # keep draw order: deterministic for a seed
        counts.append(draws)
    return np.concatenate(blocks), np.concatenate(counts).astype(np.int64)


def sqs_decorations(elements: tuple[str, str], supercell: tuple[int, int, int], cell: str = "primitive", *,
                    cutoffs=DEFAULT_CUTOFFS, seed: int = 0) -> np.ndarray:
    """Special quasirandom structures of the supercell, one per composition: (n_sites + 1, n_sites) decorations.

    Row k has k B atoms, placed by icet's ``generate_sqs_from_supercells``
    (simulated annealing of the decoration towards the random alloy's cluster
    vector for ``cutoffs``, seeded by ``seed + k``). Rows 0 and n_sites are
    the pure elements.
    """
    from icet.tools.structure_generation import generate_sqs_from_supercells  # icet costs ~0.8 s to import

    elements, cutoffs = _check_elements(elements), check_cutoffs(cutoffs)
    sites = reference_sites(elements, supercell, cell)
    n, cs = len(sites), _cached_cluster_space(elements, cutoffs)
    out = np.zeros((n + 1, n), dtype=np.uint8)
    out[n] = 1
    for k in range(1, n):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Set OLD_ERROR_HANDLING", DeprecationWarning)
            atoms = generate_sqs_from_supercells(cs, [sites], {elements[0]: (n - k) / n, elements[1]: k / n},
                                                 random_seed=seed + k)
        # icet decorates the supercell it is given, site for site
        assert np.allclose(atoms.positions, sites.positions) and np.allclose(atoms.cell, sites.cell)
        out[k] = np.array(atoms.get_chemical_symbols()) == elements[1]
    return out


def _add_sqs(dec: np.ndarray, mult: np.ndarray, sqs: np.ndarray, perms: np.ndarray | None):
    """Merge SQS rows into a pool ordered by composition: mark the class already there, else insert the SQS
    (counted as one draw) at the end of its composition's block. Returns (dec, mult, is_sqs)."""
    n_b = dec.sum(axis=1)
    pool_keys, sqs_keys = _class_keys(dec, perms), _class_keys(sqs, perms)
    rows, is_sqs, weights = [], [], []
    for k in range(dec.shape[1] + 1):
        block = np.flatnonzero(n_b == k)
        hit = block[pool_keys[block] == sqs_keys[k]]
        rows.append(dec[block]), weights.append(mult[block])
        flags = np.zeros(len(block), bool)
        if len(hit):
            flags[np.searchsorted(block, hit[0])] = True
        else:
            rows.append(sqs[k:k + 1]), weights.append(np.ones(1, np.int64))
            flags = np.append(flags, True)
        is_sqs.append(flags)
    return np.concatenate(rows), np.concatenate(weights), np.concatenate(is_sqs)


def _features(dec: np.ndarray, features: str, elements: tuple[str, str], supercell: tuple[int, int, int],
              cell: str, cutoffs: tuple[float, ...] | None, processes: int = 1) -> tuple[tuple[str, ...], np.ndarray]:
    """Feature names and matrix of decorations of the supercell."""
    sites = reference_sites(elements, supercell, cell)
    if features == "orbits":
        orbits = cluster_orbits(elements, supercell, cell)
        return _orbit_names(elements, orbits), _orbit_features(dec, orbits)
    if features == "icet":
        return _icet_names(elements, cutoffs), cluster_vectors(dec, elements, sites, cutoffs=cutoffs,
                                                               processes=processes)
    return _feature_names(elements), _correlations(dec, _shell_adjacency(sites))


def pool_of_decorations(decorations: np.ndarray, elements: tuple[str, str] = ("Si", "Ge"),
                        supercell: tuple[int, int, int] = (2, 2, 2), *, cell: str = "primitive",
                        features: str = "shells", cutoffs=DEFAULT_CUTOFFS) -> tuple[CandidatePool, np.ndarray]:
    """A pool of given decorations of the supercell (e.g. labelled structures), one row per symmetry class.

    Returns the pool, ordered by composition, and for each input row the pool
    row of its class. Multiplicity counts the input rows of each class (as
    for a ``"sampled"`` pool); symmetry classes are found for cells of at most
    MAX_CODE_SITES sites, identical rows only above.
    """
    elements, supercell, cell = _check_elements(elements), check_supercell(supercell), _check_cell(cell)
    dec = np.asarray(decorations, dtype=np.uint8)
    n = dec.shape[1]
    perms = site_permutations(elements, supercell, cell) if n <= MAX_CODE_SITES else None
    order = np.argsort(dec.sum(axis=1), kind="stable")
    first, counts, classes = _unique_rows(dec[order], perms)
    keep = order[first]
    rows = np.empty(len(dec), dtype=np.int64)
    rows[order] = classes
    cutoffs = check_cutoffs(cutoffs) if features == "icet" else None
    names, feats = _features(dec[keep], features, elements, supercell, cell, cutoffs)
    pool = CandidatePool(elements, supercell, dec[keep], counts.astype(np.int64), feats, names, cell=cell,
                         feature_set=features, cutoffs=cutoffs)
    return pool, rows


def build_pool(elements: tuple[str, str] = ("Si", "Ge"), supercell: tuple[int, int, int] = (2, 2, 2),
               mode: str = "configurations", samples_per_composition: int | None = None, seed: int = 0,
               features: str = "shells", *, cutoffs=DEFAULT_CUTOFFS, cell: str = "primitive",
               sqs: bool = False, processes: int = 1) -> CandidatePool:
    """Build the candidate pool of a diamond-lattice A/B supercell.

    Parameters
    ----------
    elements
        (host A, alloying B), keys of :data:`LATTICE_CONSTANTS`.
    supercell
        Repetition of the cell named by ``cell``.
    mode
        ``"configurations"``: all symmetry-distinct decorations (at most 24
        sites); ``"compositions"``: one per composition, feature ``x_B``
        only; ``"sampled"``: ``samples_per_composition`` random decorations per
        composition, de-duplicated by symmetry (cells of at most MAX_CODE_SITES
        sites; larger ones drop identical rows only), multiplicity = the number
        of draws of that class.
    samples_per_composition
        Draws per composition; required for ``"sampled"``, ignored otherwise.
    seed
        Seed of ``numpy.random.default_rng`` for ``"sampled"``.
    features
        ``"shells"``: x_B, pair correlations of neighbour shells 1-3 and the
        nearest-neighbour triplet, for any diamond-lattice cell;
        ``"orbits"``: x_B and the correlation of every symmetry-distinct
        cluster of 2-4 sites of the supercell (a complete four-body cluster
        expansion of that cell; at most MAX_EXACT_SITES sites);
        ``"icet"``: x_B and icet's cluster vector on the diamond parent
        lattice with ``cutoffs`` (:func:`cluster_vectors`), for any cell.
    cutoffs
        Pair, triplet, quadruplet cutoffs (Angstrom) of the ``"icet"`` features
        and of the special quasirandom structures.
    cell
        ``"primitive"`` (2-atom cell; ``[2, 2, 2]`` = 16 sites) or ``"cubic"``
        (8-atom conventional cell; ``[2, 2, 2]`` = 64 sites).
    sqs
        Add icet's special quasirandom structure of every composition
        (:func:`sqs_decorations`, seeded by ``seed``) and mark it in
        ``CandidatePool.sqs``; one not among the pool's classes joins it,
        counted as one draw.
    processes
        Processes featurising ``"icet"`` pools.

    Returns
    -------
    CandidatePool
    """
    elements, supercell, cell = _check_elements(elements), check_supercell(supercell), _check_cell(cell)
    if mode not in MODES:
        raise SpaceError(f"unknown space.mode {mode!r}; use one of {', '.join(MODES)}")
    sites = reference_sites(elements, supercell, cell)
    n = len(sites)
    if features not in FEATURE_SETS:
        raise SpaceError(f"unknown space.features {features!r}; use one of {', '.join(FEATURE_SETS)}")
    if features == "orbits" and n > MAX_EXACT_SITES:
        raise SpaceError(f"space.features = \"orbits\" enumerates the clusters of the supercell; {n} sites is too "
                         f"many (max {MAX_EXACT_SITES}); use features = \"icet\"")
    cutoffs = check_cutoffs(cutoffs) if features == "icet" or sqs else None
    # symmetry classes of random draws and of SQS (up to MAX_CODE_SITES sites: larger cells compare rows as they are)
    perms = site_permutations(elements, supercell, cell) if (mode == "sampled" or sqs) and n <= MAX_CODE_SITES else None
    names = _feature_names(elements)
    if mode == "sampled":
        if (not isinstance(samples_per_composition, (int, np.integer)) or isinstance(samples_per_composition, bool)
                or samples_per_composition < 1):
            raise SpaceError(f"space.samples_per_composition must be a positive integer for mode = \"sampled\", "
                             f"got {samples_per_composition!r}; set e.g. samples_per_composition = 200")
        dec, mult = _sample(n, int(samples_per_composition), seed, perms)
    else:
        dec, mult = _enumerate(elements, supercell, n, cell)
    is_sqs = None
    if mode == "compositions":
        n_b = dec.sum(axis=1)
        # Largest class per composition (argmax takes the first on ties), or its SQS.
        pick = [np.flatnonzero(n_b == k)[np.argmax(mult[n_b == k])] for k in range(n + 1)]
        dec = sqs_decorations(elements, supercell, cell, cutoffs=cutoffs, seed=seed) if sqs else dec[pick]
        mult = np.array([math.comb(n, k) for k in range(n + 1)], dtype=np.int64)
        names, feats = names[:1], (np.arange(n + 1) / n)[:, None]
        is_sqs = np.ones(n + 1, bool) if sqs else None
    else:
        if sqs:
            dec, mult, is_sqs = _add_sqs(dec, mult, sqs_decorations(elements, supercell, cell, cutoffs=cutoffs,
                                                                    seed=seed), perms)
        names, feats = _features(dec, features, elements, supercell, cell, cutoffs, processes)
    for arr in (dec, mult, feats) + ((is_sqs,) if is_sqs is not None else ()):
        arr.flags.writeable = False  # the pool is frozen; so are its arrays
    return CandidatePool(elements, supercell, dec, mult, feats, names, cell=cell,
                         feature_set=None if mode == "compositions" else features,
                         cutoffs=cutoffs if features == "icet" else None, sqs=is_sqs)
