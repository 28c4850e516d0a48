"""Write benchmarks/REPORT.md from the JSON results the benchmarks left in benchmarks/results/.

    .venv/bin/python -m benchmarks.report

The report is a list of entries (:data:`REPORT`): lines of prose, and results, each summarised by the benchmark
that wrote it. Every benchmark module declares ``summary(result: dict) -> list[str]``, its Markdown for one of
its results; the table of routes to the PBE map also reads ``routes(result) -> list[Route]``
(``sample_efficiency``, ``fidelity``) and ``limits(result)`` (``design_bound``). The report knows the order, the
headings and the words between results, never a result's layout.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import RESULTS, load, median_or_none, or_never

HERE = Path(__file__).resolve().parent
REFERENCE_COMMAND = ("OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.sample_efficiency --name reference-pbe "
                     "--campaign campaigns/sige16-pbe.toml --oracle benchmarks/data/sige16-pbe.extxyz --repeats 10 "
                     "--budget 200 --jobs 2 --stop-at-targets --set model.prior=none")


def benchmark(module: str):
    """The benchmark module ``benchmarks.<module>``."""
    return importlib.import_module(f"benchmarks.{module}")


@dataclass(frozen=True)
class Summary:
    """The summary benchmark ``module`` declares for its result ``name`` (results/<name>.json).

    ``caption``: text the summary's first line follows (in the same paragraph).
    """

    module: str
    name: str
    caption: str = ""

    def lines(self) -> list[str]:
        result = load(self.name)
        if result is None:
            return [f"_Not run yet: `python -m benchmarks.{self.module}` for `{self.name}` (commands in its "
                    "docstring)._", ""]
        lines = list(benchmark(self.module).summary(result))
        if self.caption:
            lines[0] = f"{self.caption} {lines[0]}"
        return lines


def reference_pbe() -> list[str]:
    """The reference dataset's sample efficiency, or how to get it while its store is being computed."""
    ref = load("sample_efficiency_reference-pbe")
    if ref is not None and ref["complete"]:
        return Summary("sample_efficiency", "sample_efficiency_reference-pbe").lines()
    text = ["**Not run yet**: `runs/reference-pbe.h5` is still being computed. When it is complete, run", "",
            f"    {REFERENCE_COMMAND}", "    .venv/bin/python -m benchmarks.report", ""]
    if (RESULTS / "sample_efficiency_reference-pbe-partial.json").exists():
        text += ["Preview on the labels that exist so far (a small, random subset of the pool: NOT the "
                 "benchmark, and no conclusion about targets can be drawn from it):", ""]
        text += Summary("sample_efficiency", "sample_efficiency_reference-pbe-partial").lines()
    return text


#: Issue 16's single-fidelity routes: (results name, what the run changes in campaigns/sige16-pbe.toml's [model]).
ISSUE16_SINGLE = (
    ("reference-pbe", "ard = true, maximum likelihood (issue 6's model)"),
    ("i16-ard", "ard = true (re-run with this branch)"),
    ("i16-classes", "ard = \"classes\""),
    ("i16-iso-none", "ard = false (one length scale), maximum likelihood (the package default before the "
                     "defaults became ard = \"classes\", prior = \"weak\")"),
    ("i16-iso-weak", "ard = false, prior = \"weak\""),
    ("i16-ard-weak", "ard = true, prior = \"weak\""),
    ("i16-classes-weak", "ard = \"classes\", prior = \"weak\""),
    ("i16-ard-weak-noise", "ard = true, prior = \"weak\", noise = 0.002"),
    ("i16-ard-weak-bowing", "ard = true, prior = \"weak\", mean = \"bowing\""),
    ("i16-classes-weak-bowing", "ard = \"classes\", prior = \"weak\", mean = \"bowing\""),
    ("i16-ard-weak-from100", "ard = true, prior = \"weak\", prior_from = 100 random gpaw-fast labels (+11.8 cost, "
                             "not included in the labels)"),
    ("i16-ard-rs", "ard = true, random seeds (--random-start)"),
    ("i16-ard-weak-rs", "ard = true, prior = \"weak\", random seeds (--random-start)"),
)
ISSUE16_BATCH = tuple((f"i16-ard-weak-q{q}", f"ard = true, prior = \"weak\", batches of q = {q} (kriging believer)")
                      for q in (2, 8, 32))
#: Issue 16's cheap-data routes: (results name, description).
ISSUE16_FIDELITY = (
    ("fidelity-fast-pbe-multi-share100", "multi-fidelity co-kriging, uncapped (cheap_share = 1)"),
    ("fidelity-fast-pbe-multi-share50", "multi-fidelity co-kriging, cheap_share = 0.5"),
    ("fidelity-fast-pbe-multi-share50-tied", "multi-fidelity co-kriging, cheap_share = 0.5, discrepancy = \"tied\""),
    ("fidelity-fast-pbe-multi-share30-tied", "multi-fidelity co-kriging, cheap_share = 0.3, discrepancy = \"tied\""),
    ("fidelity-fast-pbe-multi-share70-tied", "multi-fidelity co-kriging, cheap_share = 0.7, discrepancy = \"tied\""),
    ("fidelity-fast-pbe-transfer40", "transfer: 40 random gpaw-fast labels first"),
    ("fidelity-fast-pbe-transfer80", "transfer: 80 random gpaw-fast labels first"),
    ("fidelity-fast-pbe-transfer120", "transfer: 120 random gpaw-fast labels first"),
    ("fidelity-fast-pbe-transfer80-tied", "transfer: 80 random gpaw-fast labels first, discrepancy = \"tied\""),
    ("fidelity-fast-pbe-transfer200", "transfer: 200 random gpaw-fast labels first"),
    ("fidelity-fast-pbe-transfer402", "transfer: all 402 gpaw-fast labels first"),
    ("fidelity-sige16-pbe", "campaigns/sige16-pbe.toml as it is (cheap_share = 0.5, discrepancy = \"tied\") by the "
                            "library's replay (`activemat replay`, 2026-12)"),
)
#: Every row of the table of routes: (benchmark, results name, what the route is).
ISSUE16_ROUTES = (*(("sample_efficiency", f"sample_efficiency_{n}", what)
                    for n, what in ISSUE16_SINGLE + ISSUE16_BATCH),
                  *(("fidelity", n, what) for n, what in ISSUE16_FIDELITY))


def issue16() -> list[str]:
    """Cost (labels, PBE only) to each target and to both for every route of issue 16, against random's."""
    ref = load("sample_efficiency_reference-pbe")
    if ref is None:
        return ["_Not run yet._", ""]
    random = next(r for r in benchmark("sample_efficiency").routes(ref) if r.strategy == "random")
    rnd_mae, rnd_max = random.median_mae, random.median_max

    def ratio(v, r):
        return "-" if v is None or r is None else f"{v / r:.2f}"

    out = ["Costs are in units of one gpaw-pbe-pw calculation: the median wall time of the 402 PBE frames "
           "(69.4 s, one core), gpaw-fast 8.2 s (median of its 402 frames), ratio 0.118. Targets: pool MAE <= "
           "0.01 eV and max error <= 0.05 eV, over all 402 configurations (training points included). Medians "
           f"over 10 repeats; a repeat that never reached a target counts as infinite. Random's reference "
           f"(issue 6's model, maximum likelihood): {rnd_mae:g} labels to MAE, {rnd_max:g} to max error; one "
           f"third is {rnd_mae / 3:.1f} and {rnd_max / 3:.1f}. Runs made before campaigns/sige16-pbe.toml set "
           "`prior = \"weak\"` (issue 6's and this section's commands without `model.prior` in `--set`) ran with "
           "maximum likelihood: add `model.prior=none` to `--set` to repeat them. Fidelity commands run from "
           "`benchmarks/`.", "",
           "| route | strategy | cost to MAE <= 0.01 eV (median; reached) | cost to max <= 0.05 eV (median; "
           "reached) | cost to both (median) | vs random, MAE / max | command |", "|---|---|---|---|---|---|---|"]
    for module, name, what in ISSUE16_ROUTES:
        d = load(name)
        rows = [] if d is None else benchmark(module).routes(d)
        if not rows:
            out.append(f"| {what} | - | not run | not run | - | - | - |")
        for r in rows:
            ra, rb = sum(v is not None for v in r.to_mae), sum(v is not None for v in r.to_max)
            both = median_or_none([None if x is None or y is None else max(x, y) for x, y in zip(r.to_mae, r.to_max)])
            out.append(f"| {what}{r.spend} | {r.strategy} | {or_never(r.median_mae, r.fmt)}; {ra}/{r.repeats} | "
                       f"{or_never(r.median_max, r.fmt)}; {rb}/{r.repeats} | {or_never(both, r.fmt)} | "
                       f"{ratio(r.median_mae, rnd_mae)} / {ratio(r.median_max, rnd_max)} | `{r.command}` |")
    bound = load("design_bound_reference-pbe")
    if bound:
        ds = benchmark("design_bound").limits(bound)
        out += ["", f"Limits with issue 6's model and its hyperparameters fitted on all 402 labels (no learning "
                f"cost; `benchmarks/design_bound.py`): sequential ivr {ds['sequential ivr']}, "
                f"I-optimal {ds['I-optimal']}, clairvoyant {ds['clairvoyant']} labels to MAE 0.01 eV."]
    weak = load("design_bound_i16-ard-weak")
    if weak:
        ds = benchmark("design_bound").limits(weak)
        out += [f"The same limits for the MAP model (`prior = \"weak\"`, hyperparameters fitted on all 402 "
                f"labels): sequential ivr {ds['sequential ivr']}, I-optimal {ds['I-optimal']}, clairvoyant "
                f"{ds['clairvoyant']}, random (median of 10) {or_never(ds['random'])} (within `--budget` labels). "
                f"Command: `{ds['command']}`."]
    return out + [""]


def _simcluster(name: str, intro: str = "") -> list:
    return ([intro, ""] if intro else []) + [Summary("simcluster", name)]


#: The report, in order: lines, :class:`Summary` entries and functions returning lines.
REPORT = (
    "# activemat benchmarks", "",
    "Generated by `python -m benchmarks.report` from `benchmarks/results/*.json`; every figure below names the "
    "command that produced it. The machine is a shared 2-core VM, and reference DFT campaigns ran "
    "beside most of these measurements, so timings are upper bounds. Commands recorded before the benchmarks "
    "became a package (2026-12) name the script (`benchmarks/x.py ARGS`, run from the repository root unless "
    "they say otherwise); the same benchmark now runs as `python -m benchmarks.x ARGS` from the root.", "",
    "## Sample efficiency (replay, no DFT)", "",
    "`activemat replay` answers the campaign's picks from labelled structures and records, after every "
    "label, the model's MAE and max error over the whole labelled pool (training points included). "
    "`fixed` is the seed tutorial's design: six compositions, linear regression on x.", "",
    "### 17 compositions, gpaw-fast (complete, real)", "",
    Summary("sample_efficiency", "sample_efficiency_seed-compositions"),
    "### 402 configurations, gpaw-pbe-pw (the reference dataset)", "",
    reference_pbe,
    "### What any strategy could reach with this model (no DFT)", "",
    Summary("design_bound", "design_bound_reference-pbe"),
    "## Data efficiency near the limit: every route of issue 16 (replay, no DFT)", "",
    issue16,
    "### Features and model (no DFT)", "",
    Summary("features_cv", "features_cv"),
    "### Calibration of the model's uncertainty (no DFT)", "",
    Summary("calibration", "calibration-16", caption="**16 atoms, 402 PBE labels**"),
    Summary("calibration", "calibration-32", caption="**32 atoms, 256 gpaw-fast labels**"),
    Summary("calibration", "calibration-compositions", caption="**17 compositions, gpaw-fast**"),
    "### Small data: the GP against the linear baseline in x (no DFT)", "",
    Summary("small_data", "small_data"),
    "## Multi-fidelity and transfer at equal cost (replay, no DFT)", "",
    "### Cheap fidelity gpaw-pbe-pw", "",
    Summary("fidelity", "fidelity"),
    "### Cheap fidelity gpaw-fast", "",
    Summary("fidelity", "fidelity-fast"),
    "### The 16-atom campaign, gpaw-fast -> gpaw-pbe-pw, by the library's replay", "",
    Summary("fidelity", "fidelity-sige16-pbe"),
    "## Dispatch", "",
    Summary("dispatch", "dispatch"),
    "## Driver cost per result", "",
    Summary("driver_cost", "driver_cost"),
    "## Store", "",
    Summary("store_throughput", "store_throughput"),
    "## Scale: simulated cluster, 10^5 candidates (issue 19)", "",
    "Simulated cluster (`benchmarks/simcluster.py`): the real driver (`run_campaign`), store and Dask "
    "scheduler; workers are threads of a few worker processes that sleep for each candidate's duration and "
    "answer from a table (`TableOracle`). The store starts with 2000 results. Steady utilisation is the "
    "calculation time inside [first, last submission] over workers x that window; the whole run adds the "
    "drain after the last submission. Driver s/result: the driver thread's busy time (store, select, "
    "submit, snapshot) per result; with the refit thread: plus the refits computed beside it.", "",
    "### Mean 30 s calculations", "",
    "Command: `OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.simcluster --workers 64 256 1024 "
    "--mean-seconds 30`", "",
    *_simcluster("simcluster"),
    *_simcluster("simcluster-quiet", "The 256-worker run again (`--workers 256 --mean-seconds 30 --name "
                 "simcluster-quiet`):"),
    *_simcluster("simcluster-low-load", "On a nearly idle machine (`--workers 256 1024 --mean-seconds 30 --name "
                  "simcluster-low-load`):"),
    "### The defaults (prefetch \"auto\": workers/16) and, run beside them, no prefetch", "",
    "Commands: `OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.simcluster --workers 256 --mean-seconds 30 "
    "--name simcluster-auto-prefetch`, then the same with `--prefetch 0 --name simcluster-no-prefetch`. The "
    "runs above ran before prefetch = \"auto\" existed, with none.", "",
    *_simcluster("simcluster-auto-prefetch"), *_simcluster("simcluster-no-prefetch"),
    "### Mean 30 s calculations, prefetch workers/16, Dask scheduler in its own process", "",
    "Command: `OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.simcluster --workers 64 256 1024 "
    "--mean-seconds 30 --prefetch 0.0625 --scheduler-process --name simcluster-prefetch`", "",
    *_simcluster("simcluster-prefetch"),
    "### Mean 30 s calculations, Dask scheduler in its own process, no prefetch", "",
    "Command: `OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.simcluster --workers 1024 "
    "--mean-seconds 30 --scheduler-process --name simcluster-scheduler-process`", "",
    *_simcluster("simcluster-scheduler-process"),
    "### Mean 3 s calculations (where it breaks down)", "",
    "Command: `OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.simcluster --workers 256 1024 "
    "--mean-seconds 3 --rounds 10 --name simcluster-fast`", "",
    *_simcluster("simcluster-fast"),
    "### A tenth of the workers killed", "",
    "Command: `OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.simcluster --workers 260 --processes 20 "
    "--kill 0.1 --name simcluster-faults` (2 of 20 worker processes, 13 threads each, SIGKILL at random "
    "moments; their nannies restart them).", "",
    *_simcluster("simcluster-faults"),
    "### Before the refit thread (refit, then fill; same command, earlier commit)", "",
    *_simcluster("simcluster-synchronous"),
    "### Refit and selection of a batch at 10^5 candidates", "",
    Summary("scale_cost", "scale_cost"),
    "### Store writes in batches", "",
    Summary("store_batches", "store_batches"),
    "### Scalable model on the 402 PBE labels (replay)", "",
    "Command: `OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.sample_efficiency --name reference-pbe-nystroem "
    "--campaign campaigns/sige16-pbe-nystroem.toml --oracle benchmarks/data/sige16-pbe.extxyz --repeats 10 "
    "--budget 200 --stop-at-targets --strategy max_std ivr`; the exact GP side by side: the same with "
    "`--name reference-pbe-nystroem-exact --set model.kind=gp`.", "",
    "The weak prior (the package default) with the scalable model: the same command with "
    "`--name reference-pbe-nystroem-weak --set model.prior=weak`; its exact-GP counterpart is "
    "`i16-ard-weak` above.", "",
    *(Summary("sample_efficiency", f"sample_efficiency_{name}")
      for name in ("reference-pbe-nystroem", "reference-pbe-nystroem-exact", "reference-pbe-nystroem-weak")),
    "## Another parent costs no more than diamond", "",
    "`OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.alloy_speed` (one core under `nice -n 15`, both cores busy "
    "with DFT runs: upper bounds). The same cells for Si-Ge on the diamond lattice and Al-Ga-As on the zincblende "
    "lattice (As fixed), icet features (cutoffs 7, 6, 5 A); matching takes each candidate as a structure with its "
    "atoms shuffled and translated by a lattice vector, and every one came back as its own candidate. The "
    "zincblende cell has half the mixing sites of the diamond cell of the same size: fewer clusters and fewer "
    "site permutations to canonicalise.", "",
    Summary("alloy_speed", "alloy_speed"), "",
)


def build() -> str:
    """The report's text: every entry of :data:`REPORT`, then benchmarks/NOTES.md."""
    text: list[str] = []
    for entry in REPORT:
        if isinstance(entry, str):
            text.append(entry)
        elif isinstance(entry, Summary):
            text += entry.lines()
        else:
            text += entry()
    notes = HERE / "NOTES.md"
    if notes.exists():
        text.append(notes.read_text())
    return "\n".join(text)


def main() -> None:
    out = HERE / "REPORT.md"
    out.write_text(build())
    print(out)


if __name__ == "__main__":
    main()
