"""``activemat run --dry-run``: what a campaign would run, checked as ``run`` checks it, with nothing started.

:func:`dry_run` does what ``run`` does before its first calculation, short
of anything with an effect: it validates the file, loads the presets, builds
the pool (or reads it from an existing store, read-only), resolves the fixed
list and checks MPI, then describes the store, the space, the presets, the
model, the strategy, the stop and the cluster. A SLURM campaign gets the
worker job script and worker command dask-jobqueue would submit
(:func:`activemat.dispatch.preview.worker_job_script`). It creates no store,
no certificates and no folders, starts no cluster or scheduler and submits
nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from activemat.campaign.config import CampaignConfig
from activemat.campaign.scheduler import submission_slots
from activemat.campaign.setup import prepare
from activemat.dispatch.clusters import slurm_settings, task_for
from activemat.dispatch.times import worker_lifetime
from activemat.errors import InputError


def _store(config: CampaignConfig) -> dict:
    from activemat.campaign.stored import open_campaign

    path = Path(config.campaign.store)
    out = {"path": str(path), "exists": path.exists()}
    if not path.exists():
        return {**out, "action": "create it (and any missing folders)"}
    view = open_campaign(path)
    if view.config().identity() != config.identity():
        raise InputError(f"{path} holds another campaign (different [space] or [calculator]); run would refuse to "
                         "continue it: give this campaign a new store (--store or [campaign] store)")
    summary = view.status()
    return {**out, "action": "resume it", "completed": summary["completed"], "attempts": summary["attempts"],
            "driver_running": summary["driver_running"]}


def _preset(preset, cost) -> dict:
    g = preset.gpaw
    return {"name": preset.name, "xc": g.xc_name, "ecut": g.ecut, "kpts_density": g.kpts_density,
            "legacy": g.legacy, "edges": g.edges, "relax": preset.relax.kind if preset.relax else None,
            "cost": cost}


def _seconds(s: int) -> str:
    h, rest = divmod(int(s), 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def _cluster(config: CampaignConfig) -> dict:
    section = config.cluster
    out = {"kind": section.kind, "tls": section.use_tls, "mpi_ranks": section.mpi_ranks}
    if section.mpi_ranks > 1:
        task_for(section)  # refused here, as run refuses it, when GPAW's MPI or the launcher is missing
        out["mpi_launcher"] = section.mpi_launcher.format(ranks=section.mpi_ranks)
    if section.kind == "local":
        out.update(workers=section.workers, threads_per_worker=1, host="127.0.0.1",
                   submissions=submission_slots(section.workers, section.prefetch), dashboard=section.dashboard)
    elif section.kind == "address":
        out.update(address=section.address)
    else:
        from activemat.dispatch.preview import worker_job_script

        settings = slurm_settings(section)
        per_job = settings["processes"]
        life, spread = worker_lifetime(settings["walltime"], section.lifetime, section.lifetime_stagger)
        out.update(minimum_jobs=section.minimum_jobs, maximum_jobs=section.maximum_jobs, workers_per_job=per_job,
                   slots=section.maximum_jobs * per_job,
                   submissions=submission_slots(section.maximum_jobs * per_job, section.prefetch),
                   walltime=settings["walltime"], worker_lifetime=_seconds(life), lifetime_stagger=_seconds(spread),
                   drain=section.drain, profile=section.profile,
                   **worker_job_script(section, config.campaign.store))
    return out


def dry_run(config: CampaignConfig, campaign_path: str | Path | None = None) -> dict:
    """What ``activemat run`` would do with ``config``, as a JSON-ready dict; nothing is run or created.

    Raises
    ------
    InputError
        Whatever ``run`` would refuse before its first calculation (presets,
        fixed list, MPI, a store of another campaign, SLURM settings), in one line.
    """
    pool, presets, fixed = prepare(config)
    sp = config.space
    cheaper = [p.name for p in presets[:-1]]
    return {
        "campaign": config.campaign.name,
        "file": None if campaign_path is None else str(campaign_path),
        "store": _store(config),
        "space": {"elements": list(sp.elements), "cell": sp.cell, "supercell": pool.supercell, "sites": pool.n_sites,
                  "mode": sp.mode, "features": pool.feature_kind, "n_features": len(pool.feature_names),
                  "candidates": len(pool), "compositions": len(set(pool.n_b.tolist())),
                  "sqs": int(pool.sqs.sum()) if pool.sqs is not None else 0},
        "presets": [_preset(p, c) for p, c in zip(presets, config.calculator.declared_costs)],
        "multi_fidelity": bool(cheaper),
        "model": config.model.kind,
        "strategy": {"kind": config.strategy.kind, "n_seed": config.strategy.n_seed, "fixed": len(fixed)},
        "stop": config.stop.model_dump(exclude_none=True),
        "test_size": config.campaign.test_size,
        "cluster": _cluster(config),
    }


def render(plan: dict, file=None) -> None:
    """Print :func:`dry_run`'s plan for people: a few lines, then a SLURM campaign's job script."""
    file = file or sys.stdout

    def say(line: str = "") -> None:
        print(line, file=file)

    where = f" ({plan['file']})" if plan["file"] else ""
    say(f"dry run of campaign {plan['campaign']}{where}: nothing is computed, started, submitted or created")
    st = plan["store"]
    done = f": {st['completed']} completed of {st['attempts']} attempts" if st["exists"] else ""
    running = "; a driver is running on it now" if st.get("driver_running") else ""
    say(f"store:    {st['path']} ({'exists' if st['exists'] else 'new'}{done}); run would {st['action']}{running}")
    sp = plan["space"]
    sqs = f", {sp['sqs']} SQS" if sp["sqs"] else ""
    supercell = "x".join(map(str, sp["supercell"])) if all(isinstance(n, int) for n in sp["supercell"]) \
        else str(sp["supercell"])
    say(f"space:    {sp['candidates']} candidates over {sp['compositions']} compositions{sqs} "
        f"({'/'.join(sp['elements'])}, {sp['sites']}-site {supercell} supercell of the {sp['cell']} cell, "
        f"{sp['mode']}; {sp['n_features']} {sp['features']} features)")
    levels = "cheap to accurate, the last is the campaign's own" if plan["multi_fidelity"] else "one level"
    say(f"presets:  {levels}")
    for p in plan["presets"]:
        extra = [f"relax {p['relax']}"] if p["relax"] else []
        extra += ["legacy GPAW"] if p["legacy"] else []
        extra += [f"cost {p['cost']:g} CPU-s"] if p["cost"] else []
        say(f"  {p['name']}: {p['xc']}, {p['ecut']:g} eV, k-point density {p['kpts_density']:g}, {p['edges']} "
            f"edges" + "".join(f", {e}" for e in extra))
    s = plan["strategy"]
    fixed = f", {s['fixed']} fixed candidates" if s["fixed"] else ""
    say(f"model:    {plan['model']}; strategy {s['kind']} after {s['n_seed']} space-filling seeds{fixed}"
        + (f"; {plan['test_size']} held out for testing" if plan["test_size"] else ""))
    say("stop:     " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in plan["stop"].items()))
    c = plan["cluster"]
    mpi = f"; {c['mpi_ranks']} MPI ranks per calculation: {c['mpi_launcher']} ..." if c["mpi_ranks"] > 1 else ""
    if c["kind"] == "local":
        say(f"cluster:  local, {c['workers']} worker processes of 1 thread on {c['host']}, {c['submissions']} "
            f"calculations submitted at a time, dashboard {'on 127.0.0.1' if c['dashboard'] else 'off'}"
            f", TLS {'on' if c['tls'] else 'off'}{mpi}")
        return
    if c["kind"] == "address":
        say(f"cluster:  the running scheduler at {c['address']} (not contacted by a dry run), "
            f"TLS {'on' if c['tls'] else 'off'}{mpi}")
        return
    profile = f", profile {c['profile']}" if c["profile"] else ""
    retire = "drain, then retire" if c["drain"] else "Dask's --lifetime cuts them off"
    say(f"cluster:  slurm{profile}, {c['minimum_jobs']}-{c['maximum_jobs']} worker jobs (adaptive) of "
        f"{c['workers_per_job']} workers, {c['slots']} calculation slots, {c['submissions']} submitted at a time; "
        f"walltime {c['walltime']}, workers {retire} at {c['worker_lifetime']} (+- {c['lifetime_stagger']}){mpi}")
    tls = f"TLS certificates {c['tls_directory']}/ and " if c["tls_directory"] else ""
    say(f"          {tls}job logs {c['log_directory']}/ are made by the first run; "
        f"the scheduler's address ({c['scheduler']}) is known only then")
    say(f"worker job script (dask-jobqueue, job {c['job_name']}; submitted with sbatch as calculations queue up):")
    for line in c["script"].rstrip().splitlines():
        say(f"  {line}")
    say("worker command (the script's last line):")
    say(f"  {c['worker_command']}")
