"""The forms the store's schema is declared in: a root attribute, a dimension, a column, a group.

:class:`Attribute`, :class:`Dimension`, :class:`Column` and :class:`Group` are frozen dataclasses
with the rules that follow from a declaration alone: the shape of a column's entry for a pool's
sizes, the named dimensions of its axes, the path of its dataset. They name no path, dtype or
unit themselves: :mod:`activemat.store.schema` declares every one of those with them, and is
the module the rest of the package reads (``S.Column``, ``S.CALCULATIONS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Attribute:
    """A root attribute of the store.

    Attributes
    ----------
    name
        Attribute name (one of the ``ATTR_*`` constants of :mod:`activemat.store.schema`).
    kind
        What it holds, for the reference: ``"int"``, ``"str"``, ``"list[str]"``, ``"list[int]"`` or ``"JSON"``.
    doc
        One line for the reference.
    """

    name: str
    kind: str
    doc: str


@dataclass(frozen=True)
class Dimension:
    """A named dimension: an HDF5 dimension scale (a netCDF dimension and its coordinate).

    Each group holds one coordinate dataset per dimension it uses, named as the dimension and attached as
    the scale of that axis of every column; a reader of the store's own columns skips them.

    Attributes
    ----------
    name
        Dimension name, also the name of its coordinate dataset in each group that uses it.
    dtype
        Dtype of the coordinate.
    doc
        What the coordinate holds, one line for the reference.
    size
        A fixed length (the axes of a k-point grid or a structure); None for the rows of a group or a size of
        the pool, known when the store is created.
    """

    name: str
    dtype: str
    doc: str
    size: int | None = None


@dataclass(frozen=True)
class Column:
    """One column of a group: a dataset with one entry per row.

    Attributes
    ----------
    name
        Dataset name inside its group.
    dtype
        Fixed-size numpy dtype; ``S<n>`` is UTF-8 text cut to ``n`` bytes on a character boundary.
    unit
        Physical unit (also the dataset's ``units`` attribute, :data:`~activemat.store.schema.UNITS_ATTR`); empty if
        none.
    fill
        Value of a row that has none (not yet written, or added by a migration).
    per
        Shape of one entry: ``None`` a scalar; an int ``n`` a fixed vector of ``n``; or
        :data:`~activemat.store.schema.SITE`, :data:`~activemat.store.schema.FEATURE`, :data:`~activemat.store.schema.CANDIDATE`
        a vector with one value per supercell site, per feature or per candidate of the pool; or a
        tuple of these, a table (``(SITE, 3)``: x, y, z of each site).
    source
        Where the writer takes the value: for candidates, the attribute of the candidate pool (empty:
        the fill); for calculations, :data:`~activemat.store.schema.SUBMIT` (``CampaignStore.add_attempt``) or
        :data:`~activemat.store.schema.RESULT` (``CampaignStore.finish_attempt``, from the calculation record);
        empty elsewhere (the caller's values).
    compress
        Gzip each row as its own chunk (rows as wide as the pool).
    since
        Schema version that added the column (older files get it, filled, by migration).
    doc
        One line for the reference.
    axis
        Dimension of a fixed vector's entries (``per`` an int); :data:`~activemat.store.schema.SITE`,
        :data:`~activemat.store.schema.FEATURE` and :data:`~activemat.store.schema.CANDIDATE` name their own.
    """

    name: str
    dtype: str
    unit: str = ""
    fill: object = 0
    per: int | str | tuple[int | str, ...] | None = None
    source: str = ""
    compress: bool = False
    since: int = 1
    doc: str = ""
    axis: str | tuple[str, ...] = ""

    def shape(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """Shape of one entry, with the pool's ``sizes`` (keys: the sizes ``per`` names).

        >>> Column("kpts", "i4", per=3).shape({})
        (3,)
        >>> Column("features", "f8", per="feature").shape({"feature": 5})
        (5,)
        >>> Column("positions", "f8", per=("site", 3)).shape({"site": 16})
        (16, 3)
        """
        if self.per is None:
            return ()
        per = self.per if isinstance(self.per, tuple) else (self.per,)
        return tuple(p if isinstance(p, int) else sizes[p] for p in per)

    @property
    def entry_dimensions(self) -> tuple[str, ...]:
        """Dimensions of the axes of one entry (none for a scalar): a pool size names its own, a fixed length
        takes the next name of ``axis``.

        >>> Column("kpts", "i4", per=3, axis="k_axis").entry_dimensions
        ('k_axis',)
        >>> Column("positions", "f8", per=("site", 3), axis="xyz").entry_dimensions
        ('site', 'xyz')
        """
        if self.per is None:
            return ()
        per = self.per if isinstance(self.per, tuple) else (self.per,)
        names = iter(self.axis if isinstance(self.axis, tuple) else (self.axis,))
        return tuple(next(names) if isinstance(p, int) else p for p in per)

    @property
    def width(self) -> int:
        """Bytes of a text column (0 for numbers).

        >>> Column("status", "S12").width
        12
        """
        return int(self.dtype[1:]) if self.dtype.startswith("S") else 0


@dataclass(frozen=True)
class Group:
    """An HDF5 group: a table of equal-length columns, or (with no columns) attributes only.

    Attributes
    ----------
    path
        Path of the group from the file's root.
    columns
        Its columns, in table order.
    doc
        One paragraph for the reference.
    appendable
        Rows are appended as the campaign runs (chunked, resizable datasets); otherwise the rows
        are written once, when the store is created.
    chunk_rows
        Rows per HDF5 chunk of an appendable column (compressed columns: one row per chunk).
    since
        Schema version that added the group.
    row
        Dimension of its rows (empty for a group of attributes only).
    """

    path: str
    columns: tuple[Column, ...]
    doc: str
    appendable: bool = True
    chunk_rows: int = 1024
    since: int = 1
    row: str = ""

    def __getitem__(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.path} has no column {name!r}; columns: {', '.join(self.names)}")

    def __contains__(self, name: str) -> bool:
        return name in self.names

    @property
    def names(self) -> tuple[str, ...]:
        """Column names, in table order."""
        return tuple(c.name for c in self.columns)

    def dimensions_of(self, column: Column) -> tuple[str, ...]:
        """Dimensions of a column's axes: the group's rows, then its entries'.

        >>> from activemat.store.schema import SNAPSHOTS
        >>> SNAPSHOTS.dimensions_of(SNAPSHOTS["pool_std"])
        ('snapshot', 'candidate')
        """
        return (self.row, *column.entry_dimensions)

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Every dimension its columns use, rows first: the names of its coordinate datasets.

        >>> from activemat.store.schema import CALCULATIONS
        >>> CALCULATIONS.dimensions
        ('calculation', 'k_axis', 'site', 'xyz', 'cell_vector')
        """
        out = [self.row] if self.columns else []
        for column in self.columns:
            out += [d for d in self.dimensions_of(column) if d not in out]
        return tuple(out)

    def path_of(self, name: str) -> str:
        """Path of a column's dataset from the file's root.

        >>> from activemat.store.schema import SNAPSHOTS
        >>> SNAPSHOTS.path_of("pool_std")
        'snapshots/pool_std'
        """
        return f"{self.path}/{self[name].name}"
