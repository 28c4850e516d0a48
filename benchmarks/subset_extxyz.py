"""A seeded random subset of an extxyz's frames (say, the first N gpaw-fast labels a cheap campaign would buy).

    .venv/bin/python -m benchmarks.subset_extxyz benchmarks/data/sige16-fast.extxyz 40 /tmp/fast40.extxyz --seed 0

The subset is the first N frames of ``numpy.random.default_rng(seed).permutation``; their summed and median
``wall_time`` are printed, the cost to count for them.
"""

from __future__ import annotations

import argparse

import ase.io
import numpy as np


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source")
    p.add_argument("n", type=int)
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    frames = ase.io.read(args.source, ":", format="extxyz")
    keep = np.random.default_rng(args.seed).permutation(len(frames))[:args.n]
    subset = [frames[i] for i in sorted(keep)]
    ase.io.write(args.out, subset, format="extxyz")
    t = np.array([f.info.get("wall_time", np.nan) for f in subset], float)
    print(f"{args.out}: {len(subset)} of {len(frames)} frames (seed {args.seed}); wall time sum {np.nansum(t):.0f} s, "
          f"median {np.nanmedian(t):.1f} s")


if __name__ == "__main__":
    main()
