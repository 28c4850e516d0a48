"""A campaign file's ``[space]`` keys -> its :class:`~activemat.space.lattice.Parent`: a named lattice or a
structure file, with the species allowed on each site and the end members' lattice constants, every mistake a
one-line error naming the key.
"""

from __future__ import annotations

from pathlib import Path

from activemat.errors import SpaceError
from activemat.space.lattice import LATTICE_CONSTANTS_BY_LATTICE, LATTICES, Parent, check_elements, named_cell


def _species_lists(chemical_symbols, where: str) -> tuple[tuple[str, ...], ...]:
    """Per-site species lists: a list of lists of element symbols, each list without repeats."""
    from ase.data import atomic_numbers

    ok = isinstance(chemical_symbols, (list, tuple)) and len(chemical_symbols) > 0 and all(
        isinstance(s, (list, tuple)) and 1 <= len(s) and all(isinstance(e, str) for e in s) for s in chemical_symbols)
    if not ok:
        raise SpaceError(f"space.chemical_symbols must list the species allowed on each site of {where}, such as "
                         f"[[\"Ga\", \"Al\"], [\"As\"]]; got {chemical_symbols!r}")
    out = tuple(tuple(str(e) for e in s) for s in chemical_symbols)
    for s in out:
        bad = [e for e in s if e not in atomic_numbers or e == "X"]
        if bad:
            raise SpaceError(f"space.chemical_symbols: {bad[0]!r} is not an element symbol")
        if len(set(s)) != len(s):
            raise SpaceError(f"space.chemical_symbols: species repeated on one site: {list(s)}")
    mixing = {s for s in out if len(s) > 1}
    if len(mixing) != 1 or any(len(s) > 2 for s in out):
        raise SpaceError(f"space.chemical_symbols {[list(s) for s in out]}: activemat mixes two species on one "
                         "sublattice (one list of two species, on one or more sites; every other site one species)")
    return out


def parent_from_keys(*, elements=None, lattice: str | None = None, structure: str | None = None,
                     chemical_symbols=None, lattice_constants: dict | None = None,
                     base: str | Path = ".") -> Parent:
    """The parent a campaign file's ``[space]`` describes.

    ``lattice`` (a name of :data:`LATTICES`) or ``structure`` (a file ase reads, relative to ``base``) with
    ``chemical_symbols`` per site of its primitive cell (the file's atoms); or neither, and ``elements`` (default
    Si, Ge): the diamond lattice with both on every site, the original space. ``elements``, when given with
    ``chemical_symbols``, must be the mixing pair. End-member lattice constants come from
    :data:`LATTICE_CONSTANTS_BY_LATTICE` updated by ``lattice_constants``.

    >>> p = parent_from_keys(lattice="zincblende", chemical_symbols=[["Ga", "Al"], ["As"]])
    >>> p.elements, p.constants, p.name
    (('Ga', 'Al'), (5.6533, 5.6611), 'Ga(1-x)Al(x)As')
    >>> parent_from_keys(lattice="zincblende", chemical_symbols=[["In", "Ga"], ["N"]])
    Traceback (most recent call last):
    ...
    activemat.errors.SpaceError: no lattice constant for InN on the zincblende lattice; add it to the campaign file: [space] lattice_constants = {InN = <Angstrom>}
    """
    extra = dict(lattice_constants or {})
    for key, value in extra.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 100:
            raise SpaceError(f"space.lattice_constants.{key} must be a lattice constant in Angstrom, got {value!r}")
    if lattice is not None and structure is not None:
        raise SpaceError("give space.lattice (a named lattice) or space.structure (a file), not both")
    if lattice is None and structure is None:
        if chemical_symbols is not None:
            raise SpaceError("space.chemical_symbols needs its parent: set space.lattice (e.g. \"zincblende\") or "
                             "space.structure (a file)")
        lattice = "diamond"
    if structure is None and lattice not in LATTICES:
        raise SpaceError(f"unknown space.lattice {lattice!r}; use one of {', '.join(LATTICES)}, or space.structure "
                         "for a structure file")
    if structure is not None:
        sites, cell, frac = _structure_sites(Path(base) / structure, chemical_symbols)
        label, table = str(structure), {}
    else:
        n = len(named_cell(lattice, 5.0))
        if chemical_symbols is None:
            if lattice != "diamond":
                raise SpaceError(f"space.lattice = {lattice!r} needs space.chemical_symbols, one list per site of "
                                 f"its {n}-site primitive cell in ASE's order ({_site_order(lattice)}), such as "
                                 f"{_example(lattice)}")
            pair = check_elements(("Si", "Ge") if elements is None else tuple(elements))
            chemical_symbols = [pair, pair]
        sites = _species_lists(chemical_symbols, f"the {lattice} primitive cell ({_site_order(lattice)})")
        if len(sites) != n:
            raise SpaceError(f"space.chemical_symbols has {len(sites)} site lists; the {lattice} primitive cell has "
                             f"{n} sites ({_site_order(lattice)}), such as {_example(lattice)}")
        label, table, cell, frac = lattice, dict(LATTICE_CONSTANTS_BY_LATTICE.get(lattice, {})), None, None
    mix = next(s for s in sites if len(s) == 2)
    if elements is not None and tuple(elements) != mix:
        raise SpaceError(f"space.elements {list(elements)} must be the mixing pair of space.chemical_symbols "
                         f"(host first): {list(mix)}; or leave space.elements out")
    table.update(extra)
    probe = Parent(label, sites, (1.0, 1.0))
    constants = []
    for k in range(2):
        formula = probe.end_member(k)
        if formula not in table:
            raise SpaceError(f"no lattice constant for {formula} on the {label} lattice; add it to the campaign "
                             f"file: [space] lattice_constants = {{{formula} = <Angstrom>}}")
        constants.append(float(table[formula]))
    return Parent(label, sites, (constants[0], constants[1]), cell, frac)


def _structure_sites(path: Path, chemical_symbols) -> tuple[list, tuple, tuple]:
    """A structure-file parent: its species lists per atom, cell and scaled positions (one-line errors)."""
    import ase.io

    try:
        atoms = ase.io.read(path)
    except FileNotFoundError:
        raise SpaceError(f"space.structure: file not found: {path}; give its path from the working directory "
                         "(where activemat runs), which is where it is read from") from None
    except Exception as exc:  # ase raises many types for a malformed file
        raise SpaceError(f"space.structure: {path} is not readable by ase ({type(exc).__name__}: {exc})") \
            from None
    if chemical_symbols is None:
        raise SpaceError(f"space.structure needs space.chemical_symbols: one list of species per atom of "
                         f"{path} ({len(atoms)} atoms)")
    sites = _species_lists(chemical_symbols, f"the {len(atoms)}-atom cell of {path}")
    if len(sites) != len(atoms):
        raise SpaceError(f"space.chemical_symbols has {len(sites)} site lists; {path} has {len(atoms)} atoms")
    cell = tuple(tuple(float(v) for v in row) for row in atoms.cell.array)
    frac = tuple(tuple(float(v) for v in row) for row in atoms.get_scaled_positions())
    return sites, cell, frac


def _site_order(lattice: str) -> str:
    atoms = named_cell(lattice, 4.0)
    return ", ".join(f"{s} at {' '.join(f'{v:g}' for v in p)}" for s, p in
                     zip(atoms.get_chemical_symbols(), atoms.get_scaled_positions().round(3)))


def _example(lattice: str) -> str:
    symbols = named_cell(lattice, 4.0).get_chemical_symbols()
    return "[" + ", ".join(f"[\"{s}\", ...]" if i == 0 else f"[\"{s}\"]" for i, s in enumerate(symbols)) + "]"
