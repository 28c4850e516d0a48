"""What a campaign is made of, built from its file: the pool, the presets, the fixed list, the model.

Everything here can fail on bad input and is done before any store is
touched. :func:`model_factory` is the one place a campaign's regressor is
built: the loop, ``predict``/``inspect``/``plot``, replay and the benchmarks
all call it, so they fit the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from sklearn.preprocessing import StandardScaler

from activemat.campaign.config import CampaignConfig, ModelSection
from activemat.campaign.stored import open_campaign
from activemat.compute.presets import Preset, RelaxSettings, load_preset
from activemat.errors import InputError, SpaceError
from activemat.learn.acquisition import representative
from activemat.learn.cokriging import CoKriging
from activemat.learn.models import make_model
from activemat.learn.scalable import NystroemGP, pool_basis
from activemat.space.formula import parse_formula
from activemat.space.matching import load_labels, structure_candidates
from activemat.space.pool import CandidatePool, build_pool
from activemat.store import schema as S

MIN_TRAIN = 2  # results a model needs before it is fitted


def build_campaign_pool(config: CampaignConfig) -> CandidatePool:
    """The candidate pool of the campaign's [space]."""
    sp = config.space
    return build_pool(elements=sp.parent(), supercell=sp.supercell, mode=sp.mode,
                      samples_per_composition=sp.samples_per_composition, seed=config.campaign.seed,
                      features=sp.features, cutoffs=sp.cutoffs, cell=sp.cell, sqs=sp.sqs)


def prepare(config: CampaignConfig) -> tuple[CandidatePool, list[Preset], list[int]]:
    """The pool, the presets cheap to accurate (the last is the campaign's own) and the fixed list.

    A campaign resuming its store takes the pool stored in it (its
    candidates, features and SQS flags) instead of building it again: the
    store is what the campaign's results refer to, and a 10^5-candidate pool
    with its SQS and cluster vectors takes minutes to build.
    """
    presets = [with_relax(load_preset(name), config.calculator.relax_settings())
               for name in config.calculator.preset_specs]
    pool = _stored_pool(config) or build_campaign_pool(config)
    if not all(pool.parent.mixing) and any(p.relax is not None for p in presets):
        raise InputError(f"relaxing structures of the {pool.parent.name} space (a parent with fixed sublattices) "
                         "is not supported yet: the store keeps positions per mixing site; set [calculator] relax "
                         "= \"none\" or use a preset that does not relax")
    _check_edges(pool, [p.name for p in presets if p.gpaw.edges == "folded"])
    return pool, presets, fixed_candidates(config.strategy.fixed, pool)


def _check_edges(pool: CandidatePool, names: list[str]) -> None:
    """Refuse, before any calculation, presets whose edge pass cannot fold the campaign's cells onto its parent."""
    if not names:
        return
    from activemat.compute.zone import parent_zone, supercell_matrix
    from activemat.space.lattice import primitive_cell, reference_sites

    try:
        cell, n_primitive = primitive_cell(pool.parent)
        parent_zone(cell)
        supercell_matrix(reference_sites(pool.parent, pool.supercell, pool.cell), (cell, n_primitive))
    except (ValueError, RuntimeError) as exc:  # ASE's lattice identification raises RuntimeError
        raise InputError(f"preset {names[0]} finds band edges (edges = \"folded\") on the parent's Brillouin zone, "
                         f"which fails for the {pool.parent.lattice} parent ({exc}); use a preset without edges, "
                         "such as gpaw-fast") from None


def with_relax(preset: Preset, relax: dict | None) -> Preset:
    """The preset with the campaign's [calculator] relax keys applied (None: as the preset says; {}: off)."""
    if relax is None:
        return preset
    if not relax:
        return preset.model_copy(update={"relax": None})
    base = preset.relax.model_dump() if preset.relax is not None else {}
    if "kind" not in relax and not base:
        raise InputError(f"[calculator] relax_fmax/relax_steps: preset {preset.name} does not relax; "
                         'set relax = "positions" or "cell"')
    return preset.model_copy(update={"relax": RelaxSettings.model_validate({**base, **relax})})


def _stored_pool(config: CampaignConfig) -> CandidatePool | None:
    """The pool of the campaign's existing store, if it is this campaign's (else the store's open reports why)."""
    path = Path(config.campaign.store)
    if not path.exists():
        return None
    view = open_campaign(path)
    return view.pool() if view.attrs.get(S.ATTR_IDENTITY) == config.identity() else None


def fixed_candidates(entries: list[str], pool: CandidatePool) -> list[int]:
    """A ``fixed`` list's candidates in order: a formula names its most probable configuration, a structure
    file (.xyz, .extxyz, .traj, ...) every configuration in it (matched by symmetry)."""
    picks: list[int] = []
    for entry in entries:
        if Path(entry).suffix:
            new = structure_candidates(entry, pool)
        else:
            new = [representative(pool, parse_formula(entry, pool.parent, pool.n_sites))]
        picks += [i for i in new if i not in picks]
    return picks


@dataclass(frozen=True)
class ModelFactory:
    """Callable ``make(warm_start=None, below=None, n_train=0)`` returning the [model] section's unfitted
    regressor (picklable, so replay runs can go to other processes): a ``gp`` section gives the scalable
    :class:`~activemat.learn.scalable.NystroemGP` for more than ``scalable_above`` training points.

    ``groups``: the cluster class of each feature (``ard = "classes"``); ``prior_centre``: the kernel fitted on
    ``prior_from``'s labels; ``basis``: pool rows for the Nystroem landmarks.
    """

    section: ModelSection
    seed: int
    scaler: StandardScaler | None = None
    groups: tuple[int, ...] | None = None
    prior_centre: object | None = None
    basis: np.ndarray | None = field(default=None, compare=False)

    @property
    def ties_levels(self) -> bool:
        """Whether co-kriging centres each discrepancy's hyperprior on the level below (``discrepancy``)."""
        return self.section.discrepancy == "tied"

    def kind(self, n_train: int = 0) -> str:
        """The model kind a fit on ``n_train`` points uses."""
        s = self.section
        if s.kind == "gp" and s.scalable_above is not None and n_train > s.scalable_above:
            return "nystroem"
        return s.kind

    def __call__(self, warm_start=None, below=None, n_train: int = 0):
        """The regressor; ``below``: the fitted kernel of the level below a co-kriging discrepancy, which then
        centres a weak hyperprior (``[model] discrepancy = "tied"``); ``n_train``: the training points it will
        be fitted on (above ``scalable_above``, the scalable model)."""
        s = self.section
        if s.kind == "linear":
            return make_model(s.kind)
        prior, centre = (None if s.prior == "none" else s.prior), self.prior_centre
        if below is not None:
            prior, centre = "weak", below
        scalable = self.kind(n_train) == "nystroem"
        exact = make_model("gp", ard=s.ard is True, restarts=s.restarts, random_state=self.seed,
                           scaler=self.scaler, warm_start=None if scalable else warm_start, groups=self.groups,
                           prior=prior, prior_centre=centre, noise=s.noise, mean=s.mean)
        if scalable:  # the same GP, fitted on a subsample, gives the scalable model its kernel
            return NystroemGP(n_components=s.components, random_state=self.seed, scaler=self.scaler,
                              warm_start=warm_start, basis=self.basis, exact=exact)
        return exact


def model_factory(section: ModelSection, seed: int, pool: CandidatePool | None = None) -> ModelFactory:
    """The [model] section's regressor factory.

    With ``pool``, features are scaled by the whole pool (known before any
    label), so the scaling never shifts as data arrives; without it the model
    scales by its own training data. ``ard = "classes"`` and ``prior_from`` need the pool (InputError without).
    """
    classes = section.ard == "classes" and section.kind != "linear"
    if pool is None and (classes or section.prior_from):
        raise InputError("[model] ard = \"classes\" and prior_from need the candidate pool")
    groups = None
    if classes:
        try:
            groups = pool.feature_classes
        except SpaceError as exc:
            raise InputError(f"[model] ard = \"classes\": {exc}") from None
    scaler = StandardScaler().fit(pool.features) if pool is not None else None
    basis = pool_basis(pool.features, seed) if pool is not None else None
    factory = ModelFactory(section, seed, scaler, groups, basis=basis)
    if section.prior_from:
        factory = replace(factory, prior_centre=prior_centre(section.prior_from, pool, factory))
    return factory


_CENTRES: dict = {}  # (path, mtime, model options, pool) -> kernel: replay builds one factory per run


def prior_centre(path, pool: CandidatePool, make_gp: ModelFactory):
    """The kernel of ``make_gp``'s GP (weak prior, no centre) fitted on the labels of ``path`` (extxyz of
    labelled structures matched to ``pool``, or a campaign store over the same space): the hyperprior's centre
    of ``[model] prior_from``. InputError (one line) if missing or with fewer than 3 matched labels."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"[model] prior_from = {path}: file not found; give an extxyz of labelled structures or "
                         "a campaign store")
    key = (str(path.resolve()), path.stat().st_mtime_ns, make_gp.section.model_dump_json(), len(pool),
           hash(pool.features.tobytes()))
    if key not in _CENTRES:
        if path.suffix in (".h5", ".hdf5"):
            view = open_campaign(path)
            if not np.array_equal(view.candidates["decoration"], pool.decorations):
                raise InputError(f"[model] prior_from = {path}: that store's candidates differ from this pool")
            idx, gaps = view.training_set()
        else:
            labels = load_labels(path, pool)
            idx = np.array(sorted(labels.gaps), int)
            gaps = np.array([labels.gaps[i] for i in idx])
        if len(idx) < 3:
            raise InputError(f"[model] prior_from = {path}: {len(idx)} labelled candidate(s) of this space; "
                             "a hyperprior centre needs at least 3")
        gp = make_gp().set_params(prior_centre=None).fit(pool.features[idx], gaps)
        _CENTRES[key] = gp.kernel_
    return _CENTRES[key]


def campaign_model(config: CampaignConfig, pool: CandidatePool):
    """:func:`model_factory` for a campaign file's [model] and seed."""
    return model_factory(config.model, config.campaign.seed, pool)


def pretrain(path, pool: CandidatePool, make_gp, fixed: dict | None = None) -> CoKriging:
    """The cheap level of a transfer model: a CoKriging fitted on a previous campaign's gaps.

    A store over the same space gives its candidates' features; a store of
    another cell (say 16 atoms for a 32-atom campaign) gives its structures,
    featurised as this pool's rows are, which needs features defined on the
    parent lattice (``"icet"`` or ``"shells"``): its cluster vectors are the
    same kind of numbers in any cell.

    ``fixed``: a stored co-kriging state of this one level (:meth:`CoKriging.state`), reused instead of
    optimising its hyperparameters.

    Raises InputError (one line) if the store is missing, unreadable, over another space that these features
    cannot describe, or too small.
    """
    view = open_campaign(path)
    idx, gaps = view.training_set()
    if len(idx) < MIN_TRAIN:
        raise InputError(f"[model] transfer_from = {path}: {len(idx)} completed calculation(s); "
                         f"pretraining needs at least {MIN_TRAIN}")
    if np.array_equal(view.candidates["decoration"], pool.decorations):
        return CoKriging(make_gp, fixed=fixed).fit([(pool.features[idx], gaps)])
    stored = view.pool()
    other_parent = (stored.parent.lattice, stored.parent.chemical_symbols) != (pool.parent.lattice,
                                                                               pool.parent.chemical_symbols)
    if other_parent or pool.feature_kind not in ("icet", "shells"):
        raise InputError(f"[model] transfer_from = {path}: that campaign's [space] differs from this one's and "
                         f"its structures cannot be described by features = \"{pool.feature_kind}\"; pretrain "
                         "from a store over the same space, or use features = \"icet\" (any cell of the same "
                         "parent and species)")
    return CoKriging(make_gp, fixed=fixed).fit([(np.array([pool.featurize(stored.atoms(int(i))) for i in idx]),
                                                 gaps)])
