"""The sections of a campaign file ([campaign], [space], [calculator], [model], [strategy], [stop],
[cluster], [faults]) as pydantic models: keys, defaults, bounds and the checks within one section.

Every section forbids unknown keys, so a typo is an error and not a silently ignored setting, and every
number must be finite. :mod:`activemat.campaign.config` puts them together into a CampaignConfig.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from activemat.compute.presets import preset_name
from activemat.dispatch.times import check_slurm_times
from activemat.errors import SpaceError
from activemat.learn import MODEL_KINDS
from activemat.learn.strategies import STRATEGIES, campaign_kinds
from activemat.space.features import DEFAULT_CUTOFFS
from activemat.space.lattice import LATTICES, Parent, check_supercell
from activemat.space.parents import parent_from_keys
from activemat.store import schema as S


#: Largest values a campaign file may give (beyond them a typo, not a plan: budget = 1e23 once passed, and
#: workers = 100000 asked for as many local processes).
MAX_BUDGET = 10**9
MAX_WORKERS = 1024
MAX_SEED = 2**32 - 1  # scikit-learn's random_state and numpy's legacy seeds take 32 bits


class _Section(BaseModel):
    # allow_inf_nan=False: every number must be finite (target_gap = nan and noise = inf used to pass)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CampaignSection(_Section):
    name: str = Field("campaign", description="the campaign's name")
    store: str = Field("runs/campaign.h5", min_length=1,
                       description="HDF5 store path, relative to the working directory; missing directories on "
                                   "the way are created")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seeds every random choice of the campaign")
    scratch: str | None = Field(None, description="scratch root; default: <store>.scratch/")
    test_size: int = Field(0, ge=0, description="candidates held out (random, seeded): computed, never trained on "
                                                "or selected, for an honest test error")


class SpaceSection(_Section):
    elements: tuple[str, str] = Field(
        ("Si", "Ge"), description="the mixing pair (host A, alloying B): x is B's fraction of the mixing sites. "
                                  "Alone (no lattice or structure): the diamond lattice with both on every site; "
                                  "with chemical_symbols it may be left out (their two-species list)")
    lattice: Literal[tuple(LATTICES)] | None = Field(  # type: ignore[valid-type]
        None, description=f"the parent, a named lattice ({', '.join(LATTICES)}; ASE's `bulk`) whose primitive "
                          "cell's sites `chemical_symbols` lists in ASE's order; default: diamond")
    structure: str | None = Field(
        None, description="the parent as a structure file (any format ase reads; path relative to the working "
                          "directory) instead of `lattice`: its cell is the host end member's, one "
                          "`chemical_symbols` list per atom; cell must be \"primitive\"")
    chemical_symbols: tuple[tuple[str, ...], ...] | None = Field(
        None, description="species allowed on each site of the parent's primitive cell (icet's per-site "
                          "chemical_symbols), e.g. [[\"Ga\", \"Al\"], [\"As\"]]: one two-species list (the "
                          "mixing sublattice, host first), one species on every other site")
    lattice_constants: dict[str, float] = Field(
        default_factory=dict, description="end-member lattice constants in Angstrom, by reduced formula, added "
                                          "to (or replacing) the shipped table, e.g. {GaAs = 5.653, AlAs = 5.661}; "
                                          "Vegard's law interpolates between the two end members")

    @model_validator(mode="before")
    @classmethod
    def _mixing_pair(cls, data):
        # elements default to the mixing pair of chemical_symbols, so the AlGaAs file need not repeat them
        if isinstance(data, dict) and "elements" not in data and data.get("chemical_symbols"):
            pairs = [s for s in data["chemical_symbols"] if isinstance(s, (list, tuple)) and len(s) == 2]
            if pairs:
                data = {**data, "elements": tuple(pairs[0])}
        return data

    # the parent a store recorded, when this section is a store's campaign text read back (parse_campaign's
    # `parent`): its structure file is then never read again, wherever the reader runs
    _recorded: Parent | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _parent_ok(self, info: ValidationInfo):
        recorded = (info.context or {}).get("parent")
        if recorded is not None:
            self._recorded = recorded
            return self
        try:
            self.parent()
        except SpaceError as exc:  # one line naming the key to fix
            raise ValueError(str(exc)) from None
        return self

    def parent(self) -> Parent:
        """The parent structure of this space (:func:`activemat.space.parents.parent_from_keys`), or the one its
        store recorded."""
        if self._recorded is not None:
            return self._recorded
        return parent_from_keys(elements=self.elements, lattice=self.lattice, structure=self.structure,
                                chemical_symbols=self.chemical_symbols, lattice_constants=self.lattice_constants)
    cell: Literal["primitive", "cubic"] = Field(
        "primitive", description="the cell `supercell` repeats: primitive (2 atoms; [2, 2, 2] = 16 atoms) or "
                                 "cubic (8-atom conventional cell; [2, 2, 2] = 64 atoms)")
    supercell: tuple[int, int, int] | tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]] = Field(
        (2, 2, 2), description="repeats of `cell` ([2, 2, 4] = 32 atoms of the primitive cell), or a 3x3 integer "
                               "matrix whose rows are the supercell vectors in units of the cell's")

    @field_validator("supercell")
    @classmethod
    def _supercell(cls, supercell):
        try:
            return check_supercell(supercell)
        except SpaceError as exc:
            raise ValueError(str(exc).removeprefix("space.supercell ")) from None
    mode: Literal["configurations", "compositions", "sampled"] = Field(
        "configurations", description="the pool: configurations, every symmetry-distinct decoration (up to 24 sites); "
                                       "compositions, one per composition (its most probable class; x only); sampled, "
                                       "random decorations per composition, one row per symmetry class")
    samples_per_composition: int | None = Field(None, gt=0, description="mode = \"sampled\": random decorations drawn "
                                                                      "per composition")
    features: Literal["shells", "orbits", "icet"] = Field(
        "shells", description="shells: x, pairs in shells 1-3, nearest-neighbour triplet (any cell; the diamond "
                              "lattice only); orbits: every symmetry-distinct 2-4-site cluster of the supercell's "
                              "mixing sites (at most 24); icet: x and icet's cluster vector on the parent with its "
                              "per-site species (any cell; see cutoffs)")
    cutoffs: tuple[float, ...] = Field(
        DEFAULT_CUTOFFS, description="cluster cutoffs in Angstrom for pairs, triplets and quadruplets (1 to 3 "
                                     "entries) of the 'icet' features and of the SQS")
    sqs: bool = Field(False, description="add icet's special quasirandom structure (SQS) of every composition "
                                         "to the pool; they are the space-filling seeds")

    @field_validator("cutoffs")
    @classmethod
    def _cutoffs(cls, cutoffs):
        if not 1 <= len(cutoffs) <= 3 or not all(0 < c < float("inf") for c in cutoffs):
            raise ValueError(f"cutoffs must be 1 to 3 positive distances in Angstrom (pairs, triplets, "
                             f"quadruplets), such as [7.0, 4.5, 4.0]; got {list(cutoffs)}")
        return cutoffs


class CheaperFidelity(_Section):
    preset: str
    cost: float = Field(gt=0, description="CPU-seconds per calculation, measured (benchmarks/preset_cost.py)")


class CalculatorSection(_Section):
    preset: str = Field("gpaw-fast", description="the preset whose gap the campaign maps")
    cost: float | None = Field(None, gt=0, description="CPU-seconds per calculation of `preset`, measured; "
                                                       "needed with `cheaper`")
    cheaper: list[CheaperFidelity] = Field(
        default_factory=list, description="multi-fidelity: cheaper presets the model learns the gap from, "
                                          "cheapest first")
    relax: Literal["none", "positions", "cell"] | None = Field(
        None, description='relax each structure before its gap: "positions" (atoms, at the Vegard cell), "cell" '
                          '(atoms and cell) or "none"; default: as the preset says (none for the shipped ones)')
    relax_fmax: float | None = Field(None, gt=0, description="relaxation converged below this force (eV/Angstrom); "
                                                             "default: the preset's, else 0.05")
    relax_steps: int | None = Field(None, ge=1, description="optimizer steps at most per attempt (a retry continues "
                                                            "from the last geometry); default: the preset's, else 100")

    @model_validator(mode="after")
    def _fidelities(self):
        if self.cheaper and self.cost is None:
            raise ValueError("a multi-fidelity campaign needs `cost` (CPU-seconds per calculation) of its preset")
        names = self.presets
        if len(set(names)) < len(names):
            raise ValueError(f"each preset may appear once among preset and cheaper, got {names}")
        width = S.CALCULATIONS["preset"].width
        for name in names:  # the store keeps the name in a fixed-width column: a longer one could never resume
            if len(name.encode()) > width:
                raise ValueError(f"preset name {name!r} is {len(name.encode())} bytes; the store keeps at most "
                                 f"{width}: give the preset a shorter name (its file name without .toml)")
        return self

    @model_validator(mode="after")
    def _relax_keys(self):
        if self.relax == "none" and (self.relax_fmax is not None or self.relax_steps is not None):
            raise ValueError('relax_fmax and relax_steps need relax = "positions" or "cell"')
        return self

    def relax_settings(self) -> dict | None:
        """The relaxation the file asks for, as RelaxSettings fields (None: the file says nothing).

        ``{}`` with ``relax = "none"`` turns a preset's relaxation off.
        """
        if self.relax is None and self.relax_fmax is None and self.relax_steps is None:
            return None
        if self.relax == "none":
            return {}
        fields = {"kind": self.relax, "fmax": self.relax_fmax, "steps": self.relax_steps}
        return {k: v for k, v in fields.items() if v is not None}

    @property
    def presets(self) -> list[str]:
        """Names of the fidelities cheap to accurate; the last is the campaign's own preset. A preset given by
        path is named by its file name without ``.toml`` (:func:`~activemat.compute.presets.preset_name`), as
        its store rows are."""
        return [preset_name(spec) for spec in self.preset_specs]

    @property
    def preset_specs(self) -> list[str]:
        """The fidelities cheap to accurate as the file gives them (names or paths): what to load."""
        return [f.preset for f in self.cheaper] + [self.preset]

    @property
    def name(self) -> str:
        """The name of the campaign's own preset (``preset``, or its file name without ``.toml``)."""
        return preset_name(self.preset)

    @property
    def costs(self) -> list[float]:
        return [f.cost for f in self.cheaper] + [self.cost or 1.0]

    @property
    def declared_costs(self) -> list[float | None]:
        """CPU-seconds per calculation as the file declares them, cheap to accurate (None: not declared)."""
        return [f.cost for f in self.cheaper] + [self.cost]


class ModelSection(_Section):
    kind: Literal[MODEL_KINDS] = Field("gp", description="gp: Gaussian process (Matern 5/2 + white noise); "
                                                          "linear: least squares, as in the seed tutorial; "
                                                          "nystroem: approximate GP for large training sets "
                                                          "(the GP below, fitted on a subsample, gives the kernel; "
                                                          "Nystroem features of it + Bayesian ridge)")
    components: int = Field(256, ge=8, description="kind='nystroem': kernel features (landmarks from the pool); "
                                                   "refit cost grows as training size x components^2")
    scalable_above: int | None = Field(1000, ge=2, description="kind='gp': switch to the nystroem model once the "
                                                               "training set is larger than this (None: never)")
    ard: bool | Literal["classes"] = Field(
        "classes", description="GP length scales: \"classes\", one per cluster class (composition, pairs, "
                               "triplets, quadruplets), shared by its features; false, one for all features; true, "
                               "one per feature (the default is the best, or close to it, on 16- and 32-atom cells; docs: "
                               "explanation/data-efficiency)")
    restarts: int = Field(2, ge=0, le=100, description="GP hyperparameter optimizer restarts")
    prior: Literal["none", "weak"] = Field(
        "weak", description="GP hyperparameters: \"none\", maximum marginal likelihood; \"weak\", maximum a "
                            "posteriori under weakly informative log-normal hyperpriors (fixed in advance, see "
                            "docs: explanation/model); the default: its uncertainty is the better calibrated")
    prior_from: str | None = Field(
        None, description="labelled structures (extxyz) or store of a cheaper campaign over the same space: the "
                          "GP fitted on them centres the hyperprior (needs prior = \"weak\"); count their cost")
    noise: float | None = Field(
        None, gt=0, description="eV; the GP's white-noise std, fixed (a deterministic code); unset: fitted")
    mean: Literal["constant", "linear", "bowing"] = Field(
        "linear", description="GP prior mean, fitted to the labels by least squares, the GP learning the rest: "
                              "linear, a line in x (the linear baseline; the default: never worse than it in "
                              "cross-validation from 5 results, docs: explanation/model); bowing, a quadratic in "
                              "x; constant, the labels' mean. Unset, a multi-fidelity or transfer campaign's "
                              "levels and a store whose model predates the linear default keep constant")
    transfer_from: str | None = Field(
        None, description="store of a previous (cheaper) campaign over the same space: its gaps pretrain the "
                          "model, this campaign's results fine-tune it")
    discrepancy: Literal["free", "tied"] = Field(
        "free", description="multi-fidelity and transfer: free, each level's GP fitted on its own; tied, the "
                            "hyperprior of each discrepancy GP is centred on the fitted hyperparameters of the "
                            "level below (a discrepancy seen at few points is not taken for smooth and certain)")

    def settled(self, *, multi: bool = False, stored: dict | None = None) -> "ModelSection":
        """This section with the prior mean the model uses when the file does not set ``mean``: the constant mean
        for a co-kriging's levels (``multi``), and for a campaign whose latest stored model state (``stored``: a
        snapshot's hyperparameters; ``{}`` when a snapshot has none) is a GP's without a ``mean`` (written before
        the linear default), so that a stored campaign keeps its model on resume and in the read verbs; else the
        stored GP state's mean. ``stored`` None: no model stored yet, the default."""
        if "mean" in self.model_fields_set or self.kind == "linear":
            return self
        if multi:
            return self.model_copy(update={"mean": "constant"})
        if stored is not None and stored.get("kind", "gp") in ("gp", "nystroem"):
            return self.model_copy(update={"mean": stored.get("mean", "constant")})
        return self

    @model_validator(mode="after")
    def _gp_options(self):
        if self.kind == "linear":  # nystroem takes its kernel from the GP these options describe
            changed = {"ard", "prior", "prior_from", "noise", "mean", "discrepancy"} & self.model_fields_set
            if changed:
                raise ValueError(f"{', '.join(sorted(changed))} set a Gaussian process; kind is '{self.kind}'")
        if self.prior_from and self.prior != "weak":
            raise ValueError("prior_from centres the hyperprior: set prior = \"weak\" too")
        return self


class StrategySection(_Section):
    kind: str = Field("max_std", description="selection strategy, one of the registry's: "
                                             + ", ".join(campaign_kinds()))
    n_seed: int = Field(4, ge=1, description="space-filling picks over compositions before the model steers")
    target_gap: float | None = Field(None, description="eV; the gap ei/ucb/pi look for")
    beta: float = Field(2.0, gt=0, description="ucb exploration weight")
    tradeoff: float = Field(0.0, ge=0, description="ei/pi exploration margin (eV)")
    cheap_share: float = Field(1.0, gt=0, le=1, description="multi-fidelity: the largest fraction of the cost "
                                                            "spent that may go to cheaper fidelities; past it only "
                                                            "the campaign's preset is computed (1: no cap)")
    fixed: list[str] = Field(default_factory=list, description="for kind='fixed', in order: formulas (e.g. 'Si4Ge12', its most probable "
                                   "configuration) or structure files (every configuration in them)")

    @field_validator("kind")
    @classmethod
    def _registered(cls, kind):
        if kind not in campaign_kinds():  # looked up now: a strategy registered after import counts
            raise ValueError(f"unknown strategy {kind!r}; use one of {', '.join(campaign_kinds())}")
        return kind

    @model_validator(mode="after")
    def _needs(self):
        if STRATEGIES[self.kind].needs_target_gap and self.target_gap is None:
            raise ValueError(f"strategy kind '{self.kind}' needs target_gap (eV)")
        if self.kind == "fixed" and not self.fixed:
            raise ValueError("strategy kind 'fixed' needs a non-empty list 'fixed'")
        return self


class StopSection(_Section):
    budget: int = Field(10, ge=1, le=MAX_BUDGET, description="completed calculations")
    target_std: float | None = Field(None, gt=0, description="eV; stop when the pool's max posterior std is below")
    target_curve_std: float | None = Field(
        None, gt=0, description="eV; stop when the composition curve's joint-posterior std is below this at every "
                                "composition (Gaussian-process and co-kriging models)")
    cost_budget: float | None = Field(None, gt=0, description="CPU-seconds of calculations (by the [calculator] "
                                                              "costs); for multi-fidelity campaigns")


class ClusterSection(_Section):
    """Where calculations run: local processes, SLURM jobs (dask-jobqueue) or a running scheduler.

    Every Dask worker runs one calculation at a time with one thread (GPAW holds
    the GIL); `mpi_ranks` > 1 runs each calculation under an MPI launcher instead.
    """

    kind: Literal["local", "slurm", "address"] = Field(
        "local", description="where the workers run: local processes, SLURM jobs (dask-jobqueue), or an existing "
                             "Dask scheduler at `address`")
    workers: int = Field(2, ge=1, le=MAX_WORKERS, description="kind='local': worker processes")
    prefetch: int | Literal["auto"] = Field(
        "auto", description="extra submissions beyond one per worker, queued so a freed worker starts at once; "
                            "\"auto\": a sixteenth of the worker slots (none below 16)")

    @field_validator("prefetch")
    @classmethod
    def _prefetch_not_negative(cls, value):
        if value != "auto" and not 0 <= value <= MAX_BUDGET:
            raise ValueError(f"prefetch must be \"auto\" or an integer from 0 to {MAX_BUDGET}")
        return value
    dashboard: bool = Field(True, description="serve the Dask dashboard on 127.0.0.1")
    # kind = "slurm": each SLURM job runs `processes` workers; jobs scale between minimum_jobs and maximum_jobs
    profile: str | None = Field(None, description="dask-jobqueue profile jobqueue.<profile> in the Dask config; "
                                                  "keys set here override it")
    partition: str | None = Field(None, description="SLURM partition (#SBATCH -p)")
    account: str | None = Field(None, description="SLURM account (#SBATCH -A)")
    walltime: str = Field("01:00:00", description="per worker job, SLURM time format ([D-]HH:MM:SS)")
    cores: int = Field(1, ge=1, description="CPUs booked per worker job")
    memory: str = Field("2GB", description="memory per worker job")
    processes: int | None = Field(None, ge=1, description="worker processes per job; default cores // mpi_ranks")
    job_prologue: list[str] = Field(default_factory=list, description="shell lines run before the workers start, "
                                                                      "e.g. 'module load gpaw'")
    job_directives: list[str] = Field(default_factory=list, description="extra #SBATCH options, e.g. '--qos=short'")
    minimum_jobs: int = Field(0, ge=0, le=10**4, description="jobs kept even when idle")
    maximum_jobs: int = Field(1, ge=1, le=10**4, description="jobs at most (adaptive scaling in between)")
    lifetime: str | None = Field(None, description="worker lifetime, e.g. '50m'; default: walltime minus a margin")
    lifetime_stagger: str = Field("2m", description="random spread of lifetimes, so workers do not retire at once; "
                                                        "at most a quarter of the lifetime")
    drain: bool = Field(True, description="a worker at its lifetime finishes its running calculation before it "
                                          "retires, and starts none it cannot finish in time (by the measured "
                                          "durations); false: Dask's --lifetime, which cuts the calculation off")
    interface: str | None = Field(None, description="network interface of scheduler and workers, e.g. 'ib0'; "
                                                    "'lo' keeps everything on this machine")
    mpi_ranks: int = Field(1, ge=1, le=4096, description="MPI ranks (cores) per GPAW calculation; needs GPAW built with MPI")
    mpi_launcher: str = Field("mpiexec -n {ranks}", description="command that starts the ranks of one calculation")
    # kind = "address"
    address: str | None = Field(None, description="running scheduler: tcp://host:port or tls://host:port")
    # security
    tls: bool | None = Field(None, description="TLS between scheduler, workers and client; default: on for "
                                               "'slurm' and 'local' (local: a certificate for the run, in "
                                               "memory; true: the campaign's certificates in tls_dir), from the "
                                               "address scheme for 'address'; false: plain TCP that any local "
                                               "user can connect to")
    tls_dir: str | None = Field(None, description="certificate directory; default <store>.tls/")

    @model_validator(mode="after")
    def _consistent(self):
        if self.kind == "address":
            if not self.address:
                raise ValueError("kind 'address' needs address = 'tls://host:port' (or tcp://) of a running scheduler")
            scheme = self.address.split("://")[0] if "://" in self.address else ""
            if scheme not in ("tcp", "tls"):
                raise ValueError(f"address '{self.address}' must start with tcp:// or tls://")
            if self.tls is not None and self.tls != (scheme == "tls"):
                raise ValueError(f"tls = {str(self.tls).lower()} contradicts address '{self.address}'")
        elif self.address is not None:
            raise ValueError(f"address is only used with kind = 'address' (kind is '{self.kind}')")
        if self.minimum_jobs > self.maximum_jobs:
            raise ValueError(f"minimum_jobs ({self.minimum_jobs}) exceeds maximum_jobs ({self.maximum_jobs})")
        if self.kind == "slurm" and self.worker_processes * self.mpi_ranks > self.cores:
            raise ValueError(f"{self.worker_processes} process(es) x {self.mpi_ranks} mpi_ranks need more than "
                             f"cores = {self.cores}; raise cores or lower processes/mpi_ranks")
        if "{ranks}" not in self.mpi_launcher:
            raise ValueError("mpi_launcher must contain '{ranks}', e.g. 'mpiexec -n {ranks}'")
        for line in self.job_prologue + self.job_directives:
            if "\n" in line:
                raise ValueError(f"job_prologue/job_directives entries are single lines: {line!r}")
        for option in self.job_directives:
            if not option.startswith("-"):
                raise ValueError(f"job_directives entry {option!r}: give the sbatch option only, e.g. '--qos=short'")
        if self.profile is None or "walltime" in self.model_fields_set:
            check_slurm_times(self.walltime, self.lifetime, self.lifetime_stagger)
        return self

    @property
    def worker_processes(self) -> int:
        """Dask workers per SLURM job (each runs one calculation at a time)."""
        return self.processes or max(self.cores // self.mpi_ranks, 1)

    @property
    def use_tls(self) -> bool:
        """Whether scheduler, workers and client talk over TLS."""
        if self.tls is not None:
            return self.tls
        if self.kind == "address":
            return self.address.startswith("tls://")
        return True


class FaultsSection(_Section):
    max_attempts: int = Field(3, ge=1, le=100, description="failed calculations per candidate before it is given up "
                                                   "(attempts lost with their worker do not count)")
    time_limit: float | None = Field(None, gt=0, description="seconds one calculation may run")
    on_stop: Literal["wait", "cancel"] = Field(
        "wait", description="on SIGTERM/SIGINT: wait for running calculations, or cancel them (resubmitted on resume)")
    retry_failed: bool = Field(False, description="on resume, try candidates that failed before again")
    worker_wait: float | None = Field(
        None, gt=0, le=1e7, description="seconds the run waits while calculations are queued and no Dask worker is "
        "connected (their nodes dead or unreachable) before it stops with one line, exit 2, the queued calculations "
        "to run again on resume; default 600 for local and address clusters, no limit for SLURM (its queue may hold "
        "the jobs for longer)")
