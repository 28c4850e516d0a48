"""Which candidate is this structure? Matching structures onto a pool by symmetry.

Each structure is mapped onto the pool's candidates whatever its site order,
origin or (Vegard-scaled) lattice constant: atoms are assigned to the
reference supercell's sites by fractional position modulo lattice
translations (each on a site that allows its species), and the decoration of
the mixing sites is reduced with the supercell's space group
(:func:`activemat.space.symmetry.canonical_codes`). No neighbour counts: any
parent lattice works. Structures that match no candidate are reported, with
the reason; one of another lattice than the parent's names both. Used by
fixed lists of structure files, ``predict`` on structure files, and replay
oracles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np

from activemat.errors import InputError, SpaceError
from activemat.space.features import DEFAULT_CUTOFFS
from activemat.space.lattice import LATTICES, Parent, as_parent, lattice_name, reference_sites
from activemat.space.pool import CandidatePool, pool_of_decorations
from activemat.space.symmetry import MAX_CODE_SITES, canonical_codes, decoration_codes, site_permutations

SHELL_FEATURES = ("x", "pair1", "pair2", "pair3", "triplet1")  # the "shells" feature set (cell-independent, as "icet")
SITE_TOLERANCE = 0.3  # Angstrom: an atom this close to a reference site sits on it (first neighbours are 2.35 A apart)


def site_decoration(atoms, ref, elements) -> np.ndarray | None:
    """A structure's decoration of the mixing sites of ``ref`` (an undecorated
    :func:`~activemat.space.lattice.reference_sites` cell; 1 = element B), or None if its atoms do not sit on
    sites that allow their species. ``elements``: a :class:`~activemat.space.lattice.Parent` or the diamond
    lattice's pair.

    The structure may be scaled (any lattice constant), translated, and given
    in any basis of the same supercell lattice.
    """
    parent = as_parent(elements)
    n, ref_cell, ref_frac = len(ref), ref.cell.array, ref.get_scaled_positions()
    if len(atoms) != n:
        return None
    site_kind = parent.site_index(ref)
    mixing = np.array(parent.mixing)[site_kind]
    symbols = atoms.get_chemical_symbols()
    allowed = np.array([[e in parent.chemical_symbols[j] for j in site_kind] for e in symbols])  # (atoms, sites)
    scale = (abs(np.linalg.det(ref_cell)) / atoms.get_volume()) ** (1 / 3)  # undo a Vegard/other scaling
    inv = np.linalg.inv(ref_cell)
    # The structure's cell must span the same lattice as the reference supercell (any basis of it).
    basis = atoms.cell.array * scale @ inv
    if not (np.allclose(basis, np.round(basis), atol=0.02) and round(abs(np.linalg.det(np.round(basis)))) == 1):
        return None
    frac = atoms.positions * scale @ inv
    is_b = np.array(symbols) == parent.elements[1]
    for k in np.flatnonzero(allowed[:, 0]):  # put atom k on site 0; one sublattice's atoms land every atom on a site
        d = (frac - frac[k] + ref_frac[0])[:, None, :] - ref_frac[None, :, :]
        d -= np.round(d)
        dist = np.linalg.norm(d @ ref_cell, axis=-1)  # (atoms, sites), Angstrom
        site = dist.argmin(axis=1)
        if (np.all(dist[np.arange(n), site] < SITE_TOLERANCE) and len(np.unique(site)) == n
                and np.all(allowed[np.arange(n), site])):
            dec = np.zeros(n, np.uint8)
            dec[site] = is_b
            return dec[mixing]
    return None


def _parent_label(parent: Parent) -> str:
    return lattice_name(parent.cell_atoms("primitive")) if parent.lattice in LATTICES else parent.lattice


class Matcher:
    """Maps structures onto a pool's candidates by symmetry.

    Parameters
    ----------
    pool : the campaign's candidate pool (at most 64 sites).
    """

    def __init__(self, pool: CandidatePool):
        if pool.n_sites > MAX_CODE_SITES:
            raise InputError(f"structures are matched to cells of up to {MAX_CODE_SITES} sites; the pool has "
                             f"{pool.n_sites}")
        self.pool = pool
        self.ref = reference_sites(pool.parent, pool.supercell, pool.cell)
        self.perms = site_permutations(pool.parent, pool.supercell, pool.cell)
        canon = canonical_codes(decoration_codes(pool.decorations), self.perms)
        self.lookup: dict[int, int] = {}
        for i, c in enumerate(canon.tolist()):
            self.lookup.setdefault(c, i)  # sampled pools may hold a class twice: the first one answers

    def decoration(self, atoms) -> np.ndarray | None:
        """The structure's decoration of the mixing sites (1 = element B), or None if its atoms do not sit on them."""
        return site_decoration(atoms, self.ref, self.pool.parent)

    def match(self, atoms) -> tuple[int | None, str]:
        """Candidate index of a structure and how it was found, or None and why not."""
        n, pool = len(self.ref), self.pool
        symbols = set(atoms.get_chemical_symbols())
        allowed = sorted({e for s in pool.parent.chemical_symbols for e in s}, key=list(pool.elements).__contains__,
                         reverse=True)
        if not symbols <= set(allowed):
            return None, f"elements {sorted(symbols)} not in the space's {allowed}"
        dec = self.decoration(atoms) if len(atoms) == n else None
        if dec is None:  # not on the reference sites: another lattice? (spglib only here: it costs more than a match)
            other = self._other_lattice(atoms)
            if other:
                return None, other
        if len(atoms) != n:
            return None, f"{len(atoms)} atoms; the space's cells have {n}"
        if dec is not None:
            code = int(canonical_codes(decoration_codes(dec[None]), self.perms)[0])
            if code in self.lookup:
                return self.lookup[code], "sites"
            return None, "configuration not in the pool" + (
                " (mode 'compositions' keeps one configuration per composition)" if len(pool.feature_names) == 1
                else "")
        if pool.feature_kind not in ("shells", "icet"):
            return None, "atoms do not sit on the reference supercell's sites"  # only these features are cell-free
        # Rotated cells, other cell shapes: the (intensive) correlation features, if they single out one candidate.
        try:
            feats = pool.featurize(atoms)
        except SpaceError as exc:
            return None, str(exc).split(";")[0]
        hits = np.flatnonzero(np.all(np.abs(pool.features - feats) < 1e-6, axis=1))
        # (the structure is on the parent's lattice: _other_lattice said so)
        if len(hits) == 1:
            return int(hits[0]), "features"
        return None, ("no candidate has its features" if not len(hits)
                      else f"features shared by {len(hits)} candidates and sites not on the reference cell")


    def _other_lattice(self, atoms) -> str | None:
        """Why a structure is not on the parent's lattice, naming both (space groups with B read as A), or None.

        An ideal cell of the parent (any decoration, cell or lattice constant) has the parent's space group once
        B is read as A; a relaxed one may lose symmetry, so only a different lattice *name* refuses it."""
        if not hasattr(self, "_parent_label"):
            self._parent_label = _parent_label(self.pool.parent)
        theirs = lattice_name(atoms, self.pool.parent)
        ours = self._parent_label
        if theirs.split(" (")[0] in LATTICES and ours.split(" (")[0] in LATTICES and \
                theirs.split(" (")[0] != ours.split(" (")[0]:
            return f"structure is on the {theirs} lattice; the campaign's parent is {ours}"
        return None


@dataclass
class Labels:
    """Gaps matched to candidates, and what could not be matched."""

    gaps: dict[int, float]
    frames: int
    unmatched: list[dict] = field(default_factory=list)  # frame, formula, reason
    skipped: list[dict] = field(default_factory=list)  # frames without a gap
    duplicates: int = 0  # further frames of an already matched candidate (first one kept)
    how: dict[str, int] = field(default_factory=dict)  # "sites" / "features" -> count


def _labelled_frames(path: str | Path) -> list:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"oracle file not found: {path}; give an extended XYZ file (e.g. from `activemat export`)")
    try:
        return ase.io.read(path, ":", format="extxyz")
    except Exception as exc:  # ase raises many types for a malformed file
        raise InputError(f"{path}: not readable as extended XYZ ({type(exc).__name__}: {exc}); "
                         "give a file written by `activemat export` or ase.io.write") from None


def _gap(atoms, f: int, out: Labels) -> float | None:
    """A frame's gap, or None (recorded as skipped) without a successful one."""
    gap = atoms.info.get("gap")
    if gap is None or not np.isfinite(float(gap)) or atoms.info.get("status", "ok") != "ok":
        out.skipped.append({"frame": f, "formula": atoms.get_chemical_formula(), "reason": "no gap"})
        return None
    return float(gap)


def load_labelled_pool(path: str | Path, elements: tuple[str, str], supercell: tuple[int, int, int], *,
                       cell: str = "primitive", features: str = "shells",
                       cutoffs=DEFAULT_CUTOFFS) -> tuple[CandidatePool, Labels]:
    """The labelled structures of an extended-XYZ file as a pool of their own, and their labels.

    Each frame's atoms are put on the sites of the supercell (any origin,
    basis or lattice constant); the pool holds one row per symmetry class
    (:func:`activemat.space.pool.pool_of_decorations`, multiplicity = frames
    of the class) and the label of a class is the mean gap of its frames.
    Frames of another cell are reported as unmatched.
    """
    frames = _labelled_frames(path)
    ref = reference_sites(elements, supercell, cell)
    out, decorations, gaps = Labels(gaps={}, frames=len(frames)), [], []
    for f, atoms in enumerate(frames):
        gap = _gap(atoms, f, out)
        if gap is None:
            continue
        dec = site_decoration(atoms, ref, elements)
        if dec is None:
            out.unmatched.append({"frame": f, "formula": atoms.get_chemical_formula(),
                                  "reason": f"not a decoration of the {len(ref)}-site cell {list(supercell)}"})
            continue
        decorations.append(dec)
        gaps.append(gap)
    if not decorations:
        raise InputError(f"{path}: no labelled structure is a decoration of the campaign's {len(ref)}-site cell "
                         f"(supercell {list(supercell)} of the {cell} cell); check the campaign file's [space]")
    pool, rows = pool_of_decorations(np.array(decorations), elements, supercell, cell=cell, features=features,
                                     cutoffs=cutoffs)
    sums = np.bincount(rows, weights=gaps, minlength=len(pool))
    out.gaps = {int(r): float(sums[r] / pool.multiplicity[r]) for r in range(len(pool))}
    out.duplicates = len(rows) - len(pool)
    out.how = {"sites": len(rows)}
    return pool, out


def load_labels(path: str | Path, pool: CandidatePool) -> Labels:
    """Read an extended-XYZ file of labelled structures and match each frame to its candidate."""
    frames = _labelled_frames(path)
    matcher = Matcher(pool)
    out = Labels(gaps={}, frames=len(frames))
    for f, atoms in enumerate(frames):
        gap = _gap(atoms, f, out)
        if gap is None:
            continue
        cand, how = matcher.match(atoms)
        if cand is None:
            out.unmatched.append({"frame": f, "formula": atoms.get_chemical_formula(), "reason": how})
        elif cand in out.gaps:
            out.duplicates += 1
        else:
            out.gaps[cand] = gap
            out.how[how] = out.how.get(how, 0) + 1
    return out


def structure_candidates(path: str | Path, pool: CandidatePool) -> list[int]:
    """Candidates of every frame of a structure file (any format ase reads), in file order, without repeats.

    Raises InputError naming the first frame that matches no candidate.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"structure file not found: {path}; give a path relative to the working directory")
    try:
        frames = ase.io.read(path, ":")
    except Exception as exc:  # ase raises many types for a malformed file
        raise InputError(f"{path}: not readable as a structure file ({type(exc).__name__}: {exc})") from None
    matcher, picks = Matcher(pool), []
    for f, atoms in enumerate(frames):
        cand, how = matcher.match(atoms)
        if cand is None:
            raise InputError(f"{path}: frame {f} ({atoms.get_chemical_formula()}) matches no candidate: {how}")
        if cand not in picks:
            picks.append(cand)
    return picks
