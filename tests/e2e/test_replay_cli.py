"""`activemat replay` in a subprocess, on an oracle file written here.

The labels are tests.conftest.synthetic_gaps: a smooth synthetic function of
the features (not DFT), enough to exercise matching, replay and the output.
"""

from __future__ import annotations

import json
import subprocess
import sys

import ase.io
import numpy as np

from activemat.space.pool import build_pool
from tests.conftest import synthetic_gaps

def activemat(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "activemat.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_replay_cli_json_and_table(tmp_path, campaign_file):
    pool = build_pool(("Si", "Ge"), (2, 2, 2))
    gaps = synthetic_gaps(pool)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(0, len(pool), 8):  # 51 candidates, site order shuffled and origin shifted
        atoms = pool.atoms(i)[rng.permutation(16)]
        atoms.translate(rng.normal(size=3))
        atoms.wrap()
        atoms.info["gap"] = gaps[i]
        frames.append(atoms)
    stranger = build_pool(("Si", "Ge"), (1, 1, 2)).atoms(1)  # 4 atoms: matches nothing
    stranger.info["gap"] = 0.4
    ase.io.write(tmp_path / "oracle.extxyz", frames + [stranger], format="extxyz")
    campaign_file("c.toml", {}, name="replay-e2e", seed=0, space={"supercell": [2, 2, 2]}, model={"restarts": 0},
                  strategy={"kind": "max_std", "n_seed": 3})

    result = activemat("replay", "c.toml", "--oracle", "oracle.extxyz", "--strategy", "max_std", "random", "fixed",
                       "--repeats", "2", "--budget", "12", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["matched"] == 51 and out["labelled_pool"] == 51 and out["pool_size"] == 402
    assert [u["frame"] for u in out["unmatched"]] == [51]
    assert set(out["strategies"]) == {"max_std", "random", "fixed"}
    s = out["strategies"]["max_std"]
    assert s["repeats"] == 2 and len(s["mae"]["mean"]) == 13 and s["mae"]["mean"][0] is None
    assert s["mae"]["mean"][12] < s["mae"]["mean"][3]
    assert "run 2 done" in result.stderr  # progress goes to stderr, JSON alone to stdout

    table = activemat("replay", "c.toml", "--oracle", "oracle.extxyz", "--strategy", "ivr", "random", "--repeats", "2",
                      "--budget", "8", "--quiet", "--jobs", "2", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "1 unmatched" in table.stdout and "labels needed" in table.stdout and "ivr" in table.stdout

    missing = activemat("replay", "c.toml", "--oracle", "nope.extxyz", cwd=tmp_path)
    assert missing.returncode == 2 and "oracle file not found" in missing.stderr
    no_jobs = activemat("replay", "c.toml", "--oracle", "oracle.extxyz", "--jobs", "0", cwd=tmp_path)
    assert no_jobs.returncode == 2 and "--jobs must be at least 1" in no_jobs.stderr


def test_multi_fidelity_replay_runs_the_campaign_against_one_oracle_per_preset(tmp_path):
    """`replay CAMPAIGN --oracle CHEAP=... --oracle ACCURATE=...`: the loop's own selector, co-kriging and refit
    schedule, answered from the shipped 16-atom gpaw-fast and PBE reference sets (real GPAW results), beside
    the accurate preset alone at the same cost. Bad oracle lists are one-line errors, exit 2."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    data = root / "benchmarks" / "data"
    fast, pbe = f"gpaw-fast={data / 'sige16-fast.extxyz'}", f"gpaw-pbe-pw={data / 'sige16-pbe.extxyz'}"
    campaign = root / "campaigns" / "sige16-pbe.toml"
    out = activemat("replay", str(campaign), "--oracle", fast, "--oracle", pbe, "--repeats", "1", "--budget", "6",
                    "--json", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["presets"] == ["gpaw-fast", "gpaw-pbe-pw"] and result["pool"] == 402
    multi, alone = result["multi"]["runs"][0], result["accurate"]["runs"][0]
    assert max(multi["cost"]) <= 6 + 1e-9 and max(alone["cost"]) <= 6 + 1e-9
    assert set(multi["level"]) == {0, 1} and set(alone["level"]) == {0}  # both fidelities bought; one alone
    assert result["multi"]["counts"][0][0] > result["multi"]["counts"][0][1]  # cheap results outnumber
    assert 0 < multi["mae"][-1] < 0.2 and 0 < alone["mae"][-1] < 0.2
    # --stop-at-targets: each run ends at the result that brings both errors within the (loose) targets
    out = activemat("replay", str(campaign), "--oracle", fast, "--oracle", pbe, "--repeats", "1", "--budget", "6",
                    "--target-mae", "0.15", "--target-max", "0.6", "--stop-at-targets", "--json", "--quiet",
                    cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    early = json.loads(out.stdout)["multi"]["runs"][0]
    assert max(early["cost"]) < max(multi["cost"])

    def first(errors, target):  # None: before the first fit
        return next(i for i, e in enumerate(errors) if e is not None and e <= target)
    assert len(early["mae"]) - 1 == max(first(early["mae"], 0.15), first(early["max"], 0.6))
    for bad, says in (([fast], "no labelled file for gpaw-pbe-pw"), ([fast, "gpaw-tb09=x.extxyz"], "not a preset"),
                      ([str(data / "sige16-pbe.extxyz")], "PRESET=FILE")):
        args = [a for o in bad for a in ("--oracle", o)]
        out = activemat("replay", str(campaign), *args, cwd=tmp_path)
        assert out.returncode == 2 and says in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
