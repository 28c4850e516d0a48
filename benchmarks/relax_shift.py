"""How much relaxing the atoms at the Vegard cell moves the PBE gap of 16-atom SiGe cells (real GPAW).

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.relax_shift --preset gpaw-fast --n-ge 0 2 4 6 8 10 12 14 16
    .venv/bin/python -m benchmarks.relax_shift --preset gpaw-pbe-pw --report

One configuration per composition (the most probable decoration of each
Si(16-n)Ge(n)); each is relaxed with ``relax = "positions"`` (BFGS, fmax
0.05 eV/A). The record carries both gaps: ``unrelaxed_gap`` from the first
SCF, at the ideal structure, and ``gap`` at the relaxed one. Prints the
shift per configuration, its mean and largest magnitude; writes
benchmarks/results/relax_shift[-PRESET].json after every configuration, and a rerun
skips the configurations already there (resumable). ``--report`` prints the
table of what is saved and computes nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from activemat.compute.bandgap import compute_gap
from activemat.compute.presets import RelaxSettings, load_preset
from activemat.learn.acquisition import representative
from activemat.space.pool import build_pool
from benchmarks.common import load, save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="gpaw-fast")
    parser.add_argument("--n-ge", type=int, nargs="+", default=[0, 2, 4, 6, 8, 10, 12, 14, 16])
    parser.add_argument("--figure", default=None, help="also draw both gap curves into this image file")
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--report", action="store_true", help="print the table of what is saved; compute nothing")
    args = parser.parse_args()
    name = "relax_shift" if args.preset == "gpaw-fast" else f"relax_shift-{args.preset}"
    done = load(name)
    if args.report:
        if not done:
            parser.error(f"no saved results for {args.preset}: benchmarks/results/{name}.json; run without --report")
        report(done)
        return
    rows = done["rows"] if done and done.get("fmax") == args.fmax else []
    measure(args, name, rows)
    report(load(name))
    if args.figure:
        draw([row for row in rows if "error" not in row], args.preset, args.figure)


def measure(args: argparse.Namespace, name: str, rows: list[dict]) -> None:
    """Relax each asked-for composition's representative not in ``rows`` yet; save after each and at the end."""
    pool = build_pool()
    preset = load_preset(args.preset).model_copy(update={"relax": RelaxSettings(kind="positions", fmax=args.fmax)})
    for n in args.n_ge:
        index = representative(pool, n)
        if any(row["candidate"] == index for row in rows):
            continue
        with tempfile.TemporaryDirectory() as scratch:
            start = time.time()
            r = compute_gap(index, 0, pool.atoms(index), preset, scratch)
        if not r.ok:  # e.g. RelaxationUnstable: reported, not hidden
            print(f"{pool.formula(index):>10} (candidate {index}): FAILED {r.error}", flush=True)
            rows.append({"candidate": index, "formula": pool.formula(index), "x_ge": n / 16, "error": r.error,
                         "seconds": time.time() - start})
            save(name, {"preset": args.preset, "fmax": args.fmax, "rows": rows})
            continue
        displacement = float(np.linalg.norm(r.positions - pool.atoms(index).positions, axis=1).max())
        rows.append({"candidate": index, "formula": pool.formula(index), "x_ge": n / 16, "unrelaxed_gap": r.unrelaxed_gap,
                     "relaxed_gap": r.gap, "shift": r.gap - r.unrelaxed_gap, "steps": r.relax_steps,
                     "fmax": r.relax_fmax, "max_displacement": displacement, "seconds": time.time() - start})
        print(f"{pool.formula(index):>10} (candidate {index}): unrelaxed {r.unrelaxed_gap:.4f} eV, relaxed {r.gap:.4f} "
              f"eV, shift {r.gap - r.unrelaxed_gap:+.4f} eV; {r.relax_steps} steps, largest displacement "
              f"{displacement:.3f} A, {time.time() - start:.0f} s", flush=True)
        save(name, {"preset": args.preset, "fmax": args.fmax, "rows": rows})
    rows_ok = [row for row in rows if "error" not in row]
    shifts = np.array([row["shift"] for row in rows_ok])
    summary = {"mean_shift": float(shifts.mean()), "mean_abs_shift": float(np.abs(shifts).mean()),
               "max_abs_shift": float(np.abs(shifts).max())}
    save(name, {"preset": args.preset, "fmax": args.fmax, "rows": rows, **summary})


def report(done: dict) -> None:
    """The saved rows as a table (by Ge content) and the summary of their shifts."""
    rows = sorted(done["rows"], key=lambda row: row["x_ge"])
    print(f"{done['preset']}, positions relaxed (BFGS) to fmax {done['fmax']} eV/A at the Vegard cell; one "
          f"configuration per composition ({done['machine']['date']})")
    print(f"{'configuration':>13} {'ideal (eV)':>10} {'relaxed (eV)':>12} {'shift (eV)':>10} {'steps':>5} "
          f"{'largest move (A)':>16} {'s':>5}")
    for row in rows:
        if "error" in row:
            print(f"{row['formula']:>13} FAILED after {row['seconds']:.0f} s: {row['error']}")
            continue
        print(f"{row['formula']:>13} {row['unrelaxed_gap']:10.3f} {row['relaxed_gap']:12.3f} {row['shift']:+10.3f} "
              f"{row['steps']:5d} {row['max_displacement']:16.3f} {row['seconds']:5.0f}")
    ok = [row for row in rows if "error" not in row]
    mixed = [row["shift"] for row in ok if 0 < row["x_ge"] < 1]
    if mixed:
        print(f"shift of the {len(mixed)} mixed cells: {min(mixed):+.3f} to {max(mixed):+.3f} eV, mean "
              f"{np.mean(mixed):+.3f} eV ({len(rows) - len(ok)} failed)")


def draw(rows: list[dict], preset: str, path: str) -> None:
    """Gap against x of the representative configurations, at the ideal and at the relaxed positions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda row: row["x_ge"])
    x = [row["x_ge"] for row in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    ax.plot(x, [row["unrelaxed_gap"] for row in rows], "o-", label="ideal sites (Vegard lattice)")
    ax.plot(x, [row["relaxed_gap"] for row in rows], "s-", label="positions relaxed (fmax 0.05 eV/A)")
    ax.set(xlabel="x in Si(1-x)Ge(x)", ylabel="Kohn-Sham gap (eV)",
           title=f"16-atom cells, one configuration per composition\n{preset}")
    ax.legend()
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
