"""Simulated cluster: the real driver, store and Dask scheduler with hundreds of sleeping workers.

The campaign loop (activemat.campaign.loop.run_campaign), its HDF5 store and a real Dask
scheduler run as in production; only the calculations are simulated. A worker "computes" a
candidate by sleeping for that candidate's duration and answering from a table
(activemat.compute.oracle.TableOracle, a named fake): durations are drawn (seeded, with
replacement) from the 402 measured wall times of benchmarks/data/sige16-pbe.extxyz (gpaw-pbe-pw,
one core, 19-200 s), rescaled to a mean of --mean-seconds; gaps are a smooth synthetic function of
the features plus 5 meV noise (timing only, not physics). Sleeping threads cost no CPU, so
hundreds of "workers" fit on two cores: workers are threads, --processes worker processes with
workers/processes threads each (a process is a node: killing one loses all its threads' work).
"Workers" below counts threads, i.e. calculation slots.

The pool: sampled decorations of the 54-site 3x3x3 cell, "shells" features, about 10^5
candidates. The store starts with --preload finished results (written in one batch before the
clock starts), so the driver trains on preload .. preload + rounds x workers points; the [model]
is the default gp, which switches to the scalable nystroem model above scalable_above.

Figures, from the store's own timestamps and the driver's timings (the run summary):
  utilisation (steady)  calculation time inside [first submission, last submission] / (workers x
                        that window): are workers idle while the driver thinks? (the drain at the
                        end, when the budget is reached and no new work may be sent, is left out)
  utilisation (whole)   calculation time / (workers x (last result - first submission))
  results/s             results finished inside the steady window / its length
  driver s/result       driver busy time (store, refit, snapshot, select, submit) / results

With --prefetch P, the campaign submits P x workers calculations beyond one per worker ([cluster]
prefetch): Dask starts a queued one the moment a worker frees, so workers no longer wait for the
driver's pass at all. Without it the campaign default applies (prefetch = "auto", a sixteenth of the
workers); --prefetch 0 is the loop without queued calculations.

With --scheduler-process, the Dask scheduler runs as its own process (`dask scheduler`, workers
`dask worker`, the campaign connects by address as with [cluster] kind = "address") instead of
inside the driver's process, where LocalCluster and dask-jobqueue put it.

With --kill F, F of the workers (whole processes, at random moments within the first 70 % of the
expected run) are killed with SIGKILL; their nannies restart them, as a batch system would replace
a node. Counted from the store afterwards: calculations lost with their worker, whether each was
rerun to a result, duplicates among results, and completed results against the budget.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.simcluster --workers 64 256 1024 --mean-seconds 30
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.simcluster --workers 64 256 1024 --prefetch 0.0625 --name simcluster-prefetch
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.simcluster --workers 260 --processes 20 --kill 0.1 --name simcluster-faults
    .venv/bin/python -m benchmarks.simcluster --plot

Results are appended to benchmarks/results/<name>.json after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, clean, machine, synthetic_gap


HERE = Path(__file__).resolve().parent
WALL_TIMES = HERE / "data" / "sige16-pbe.extxyz"
FIGURE = HERE.parent / "docs" / "figures" / "simcluster.png"

CAMPAIGN = """
[campaign]
store = "{store}"
seed = 0
[space]
supercell = [3, 3, 3]
mode = "sampled"
samples_per_composition = {per}
features = "shells"
[model]
scalable_above = {scalable_above}
[strategy]
kind = "{strategy}"
[stop]
budget = {budget}
[cluster]
kind = "address"
address = "tcp://127.0.0.1:1"
prefetch = {prefetch}
"""


def measured_wall_times() -> np.ndarray:
    from ase.io import read

    return np.array([a.info["wall_time"] for a in read(WALL_TIMES, index=":") if a.info.get("status") == "ok"])


def prepare_template(work: Path, args) -> tuple[Path, Path, str]:
    """The campaign's store with the pool and ``preload`` finished results, and the oracle's table."""
    from activemat.campaign.config import parse_campaign
    from activemat.campaign.loop import create_or_open
    from activemat.campaign.setup import prepare
    from activemat.compute.records import CalculationRecord
    from activemat.store.write import Attempt

    store = work / "template.h5"
    text = CAMPAIGN.format(store=store, per=args.draws, scalable_above=args.scalable_above,
                           strategy=args.strategy, budget=1, prefetch=0)
    config = parse_campaign(text)
    t = time.perf_counter()
    pool, presets, _ = prepare(config)
    pool_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    gap = synthetic_gap(pool.features) + 0.005 * rng.normal(size=len(pool))
    walls = measured_wall_times()
    seconds = rng.choice(walls, len(pool)) * (args.mean_seconds / walls.mean())
    table = work / "table.npz"
    np.savez(table, gap=gap, seconds=seconds)
    pre = rng.choice(len(pool), args.preload, replace=False)
    with create_or_open(config, text, pool, presets) as s:
        rows = s.add_attempts([Attempt(int(c), 0, presets[-1].name, 0, "preload") for c in pre])
        now = time.time() - 3600
        s.finish_attempts([(row, CalculationRecord(candidate=int(c), attempt=0, preset=presets[-1].name,
                                                   status="ok", gap=float(gap[c]), started=now,
                                                   finished=now + seconds[c], worker="preload"))
                           for row, c in zip(rows, pre)])
    info = {"pool": len(pool), "pool_build_s": pool_s, "features": pool.features.shape[1],
            "wall_mean_s": float(seconds.mean()), "wall_median_s": float(np.median(seconds)),
            "wall_p10_s": float(np.percentile(seconds, 10)), "wall_p90_s": float(np.percentile(seconds, 90)),
            "measured_mean_s": float(walls.mean()), "time_scale": float(args.mean_seconds / walls.mean())}
    return store, table, json.dumps(info)


def killer(client, pids: list[int], n_kill: int, horizon: float, seed: int, log: list, stop: threading.Event):
    """Kill ``n_kill`` of the worker processes at random moments within ``horizon`` seconds (SIGKILL)."""
    rng = random.Random(seed)
    victims = rng.sample(pids, n_kill)
    moments = sorted(rng.uniform(0.1 * horizon, 0.7 * horizon) for _ in victims)
    start = time.time()
    for pid, moment in zip(victims, moments):
        if stop.wait(max(0.0, start + moment - time.time())):
            return
        try:
            os.kill(pid, signal.SIGKILL)
            log.append({"pid": pid, "at_s": round(time.time() - start, 1)})
        except ProcessLookupError:
            log.append({"pid": pid, "at_s": None, "error": "already gone"})


def measure(store: Path, workers: int, t_start: float, preload: int) -> dict:
    from activemat.store import schema as S
    from activemat.store.read import read_store

    calc = read_store(store).calculations
    mine = calc["submitted"] >= t_start  # this run's rows (the preloaded ones are older)
    sub, st, fi = calc["submitted"][mine], calc["started"][mine], calc["finished"][mine]
    status, error, cand = calc["status"][mine], calc["error"][mine], calc["candidate"][mine]
    done = np.isfinite(fi) & np.isfinite(st)
    t0, t1 = float(sub.min()), float(sub.max())
    busy_window = float(np.sum(np.clip(np.minimum(fi[done], t1) - np.maximum(st[done], t0), 0, None)))
    end = float(fi[done].max())
    busy = float(np.sum(fi[done] - st[done]))
    in_window = int(np.sum(done & (fi >= t0) & (fi <= t1)))
    ok_all = calc["status"] == S.OK
    lost = np.array([e.startswith(S.LOST) for e in error])
    lost_cands = set(cand[lost].tolist())
    ok_cands = calc["candidate"][ok_all].tolist()
    return {"rows": int(mine.sum()), "completed_total": int(ok_all.sum()), "window_s": t1 - t0,
            "utilisation_steady": busy_window / (workers * (t1 - t0)) if t1 > t0 else None,
            "utilisation_whole": busy / (workers * (end - t0)),
            "results_per_s": in_window / (t1 - t0) if t1 > t0 else None,
            "mean_calc_s": busy / max(done.sum(), 1),
            "median_submit_to_start_s": float(np.median(st[done] - sub[done])),
            "lost": int(lost.sum()), "lost_rerun_ok": len(lost_cands & set(ok_cands)),
            "lost_not_rerun": sorted(lost_cands - set(ok_cands)),
            "duplicate_results": len(ok_cands) - len(set(ok_cands)),
            "failed_other": int(np.sum((status == S.FAILED) & ~lost)),
            "still_running": int(np.sum(status == S.RUNNING))}


@contextmanager
def simulated_cluster(args, processes: int, threads: int):
    """A client of ``processes`` worker processes with ``threads`` threads each: a LocalCluster (its scheduler in
    this process, as LocalCluster and dask-jobqueue's SLURMCluster run it), or with --scheduler-process a
    ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 ([cluster] kind = "address")."""
    from distributed import Client, LocalCluster

    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    if not args.scheduler_process:
        with LocalCluster(n_workers=processes, threads_per_worker=threads, processes=True, host="127.0.0.1",
                          dashboard_address=None, env=env, silence_logs=50) as cluster, Client(cluster) as client:
            yield client
        return
    port = 20000 + os.getpid() % 20000
    full_env = {**os.environ, **env, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address", ":0"], env=full_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        time.sleep(3)
        procs += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1",
                                    "--nthreads", str(threads), "--host", "127.0.0.1", "--dashboard-address", ":0",
                                    "--memory-limit", "0"], env=full_env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(processes)]
        with Client(address, timeout=60) as client:
            yield client
    finally:
        for proc in reversed(procs):  # our own processes, by handle
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def one_run(args, workers: int, template: Path, table: Path, work: Path) -> dict:
    import dask
    from rich.console import Console

    from activemat.campaign.config import parse_campaign
    from activemat.campaign.loop import run_campaign
    from activemat.campaign.progress import Reporter
    from activemat.campaign.scheduler import submission_slots
    from activemat.compute.oracle import TableOracle

    processes = args.processes or max(1, min(16, workers // 16))
    threads = -(-workers // processes)
    workers = processes * threads
    store = work / f"run-{workers}.h5"
    shutil.copyfile(template, store)
    budget = args.preload + args.rounds * workers
    prefetch = '"auto"' if args.prefetch is None else round(args.prefetch * workers)
    text = CAMPAIGN.format(store=store, per=args.draws, scalable_above=args.scalable_above,
                           strategy=args.strategy, budget=budget, prefetch=prefetch)
    config = parse_campaign(text)
    load_before = os.getloadavg()
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with simulated_cluster(args, processes, threads) as client:
            client.wait_for_workers(processes, timeout=300)
            pids = list(client.run(os.getpid).values())
            kills, stop = [], threading.Event()
            thread = None
            if args.kill:
                n_kill = max(1, round(args.kill * processes))
                horizon = args.rounds * args.mean_seconds
                thread = threading.Thread(target=killer, args=(client, pids, n_kill, horizon, args.seed, kills, stop),
                                          daemon=True)
            t_start = time.time()
            if thread:
                thread.start()
            with open(os.devnull, "w") as devnull:
                report = Reporter(budget, Console(file=devnull))
                summary = run_campaign(config, text, client=client, report=report,
                                       task=TableOracle(str(table)))
            stop.set()
            if thread:
                thread.join()
    load_after = os.getloadavg()
    queued = submission_slots(workers, config.cluster.prefetch) - workers
    row = {"workers": workers, "processes": processes, "threads_per_process": threads, "prefetch": queued,
           "scheduler": "own process" if args.scheduler_process else "in the driver's process (LocalCluster)",
           "mean_seconds": args.mean_seconds, "budget": budget, "preload": args.preload,
           "strategy": args.strategy, "summary": {k: v for k, v in summary.items() if k != "store"},
           "driver": summary["driver"], "kills": kills,
           "killed_workers": len(kills) * threads if args.kill else 0,
           "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load_after],
           **measure(store, workers, t_start, args.preload)}
    store.unlink()
    return row


def save_row(name: str, row: dict, info: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = json.loads(path.read_text()) if path.exists() else {"setup": json.loads(info), "rows": []}
    data["setup"] = json.loads(info)
    data["rows"].append({"machine": machine(), **row})
    path.write_text(json.dumps(clean(data), indent=1))


def plot(names: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 4.2))
    for name in names:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            continue
        rows = [r for r in json.loads(path.read_text())["rows"] if not r.get("kills")]
        for mean in sorted({r["mean_seconds"] for r in rows}):
            sel = sorted((r for r in rows if r["mean_seconds"] == mean), key=lambda r: r["workers"])
            w = [r["workers"] for r in sel]
            label = (f"{mean:g} s" + (", nearly idle machine" if name.endswith("low-load") else "") + (", prefetch workers/16" if sel[0].get("prefetch") else "")
                     + (", own scheduler process" if sel[0].get("scheduler", "").startswith("own") else ""))
            ax.plot(w, [100 * r["utilisation_steady"] for r in sel], "o-", label=label)
            bx.plot(w, [r["results_per_s"] for r in sel], "o-", label=label)
            bx.plot(w, [r["workers"] / r["mean_calc_s"] for r in sel], ":", color="grey")
    ax.axhline(95, color="k", lw=0.8, ls="--")
    ax.set(xscale="log", xlabel="workers (threads)", ylabel="worker utilisation, steady (%)", ylim=(0, 102))
    bx.set(xscale="log", yscale="log", xlabel="workers (threads)", ylabel="results per second",
           title="dotted: workers / mean calculation time", )
    bx.title.set_fontsize(8)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7, title="mean calculation time",
               title_fontsize=7)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    FIGURE.parent.mkdir(exist_ok=True)
    fig.savefig(FIGURE, dpi=130)
    print(FIGURE)


def summary(result: dict) -> list[str]:
    """The report's section on one result: the setup, then utilisation, driver time and losses per run."""
    d = result
    setup = d["setup"]
    out = [f"Pool {setup['pool']} candidates ({setup['features']} features); calculation times mean "
           f"{setup['wall_mean_s']:.1f} s (median {setup['wall_median_s']:.1f}, 10-90 % {setup['wall_p10_s']:.1f}-"
           f"{setup['wall_p90_s']:.1f} s), the measured PBE times x {setup['time_scale']:.3f}.", "",
           "| workers (processes x threads) | prefetch | results | training points | steady utilisation | whole run | "
           "results/s | driver s/result (own thread) | with the refit thread | refits | results per refit | "
           "lost / rerun / duplicates | load average before -> after |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in d["rows"]:
        dr = r["driver"]
        both = dr.get("with_refits_per_result_s")
        out.append(
            f"| {r['workers']} ({r['processes']} x {r['threads_per_process']}) | {r.get('prefetch', 0)} | {dr['results']} | "
            f"{r['preload']} -> {r['summary']['completed']} | **{100 * r['utilisation_steady']:.1f} %** | "
            f"{100 * r['utilisation_whole']:.1f} % | {r['results_per_s']:.2f} | {dr['per_result_s']:.3f} | "
            f"{'-' if both is None else f'{both:.3f}'} | {dr['refits']} | {dr['results'] / max(dr['refits'], 1):.1f} | "
            f"{r['lost']} / {r['lost_rerun_ok']} / {r['duplicate_results']} | "
            f"{r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f} |")
    out.append("")
    if any(r.get("kills") for r in d["rows"]):  # a run with killed workers: where every lost calculation went
        for r in d["rows"]:
            out += [f"Kills: {r['kills']}; calculations lost with their worker: {r['lost']}, rerun to a result: "
                    f"{r['lost_rerun_ok']}, never rerun: {r['lost_not_rerun']}; duplicate results: "
                    f"{r['duplicate_results']}; completed {r['completed_total']} of a budget of {r['budget']}; "
                    f"rows left running: {r['still_running']}.", ""]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--processes", type=int, default=None, help="worker processes (default: workers // 16, at most 16)")
    p.add_argument("--mean-seconds", type=float, default=30.0, help="mean simulated calculation time")
    p.add_argument("--rounds", type=int, default=5, help="budget beyond the preload, in calculations per worker")
    p.add_argument("--draws", type=int, default=2400, help="random decorations per composition (55 compositions; symmetry-distinct ones kept)")
    p.add_argument("--preload", type=int, default=2000)
    p.add_argument("--scalable-above", type=int, default=1000)
    p.add_argument("--strategy", default="max_std")
    p.add_argument("--prefetch", type=float, default=None,
                   help="[cluster] prefetch as a fraction of the workers: tasks queued beyond one per worker "
                        "(default: the campaign default, \"auto\": a sixteenth)")
    p.add_argument("--scheduler-process", action="store_true",
                   help="run the Dask scheduler and workers as their own processes, the driver connects by address")
    p.add_argument("--kill", type=float, default=0.0, help="fraction of worker processes to kill")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="simcluster")
    p.add_argument("--plot", nargs="*", default=None, help="only plot these result names (default: simcluster)")
    args = p.parse_args()
    if args.plot is not None:
        plot(args.plot or ["simcluster"])
        return
    with tempfile.TemporaryDirectory(prefix="simcluster-") as tmp:
        work = Path(tmp)
        template, table, info = prepare_template(work, args)
        print("setup", info, flush=True)
        for workers in args.workers:
            row = one_run(args, workers, template, table, work)
            save_row(args.name, row, info)
            d = row["driver"]
            print(f"{row['workers']} workers: steady utilisation {100 * row['utilisation_steady']:.1f} %, whole "
                  f"{100 * row['utilisation_whole']:.1f} %, {row['results_per_s']:.2f} results/s, driver "
                  f"{d['per_result_s']:.4f} s/result ({d['refits']} refits for {d['results']} results), lost "
                  f"{row['lost']} (rerun {row['lost_rerun_ok']}), duplicates {row['duplicate_results']}, "
                  f"load {row['load_before']} -> {row['load_after']}", flush=True)


if __name__ == "__main__":
    main()
