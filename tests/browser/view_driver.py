"""``activemat run --view`` on a campaign whose DFT is a ReplayOracle (named fake: answers from a table).

The command line runs as it does for a user (signals routed first, the page
served beside the driver on 127.0.0.1, its address printed on stderr);
only the band-gap task is swapped for the oracle, which answers after
DELAY seconds and fails the first attempt of every seventh candidate, so
rows land while a browser watches and the failures table has something in it.

    python tests/browser/view_driver.py CAMPAIGN.toml DELAY_SECONDS [activemat run options]
"""

import functools
import sys

if __name__ == "__main__":
    from activemat import cli
    from activemat.campaign import loop
    from activemat.campaign.config import load_campaign
    from activemat.campaign.setup import build_campaign_pool
    from activemat.compute.oracle import ReplayOracle
    from tests.conftest import synthetic_gaps

    campaign, delay, *options = sys.argv[1:]
    gaps = synthetic_gaps(build_campaign_pool(load_campaign(campaign)[0]))
    oracle = ReplayOracle(gaps, delay=float(delay), fail_attempts={c: 1 for c in gaps if c % 7 == 0})
    loop.run_campaign = functools.partial(loop.run_campaign, task=oracle)
    sys.exit(cli.main(["run", campaign, "--view", *options]))
