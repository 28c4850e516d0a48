"""Generated regions of the docs (docs/regenerate.py): a stale output fails the check, regenerating fixes it,
a recorded run must match the store it wrote, and the generated reference blocks hold what the code declares.

The whole docs are checked in tests/e2e/test_docs_regenerate_check.py; here, small files in tmp_path.
"""

from __future__ import annotations

import os
import shutil
import time
import tomllib

import pytest

import activemat
from docs import regenerate
from docs.preset_guide import campaign_defaults, preset_table

STALE = """# A page

<!-- generated: output -->
```
$ activemat --version
activemat 0.0.1
```
<!-- end generated -->

Text after.
"""


def test_a_stale_output_fails_the_check_and_regenerating_fixes_it(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text(STALE)
    assert regenerate.main([str(page), "--check"]) == 1
    report = capsys.readouterr().out
    assert "page.md:3: output region is stale" in report and "-activemat 0.0.1" in report
    assert page.read_text() == STALE  # --check changes nothing

    assert regenerate.main([str(page)]) == 0
    text = page.read_text()
    assert f"$ activemat --version\nactivemat {activemat.__version__}\n```" in text
    assert text.startswith("# A page\n") and text.endswith("Text after.\n")
    assert regenerate.main([str(page), "--check"]) == 0


def test_a_command_that_fails_is_an_error_unless_its_exit_status_is_declared(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text(STALE.replace("--version", "status runs/missing.h5"))
    assert regenerate.main([str(page), "--check"]) == 2
    assert "exited 2, not 0" in capsys.readouterr().err

    page.write_text(STALE.replace("--version", "status runs/missing.h5").replace("output -->", "output exit=2 -->"))
    assert regenerate.main([str(page)]) == 0
    assert "activemat: error: store not found" in page.read_text()


def test_a_marker_without_its_end_is_an_error(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text(STALE.replace("<!-- end generated -->\n", ""))
    assert regenerate.main([str(page), "--check"]) == 2
    assert "has no '<!-- end generated -->'" in capsys.readouterr().err


def test_a_recorded_run_must_match_the_store_it_wrote(tmp_path):
    lines = (regenerate.DATA / "demo-run.txt").read_text().splitlines()
    store = regenerate.DATA / "demo.h5"
    regenerate.check_recording(lines, store, "demo-run")  # as recorded

    edited = [line.replace("gap 0.532 eV", "gap 0.530 eV") for line in lines]
    assert edited != lines
    with pytest.raises(regenerate.GenerationError, match="disagree"):
        regenerate.check_recording(edited, store, "demo-run")
    with pytest.raises(regenerate.GenerationError, match="disagree"):
        regenerate.check_recording(lines[:-3] + lines[-2:], store, "demo-run")  # a result left out


def test_a_recorded_run_without_its_store_is_checked_against_the_labelled_gaps():
    lines = (regenerate.DATA / "demo-run-12.txt").read_text().splitlines()
    labels = regenerate.RECORDINGS["demo-run-12"]
    regenerate.check_against_labels(lines, labels, "demo-run-12")
    first = next(i for i, line in enumerate(lines) if regenerate.PROGRESS.match(line))  # a result line
    gap = regenerate.PROGRESS.match(lines[first])["gap"]
    edited = list(lines)
    edited[first] = lines[first].replace(f"gap {gap} eV", f"gap {float(gap) + 0.002:.3f} eV")
    assert edited != lines
    with pytest.raises(regenerate.GenerationError, match="not the gap"):
        regenerate.check_against_labels(edited, labels, "demo-run-12")


def test_the_campaign_defaults_block_parses_to_the_models_defaults():
    from activemat.campaign.config import CampaignConfig, ModelSection, parse_campaign

    block = campaign_defaults()
    assert block[0] == "```toml" and block[-1] == "```"
    text = "\n".join(block[1:-1])
    assert parse_campaign(text) == CampaignConfig()
    assert tomllib.loads(text)["model"]["ard"] == ModelSection().ard == "classes"


def test_the_preset_guide_has_every_shipped_preset_and_the_measured_figures():
    import json

    from activemat.compute.presets import available_presets

    table = preset_table()
    for name in available_presets():
        assert sum(line.startswith(f"| `{name}` |") for line in table) == 2, name
    rows = json.loads((regenerate.ROOT / "benchmarks/results/end_members.json").read_text())["rows"]
    si16 = next(r for r in rows if (r["preset"], r["element"], r["atoms"]) == ("pbe-relaxed", "Si", 16))
    ge16 = next(r for r in rows if (r["preset"], r["element"], r["atoms"]) == ("pbe-relaxed", "Ge", 16))
    line = next(line for line in table if line.startswith("| `pbe-relaxed` | 0."))
    assert f"| {si16['seconds']:.0f} / {ge16['seconds']:.0f} |" in line


def test_a_shipped_preset_without_a_purpose_is_an_error(monkeypatch):
    from docs import preset_guide

    monkeypatch.delitem(preset_guide.PURPOSE, "gpaw-fast")
    with pytest.raises(ValueError, match="no entry for the shipped preset"):
        preset_table()


def test_the_docs_hold_generated_regions_of_every_kind():
    kinds = {r.kind for path in regenerate.default_files() for r in regenerate.regions(path)}
    assert kinds == {"output", "preset-guide", "campaign-defaults"}
    readme = regenerate.regions(regenerate.ROOT / "README.md")
    assert [r.options.get("recorded") for r in readme] == ["demo-run", None]
    assert shutil.which("bash")


def test_a_setup_script_prepares_the_block_and_what_it_leaves_running_is_stopped(tmp_path, monkeypatch):
    """``setup=NAME`` runs docs/data/NAME.sh first, unseen; ``exit=N`` is the last command's status; a background
    process of the setup is stopped after the block, and its 'pid N on HOST' shows as 'pid 25573 on vm'."""
    import socket

    monkeypatch.setattr(regenerate, "DATA", tmp_path)
    (tmp_path / "hold.sh").write_text('sleep 300 &\necho "$!" > held.pid\necho prepared > note.txt\n')
    page = tmp_path / "page.md"
    page.write_text("<!-- generated: output setup=hold exit=3 -->\n```\n$ cat note.txt\n"
                    f'$ echo "pid $(cat held.pid) on {socket.gethostname()} in $PWD, home $HOME"; exit 3\n'
                    "```\n<!-- end generated -->\n")
    region = regenerate.regions(page)[0]
    sandbox = regenerate.Sandbox()
    folder = sandbox.folder
    try:
        sandbox.setup("hold")
        held = int((folder / "held.pid").read_text())
        assert sandbox.run("cat note.txt", 0) == ["prepared"]
    finally:
        sandbox.close()
    assert not folder.exists()
    with pytest.raises(ProcessLookupError):  # the setup's background process was stopped with its group
        for _ in range(50):
            os.kill(held, 0)
            time.sleep(0.1)

    out = regenerate.render(region)
    assert out[1:-1] == ["$ cat note.txt", "prepared", region.body[2],
                         "pid 25573 on vm in /home/me/sige, home /home/me"]
    region.options["exit"] = "0"
    with pytest.raises(regenerate.GenerationError, match="exited 3, not 0"):
        regenerate.render(region)
    region.options["setup"] = "missing"
    with pytest.raises(regenerate.GenerationError, match="no setup script docs/data/missing.sh"):
        regenerate.render(region)
