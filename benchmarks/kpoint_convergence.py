"""How the self-consistent k-grid's density moves the band edges of Si and Ge (real GPAW, 2-atom cells).

    OMP_NUM_THREADS=1 nice .venv/bin/python -m benchmarks.kpoint_convergence --presets pbe-relaxed tb09-relaxed

For each preset and element, the self-consistent density on a Gamma-centred
N x N x N grid of the 2-atom cell (N = 4, 6, 8, 12: the 16-atom cell's 2x2x2,
3x3x3, 4x4x4 and 6x6x6), then the preset's own edge pass
(:mod:`activemat.compute.edges`): the gap and the CBM's valley. This is the measurement behind each folded
preset's ``kpts_density`` (docs: explanation/band-edges). Writes
benchmarks/results/kpoint_convergence.json after every row; a rerun skips
rows already there.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from ase.build import bulk

from activemat.compute.bandgap import compute_gap, kpoint_grid
from activemat.compute.presets import load_preset
from activemat.space.lattice import LATTICE_CONSTANTS
from benchmarks.common import load, save

NAME = "kpoint_convergence"
#: k-point density -> Gamma-centred grid on the 2-atom cells of Si and Ge (ASE rounds up)
DENSITIES = {4: 1.9, 6: 2.9, 8: 3.9, 12: 5.9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["pbe-relaxed", "tb09-relaxed"])
    parser.add_argument("--grids", type=int, nargs="+", default=list(DENSITIES))
    args = parser.parse_args()
    rows = (load(NAME) or {}).get("rows", [])
    for name in args.presets:
        for element in ("Si", "Ge"):
            for n in args.grids:
                if any((r["preset"], r["element"], r["n"]) == (name, element, n) for r in rows):
                    continue
                preset = load_preset(name)
                gpaw = preset.gpaw.model_copy(update={"kpts_density": DENSITIES[n], "spinorbit": False})
                preset = preset.model_copy(update={"gpaw": gpaw, "relax": None})
                atoms = bulk(element, "diamond", a=LATTICE_CONSTANTS[element])
                assert kpoint_grid(atoms, gpaw) == (n, n, n)
                with tempfile.TemporaryDirectory() as scratch:
                    start = time.time()
                    r = compute_gap(0, 0, atoms, preset, scratch)
                rows.append({"preset": name, "element": element, "n": n, "ok": r.ok, "error": r.error, "gap": r.gap,
                             "grid_gap": r.grid_gap, "cbm_character": r.cbm_character, "seconds": time.time() - start})
                save(NAME, {"densities": DENSITIES, "rows": rows})
                print(f"{name} {element} {n}x{n}x{n}: " + (f"{r.gap:.4f} eV ({r.cbm_character}), grid {r.grid_gap:.4f}"
                      if r.ok else f"FAILED {r.error}"), flush=True)
    for r in rows:
        print(f"{r['preset']:>13} {r['element']} {r['n']:>2}: {r['gap']:.4f} eV {r['cbm_character']}")


if __name__ == "__main__":
    main()
