"""Cut the first calculations (and the snapshots fitted on them) of a store into a small copy, as it is.

    python tests/data/cut_store.py SOURCE.h5 OUT.h5 --calculations 12

Every group, dataset and attribute is written again with its own dtype, maxshape, filters and attributes, in
the file format activemat wrote stores in before schema 5 (``libver="latest"``, which HDF5 1.10's ``h5dump``
cannot read); only the number of rows changes (the first N calculations, the snapshots whose training set they
hold, ``n_train <= N``, every candidate), and chunks of the growing groups hold at most ``CHUNK`` rows instead
of 1024, so that the copy is small. Nothing is migrated: a version-2 source gives a version-2 copy. Plain h5py,
no activemat.
"""

from __future__ import annotations

import argparse

import h5py

#: Rows per chunk at most (activemat wrote 1024: a 12-row copy would still take a megabyte).
CHUNK = 16


def cut(source: str, out: str, n_calculations: int) -> None:
    with h5py.File(source, "r", locking=False) as src, h5py.File(out, "w", libver="latest") as dst:
        n_snapshots = int((src["snapshots/n_train"][()] <= n_calculations).sum())
        rows = {"calculations": n_calculations, "snapshots": n_snapshots}
        dst.attrs.update(dict(src.attrs))
        for name, group in src.items():
            g = dst.create_group(name)
            g.attrs.update(dict(group.attrs))
            for key, ds in group.items():
                data = ds[: rows[name]] if name in rows else ds[()]
                chunks = ds.chunks and (min(ds.chunks[0], CHUNK), *ds.chunks[1:])
                new = g.create_dataset(key, data=data, dtype=ds.dtype, maxshape=ds.maxshape, chunks=chunks,
                                       compression=ds.compression, compression_opts=ds.compression_opts)
                new.attrs.update(dict(ds.attrs))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source")
    p.add_argument("out")
    p.add_argument("--calculations", type=int, default=12)
    args = p.parse_args()
    cut(args.source, args.out, args.calculations)
