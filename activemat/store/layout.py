"""The schema laid out in an HDF5 file: a column's dataset, its values, and the named dimensions.

:mod:`activemat.store.schema` declares the columns; this module turns a
declaration into HDF5 objects and values. Text is fixed-size UTF-8, cut to
the column's width on a character boundary; a column's rows are stacked into
one array of its dtype; a group's whole rows are its shortest column (a live
or killed writer appends column by column); and every group's coordinates are
HDF5 dimension scales attached to every column's axes, so netCDF readers see
named dimensions. The writer (:mod:`activemat.store.write`), the reader
(:mod:`activemat.store.read`) and the copy (:mod:`activemat.store.migrate`)
all go through here.
"""

from __future__ import annotations

import h5py
import numpy as np

from activemat.store import schema as S

#: Every dataset a store writes (columns and coordinates) carries HDF5's Fletcher-32 checksum filter, which HDF5
#: verifies on every read of a chunk: a flipped byte is then an error naming the dataset, never a number (h5dump,
#: netCDF and xarray verify it too). Stores written before it gain it when they are next copied (a recovery or a
#: migration rewrites every column through :func:`create_column`).
CHECKSUM = True
#: Bytes the checksum adds to each chunk on disk.
CHECKSUM_BYTES = 4


def encode(value, column: S.Column) -> bytes:
    """A text value as the column stores it: UTF-8, cut to the column's width on a character boundary.

    >>> encode("Si8Ge8", S.Column("formula", "S4"))
    b'Si8G'
    """
    # Cut to the column's width on a character boundary, so the bytes always decode.
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.encode()[: column.width].decode("utf-8", "ignore").encode()


def stored(column: S.Column, value):
    """A value as the column stores it (text encoded, anything else as it is)."""
    return encode(value, column) if column.width else value


def stacked(values: list, column: S.Column, shape: tuple) -> np.ndarray:
    """Values of consecutive rows as one array of the column's dtype, each broadcast to the row's shape (a
    scalar fill value fills a whole row of a per-site or per-k column)."""
    out = np.empty((len(values), *shape), dtype=column.dtype)
    for i, value in enumerate(values):
        out[i] = value
    return out


def decode(array: np.ndarray) -> np.ndarray:
    """Stored text as an object array of ``str``."""
    return np.array([v.decode() for v in array], dtype=object)


def whole_rows(g: h5py.Group, group: S.Group) -> int:
    """Whole rows of a group: its shortest column (a killed or live writer appends column by column)."""
    return min((g[c.name].shape[0] for c in group.columns if c.name in g), default=0)


def sizes_of(f: h5py.File) -> dict[str, int]:
    """The lengths ``per`` rules name (sites, features, candidates), read back from a store's candidates."""
    g = f[S.CANDIDATES.path]
    sizes = {S.CANDIDATE: whole_rows(g, S.CANDIDATES)}
    for column in S.CANDIDATES.columns:
        if isinstance(column.per, str) and column.name in g:
            sizes[column.per] = g[column.name].shape[1]
    return sizes


def filled(column: S.Column, n: int, sizes: dict[str, int]) -> np.ndarray:
    """``n`` rows of the column's fill value."""
    return np.full((n, *column.shape(sizes)), column.fill, dtype=column.dtype)


def checksummed(n: int) -> dict:
    """Dataset options for a fixed-size dataset of ``n`` rows: chunked with the checksum (a filter needs chunks;
    an empty dataset can have none)."""
    return {"chunks": True, "fletcher32": True} if CHECKSUM and n else {}


def create_column(g: h5py.Group, group: S.Group, column: S.Column, sizes: dict[str, int],
                  data: np.ndarray | None = None, n: int = 0) -> h5py.Dataset:
    """Create a column's dataset as the schema declares it: ``data``, or ``n`` rows of its fill (not written
    until a row is: an appendable column's chunks are allocated as rows arrive)."""
    shape = column.shape(sizes)
    if data is not None:
        data = np.asarray(data).astype(column.dtype)
        n = len(data)
    if group.appendable:
        options = {"compression": "gzip", "compression_opts": 1} if column.compress else {}
        ds = g.create_dataset(column.name, shape=(n, *shape), dtype=column.dtype, maxshape=(None, *shape),
                              fillvalue=column.fill, chunks=(1 if column.compress else group.chunk_rows, *shape),
                              fletcher32=CHECKSUM, **options)
        if data is not None and n:
            ds[...] = data
    else:
        ds = g.create_dataset(column.name, data=filled(column, n, sizes) if data is None else data,
                              **checksummed(n))
    if column.unit:
        ds.attrs[S.UNITS_ATTR] = column.unit
    if column.width:
        ds.attrs[S.ENCODING_ATTR] = "utf-8"
    return ds


def _coordinate(f: h5py.File, group: S.Group, name: str, sizes: dict[str, int], n: int) -> np.ndarray:
    """Values of a group's coordinate ``name``: 0..n-1 along its rows (``n`` of them), the feature names along
    the features, 0..size-1 along any other axis."""
    dim = S.dimension(name)
    if name == S.FEATURE and name != group.row:
        names = [v.decode() if isinstance(v, bytes) else str(v) for v in f.attrs[S.ATTR_FEATURE_NAMES]]
        return np.array([encode(v, S.Column(name, dim.dtype)) for v in names], dtype=dim.dtype)
    if name == group.row:
        return np.arange(n, dtype=dim.dtype)
    return np.arange(dim.size if dim.size is not None else sizes[name], dtype=dim.dtype)


def add_dimensions(f: h5py.File) -> None:
    """Give every group of a (new or copied) store its coordinates, as HDF5 dimension scales attached to every
    column's axes, so netCDF readers see named dimensions. A row coordinate is as long as the group's longest
    column (a killed writer may leave a column a row longer than the others)."""
    sizes = sizes_of(f)
    for group in S.GROUPS:
        if not group.columns:
            continue
        g = f[group.path]
        n = max(g[c.name].shape[0] for c in group.columns)
        scales = {}
        for name in group.dimensions:
            if name in g:
                del g[name]
            values = _coordinate(f, group, name, sizes, n)
            if name == group.row and group.appendable:
                ds = g.create_dataset(name, data=values, maxshape=(None,), chunks=(group.chunk_rows,),
                                      fletcher32=CHECKSUM)
            else:
                ds = g.create_dataset(name, data=values, **checksummed(len(values)))
            if values.dtype.kind == "S":
                ds.attrs[S.ENCODING_ATTR] = "utf-8"
            ds.make_scale(name)
            scales[name] = ds
        for column in group.columns:
            ds = g[column.name]
            for axis, name in enumerate(group.dimensions_of(column)):
                ds.dims[axis].attach_scale(scales[name])
