"""What a hybrid functional would cost as the top level (issue 27): HSE06 against PBE with the same settings,
self-consistent in GPAW's plane-wave mode, on the end members (real GPAW).

    OMP_NUM_THREADS=1 nice .venv/bin/python -m benchmarks.hybrid_cost
    .venv/bin/python -m benchmarks.hybrid_cost --report

Each row is one calculation: PW 300 eV, Γ-centred grid, Fermi-Dirac 0.01 eV, 4 bands per atom (the occupied 2
and 1 more converged), on the ideal diamond cell at the project's lattice constants. The gap is read on the
grid's own k-points (the 2x2x2 grid of the 2-atom cell holds Γ, X and L but not Si's Δ minimum at 0.85 Γ-X):
the figures are costs, with gaps unconverged in the k-sampling. The 2-atom rows at two grids give the growth
with the k-points, the 16-atom rows (Γ only) the growth with the cell. The cells are those of
``benchmarks.end_members``. Writes benchmarks/results/hybrid_cost.json after every row; a rerun skips rows
already there.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ase.dft.bandgap import bandgap

from benchmarks.common import load, save
from benchmarks.end_members import structure

NAME = "hybrid_cost"
#: (element, atoms, grid) of each row: the 2-atom cell at two grids (the k-point scaling), the 16-atom cell at
#: Γ only (the cell-size scaling)
ROWS = [("Si", 2, 2), ("Ge", 2, 2), ("Si", 2, 3), ("Si", 16, 1), ("Ge", 16, 1)]
FUNCTIONALS = ("PBE", "HSE06")


def run(element: str, atoms: int, grid: int, xc: str) -> dict:
    from gpaw import PW
    from gpaw.new.ase_interface import GPAW

    cell = structure(element, atoms)
    bands = 4 * atoms  # 2 occupied per atom
    with tempfile.TemporaryDirectory() as scratch:
        cell.calc = GPAW(mode=PW(300), xc=xc, kpts={"size": (grid,) * 3, "gamma": True}, nbands=bands,
                         convergence={"bands": 3 * atoms}, occupations={"name": "fermi-dirac", "width": 0.01},
                         txt=str(Path(scratch) / "gpaw.txt"))
        start = time.time()
        cell.get_potential_energy()
        seconds = time.time() - start
        gap, _, _ = bandgap(cell.calc, output=None)
    return {"element": element, "atoms": atoms, "grid": grid, "xc": xc, "gap": float(gap), "seconds": seconds}


def report(rows: list[dict]) -> None:
    by = {(r["element"], r["atoms"], r["grid"], r["xc"]): r for r in rows}
    print("| cell | grid | PBE gap (eV) | HSE06 gap (eV) | PBE s | HSE06 s | HSE06 / PBE time |")
    print("|---|---|---|---|---|---|---|")
    for element, atoms, grid in ROWS:
        pbe, hse = by.get((element, atoms, grid, "PBE")), by.get((element, atoms, grid, "HSE06"))
        if not (pbe and hse):
            continue
        print(f"| {element}{atoms} | {grid}x{grid}x{grid} | {pbe['gap']:.3f} | {hse['gap']:.3f} | "
              f"{pbe['seconds']:.0f} | {hse['seconds']:.0f} | {hse['seconds'] / pbe['seconds']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="print what is there; compute nothing")
    args = parser.parse_args()
    rows = (load(NAME) or {}).get("rows", [])
    if not args.report:
        for element, atoms, grid in ROWS:
            for xc in FUNCTIONALS:
                if any((r["element"], r["atoms"], r["grid"], r["xc"]) == (element, atoms, grid, xc) for r in rows):
                    continue
                row = run(element, atoms, grid, xc)
                rows.append(row)
                save(NAME, {"rows": rows})
                print(f"{element}{atoms} {grid}^3 {xc}: gap {row['gap']:.3f} eV, {row['seconds']:.0f} s", flush=True)
    report(rows)


if __name__ == "__main__":
    main()
