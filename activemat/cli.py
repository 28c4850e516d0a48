"""The activemat command line. Each verb imports its module only when it runs."""

from __future__ import annotations

import argparse
import json
import sys


def _run(args) -> int:
    from .config import load_campaign
    from .loop import run_campaign

    config, text = load_campaign(args.campaign)
    overrides = {}
    if args.store:
        overrides["campaign"] = config.campaign.model_copy(update={"store": args.store})
    if args.workers:
        overrides["cluster"] = config.cluster.model_copy(update={"workers": args.workers})
    if args.budget:
        overrides["stop"] = config.stop.model_copy(update={"budget": args.budget})
    config = config.model_copy(update=overrides)
    summary = run_campaign(config, text)
    if args.json:
        print(json.dumps(summary))
    return 0


def _status(args) -> int:
    from rich.console import Console

    from .status import render, summarize
    from .store import read_store

    summary = summarize(read_store(args.store))
    if args.json:
        print(json.dumps(summary))
    else:
        render(summary, Console())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="activemat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run or resume a campaign")
    run.add_argument("campaign", help="campaign file (.toml)")
    run.add_argument("--store", help="override [campaign] store")
    run.add_argument("--workers", type=int, help="override [cluster] workers")
    run.add_argument("--budget", type=int, help="override [stop] budget")
    run.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    run.set_defaults(func=_run)

    status = sub.add_parser("status", help="summarise a store (safe while a campaign writes it)")
    status.add_argument("store", help="campaign store (.h5)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import InputError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"activemat: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())


def console_main() -> None:
    sys.exit(main())
