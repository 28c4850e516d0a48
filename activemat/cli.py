"""The activemat command line. Each verb imports its module only when it runs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import nullcontext

from activemat.errors import InputError

# The registries name the choices (strategies, model kinds): light modules, imported for the parser.
from activemat.learn import MODEL_KINDS
from activemat.learn.strategies import campaign_kinds
from activemat.version import __version__


def _run_options(args) -> dict:
    """The campaign-file overrides ``run`` was given (``--store``, ``--workers``, ``--budget``)."""
    options = {"campaign.store": ("store", "--store"), "cluster.workers": ("workers", "--workers"),
               "stop.budget": ("budget", "--budget")}
    return {key: (getattr(args, name), f"{flag} {getattr(args, name)}")
            for key, (name, flag) in options.items() if getattr(args, name) is not None}


def _dry_run(args) -> int:
    from activemat.campaign.config import load_campaign
    from activemat.campaign.dryrun import dry_run, render

    config, _ = load_campaign(args.campaign, _run_options(args))
    plan = dry_run(config, args.campaign)
    print(json.dumps(plan)) if args.json else render(plan)
    return 0


def _run(args) -> int:
    if args.dry_run:
        return _dry_run(args)
    # First, before the heavy imports: from now until the process exits, SIGTERM or Ctrl-C is a stop request.
    from activemat.campaign.signals import StopRequested

    stop = StopRequested()
    stop.route()
    from activemat.campaign.config import load_campaign
    from activemat.campaign.loop import run_campaign

    config, text = load_campaign(args.campaign, _run_options(args))
    view = nullcontext()
    if args.view:  # the live page beside the driver, bound before anything is computed
        from activemat.analysis.view.server import beside

        view = beside(config.campaign.store, port=args.view_port, budget=config.stop.budget,
                      announce=lambda line: print(line, file=sys.stderr, flush=True))
    with view:
        summary = run_campaign(config, text, stop=stop)
    stop.settle()
    if args.json:
        print(json.dumps(summary))
    if summary.get("fault"):  # an infrastructure fault stopped the run: one line, exit 2, resume once fixed
        print(f"activemat: error: {summary['fault']}", file=sys.stderr)
        return 2
    return 0


def _init(args) -> int:
    from activemat.campaign.starter import next_steps, templates, write_starter

    if args.list:
        width = max(map(len, templates()))
        for name, what in templates().items():
            print(f"{name:<{width}}  {what}")
        return 0
    if args.template is None:
        raise InputError(f"name a template: activemat init TEMPLATE [DIR], TEMPLATE one of {', '.join(templates())} "
                         "(`activemat init --list` describes them)")
    from activemat.campaign.config import parse_campaign

    paths = write_starter(args.template, args.folder, slurm=args.slurm)
    store = parse_campaign(paths[0].read_text(), paths[0]).campaign.store
    for line in next_steps(paths, store, slurm=args.slurm):
        print(line)
    return 0


def _view(args) -> int:
    from activemat.analysis.view.server import serve

    serve(args.store, port=args.port, interval=args.interval, dashboard=args.dashboard,
          announce=lambda line: print(line, flush=True))
    return 0


def _status(args) -> int:
    from rich.console import Console

    from activemat.analysis.tables import render_status
    from activemat.campaign.stored import open_campaign

    summary = open_campaign(args.store).status()
    if args.json:
        print(json.dumps(summary))
    else:
        render_status(summary, Console())
    return 0


_FILTERS = ("composition", "n_b", "x_b", "status", "gap", "iteration", "preset")


def _add_filters(p: argparse.ArgumentParser) -> None:
    f = p.add_argument_group("filters (all must hold; ranges are inclusive MIN:MAX, MIN:, :MAX or one value)")
    f.add_argument("--composition", metavar="FORMULA", help="e.g. Si4Ge12 (comma-separate several)")
    f.add_argument("--ge-count", "--b-count", dest="n_b", metavar="MIN:MAX",
                   help="number of alloying (Ge) atoms in the cell")
    f.add_argument("--x-ge", "--x-b", dest="x_b", metavar="MIN:MAX", help="alloying (Ge) fraction, 0..1")
    f.add_argument("--status", help="ok, failed, running or interrupted (comma-separate several)")
    f.add_argument("--gap", metavar="MIN:MAX", help="band gap in eV (rows without a gap never match)")
    f.add_argument("--iteration", metavar="MIN:MAX", help="model iteration at which the row was picked")
    f.add_argument("--preset", metavar="NAME", help="calculator preset, e.g. gpaw-fast")


def _filters(args) -> dict:
    return {k: getattr(args, k) for k in _FILTERS}


def _query(args) -> int:
    from activemat.analysis.tables import run_query

    run_query(args.store, fmt=args.format, columns=args.columns, sort=args.sort, reverse=args.reverse,
              limit=args.limit, **_filters(args))
    return 0


def _export(args) -> int:
    from activemat.store.export import export_store

    n = export_store(args.store, args.output, fmt=args.format, **_filters(args))
    print(f"wrote {n} calculations to {'standard output' if args.output == '-' else args.output}", file=sys.stderr)
    return 0


def _predict(args) -> int:
    if args.crossover is not None:
        from activemat.analysis.crossover import crossover, render

        if args.preset:
            raise InputError("--crossover reads the valley gaps of every level of the store: leave out --preset")
        if args.spec or args.curve:
            raise InputError("--crossover locates the valley crossover of the whole curve; leave out --curve, the "
                             "compositions and structure files")
        lower, _, upper = args.crossover.partition(",")
        result = crossover(args.store, lower=lower or None, upper=upper or None)
        print(json.dumps(result)) if args.json else render(result)
        return 0
    if args.curve and args.spec:
        spec = " ".join(args.spec)
        raise InputError(f"--curve prints the whole composition curve E_g(x): leave out the compositions and "
                         f"structure files; for {spec} alone run `activemat predict {args.store} {spec}` (without "
                         "--curve)")
    if args.bowing != "free" and not args.curve:
        raise InputError(f"--bowing {args.bowing} chooses the bowing fit of the gap curve: add --curve")
    if args.corrections is not None and not args.curve:
        raise InputError("--corrections compares the gap curve with experiment: add --curve")
    if args.curve:
        from activemat.analysis.curve import gap_curve, render, with_experiment

        result = gap_curve(args.store, kind=args.model, refit=args.refit, bowing=args.bowing, preset=args.preset)
        if args.corrections is not None:
            result = with_experiment(result, args.corrections)
    else:
        from activemat.analysis.predict import predict, render

        result = predict(args.store, args.spec, kind=args.model, refit=args.refit, preset=args.preset)
    if args.json:
        print(json.dumps(result))
    else:
        render(result)
    return 0


def _inspect(args) -> int:
    from activemat.analysis.modelcard import model_card, render

    card = model_card(args.store, kind=args.model, reference=args.reference, refit=args.refit)
    _warn((card.get("reference") or {}).get("warning"))
    if args.json:
        print(json.dumps(card))
    else:
        render(card)
    return 0


def _plot(args) -> int:
    from activemat.analysis.plots import plot_store

    results = {}
    for path in plot_store(args.store[0], args.output, kind=args.model, figures=args.figures,
                           reference=args.reference, compare=args.store[1:], results=results,
                           refit=args.refit, corrections=args.corrections).values():
        print(path)
    for warning in results.get("warnings", ()):
        _warn(warning)
    if "experiment" in results:
        from activemat.analysis.experiment_figure import render_comparison

        render_comparison(results["experiment"])
    return 0


def _replay(args) -> int:
    from activemat.analysis.replay import main_progress, render, replay, to_json
    from activemat.campaign.config import load_campaign

    config, _ = load_campaign(args.campaign)
    progress = None if args.quiet else main_progress
    if len(config.calculator.presets) > 1 or any("=" in o for o in args.oracle):
        from activemat.analysis import replay_levels as levels

        result = levels.replay_levels(config, levels.parse_oracles(args.oracle, config), repeats=args.repeats,
                                      budget=args.budget, target_mae=args.target_mae, target_max=args.target_max,
                                      routes=tuple(args.routes), pretrain_n=args.pretrain_n, progress=progress,
                                      stop_at={"mae": args.target_mae, "max": args.target_max}
                                      if args.stop_at_targets else None)
        print(to_json(result)) if args.json else levels.render(result)
        return 0
    if len(args.oracle) > 1:
        raise InputError("--oracle: a single-fidelity campaign takes one labelled file")
    budget = None if args.budget is None else int(args.budget)
    result = replay(config, args.oracle[0], args.strategy, repeats=args.repeats, budget=budget,
                    target_mae=args.target_mae, target_max=args.target_max, stop_at_targets=args.stop_at_targets,
                    random_start=args.random_start, jobs=args.jobs, held_out=args.held_out, batch=args.batch,
                    progress=progress)
    if args.json:
        print(to_json(result))
    else:
        render(result)
    return 0


_REFIT = ("optimise the model's hyperparameters again (seconds to minutes) instead of reusing those of the "
          "store's latest snapshot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="activemat", description=__doc__)
    parser.add_argument("--version", action="version", version=f"activemat {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_init(sub)
    _add_campaign_verbs(sub)
    _add_table_verbs(sub)
    _add_model_verbs(sub)
    _add_replay(sub)
    return parser


def _add_init(sub) -> None:
    """``init``: the starter kit, a campaign file from a template (and the SLURM files) in your folder."""
    from activemat.campaign.starter import TEMPLATES

    init = sub.add_parser("init", help="write a campaign file from a template into a folder (with --slurm also the "
                                       "SLURM job script and dask-jobqueue profile); never overwrites a file")
    init.add_argument("template", nargs="?", metavar="TEMPLATE", help=f"one of {', '.join(TEMPLATES)}; "
                      "written as TEMPLATE.toml")
    init.add_argument("folder", nargs="?", default=".", metavar="DIR",
                      help="where to write it (default: the working directory; created if missing)")
    init.add_argument("--slurm", action="store_true",
                      help="also campaign.sbatch (runs the driver as a SLURM job) and jobqueue.yaml (an example "
                           "dask-jobqueue profile), and a [cluster] section for SLURM workers from that profile")
    init.add_argument("--list", action="store_true", help="list the templates with what each is for")
    init.set_defaults(func=_init)


def _add_campaign_verbs(sub) -> None:
    """``run`` a campaign, and watch its store: ``status``, ``view``."""
    run = sub.add_parser("run", help="run or resume a campaign")
    run.add_argument("campaign", help="campaign file (.toml)")
    run.add_argument("--store", help="override [campaign] store")
    run.add_argument("--workers", type=int, help="override [cluster] workers")
    run.add_argument("--budget", type=int, help="override [stop] budget")
    run.add_argument("--json", action="store_true", help="print a JSON summary at the end (with --dry-run: the plan)")
    run.add_argument("--dry-run", action="store_true",
                     help="check the campaign and print what would run (store, pool size, presets, workers; for "
                          "kind = \"slurm\" the worker job script and command dask-jobqueue would submit) without "
                          "computing, starting, submitting or creating anything")
    run.add_argument("--view", action="store_true",
                     help="serve the live page of the store (as `activemat view`) on 127.0.0.1 while it runs")
    run.add_argument("--view-port", type=int, default=5006, metavar="PORT",
                     help="port of --view's page (default 5006; 0 = any free port); printed at start")
    run.set_defaults(func=_run)

    status = sub.add_parser("status", help="summarise a store (safe while a campaign writes it)")
    status.add_argument("store", help="campaign store (.h5)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)

    view = sub.add_parser("view", help="a live page of a store in the browser, served on 127.0.0.1 (safe while "
                                       "a campaign writes it; a report of a finished one)")
    view.add_argument("store", help="campaign store (.h5); it may not exist yet (the page waits for it)")
    view.add_argument("--port", type=int, default=5006,
                      help="port on 127.0.0.1 (default 5006; 0 = any free port); the page's address is printed "
                           "at start. From another machine: ssh -L PORT:127.0.0.1:PORT HOST")
    view.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                      help="how often to check the store for new rows (default 1 s)")
    view.add_argument("--dashboard", metavar="URL", help="link this Dask dashboard on the page")
    view.set_defaults(func=_view)


def _add_table_verbs(sub) -> None:
    """A store's calculations as rows: ``query`` (table, CSV, JSON) and ``export`` (extended XYZ, CSV)."""
    query = sub.add_parser("query", help="filter a store's calculations; table, CSV or JSON")
    query.add_argument("store", help="campaign store (.h5)")
    _add_filters(query)
    query.add_argument("--format", default="table", choices=("table", "csv", "json"), help="output (default table)")
    query.add_argument("--columns", help="comma-separated columns (default: a summary for table, all otherwise); a "
                       "time as ISO 8601 in UTC (submitted) or as Unix seconds (submitted_unix)")
    query.add_argument("--sort", metavar="COLUMN", help="sort by a column (missing values last)")
    query.add_argument("--reverse", action="store_true", help="sort descending")
    query.add_argument("--limit", type=int, help="at most this many rows")
    query.set_defaults(func=_query)

    export = sub.add_parser("export", help="write calculations with structures to extended XYZ, or to CSV")
    export.add_argument("store", help="campaign store (.h5)")
    export.add_argument("-o", "--output", required=True,
                        help="FILE.extxyz (or .xyz) or FILE.csv, its folder created if missing; - for standard "
                             "output (extended XYZ unless --format)")
    export.add_argument("--format", choices=("extxyz", "csv"),
                        help="file format (default: from the file name's suffix; extxyz for standard output)")
    _add_filters(export)
    export.set_defaults(func=_export)


def _add_model_verbs(sub) -> None:
    """What a store's model says: ``predict``, ``inspect`` (its model card) and ``plot``."""
    predict = sub.add_parser("predict", help="predicted gap with uncertainty for compositions or structure files")
    predict.add_argument("store", help="campaign store (.h5)")
    predict.add_argument("spec", nargs="*", help="composition such as Si4Ge12, or a structure file (ase.io.read)")
    predict.add_argument("--curve", action="store_true",
                         help="the composition-averaged gap curve E_g(x) with its joint-posterior model std, the "
                              "configurational spread and the bowing parameter b (instead of SPEC)")
    predict.add_argument("--crossover", nargs="?", const="", metavar="LOWER,UPPER",
                         help="where the conduction-band minimum changes from valley LOWER to UPPER along x, from "
                              "the computed valley gaps, with its uncertainty; default: the valleys of the system's "
                              "measured-gap file (Si-Ge: Delta,L; Al-Ga-As: Gamma,X)")
    predict.add_argument("--bowing", choices=("free", "fixed-ends"), default="free",
                         help="with --curve: the bowing fit E_g = (1-x) E_A + x E_B - b x(1-x); free: E_A, E_B and b "
                              "fitted (the default); fixed-ends: E_A and E_B fixed to the computed end members' gaps, "
                              "b alone fitted")
    predict.add_argument("--model", choices=MODEL_KINDS, help="refit this model kind instead of the campaign's")
    predict.add_argument("--refit", action="store_true", help=_REFIT)
    predict.add_argument("--preset", metavar="NAME",
                         help="of a multi-fidelity store, one level alone: a model of that preset's results only "
                              "(its hyperparameters optimised now), to compare levels or cell sizes")
    predict.add_argument("--corrections", metavar="TERMS",
                         help="with --curve: also the measured gap of the store's system (its file in "
                              "activemat/analysis/experiments: Si-Ge, Al-Ga-As) at each composition and the model's "
                              "deviation from it, with these named terms of that file added to the measurement "
                              "(comma-separated, all, or none; Si-Ge: exciton, zpr, soc; Al-Ga-As: soc)")
    predict.add_argument("--json", action="store_true", help="machine-readable output")
    predict.set_defaults(func=_predict)

    inspect = sub.add_parser("inspect", help="model card: hyperparameters, CV errors, baseline, coefficients")
    inspect.add_argument("store", help="campaign store (.h5)")
    inspect.add_argument("--model", choices=MODEL_KINDS, help="refit this model kind instead of the campaign's")
    inspect.add_argument("--refit", action="store_true", help=_REFIT)
    inspect.add_argument("--reference", metavar="STORE", help="also score the model on this store's results"
                         " (same [space], e.g. every candidate computed)")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(func=_inspect)

    plot = sub.add_parser("plot", help="PNG figures: gap vs composition, learning curve, parity, selection")
    plot.add_argument("store", nargs="+", metavar="STORE",
                      help="campaign store (.h5); more stores (other fidelities) go into the experiment figure only")
    plot.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the PNGs (created if missing)")
    plot.add_argument("--figures", help="comma-separated subset of gap_vs_x, learning_curve, parity, selection "
                      "(the default), and experiment: composition-averaged gap of each store against the "
                      "measured gap of its system (Si-Ge: Weber and Alonso, Phys. Rev. B 40, 5683 (1989); "
                      "Al-Ga-As: Vurgaftman et al., J. Appl. Phys. 89, 5815 (2001))")
    plot.add_argument("--model", choices=MODEL_KINDS, help="refit this model kind instead of the campaign's")
    plot.add_argument("--refit", action="store_true", help=_REFIT)
    plot.add_argument("--reference", metavar="STORE", help="overlay this store's gaps (same [space]) on gap_vs_x")
    plot.add_argument("--corrections", metavar="TERMS",
                      help="experiment figure and its printed deviations: add these named terms of the system's "
                           "measured-gap file to the measured gap to get what a static-lattice, scalar-relativistic "
                           "DFT gap is compared with; comma-separated, or all (Si-Ge: exciton binding, zero-point "
                           "renormalisation zpr, spin-orbit soc = Delta_so/3; Al-Ga-As: soc); default none: the "
                           "measured curve as is")
    plot.set_defaults(func=_plot)


def _add_replay(sub) -> None:
    """``replay``: strategies against labelled structures, without DFT."""
    rep = sub.add_parser("replay", help="replay a campaign's strategies against labelled structures (no DFT): "
                                        "learning curves and labels needed")
    rep.add_argument("campaign", help="campaign file (.toml): its [space], [model] and [strategy] settings")
    rep.add_argument("--oracle", required=True, action="append", metavar="[PRESET=]LABELED.extxyz",
                     help="extended XYZ with the gap (eV) in each frame's info, e.g. from `activemat export`; a "
                          "multi-fidelity campaign takes one PRESET=FILE per preset (repeat the option)")
    rep.add_argument("--strategy", nargs="+", default=["max_std", "ivr", "random", "fixed"],
                     choices=campaign_kinds(), metavar="STRATEGY",
                     help=f"strategies to compare ({' '.join(campaign_kinds())}); 'fixed' is the seed "
                          "tutorial's design with linear regression on x")
    rep.add_argument("--repeats", type=int, default=10, help="runs per strategy with seeds seed, seed+1, ...")
    rep.add_argument("--budget", type=float, help="labels per run at most (default: the whole labelled pool); "
                     "multi-fidelity: cost in accurate-calculation equivalents (default: half the pool)")
    rep.add_argument("--target-mae", type=float, default=0.01,
                     help="eV, pool MAE to reach (held-out MAE with --held-out; default 0.01)")
    rep.add_argument("--target-max", type=float, default=0.05,
                     help="eV, pool max error to reach (held-out max error with --held-out; default 0.05)")
    rep.add_argument("--held-out", type=float, default=0.0, metavar="FRACTION",
                     help="fraction of the labelled structures never offered, drawn per repeat; the targets "
                          "apply to the error on them (default 0: errors over the whole labelled pool)")
    rep.add_argument("--stop-at-targets", action="store_true", help="end each run once both targets are reached")
    rep.add_argument("--random-start", action="store_true",
                     help="first n_seed picks at random (per seed) instead of space-filling")
    rep.add_argument("--jobs", type=int, default=1, help="processes to spread the runs over (default 1)")
    rep.add_argument("--batch", type=int, default=1, metavar="Q",
                     help="picks per refit, as Q workers whose results arrive together; the picks of a batch "
                          "count each other as running (kriging believer) (default 1: sequential)")
    rep.add_argument("--routes", nargs="+", default=["multi", "accurate"], metavar="ROUTE",
                     help="multi-fidelity: the routes to the accurate map replayed side by side: multi (the "
                          "campaign), accurate (its accurate preset alone), random (the same, random picks), transfer "
                          "(the accurate preset on a frozen model of the cheaper ones) (default: multi accurate)")
    rep.add_argument("--pretrain-n", type=int, metavar="N",
                     help="multi-fidelity, route transfer: candidates drawn per repeat, labelled at every cheaper "
                          "preset, that the frozen level is fitted on; their cost counts (default: the whole pool)")
    rep.add_argument("--json", action="store_true", help="machine-readable output")
    rep.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    rep.set_defaults(func=_replay)


def _warn(message: str | None) -> None:
    if message:
        print(f"activemat: warning: {message}", file=sys.stderr)


#: Exit code when the reader of standard output went away (``activemat query ... | head``): 128 + SIGPIPE,
#: as the shell reports a tool killed by a closed pipe.
CLOSED_PIPE = 141


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line. ``predict`` also takes its compositions after options (``predict STORE --curve
    Si8Ge8``, which argparse alone refuses as unrecognised arguments)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "predict" and not any(e.startswith("-") for e in extra):
        args.spec = [*args.spec, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"activemat: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader closed the pipe: stop quietly. Standard output goes to /dev/null, so the interpreter's
        # final flush of what is still buffered cannot fail again with a traceback.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass  # stdout is no file (tests): nothing left to flush into the closed pipe
        return CLOSED_PIPE


if __name__ == "__main__":
    sys.exit(main())


def console_main() -> None:
    sys.exit(main())
