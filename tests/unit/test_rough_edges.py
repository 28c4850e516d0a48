"""The command line's rough edges, each as a user meets it: formulas as typed, out-of-range filters, closed
pipes, standard output as a target, piped replay output, units on the model card, a reference store of
another preset. Bad input: one line naming the thing and the fix, exit code 2, the store untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json

import pytest
from test_query_stores import stores

from activemat.cli import main
from activemat.errors import SpaceError
from activemat.space.pool import parse_formula

SIGE = ("Si", "Ge")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return stores(tmp_path_factory)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("activemat: error: "), err
    return lines[0]


# -- formulas as a user types them -------------------------------------------------------------------

@pytest.mark.parametrize("text, n_ge", [("SiGe", 8), ("Si0.5Ge0.5", 8), ("SiGe3", 12), ("Si3Ge", 4), ("Ge", 16),
                                        ("Si", 0), ("Si2Ge2", 8), ("Si.25Ge.75", 12), ("Si4Ge12", 12)])
def test_formulas_that_mean_a_composition_of_the_cell_are_accepted(text, n_ge):
    assert parse_formula(text, SIGE, 16) == n_ge


@pytest.mark.parametrize("text, message", [
    ("SiGe2", "formula 'SiGe2' is x_Ge = 0.6667, not a composition of the 16-site cell (x_Ge in steps of 1/16); "
              "nearest: Si5Ge11 (x_Ge = 0.6875), Si6Ge10 (x_Ge = 0.625)"),
    ("Si0.3Ge0.7", "nearest: Si5Ge11 (x_Ge = 0.6875), Si4Ge12 (x_Ge = 0.75)"),
    ("Si0.5Ge0.4", "fractions must sum to 1 (they sum to 0.9)"),
    ("Si20Ge12", "has 32 atoms but the supercell has 16 sites; write its composition as Si10Ge6"),
    ("Si4Ge13", "17 atoms but the supercell has 16 sites"),
])
def test_formulas_the_cell_cannot_hold_are_refused_precisely(text, message):
    with pytest.raises(SpaceError) as err:
        parse_formula(text, SIGE, 16)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_predict_reads_formulas_never_as_missing_files(store):
    code, out, err = cli("predict", store["configs"], "SiGe", "Si0.5Ge0.5", "Si8Ge8")
    assert code == 0, err
    lines = out.splitlines()[1:]
    assert lines[0].startswith("SiGe (Si8Ge8): x_ge = 0.5000") and lines[1].startswith("Si0.5Ge0.5 (Si8Ge8):")
    assert len({line.split("predicted gap")[1] for line in lines}) == 1  # the same composition, three ways
    before = _sha(store["configs"])
    for spec in ("Si0.3Ge0.7", "SiGe2"):
        line = one_line_error(*cli("predict", store["configs"], spec)[::2])
        assert "not a composition of the 16-site cell" in line and "not found" not in line, line
    line = one_line_error(*cli("predict", store["configs"], "missing.cif")[::2])
    assert "structure file not found: missing.cif" in line
    assert _sha(store["configs"]) == before


def test_query_composition_takes_the_same_formulas(store):
    code, out, _ = cli("query", store["configs"], "--composition", "SiGe", "--format", "json")
    same = cli("query", store["configs"], "--composition", "Si8Ge8", "--format", "json")[1]
    assert code == 0 and json.loads(out) == json.loads(same) and json.loads(out)
