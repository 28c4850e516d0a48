"""The documentation builds with warnings as errors, and its generated reference pages hold what the code declares.

The docs are copied into a temporary folder first: autosummary writes its stub pages into the
source tree, and tests never write into the working tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


class _Tables(HTMLParser):
    """Rows of the tables docs/_ext generated in a page (class activemat-generated), as lists of cell texts."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._generated = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._generated = "activemat-generated" in (dict(attrs).get("class") or "").split()
        elif tag == "tr" and self._generated:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _rows(page: Path) -> dict[str, list[str]]:
    """Rows of a page's generated tables by their first cell."""
    parser = _Tables()
    parser.feed(page.read_text())
    return {row[0]: row for row in parser.rows if row}


def _text(page: Path) -> str:
    class Text(HTMLParser):
        parts: list[str] = []

        def handle_data(self, data):
            self.parts.append(data)

    parser = Text()
    parser.parts = []
    parser.feed(page.read_text())
    return " ".join(" ".join(parser.parts).split())


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("docs")
    source = tmp / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build", "generated", "__pycache__"))
    out = tmp / "html"
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-j", "auto", "-b", "html",
                           "-d", str(tmp / "doctrees"), str(source), str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"sphinx-build failed (warnings are errors):\n{proc.stderr[-6000:]}"
    return out


def test_cli_page_is_generated_from_the_parser(html):
    text = _text(html / "reference" / "cli.html")
    run = text[text.index("run or resume a campaign"):text.index("summarise a store")]
    assert "--budget" in run and "override [stop] budget" in run
    for verb in ("status", "query", "export", "predict", "inspect", "plot", "replay"):
        assert f"activemat {verb}" in text


def test_campaign_page_documents_every_section_from_its_model(html):
    text = _text(html / "reference" / "campaign.html")
    stop = text[text.index("StopSection"):]
    assert "budget" in stop and "completed calculations" in stop
    for section in ("CampaignSection", "SpaceSection", "CalculatorSection", "ModelSection", "StrategySection",
                    "ClusterSection", "FaultsSection"):
        assert section in text


def test_store_page_has_the_schema_columns_with_units(html):
    rows = _rows(html / "reference" / "store.html")
    assert "eV" in rows["gap"] and rows["gap"][1].startswith("f8")
    assert "seconds since 1970-01-01T00:00:00Z" in rows["submitted"]
    assert "calculations" in rows["calculation"] and "candidates" in rows["feature"]  # the dimensions table
    assert {"schema_version", "candidate", "cv_mae", "multiplicity"} <= set(rows)
    from activemat.store.schema import SCHEMA_VERSION

    assert f"Schema version {SCHEMA_VERSION}" in _text(html / "reference" / "store.html")


def test_presets_page_lists_the_shipped_presets(html):
    rows = _rows(html / "reference" / "presets.html")
    from activemat.compute.presets import load_preset

    assert "PBE" in rows["gpaw-fast"] and f"{load_preset('gpaw-fast').gpaw.ecut:g}" in rows["gpaw-fast"]
    assert {"gpaw-pbe-pw", "gpaw-tb09", "gpaw-gllbsc"} <= set(rows)


def test_strategies_page_lists_the_registry(html):
    rows = _rows(html / "reference" / "strategies.html")
    from activemat.learn.strategies import STRATEGIES

    assert set(STRATEGIES) <= set(rows)
    assert "largest posterior std" in rows["max_std"][1]


def test_api_pages_cover_every_module(html):
    import pkgutil

    import activemat

    modules = {m.name for m in pkgutil.walk_packages(activemat.__path__, "activemat.")}
    pages = {p.stem for p in (html / "reference" / "generated").glob("activemat.*.html")}
    assert {"activemat.store.schema", "activemat.learn.strategies", "activemat.cli"} <= pages
    assert modules <= pages, f"modules without an API page: {sorted(modules - pages)}"


def test_starter_kit_page_is_generated_from_the_templates_and_the_cli(html):
    """The how-to's template table comes from the registry, its example outputs from running the commands."""
    from activemat.campaign.starter import TEMPLATES

    page = html / "howto" / "starter-kit.html"
    rows = _rows(page)
    assert set(TEMPLATES) <= set(rows) and "gpaw-fast" in rows["demo"] and "tb09-relaxed" in rows["sige16-accurate"][2]
    text = _text(page)
    assert "$ activemat init demo wrote demo.toml" in text
    assert "$ activemat run --dry-run demo.toml dry run of campaign demo" in text
    assert "402 candidates over 17 compositions" in text
    assert "#SBATCH -J activemat-worker" in text and "dask_worker tls://SCHEDULER-HOST:PORT" in text
    cli = _text(html / "reference" / "cli.html")
    assert "activemat init" in cli and "--dry-run" in cli and "--bowing" in cli
