"""Candidate pools: A/B decorations of the mixing sites of a parent's supercell, with multiplicities and features.

A pool is every symmetry-distinct decoration of a small supercell
(``mode="configurations"``), one representative per composition
(``"compositions"``) or random decorations of a large supercell
(``"sampled"``, de-duplicated by symmetry), each with cluster-expansion
features (:mod:`activemat.space.features`); with ``sqs=True`` it also holds
icet's special quasirandom structure at every composition (the campaign's
seeds; :mod:`activemat.space.sampling`). Decoration column ``j`` is mixing
site ``j`` (:func:`~activemat.space.lattice.mixing_sites`, every site on the
diamond pair's lattice); value 1 means element B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from activemat.errors import SpaceError
from activemat.space.features import (
    DEFAULT_CUTOFFS,
    FEATURE_SETS,
    check_cutoffs,
    cutoffs_from_names,
    feature_classes,
    feature_matrix,
    shell_names,
    structure_features,
)
from activemat.space.formula import format_formula
from activemat.space.lattice import (
    Parent,
    as_parent,
    check_cell,
    check_supercell,
    mixing_sites,
    supercell_atoms,
)
from activemat.space.sampling import MAX_EXACT_SITES, enumerate_classes, merge_sqs, sample_classes, sqs_decorations
from activemat.space.symmetry import MAX_CODE_SITES, site_permutations, unique_classes

__all__ = ["MODES", "CandidatePool", "pool_of_decorations", "build_pool"]

MODES = ("configurations", "compositions", "sampled")


@dataclass(frozen=True, eq=False)
class CandidatePool:
    """Decorated supercells with multiplicities and features.

    Attributes
    ----------
    elements
        (host A, alloying B) of the mixing sublattice; decoration value 1 means B.
    supercell
        Repetition of the cell named by ``cell``, or a 3x3 integer matrix of it.
    decorations
        (n, n_sites) uint8 over the mixing sites, 1 = element B at that site.
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
    parent
        The parent structure (:class:`~activemat.space.lattice.Parent`); None given: the diamond lattice of
        ``elements``, the original space.
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
    parent: Parent | None = field(default=None)

    def __post_init__(self):
        parent = as_parent(self.elements if self.parent is None else self.parent)
        if parent.elements != tuple(self.elements):
            raise SpaceError(f"pool elements {self.elements} are not its parent's mixing pair {parent.elements}")
        object.__setattr__(self, "parent", parent)

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
        if tuple(self.feature_names[1:]) == shell_names(self.elements)[1:]:
            return "shells"
        return "icet" if self.feature_names[1].endswith(" A") else "orbits"

    @property
    def feature_classes(self) -> tuple[int, ...]:
        """The cluster class of each feature (:func:`~activemat.space.features.feature_classes`)."""
        return feature_classes(self.feature_names)

    @property
    def cluster_cutoffs(self) -> tuple[float, ...]:
        """icet cutoffs of an ``"icet"`` pool, given or inferred from its feature names."""
        if self.cutoffs is not None:
            return self.cutoffs
        return cutoffs_from_names(self.feature_names)

    def featurize(self, atoms: Atoms) -> np.ndarray:
        """Feature vector (n_features,) of any structure on the parent lattice, like this pool's rows.

        ``"shells"`` and ``"icet"`` features are defined on the parent lattice: any cell size or
        shape works. ``"orbits"`` are defined on this supercell's sites only (SpaceError).
        """
        kind = self.feature_kind
        if kind == "compositions":
            return structure_features(atoms, self.parent, features="icet" if not self.parent.is_diamond_pair
                                      else "shells")[:1]
        if kind == "orbits":
            raise SpaceError("space.features = \"orbits\" is defined on the campaign supercell's sites only; "
                             "give a decoration of that cell, or use features = \"icet\" for any cell")
        return structure_features(atoms, self.parent, features=kind,
                                  cutoffs=self.cluster_cutoffs if kind == "icet" else None)

    def formula(self, i: int) -> str:
        """Return e.g. ``"Si4Ge12"``, ``"Ga5Al3As8"`` (A, B, then fixed species; counts of 0 omitted)."""
        k = int(self.decorations[i].sum())
        return format_formula(self.parent, self.n_sites - k, k)

    def atoms(self, i: int) -> Atoms:
        """Return candidate ``i`` as a periodic supercell at the Vegard lattice constant."""
        x = float(self.decorations[i].mean())
        atoms = supercell_atoms(self.parent, self.supercell, self.cell, x)
        symbols = np.array(atoms.get_chemical_symbols(), dtype=object)
        symbols[mixing_sites(self.parent, self.supercell, self.cell)] = np.array(self.elements)[self.decorations[i]]
        atoms.set_chemical_symbols(symbols.tolist())
        return atoms


def pool_of_decorations(decorations: np.ndarray, elements=("Si", "Ge"),
                        supercell: tuple[int, int, int] = (2, 2, 2), *, cell: str = "primitive",
                        features: str = "shells", cutoffs=DEFAULT_CUTOFFS) -> tuple[CandidatePool, np.ndarray]:
    """A pool of given decorations of the supercell (e.g. labelled structures), one row per symmetry class.

    Returns the pool, ordered by composition, and for each input row the pool
    row of its class. Multiplicity counts the input rows of each class (as
    for a ``"sampled"`` pool); symmetry classes are found for cells of at most
    MAX_CODE_SITES sites, identical rows only above. ``elements``: a
    :class:`~activemat.space.lattice.Parent`, or the diamond lattice's two elements.
    """
    parent, supercell, cell = as_parent(elements), check_supercell(supercell), check_cell(cell)
    dec = np.asarray(decorations, dtype=np.uint8)
    n = dec.shape[1]
    perms = site_permutations(parent, supercell, cell) if n <= MAX_CODE_SITES else None
    order = np.argsort(dec.sum(axis=1), kind="stable")
    first, counts, classes = unique_classes(dec[order], perms)
    keep = order[first]
    rows = np.empty(len(dec), dtype=np.int64)
    rows[order] = classes
    cutoffs = check_cutoffs(cutoffs) if features == "icet" else None
    names, feats = feature_matrix(dec[keep], features, parent, supercell, cell, cutoffs)
    pool = CandidatePool(parent.elements, supercell, dec[keep], counts.astype(np.int64), feats, names, cell=cell,
                         feature_set=features, cutoffs=cutoffs, parent=parent)
    return pool, rows


def build_pool(elements=("Si", "Ge"), supercell: tuple[int, int, int] = (2, 2, 2),
               mode: str = "configurations", samples_per_composition: int | None = None, seed: int = 0,
               features: str = "shells", *, cutoffs=DEFAULT_CUTOFFS, cell: str = "primitive",
               sqs: bool = False, processes: int = 1) -> CandidatePool:
    """Build the candidate pool of the A/B decorations of a parent's supercell.

    Parameters
    ----------
    elements
        A :class:`~activemat.space.lattice.Parent` (:func:`~activemat.space.parents.parent_from_keys`), or
        (host A, alloying B), keys of :data:`~activemat.space.lattice.LATTICE_CONSTANTS`: the diamond lattice
        with both on every site.
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
        lattice with ``cutoffs`` (:func:`~activemat.space.features.cluster_vectors`), for any cell.
    cutoffs
        Pair, triplet, quadruplet cutoffs (Angstrom) of the ``"icet"`` features
        and of the special quasirandom structures.
    cell
        ``"primitive"`` (2-atom cell; ``[2, 2, 2]`` = 16 sites) or ``"cubic"``
        (8-atom conventional cell; ``[2, 2, 2]`` = 64 sites).
    sqs
        Add icet's special quasirandom structure of every composition
        (:func:`~activemat.space.sampling.sqs_decorations`, seeded by ``seed``) and mark it in
        ``CandidatePool.sqs``; one not among the pool's classes joins it,
        counted as one draw.
    processes
        Processes featurising ``"icet"`` pools.

    Returns
    -------
    CandidatePool
    """
    parent, supercell, cell = as_parent(elements), check_supercell(supercell), check_cell(cell)
    n = _check_choices(mode, features, len(mixing_sites(parent, supercell, cell)), parent)
    cutoffs = check_cutoffs(cutoffs) if features == "icet" or sqs else None
    # symmetry classes of random draws and of SQS (up to MAX_CODE_SITES sites: larger cells compare rows as they are)
    perms = site_permutations(parent, supercell, cell) if (mode == "sampled" or sqs) and n <= MAX_CODE_SITES else None
    if mode == "sampled":
        dec, mult = sample_classes(n, _check_samples(samples_per_composition), seed, perms)
    else:
        dec, mult = enumerate_classes(parent, supercell, n, cell)
    sqs_rows = sqs_decorations(parent, supercell, cell, cutoffs=cutoffs, seed=seed) if sqs else None
    is_sqs = None
    if mode == "compositions":
        dec, mult, feats, is_sqs = _one_per_composition(dec, mult, sqs_rows)
        names = shell_names(parent.elements)[:1]
    else:
        if sqs_rows is not None:
            dec, mult, is_sqs = merge_sqs(dec, mult, sqs_rows, perms)
        names, feats = feature_matrix(dec, features, parent, supercell, cell, cutoffs, processes)
    for arr in (dec, mult, feats) + ((is_sqs,) if is_sqs is not None else ()):
        arr.flags.writeable = False  # the pool is frozen; so are its arrays
    return CandidatePool(parent.elements, supercell, dec, mult, feats, names, cell=cell,
                         feature_set=None if mode == "compositions" else features,
                         cutoffs=cutoffs if features == "icet" else None, sqs=is_sqs, parent=parent)


def _check_choices(mode: str, features: str, n: int, parent: Parent) -> int:
    """The number of mixing sites ``n``, once ``mode`` and ``features`` are known and fit them and the parent."""
    if mode not in MODES:
        raise SpaceError(f"unknown space.mode {mode!r}; use one of {', '.join(MODES)}")
    if features not in FEATURE_SETS:
        raise SpaceError(f"unknown space.features {features!r}; use one of {', '.join(FEATURE_SETS)}")
    if features == "orbits" and n > MAX_EXACT_SITES:
        raise SpaceError(f"space.features = \"orbits\" enumerates the clusters of the supercell; {n} sites is too "
                         f"many (max {MAX_EXACT_SITES}); use features = \"icet\"")
    if features == "shells" and mode != "compositions" and not parent.is_diamond_pair:
        raise SpaceError(f"space.features = \"shells\" are the diamond lattice's neighbour shells; the "
                         f"{parent.name} space on {parent.lattice} needs features = \"icet\" (or \"orbits\")")
    return n


def _check_samples(samples_per_composition) -> int:
    """Draws per composition of a ``"sampled"`` pool: a positive integer."""
    if (not isinstance(samples_per_composition, (int, np.integer)) or isinstance(samples_per_composition, bool)
            or samples_per_composition < 1):
        raise SpaceError(f"space.samples_per_composition must be a positive integer for mode = \"sampled\", "
                         f"got {samples_per_composition!r}; set e.g. samples_per_composition = 200")
    return int(samples_per_composition)


def _one_per_composition(dec: np.ndarray, mult: np.ndarray, sqs: np.ndarray | None):
    """The rows of a ``"compositions"`` pool from all classes (``dec``, ``mult``): per composition the largest
    class (argmax takes the first on ties), or its SQS when ``sqs`` is given, counted as every decoration of
    that composition; the feature is x_B alone. Returns (dec, mult, features, is_sqs)."""
    n = dec.shape[1]
    n_b = dec.sum(axis=1)
    pick = [np.flatnonzero(n_b == k)[np.argmax(mult[n_b == k])] for k in range(n + 1)]
    dec = sqs if sqs is not None else dec[pick]
    mult = np.array([math.comb(n, k) for k in range(n + 1)], dtype=np.int64)
    return dec, mult, (np.arange(n + 1) / n)[:, None], np.ones(n + 1, bool) if sqs is not None else None
