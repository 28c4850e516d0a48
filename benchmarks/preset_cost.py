"""Cost and gap of a calculator preset on one 16-atom SiGe cell (real GPAW, one core).

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.preset_cost gpaw-tb09 --n-ge 8
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.preset_cost gpaw-gllbsc --eigenstates 4e-8

Prints the configuration, k-grid, gap, SCF iterations and wall time. Use it to
check a preset's convergence settings before a campaign (e.g. the default
eigenstate criterion stalls TB09 and GLLB-SC on 16-atom cells).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from activemat.compute.bandgap import compute_gap
from activemat.compute.presets import load_preset
from activemat.space.pool import build_pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset")
    parser.add_argument("--n-ge", type=int, default=8, help="Ge atoms in the 16-atom cell (first such configuration)")
    parser.add_argument("--eigenstates", type=float, help="override the preset's eigenstate convergence criterion")
    args = parser.parse_args()
    pool = build_pool()
    index = next(i for i in range(len(pool)) if pool.n_b[i] == args.n_ge)
    preset = load_preset(args.preset)
    if args.eigenstates:
        settings = {**preset.gpaw.convergence, "eigenstates": args.eigenstates}
        preset = preset.model_copy(update={"gpaw": preset.gpaw.model_copy(update={"convergence": settings})})
    with tempfile.TemporaryDirectory() as scratch:
        start = time.time()
        record = compute_gap(index, 0, pool.atoms(index), preset, scratch)
    print(f"{args.preset}: {pool.formula(index)} (candidate {index}), k-points {record.kpts}, "
          f"convergence {preset.gpaw.convergence}: {record.status}, gap {record.gap:.4f} eV, "
          f"{record.scf_iterations} SCF iterations, {time.time() - start:.1f} s {record.error}")
    if record.ok and preset.gpaw.edges == "folded":  # what the folded-edge presets add
        where = tuple(round(k, 2) for k in record.cbm_k)
        print(f"  grid gap {record.grid_gap:.4f} eV, CBM {record.cbm_character} at {where}, band check "
              f"{record.band_check * 1000:+.1f} meV, spin-orbit gap {record.soc_gap:.4f} eV; relaxed "
              f"{record.relax_steps} steps from an ideal-structure gap of {record.unrelaxed_gap:.4f} eV, "
              f"forces-preset gap {record.relax_gap:.4f} eV")


if __name__ == "__main__":
    main()
