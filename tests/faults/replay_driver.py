"""A campaign driver process whose DFT is a ReplayOracle (named fake; loop logic only).

Used by the fault tests to kill, signal and re-run real driver processes with
real LocalCluster workers without paying for DFT. Like `activemat run`, it
routes SIGTERM/SIGINT to a stop request before its heavy imports.

    python tests/faults/replay_driver.py CAMPAIGN.toml DELAY_SECONDS [SCRATCH_BYTES]

With SCRATCH_BYTES each attempt writes that much into its scratch folder, as GPAW's log does.
"""

import sys

from activemat.campaign.signals import StopRequested

if __name__ == "__main__":
    stop = StopRequested()
    stop.route()
    from activemat.campaign.config import load_campaign
    from activemat.campaign.loop import run_campaign
    from activemat.campaign.setup import build_campaign_pool
    from activemat.compute.oracle import ReplayOracle
    from activemat.errors import InputError
    from tests.conftest import synthetic_gaps

    config, text = load_campaign(sys.argv[1])
    try:
        oracle = ReplayOracle(synthetic_gaps(build_campaign_pool(config)), delay=float(sys.argv[2]),
                              scratch_bytes=int(sys.argv[3]) if len(sys.argv) > 3 else 0)
        summary = run_campaign(config, text, task=oracle, stop=stop)
        stop.settle()
        if summary.get("fault"):  # as `activemat run`: one line, exit 2
            print(f"activemat: error: {summary['fault']}", file=sys.stderr)
            sys.exit(2)
    except InputError as exc:
        print(f"activemat: error: {exc}", file=sys.stderr)
        sys.exit(2)
