"""benchmarks.report: REPORT.md is what the committed results and each benchmark's own summary make."""

import doctest

import pytest

from benchmarks import common, report
from benchmarks.report import REPORT, Summary


def test_the_committed_report_is_made_from_the_results_by_the_benchmarks_summaries():
    assert report.build() == (report.HERE / "REPORT.md").read_text(), \
        "benchmarks/REPORT.md is stale: run `python -m benchmarks.report`"


def test_every_result_in_the_report_is_summarised_by_its_own_benchmark():
    summaries = [entry for entry in REPORT if isinstance(entry, Summary)]
    assert len({s.module for s in summaries}) >= 10
    for s in summaries:
        assert callable(report.benchmark(s.module).summary), s.module
    for module, name, _ in report.ISSUE16_ROUTES:
        assert callable(report.benchmark(module).routes), module
        result = common.load(name)
        if result is not None and not result.get("partial"):
            assert report.benchmark(module).routes(result), name  # every route that ran gives rows


def test_a_missing_result_is_a_note_and_a_caption_leads_its_summary():
    assert Summary("dispatch", "no-such-result").lines()[0].startswith("_Not run yet: `python -m benchmarks.dispatch`")
    lines = Summary("calibration", "calibration-16", caption="**Caption**").lines()
    assert lines[0].startswith("**Caption** (") and lines[-1] == ""


@pytest.mark.parametrize("module", [common])
def test_the_helpers_examples(module):
    assert doctest.testmod(module).failed == 0
