"""Featurising and matching on the zincblende (AlGaAs) space against the diamond (SiGe) one, same cells.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.alloy_speed [--samples 40] [--match 200]

Issue 30 asks that another parent cost no more than diamond. For each space, on the 64-atom cell (the 2x2x2
repeat of the 8-atom cubic cell: 64 mixing sites for Si-Ge, 32 cation sites and 32 fixed As for Al-Ga-As) and on
the 16-atom one (2x2x2 primitive: enumerated), this times

- building the sampled pool with icet features (``build_pool``: draws, symmetry classes, cluster vectors),
- icet's cluster vectors alone (:func:`activemat.space.features.cluster_vectors`) per decoration,
- matching structures onto the pool (:class:`activemat.space.matching.Matcher`): each of ``--match`` candidates
  as a structure with its atoms shuffled and translated by one lattice vector of the primitive cell, so the
  match goes by symmetry, not by identity; every one must come back as its own candidate.

Prints one line per space and cell, and the zincblende / diamond ratios. Timings on a loaded machine are upper
bounds; the ratio is what the issue asks about. Writes benchmarks/results/alloy_speed.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from activemat.space.features import cluster_vectors
from activemat.space.lattice import reference_sites
from activemat.space.parents import parent_from_keys
from activemat.space.matching import Matcher
from activemat.space.pool import build_pool
from benchmarks.common import save

SPACES = {"diamond Si-Ge": {}, "zincblende Al-Ga-As": {"lattice": "zincblende",
                                                       "chemical_symbols": [["Ga", "Al"], ["As"]]}}
CELLS = {"16-atom": ((2, 2, 2), "primitive", "configurations"), "64-atom": ((2, 2, 2), "cubic", "sampled")}


def _moved(atoms, rng):
    """The structure with its atoms in another order, translated by one primitive lattice vector."""
    order = rng.permutation(len(atoms))
    out = atoms[order]
    # half of two vectors of a 2x2x2 repeat: one lattice vector of the repeated (primitive or cubic) cell
    out.translate(atoms.cell.array[0] / 2 + atoms.cell.array[1] / 2)
    out.wrap()
    return out


def measure(name: str, keys: dict, cell_name: str, samples: int, n_match: int) -> dict:
    supercell, cell, mode = CELLS[cell_name]
    parent = parent_from_keys(**keys)
    t0 = time.perf_counter()
    pool = build_pool(parent, supercell, mode=mode, samples_per_composition=samples if mode == "sampled" else None,
                      seed=0, features="icet", cell=cell)
    build = time.perf_counter() - t0
    sites = reference_sites(parent, supercell, cell)
    cluster_vectors(pool.decorations[:1], parent, sites)  # icet imported and its space built before timing
    t0 = time.perf_counter()
    cluster_vectors(pool.decorations, parent, sites)
    per_cv = (time.perf_counter() - t0) / len(pool)
    rng = np.random.default_rng(0)
    picks = rng.choice(len(pool), min(n_match, len(pool)), replace=False)
    structures = [_moved(pool.atoms(int(i)), rng) for i in picks]
    t0 = time.perf_counter()
    matcher = Matcher(pool)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = [matcher.match(a) for a in structures]
    per_match = (time.perf_counter() - t0) / len(structures)
    wrong = [(int(i), f) for i, f in zip(picks, found) if f[0] != int(i)]  # each class once in the pool
    if wrong:
        raise SystemExit(f"{name} {cell_name}: {len(wrong)} structures not matched to their class, e.g. {wrong[0]}")
    row = {"space": name, "cell": cell_name, "atoms": len(sites), "mixing_sites": pool.n_sites,
           "candidates": len(pool), "features": len(pool.feature_names), "build_s": build,
           "cluster_vector_ms": per_cv * 1e3, "matcher_setup_s": setup, "match_ms": per_match * 1e3,
           "matched": len(structures)}
    print(f"{name:20s} {cell_name}: {pool.n_sites} mixing sites, {len(pool)} candidates, {row['features']} features;"
          f" pool {build:.2f} s, cluster vector {row['cluster_vector_ms']:.2f} ms each, matcher set-up {setup:.2f} s,"
          f" match {row['match_ms']:.2f} ms each ({len(structures)} moved structures, all found)")
    return row


def summary(result: dict) -> list[str]:
    """benchmarks/REPORT.md's lines for one result: the table of both spaces and the per-structure ratios."""
    draws = result.get("samples", "?")
    out = ["| space, cell | mixing sites | candidates | features | pool built | cluster vector | match |",
           "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        cell = r["cell"].replace("-atom", " atoms") + (f" ({draws} draws per composition)" if r["atoms"] > 16 else "")
        out.append(f"| {r['space']}, {cell} | {r['mixing_sites']} | {r['candidates']} | {r['features']} | "
                   f"{r['build_s']:.2f} s | {r['cluster_vector_ms']:.2f} ms | {r['match_ms']:.3g} ms |")
    ratios = result["ratios"]
    out += ["", "Per structure, zincblende / diamond: cluster vectors " + " and ".join(
        f"{v['cluster_vector_ms']:.2f}x ({k.replace('-atom', ' atoms')})" for k, v in ratios.items())
        + ", matching " + " and ".join(f"{v['match_ms']:.2f}x" for v in ratios.values())
        + f" (measured {result['machine']['date']}, load {result['machine']['load_1min']})."]
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=40, help="random draws per composition of the 64-atom cell")
    p.add_argument("--match", type=int, default=200, help="structures matched per space and cell")
    args = p.parse_args(argv)
    rows = [measure(name, keys, cell, args.samples, args.match) for cell in CELLS for name, keys in SPACES.items()]
    ratios = {}
    for cell in CELLS:
        d, z = (r for r in rows if r["cell"] == cell)
        ratios[cell] = {k: z[k] / d[k] for k in ("cluster_vector_ms", "match_ms")}
        print(f"{cell}: zincblende / diamond per structure: cluster vector {ratios[cell]['cluster_vector_ms']:.2f}x, "
              f"match {ratios[cell]['match_ms']:.2f}x")
    out = {"rows": rows, "ratios": ratios, "samples": args.samples}
    save("alloy_speed", out)
    return out


if __name__ == "__main__":
    main()
