"""Bring a shipped store to the current schema, with its campaign's model stored as this version stores it.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.ship_store benchmarks/data/reference-pbe.h5

Two steps, each the package's own code path, nothing edited by hand:

1. the store is opened for writing as a resumed campaign opens it (``CampaignStore.open`` with the store's
   own campaign identity), which migrates an older schema (:mod:`activemat.store.migrate`: a copy with every
   later column added as declared, named dimensions, HDF5 1.10 format, swapped in for the file);
2. if its latest snapshot holds no hyperparameters (a store written before schema 5), the campaign's own
   ``Learner`` fits its model on every result and appends one snapshot, as the loop writes after a refit:
   ``activemat.Store(...).model()`` and the read verbs then rebuild that model without optimising.

Prints the schema, the file size before and after, and the new snapshot's training size and CV MAE. A store
already in the current schema with stored hyperparameters is left as it is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def write_snapshot(path: Path) -> dict:
    """One snapshot of the campaign's model on every result, written as the loop writes it (Learner)."""
    from activemat.campaign.learner import Learner
    from activemat.campaign.model import CampaignModel, stored_model_state
    from activemat.campaign.stored import open_campaign
    from activemat.store.write import CampaignStore

    view = open_campaign(path)
    config, pool = view.config(), view.pool()
    ledger = view.ledger()
    # as the loop resumes the store: a file without `mean` keeps the mean of its stored model
    model = CampaignModel.of(config, pool, stored=stored_model_state(view))
    learner = Learner(model, pool, iteration=len(view.snapshots["iteration"]))
    free = np.ones(len(pool), bool)
    free[view.training_set()[0]] = False
    learner.fit(ledger, free)
    snapshot = learner.snapshot(ledger)
    with CampaignStore.open(path, config.identity()) as store:
        store.add_snapshot(snapshot, learner.mean.astype("f4"), learner.std.astype("f4"))
    return snapshot


def ship(path: Path) -> None:
    from activemat.store import schema as S
    from activemat.store.read import read_store
    from activemat.store.write import CampaignStore

    before = read_store(path)
    size = path.stat().st_size
    print(f"{path}: schema {before.attrs[S.ATTR_SCHEMA]}, {size / 1e6:.2f} MB, {before.n_calculations} calculations,"
          f" {len(before.snapshots['iteration'])} snapshots")
    with CampaignStore.open(path, before.attrs[S.ATTR_IDENTITY]):
        pass  # a resume's open: migrated to the current schema if older
    if not read_store(path).snapshots["hyperparameters"][-1]:
        snap = write_snapshot(path)
        print(f"appended snapshot {snap['iteration']}: {snap['model']}; n_train {snap['n_train']},"
              f" CV MAE {snap['cv_mae']:.4f} eV")
    after = read_store(path)
    print(f"{path}: schema {after.attrs[S.ATTR_SCHEMA]}, {path.stat().st_size / 1e6:.2f} MB,"
          f" {after.n_calculations} calculations, {len(after.snapshots['iteration'])} snapshots")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stores", nargs="+", type=Path)
    for path in p.parse_args(argv).stores:
        ship(path)


if __name__ == "__main__":
    main()
