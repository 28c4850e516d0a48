"""Which decorations a pool holds: every symmetry class, random draws, icet's special quasirandom structures.

Exact enumeration reduces all 2^n decorations of a cell of at most
:data:`MAX_EXACT_SITES` sites to their symmetry classes (with
multiplicities); sampling draws random decorations per composition and keeps
one row per class drawn (multiplicity = draws); SQS are icet's special
quasirandom structures of the supercell, one per composition, merged into a
pool as the compositions' seeds.
"""

from __future__ import annotations

import warnings

import numpy as np

from activemat.errors import SpaceError
from activemat.space.features import DEFAULT_CUTOFFS, check_cutoffs, cluster_space
from activemat.space.lattice import as_parent, mixing_sites, reference_sites
from activemat.space.symmetry import canonical_codes, class_keys, site_permutations, unique_classes

__all__ = ["MAX_EXACT_SITES", "enumerate_classes", "sample_classes", "sqs_decorations", "merge_sqs"]

MAX_EXACT_SITES = 24


def _codes_to_decorations(codes: np.ndarray, n: int) -> np.ndarray:
    return ((codes[:, None] >> np.arange(n, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)


def enumerate_classes(parent, supercell: tuple[int, int, int], n: int, cell: str):
    """Return (decorations, multiplicity) of all symmetry classes of the supercell's ``n`` mixing sites, sorted
    by (n_b, code). ``parent``: a :class:`~activemat.space.lattice.Parent` or the diamond lattice's two elements."""
    if n > MAX_EXACT_SITES:
        raise SpaceError(f"space.supercell {list(supercell)} of the {cell} cell has {n} mixing sites, too many for exact "
                         f"enumeration (max {MAX_EXACT_SITES}); use mode = \"sampled\" with samples_per_composition")
    codes = np.arange(1 << n, dtype=np.uint64)
    canon = canonical_codes(codes, site_permutations(parent, supercell, cell))
    reps = np.flatnonzero(canon == codes).astype(np.uint64)
    mult = np.bincount(canon.astype(np.intp), minlength=1 << n)[reps.astype(np.intp)].astype(np.int64)
    dec = _codes_to_decorations(reps, n)
    order = np.lexsort((reps, dec.sum(axis=1)))
    return dec[order], mult[order]


def sample_classes(n: int, per_comp: int, seed: int, perms: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Random decorations of ``n`` sites, ``per_comp`` draws per composition, one row per class drawn.

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
        first, draws, _ = unique_classes(dec, perms)
        blocks.append(dec[first])  # keep draw order: deterministic for a seed
        counts.append(draws)
    return np.concatenate(blocks), np.concatenate(counts).astype(np.int64)


def sqs_decorations(parent, supercell: tuple[int, int, int], cell: str = "primitive", *,
                    cutoffs=DEFAULT_CUTOFFS, seed: int = 0) -> np.ndarray:
    """Special quasirandom structures of the supercell, one per composition: (n + 1, n) decorations of its n
    mixing sites.

    Row k has k B atoms, placed by icet's ``generate_sqs_from_supercells``
    (simulated annealing of the decoration towards the random alloy's cluster
    vector for ``cutoffs``, seeded by ``seed + k``) on the mixing sublattice;
    fixed sublattices keep their species. Rows 0 and n are the end members.
    """
    from icet.tools.structure_generation import generate_sqs_from_supercells  # icet costs ~0.8 s to import

    parent, cutoffs = as_parent(parent), check_cutoffs(cutoffs)
    elements = parent.elements
    sites, mix = reference_sites(parent, supercell, cell), mixing_sites(parent, supercell, cell)
    n, cs = len(mix), cluster_space(parent, cutoffs)
    # icet names sublattices A, B, ... of its primitive structure; the mixing one is the one with two species
    sublattice = next(sl.symbol for sl in cs.get_sublattices(cs.primitive_structure)
                      if set(sl.chemical_symbols) == set(elements))
    out = np.zeros((n + 1, n), dtype=np.uint8)
    out[n] = 1
    for k in range(1, n):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Set OLD_ERROR_HANDLING", DeprecationWarning)
            atoms = generate_sqs_from_supercells(cs, [sites], {sublattice: {elements[0]: (n - k) / n,
                                                                            elements[1]: k / n}},
                                                 random_seed=seed + k)
        # icet decorates the supercell it is given, site for site
        assert np.allclose(atoms.positions, sites.positions) and np.allclose(atoms.cell, sites.cell)
        out[k] = np.array(atoms.get_chemical_symbols())[mix] == elements[1]
    return out


def merge_sqs(dec: np.ndarray, mult: np.ndarray, sqs: np.ndarray, perms: np.ndarray | None):
    """Merge SQS rows into a pool ordered by composition: mark the class already there, else insert the SQS
    (counted as one draw) at the end of its composition's block. Returns (dec, mult, is_sqs)."""
    n_b = dec.sum(axis=1)
    pool_keys, sqs_keys = class_keys(dec, perms), class_keys(sqs, perms)
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
