"""Speed-up of one GPAW calculation on 2 MPI ranks against 1, on a 32-atom SiGe cell (real GPAW).

    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \\
        .venv/bin/python -m benchmarks.mpi_speedup --preset gpaw-fast

Both runs go through the same launcher (``mpiexec -n 1`` and ``mpiexec -n 2``,
:class:`activemat.compute.mpi.MpiTask`), so launch overhead is in both. Open
MPI refuses to run as root without the two OMPI_ALLOW_RUN_AS_ROOT variables.
Prints wall times, the speed-up, the CPU-seconds all ranks used together
(from the finished launcher's resource usage: on a machine shared with other
work the wall-clock speed-up is limited by free cores, the CPU-seconds show
the parallel overhead) and the machine's load; writes
benchmarks/results/mpi_speedup.json. ``--report`` prints what is saved there
and computes nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

from activemat.compute.mpi import MpiTask, mpi_backend
from activemat.compute.presets import load_preset
from activemat.space.pool import build_pool
from benchmarks.common import load, machine, save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="gpaw-fast")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--kpts-density", type=float, default=None,
                        help="k-point density instead of the preset's (gpaw-fast's gives Gamma only on this cell, "
                             "which runs on the legacy GPAW calculator on more than one rank)")
    parser.add_argument("--report", action="store_true", help="print what is saved; compute nothing")
    args = parser.parse_args()
    if args.report:
        if not load("mpi_speedup"):
            parser.error("no saved results: benchmarks/results/mpi_speedup.json; run without --report")
        report(load("mpi_speedup"))
        return
    measure(args)
    report(load("mpi_speedup"))


def measure(args) -> None:
    """Time the calculation on each number of ranks, ``--repeats`` times, and save the figures."""
    pool = build_pool(supercell=(2, 2, 4), mode="sampled", samples_per_composition=1, seed=0)
    index = next(i for i in range(len(pool)) if pool.n_b[i] == 16)  # Si16Ge16, a random decoration
    preset = load_preset(args.preset)
    if args.kpts_density is not None:
        preset = preset.model_copy(update={"gpaw": preset.gpaw.model_copy(update={"kpts_density": args.kpts_density})})
    backend = mpi_backend()
    times: dict[int, list[float]] = {n: [] for n in args.ranks}
    cpu: dict[int, list[float]] = {n: [] for n in args.ranks}
    gaps: dict[int, float] = {}
    loads: dict[int, list[float]] = {n: [] for n in args.ranks}
    for _ in range(args.repeats):
        for ranks in args.ranks:
            with tempfile.TemporaryDirectory() as scratch:
                start, used = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
                record = MpiTask(ranks=ranks, backend=backend)(index, 0, pool.atoms(index), preset, scratch)
                times[ranks].append(time.time() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[ranks].append(after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime)
            assert record.ok and record.ranks == ranks, record.error
            gaps[ranks] = record.gap
            loads[ranks].append(os.getloadavg()[0])
            print(f"{pool.formula(index)} {args.preset} {ranks} rank(s): {times[ranks][-1]:.1f} s wall, "
                  f"{cpu[ranks][-1]:.1f} CPU-s, gap {record.gap:.4f} "
                  f"eV, load {os.getloadavg()[0]:.2f}", flush=True)
    best = {n: min(t) for n, t in times.items()}
    speedup = {n: best[args.ranks[0]] / best[n] for n in args.ranks}
    save("mpi_speedup", {"kpts_density": args.kpts_density, "formula": pool.formula(index), "atoms": len(pool.atoms(index)), "preset": args.preset,
                         "kpts": list(record.kpts), "seconds": times, "cpu_seconds": cpu, "best": best, "speedup": speedup, "gaps": gaps,
                         "load": loads, "machine_after": machine()})


def report(done: dict) -> None:
    """Every saved run (in the order they ran: the rank counts alternate) and the speed-up of the best of each."""
    ranks = list(done["seconds"])
    repeats = len(done["seconds"][ranks[0]])
    print(f"{done['formula']} ({done['atoms']} atoms), {done['preset']}, k-points {'x'.join(map(str, done['kpts']))}, "
          f"{done['machine']['cpus']} cores of {done['machine']['host']} ({done['machine']['date']})")
    for i in range(repeats):
        for n in ranks:
            load_ = done.get("load", {}).get(n)
            print(f"{n} rank(s): {done['seconds'][n][i]:.1f} s wall, {done['cpu_seconds'][n][i]:.1f} CPU-s"
                  + (f", load {load_[i]:.2f}" if load_ else ""))
    print("gap (last run): " + ", ".join(f"{n} rank(s) {done['gaps'][n]:.4f} eV" for n in ranks))
    print(f"speed-up (best of {repeats}): " + ", ".join(f"{n} ranks {s:.2f}x" for n, s in done["speedup"].items())
          + f"; load after the runs {done['machine_after']['load_1min']:.2f}")


if __name__ == "__main__":
    main()
