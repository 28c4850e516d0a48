"""What a model learns from: cluster-expansion features of decorations and of any structure.

Feature sets: ``"shells"`` (x_B, pairs in neighbour shells 1-3, the
nearest-neighbour triplet; any cell), ``"orbits"`` (every symmetry-distinct
2-4-site cluster of the supercell; at most 24 sites) and ``"icet"`` (the
cluster vector of icet's ``ClusterSpace`` on the diamond parent lattice with
per-order cutoffs; any cell, the same numbers for the same decoration pattern
in any supercell). ``"shells"`` are the diamond lattice's (both sites mixing);
``"orbits"`` and ``"icet"`` work on any parent: clusters of its mixing sites,
icet's ``ClusterSpace`` with the parent's per-site species. Every feature name belongs to a cluster class
(:data:`CLUSTER_CLASSES`), which models use to group length scales.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import warnings

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from activemat.errors import SpaceError
from activemat.space.lattice import LATTICES, Parent, as_parent, lattice_name, mixing_sites, reference_sites
from activemat.space.symmetry import site_permutations

__all__ = [
    "FEATURE_SETS", "DEFAULT_CUTOFFS", "CLUSTER_CLASSES", "feature_classes", "class_names", "shell_names",
    "check_cutoffs", "cluster_space", "cluster_vectors", "cutoffs_from_names", "cluster_orbits",
    "structure_features", "on_parent", "feature_matrix",
]

FEATURE_SETS = ("shells", "orbits", "icet")
# Angstrom: pairs, triplets, quadruplets ("icet" features). Leave-one-out MAE on the 402 16-atom PBE labels
# 0.0063 eV (7, 4.5, 4: 0.0108); 10^5 64-atom decorations featurise in 33 s on 2 cores (benchmarks/).
DEFAULT_CUTOFFS = (7.0, 6.0, 5.0)
MAX_CUTOFFS = 3  # up to quadruplets
_ORDER_NAMES = {2: "pair", 3: "triplet", 4: "quadruplet"}
MAX_ORBIT_BODIES = 4  # "orbits": every symmetry-distinct cluster of 2, 3 and 4 sites of the supercell
# Diamond neighbour shells in units of a: sqrt(3)/4, sqrt(8)/4, sqrt(11)/4; the 4th is at 1.
_SHELL_EDGES = np.array([np.sqrt(3) + np.sqrt(8), np.sqrt(8) + np.sqrt(11), np.sqrt(11) + 4.0]) / 8
_SHELL_SIZES = np.array([4, 12, 12])
_CHUNK = 1 << 14  # rows per vectorised block: bounds memory for 10^5-row pools

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


def shell_names(elements: tuple[str, str]) -> tuple[str, ...]:
    """The names of the ``"shells"`` features.

    >>> shell_names(("Si", "Ge"))
    ('x_ge', 'pair1', 'pair2', 'pair3', 'triplet1')
    """
    return ("x_" + elements[1].lower(), "pair1", "pair2", "pair3", "triplet1")
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
def _cached_cluster_space(parent: Parent, cutoffs: tuple[float, ...]):
    from icet import ClusterSpace  # imported on use: icet costs ~0.8 s to import

    prim = parent.cell_atoms("primitive")
    # the diamond pair as it always was (one list for every site); any other parent per site
    symbols = list(parent.elements) if parent.is_diamond_pair else [list(s) for s in parent.chemical_symbols]
    with warnings.catch_warnings():
        # spglib 2.7-2.x warns on every call unless a process-wide flag is flipped; keep it local.
        warnings.filterwarnings("ignore", "Set OLD_ERROR_HANDLING", DeprecationWarning)
        cs = ClusterSpace(prim, list(cutoffs), symbols)
    if not any(d["order"] == 2 for d in cs.as_list):
        i, j, d = neighbor_list("ijd", prim, 12.0)
        mixing = np.array(parent.mixing)
        nearest = d[mixing[i] & mixing[j]].min(initial=np.inf)
        raise SpaceError(f"space.cutoffs {list(cutoffs)}: no pair fits within {cutoffs[0]} A (mixing sites are "
                         f"{nearest:.2f} A apart at the nearest); raise the first cutoff")
    return cs


def cluster_space(parent=("Si", "Ge"), cutoffs=DEFAULT_CUTOFFS):
    """Return icet's ``ClusterSpace`` of the parent (a :class:`~activemat.space.lattice.Parent` or the diamond
    lattice's two elements): its primitive cell at A's lattice constant, ``cutoffs`` (Angstrom) per cluster
    order, and the species allowed on each site (fixed sublattices take no part in its clusters).

    Its cluster vector's point term is ``2 x_B - 1`` for an A/B binary; the
    ``"icet"`` features replace it by x_B (same information, affine) and drop
    the constant zerolet.
    """
    return _cached_cluster_space(as_parent(parent), check_cutoffs(cutoffs)).copy()


def _icet_names(parent: Parent, cutoffs: tuple[float, ...]) -> tuple[str, ...]:
    """x_B, then one name per cluster-vector column past the point term: order and the cluster's largest
    distance (e.g. ``"pair 2.35 A"``), ``#2``, ``#3`` on clusters of equal order and size."""
    cs = _cached_cluster_space(parent, cutoffs)
    names, seen = ["x_" + parent.elements[1].lower()], {}
    for row in cs.as_list[2:]:  # skip the zerolet and the point term
        pos = np.array(cs.get_coordinates_of_representative_cluster(row["orbit_index"]))
        size = max(np.linalg.norm(p - q) for p, q in itertools.combinations(pos, 2))
        base = f"{_ORDER_NAMES[row['order']]} {size:.2f} A"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base} #{seen[base]}")
    return tuple(names)


def cutoffs_from_names(names: tuple[str, ...]) -> tuple[float, ...]:
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


def _cv_block(parent: Parent, cutoffs: tuple[float, ...], sites: Atoms, dec: np.ndarray) -> np.ndarray:
    """Cluster vectors of a block of decorations of the mixing sites of ``sites`` (a cell of the parent, any
    species on them): a plain loop over icet's public API."""
    cs = _cached_cluster_space(parent, cutoffs)
    numbers = np.array([Atoms(e).numbers[0] for e in parent.elements])
    mix = np.flatnonzero(np.array(parent.mixing)[parent.site_index(sites)])
    atoms = sites.copy()
    out = np.empty((len(dec), len(cs) - 1))
    for r, row in enumerate(dec):
        atoms.numbers[mix] = numbers[row]
        out[r] = cs.get_cluster_vector(atoms)[1:]  # drop the zerolet (always 1)
    out[:, 0] = dec.mean(axis=1)  # point term 2 x_B - 1 -> x_B
    return out


def cluster_vectors(decorations: np.ndarray, parent, sites: Atoms, *,
                    cutoffs=DEFAULT_CUTOFFS, processes: int = 1, block: int = 4096) -> np.ndarray:
    """Return the ``"icet"`` features (m, n_features) of (m, n_mixing) 0/1 decorations of ``sites``' mixing sites.

    Columns: x_B, then icet's cluster vector without zerolet and point term
    (:func:`cluster_space`). ``sites`` is an undecorated cell of the parent
    at A's lattice constant (:func:`~activemat.space.lattice.reference_sites`).
    With ``processes`` > 1 blocks of ``block`` rows run in that many spawned
    processes.
    """
    parent, cutoffs = as_parent(parent), check_cutoffs(cutoffs)
    dec = np.asarray(decorations, dtype=np.uint8)
    starts = range(0, len(dec), block)
    if processes <= 1 or len(dec) <= block:
        parts = [_cv_block(parent, cutoffs, sites, dec[s:s + block]) for s in starts]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as ex:
            parts = list(ex.map(_cv_block, *zip(*[(parent, cutoffs, sites, dec[s:s + block]) for s in starts])))
    if not parts:
        return np.empty((0, len(_icet_names(parent, cutoffs))))
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


def cluster_orbits(parent, supercell: tuple[int, int, int], cell: str = "primitive") -> list[np.ndarray]:
    """Every symmetry-distinct cluster of 2 to MAX_ORBIT_BODIES mixing sites of the supercell, as orbits.

    Each orbit is an (m, k) array of mixing-site indices (decoration columns): all images of one k-site
    cluster under the supercell's space group (:func:`~activemat.space.symmetry.site_permutations`).
    Orbits are ordered by size, then by the cluster's summed minimum-image
    bond length (compact clusters first).
    """
    perms = site_permutations(parent, supercell, cell)
    mix = mixing_sites(parent, supercell, cell)
    dist = reference_sites(parent, supercell, cell).get_all_distances(mic=True)[np.ix_(mix, mix)]
    orbits = []
    for k in range(2, MAX_ORBIT_BODIES + 1):
        seen: set[tuple[int, ...]] = set()
        found = []
        for cluster in itertools.combinations(range(len(mix)), k):
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


def structure_features(atoms: Atoms, parent, *, features: str = "shells", cutoffs=None) -> np.ndarray:
    """Return the pool feature vector (n_features,) of any structure on the parent lattice.

    ``parent`` is a :class:`~activemat.space.lattice.Parent` or the diamond
    lattice's two elements. The cell, site order and origin may be arbitrary;
    correlations are averaged over the whole periodic cell, so they are
    intensive. ``features`` is ``"shells"`` (the diamond pair only) or
    ``"icet"`` (with ``cutoffs``, default :data:`DEFAULT_CUTOFFS`);
    ``"orbits"`` are defined on one supercell's sites only (use
    :class:`activemat.space.matching.Matcher`). For ``"icet"`` the cell is
    scaled to the parent's volume per atom at A's lattice constant (Vegard or
    other uniform scalings are undone) and moved to put an atom on a site of
    icet's primitive cell that allows its species; the crystal axes must be
    those of the parent's primitive cell (a rotated crystal raises SpaceError).
    """
    parent = as_parent(parent)
    elements = parent.elements
    if features not in ("shells", "icet"):
        raise SpaceError(f"structure features are \"shells\" or \"icet\", not {features!r}: "
                         "\"orbits\" are defined on the campaign supercell's sites only")
    symbols = np.array(atoms.get_chemical_symbols())
    allowed = sorted({e for s in parent.chemical_symbols for e in s})
    if not np.all(np.isin(symbols, allowed)):
        bad = sorted(set(symbols) - set(allowed))
        what = f"space.elements is {elements}" if parent.is_diamond_pair else f"the {parent.name} space has {allowed}"
        raise SpaceError(f"structure contains {', '.join(bad)} but {what}; use a structure of those elements")
    if features == "shells":
        _check_shells(parent)
        adj = _shell_adjacency(atoms)  # also checks that the structure is a periodic diamond lattice
        dec = (symbols == elements[1])[None].astype(np.uint8)
        return _correlations(dec, adj)[0]
    cutoffs = check_cutoffs(DEFAULT_CUTOFFS if cutoffs is None else cutoffs)
    if not np.all(atoms.pbc) or len(atoms) == 0:
        raise SpaceError(f"structure must be a periodic (pbc=True) crystal of the {parent.lattice} lattice; set "
                         "atoms.pbc = True")
    placed = on_parent(atoms, parent)
    if placed is None:
        theirs = lattice_name(atoms, parent)
        if parent.lattice in LATTICES and theirs.split(" (")[0] in LATTICES:
            ours = lattice_name(parent.cell_atoms("primitive"))
            if theirs != ours:
                raise SpaceError(f"structure is on the {theirs} lattice; the campaign's parent is {ours}")
        raise SpaceError(f"structure's atoms do not sit on the sites of the {parent.lattice} parent (of its "
                         "primitive cell's axes); pass an undistorted cell of that lattice")
    mix = np.array(parent.mixing)[parent.site_index(placed)]
    dec = (symbols[mix] == elements[1])[None].astype(np.uint8)
    try:
        out = _cv_block(parent, cutoffs, placed, dec)[0]
    except SpaceError:
        raise
    except Exception as exc:  # icet raises a bare Exception when atoms do not sit on the parent lattice
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpaceError(f"icet cannot map the structure onto the {parent.lattice} lattice ({first}); "
                         f"pass an undistorted cell of that lattice") from exc
    return out


def on_parent(atoms: Atoms, parent) -> Atoms | None:
    """A copy of ``atoms`` scaled to the parent's volume per atom (at A's lattice constant) and translated so that
    every atom sits on a site of the parent that allows its species, wrapped; None if its cell is not a supercell
    of the parent's primitive cell or no translation does.

    Atom 0 is put on each primitive-cell site that allows its species in turn: a structure of the lattice, in any
    origin and site order and with the parent's axes, lands on it for one of them.
    """
    parent = as_parent(parent)
    prim = parent.cell_atoms("primitive")
    if len(atoms) == 0 or abs(atoms.get_volume()) < 1e-9:
        return None
    scale = (prim.get_volume() / len(prim) / (atoms.get_volume() / len(atoms))) ** (1 / 3)
    scaled = atoms.copy()
    scaled.set_cell(atoms.cell.array * scale, scale_atoms=True)
    inv = np.linalg.inv(prim.cell.array)
    basis = scaled.cell.array @ inv  # the cell must be a supercell of the primitive one
    if not np.allclose(basis, np.round(basis), atol=0.02):
        return None
    site_frac = prim.get_scaled_positions(wrap=False)
    symbols = scaled.get_chemical_symbols()
    allowed = np.array([[e in species for species in parent.chemical_symbols] for e in symbols])  # (atoms, sites)
    for s in np.flatnonzero(allowed[0]):
        shift = prim.positions[s] - scaled.positions[0]
        d = ((scaled.positions + shift) @ inv)[:, None, :] - site_frac[None, :, :]
        on = np.all(np.abs(d - np.round(d)) < 0.02, axis=-1) & allowed
        if np.all(on.sum(axis=1) == 1):
            scaled.translate(shift)
            scaled.wrap()
            return scaled
    return None


def _check_shells(parent: Parent) -> None:
    if not parent.is_diamond_pair:
        raise SpaceError(f"space.features = \"shells\" are the diamond lattice's neighbour shells (both sites "
                         f"mixing); the {parent.name} space on {parent.lattice} needs features = \"icet\" or "
                         f"\"orbits\"")


def feature_matrix(dec: np.ndarray, features: str, parent, supercell: tuple[int, int, int],
                   cell: str, cutoffs: tuple[float, ...] | None,
                   processes: int = 1) -> tuple[tuple[str, ...], np.ndarray]:
    """Feature names and matrix of (m, n_mixing) decorations of the supercell (checked parent, supercell and
    cell), in feature set ``features`` (``"icet"`` with checked ``cutoffs``)."""
    parent = as_parent(parent)
    sites = reference_sites(parent, supercell, cell)
    if features == "orbits":
        orbits = cluster_orbits(parent, supercell, cell)
        return _orbit_names(parent.elements, orbits), _orbit_features(dec, orbits)
    if features == "icet":
        return _icet_names(parent, cutoffs), cluster_vectors(dec, parent, sites, cutoffs=cutoffs,
                                                             processes=processes)
    _check_shells(parent)
    return shell_names(parent.elements), _correlations(dec, _shell_adjacency(sites))
