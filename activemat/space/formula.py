"""Chemical formulas of a supercell's compositions: written (``Si4Ge12``, ``Ga5Al3As8``) and read as a user types
them. The composition is that of the mixing sites; fixed sublattices add their species (``As8``), which a user
may write or leave out."""

from __future__ import annotations

import re

import numpy as np

from activemat.errors import SpaceError
from activemat.space.lattice import as_parent

__all__ = ["format_formula", "parse_formula", "fixed_counts", "composition_label"]


def fixed_counts(parent, n_sites: int) -> tuple[tuple[str, float], ...]:
    """(species, count) of the fixed sublattices in a cell of ``n_sites`` mixing sites, in site order.

    >>> from activemat.space.parents import parent_from_keys
    >>> fixed_counts(parent_from_keys(lattice="zincblende", chemical_symbols=[["Ga", "Al"], ["As"]]), 8)
    (('As', 8.0),)
    """
    parent = as_parent(parent)
    m = sum(parent.mixing)
    out: dict[str, float] = {}
    for species in parent.chemical_symbols:
        if len(species) == 1:
            out[species[0]] = out.get(species[0], 0.0) + n_sites / m
    return tuple(out.items())


def format_formula(elements, n_a: int, n_b: int) -> str:
    """The formula of ``n_a`` atoms of A and ``n_b`` of B on the mixing sites, A first, then the fixed species;
    counts of 0 omitted. ``elements``: a :class:`~activemat.space.lattice.Parent` or the diamond lattice's pair.

    >>> format_formula(("Si", "Ge"), 4, 12), format_formula(("Si", "Ge"), 0, 16)
    ('Si4Ge12', 'Ge16')
    """
    parent = as_parent(elements)
    fixed = "".join(f"{e}{n:g}" for e, n in fixed_counts(parent, n_a + n_b))
    return "".join(f"{e}{n}" for e, n in zip(parent.elements, (n_a, n_b)) if n > 0) + fixed


def composition_label(elements) -> str:
    """The composition axis, named by the mixing species: ``Ge fraction x in Si(1-x)Ge(x)``.

    >>> composition_label(("Si", "Ge"))
    'Ge fraction x in Si(1-x)Ge(x)'
    """
    parent = as_parent(elements)
    return f"{parent.elements[1]} fraction x in {parent.name}"


def parse_formula(text: str, elements, n_sites: int) -> int:
    """Return the number of B atoms of a composition of the ``n_sites``-site cell, written as a user types it.

    ``elements``: a :class:`~activemat.space.lattice.Parent` or the diamond lattice's pair; ``n_sites`` counts
    mixing sites. The species of fixed sublattices may be written (in the cell's proportion: ``Ga5Al3As8``,
    ``Al0.25Ga0.75As``) or left out (``Ga5Al3``).

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
    parent = as_parent(elements)
    elements = parent.elements
    fixed = dict(fixed_counts(parent, 1))  # per mixing site
    example = format_formula(parent, n_sites // 2, n_sites - n_sites // 2)
    stripped = text.strip() if isinstance(text, str) else ""
    parts = re.findall(r"([A-Z][a-z]?)(\d+(?:\.\d*)?|\.\d+)?", stripped)
    if not parts or "".join(e + c for e, c in parts) != stripped:
        raise SpaceError(f"cannot parse formula {text!r}; write it like {example!r} (or {elements[0]}"
                         f"{elements[1]}3, {elements[0]}0.25{elements[1]}0.75)")
    counts = dict.fromkeys(elements + tuple(fixed), 0.0)
    fractional = any("." in c for _, c in parts)
    for e, c in parts:
        if e not in counts:
            raise SpaceError(f"element {e!r} in formula {text!r} is not in space.elements {elements}; use only those"
                             if not fixed else f"element {e!r} in formula {text!r} is not in the "
                             f"{parent.name} space; write it like {example!r}")
        counts[e] += float(c) if c else 1.0
    a, b = counts[elements[0]], counts[elements[1]]
    total = a + b
    for e, per_site in fixed.items():  # a fixed species, if written, in the cell's proportion
        if counts[e] and abs(counts[e] - per_site * total) > 1e-6:
            raise SpaceError(f"formula {text!r}: {e} is fixed at {per_site:g} per mixing site "
                             f"({elements[0]} + {elements[1]}); write it like {example!r} or leave {e} out")
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
            raise SpaceError(f"formula {text!r} has {n} atoms but the supercell has {n_sites} sites; write its "
                             f"composition as {format_formula(parent, n_sites - round(scaled), round(scaled))}")
        if total > n_sites / 2:  # the cell's formula with a miscount, most likely
            raise SpaceError(f"formula {text!r} has {n} atoms but the supercell has {n_sites} sites (and its "
                             f"x_{elements[1]} = {b / total:.4f} is not one of the cell's compositions); "
                             f"nearest: {_nearest(b / total, elements, n_sites, parent)}")
    n_b = b / total * n_sites
    if abs(n_b - round(n_b)) > 1e-6:
        raise SpaceError(f"formula {text!r} is x_{elements[1]} = {b / total:.4f}, not a composition of the "
                         f"{n_sites}-site cell (x_{elements[1]} in steps of 1/{n_sites}); nearest: "
                         f"{_nearest(b / total, elements, n_sites, parent)}")
    return int(round(n_b))


def _nearest(x: float, elements: tuple[str, str], n_sites: int, parent=None) -> str:
    """The one or two compositions of the cell nearest to fraction ``x`` of B, nearest first."""
    near = sorted({int(np.floor(x * n_sites)), int(np.ceil(x * n_sites))}, key=lambda k: abs(k / n_sites - x))
    return ", ".join(f"{format_formula(parent or elements, n_sites - k, k)} (x_{elements[1]} = {k / n_sites:g})"
                     for k in near)
