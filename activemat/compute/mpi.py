"""Running one calculation on several cores under an MPI launcher.

:class:`MpiTask` wraps a band-gap task: it pickles the arguments to a file,
starts the launcher with ``python -m activemat.compute.mpi mpi-rank IN OUT``
on every rank (with ``GPAW_MPI_BACKEND`` set, so GPAW uses the launcher's
communicator), and reads back the record rank 0 wrote. It is still a plain
``(candidate, attempt, atoms, preset, scratch) -> record`` callable: where it
runs is the dispatch layer's business.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from activemat.compute.bandgap import SINGLE_THREAD_ENV, compute_gap
from activemat.compute.records import CalculationRecord


def mpi_backend() -> str | None:
    """GPAW_MPI_BACKEND usable here: 'cgpaw' (GPAW built with MPI), 'mpi4py', or None."""
    try:
        from gpaw import cgpaw

        if getattr(cgpaw, "have_mpi", False):
            return "cgpaw"
    except ImportError:
        pass
    return "mpi4py" if importlib.util.find_spec("mpi4py") else None


@dataclass(frozen=True)
class MpiTask:
    """Run a band-gap task on `ranks` cores under an MPI launcher, from inside a Dask worker.

    The worker pickles the arguments to a file, starts ``launcher`` with
    ``python -m activemat.compute.mpi mpi-rank IN OUT`` on every rank, with
    ``GPAW_MPI_BACKEND`` set so GPAW uses the launcher's communicator (GPAW
    without it runs serially on each rank), and reads back the record rank 0
    wrote. A failed launch becomes a failed record, never a lost exception.
    """

    ranks: int
    launcher: str = "mpiexec -n {ranks}"
    backend: str = "cgpaw"
    task: object = None  # default: activemat.compute.bandgap.compute_gap

    def command(self, infile: str, outfile: str) -> list[str]:
        return [*shlex.split(self.launcher.format(ranks=self.ranks)), sys.executable, "-m", "activemat.compute.mpi",
                "mpi-rank", infile, outfile]

    def __call__(self, candidate, attempt, atoms, preset, scratch_root):
        folder = Path(scratch_root) / f"mpi-cand{candidate:06d}-try{attempt}"
        folder.mkdir(parents=True, exist_ok=True)
        infile, outfile = folder / "in.pickle", folder / "out.pickle"
        infile.write_bytes(pickle.dumps((self.task or compute_gap, (candidate, attempt, atoms, preset, scratch_root))))
        env = {**os.environ, **SINGLE_THREAD_ENV, "GPAW_MPI_BACKEND": self.backend}
        started = time.time()
        # a session of its own: a Ctrl-C to the driver's process group never reaches the ranks
        proc = subprocess.run(self.command(str(infile), str(outfile)), env=env, capture_output=True, text=True,
                              start_new_session=True)
        if proc.returncode == 0 and outfile.is_file():
            record = pickle.loads(outfile.read_bytes())
            for f in (infile, outfile):
                f.unlink(missing_ok=True)
            if record.ok and not any(folder.iterdir()):
                folder.rmdir()
            return record
        (folder / "launcher.txt").write_text(f"$ {shlex.join(self.command(str(infile), str(outfile)))}\n"
                                             f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return CalculationRecord(candidate=candidate, attempt=attempt, preset=preset.name, status="failed",
                                 started=started, finished=time.time(), scratch=str(folder),
                                 error=f"MPI launch failed (exit {proc.returncode}): {tail}"[:400])


def _mpi_rank_main(infile: str, outfile: str) -> int:
    """One MPI rank: run the pickled task; rank 0 writes the record."""
    from gpaw.mpi import world  # only under the launcher: the MPI world of this rank

    task, args = pickle.loads(Path(infile).read_bytes())
    record = task(*args)
    if world.rank == 0:
        tmp = Path(f"{outfile}.tmp")
        tmp.write_bytes(pickle.dumps(record))
        tmp.replace(outfile)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "mpi-rank":
        sys.exit(_mpi_rank_main(sys.argv[2], sys.argv[3]))
    sys.exit("usage: python -m activemat.compute.mpi mpi-rank IN OUT")
