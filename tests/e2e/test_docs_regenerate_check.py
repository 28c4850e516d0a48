"""Every example output in README.md and docs/ is what its command prints now (docs/regenerate.py --check).

Runs each command of every generated region in a fresh folder (minutes on a loaded machine). When it fails,
the message is the diff: rerun ``python -m docs.regenerate`` and commit the result.
"""

from __future__ import annotations

import pytest

from docs import regenerate

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]


def test_every_generated_region_of_the_docs_is_fresh(capsys):
    status = regenerate.main(["--check"])
    out = capsys.readouterr()
    assert status == 0, f"stale example outputs (run `python -m docs.regenerate`):\n{out.out[-8000:]}{out.err}"
