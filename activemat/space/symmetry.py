"""Symmetry classes of decorations: the supercell's space group as site permutations, and canonical codes.

A decoration of at most :data:`MAX_CODE_SITES` sites packs into one uint64
code (bit j = site j is B); the minimum of its images under the supercell's
site permutations names its symmetry class. Larger cells compare rows as
they are (identical rows only).
"""

from __future__ import annotations

import warnings

import numpy as np
import spglib

from activemat.space.lattice import mixing_sites, reference_sites, site_types

__all__ = ["MAX_CODE_SITES", "site_permutations", "canonical_codes", "decoration_codes", "class_keys",
           "unique_classes"]

MAX_CODE_SITES = 64  # a decoration packs into one uint64 code: symmetry de-duplication up to this many sites


def site_permutations(parent, supercell: tuple[int, int, int], cell: str = "primitive") -> np.ndarray:
    """Return (n_ops, n_mixing) permutations of the mixing sites by the undecorated supercell's space group.

    ``parent`` is a :class:`~activemat.space.lattice.Parent` or the two elements of the diamond lattice. The
    space group is that of the supercell with each sublattice (sites allowing the same species) one type, so
    operations map mixing sites onto mixing sites. ``perm[o, j]`` is the mixing site (decoration column) that
    column ``j`` is mapped to by operation ``o``.
    """
    atoms = reference_sites(parent, supercell, cell)
    frac = atoms.get_scaled_positions()
    with warnings.catch_warnings():
        # spglib 2.7-2.x warns on every call unless a process-wide flag is flipped; keep it local.
        warnings.filterwarnings("ignore", "Set OLD_ERROR_HANDLING", DeprecationWarning)
        sym = spglib.get_symmetry((atoms.cell[:], frac, site_types(parent, supercell, cell)), symprec=1e-5)
    if sym is None:
        raise RuntimeError(f"spglib found no symmetry for the {supercell} supercell")
    perms = []
    for s in range(0, len(sym["rotations"]), 64):  # blocks of operations bound memory (1536 ops on 64 sites)
        new = np.einsum("oab,jb->oja", sym["rotations"][s:s + 64], frac) + sym["translations"][s:s + 64, None, :]
        diff = new[:, :, None, :] - frac[None, None, :, :]
        match = np.all(np.abs(diff - np.round(diff)) < 1e-4, axis=-1)  # (ops, j, target)
        assert np.all(match.sum(axis=2) == 1), "symmetry operation does not map sites onto sites"
        perms.append(match.argmax(axis=2))
    full = np.concatenate(perms)
    mix = mixing_sites(parent, supercell, cell)
    if len(mix) == len(atoms):
        return full  # every site mixes (the diamond pair)
    column = np.full(len(atoms), -1)
    column[mix] = np.arange(len(mix))
    out = column[full[:, mix]]
    assert np.all(out >= 0), "symmetry operation maps a mixing site onto a fixed one"
    return out


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


def decoration_codes(decorations: np.ndarray) -> np.ndarray:
    """One uint64 per decoration (bit j = site j is B), for cells of at most MAX_CODE_SITES sites.

    >>> decoration_codes(np.array([[1, 0, 1], [0, 1, 0]], np.uint8)).tolist()
    [5, 2]
    """
    dec = np.asarray(decorations)
    return (dec.astype(np.uint64) << np.arange(dec.shape[1], dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


def class_keys(dec: np.ndarray, perms: np.ndarray | None) -> np.ndarray:
    """One key per row, equal for rows of one class: equivalent by ``perms`` (canonical codes), or, without
    them, identical (the packed row)."""
    if perms is not None:
        return canonical_codes(decoration_codes(dec), perms)
    packed = np.ascontiguousarray(np.packbits(dec, axis=1))
    return packed.view(np.dtype((np.void, packed.shape[1]))).ravel()


def unique_classes(dec: np.ndarray, perms: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The classes of the rows of ``dec`` (:func:`class_keys`), numbered in order of first appearance.

    Returns the index of each class's first row, the number of rows in each, and each row's class.
    """
    _, first, inverse, counts = np.unique(class_keys(dec, perms), return_index=True, return_inverse=True,
                                          return_counts=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], counts[order], rank[inverse.ravel()]
