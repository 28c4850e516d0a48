"""A store read as the campaign that wrote it: its validated campaign file, its own preset, its training data.

The store layer knows columns, not campaigns; which preset is "the
campaign's own" and which results are training data is a campaign fact, so
it lives here, beside the campaign file's model. :func:`open_campaign` opens
no file of its own: it is :func:`activemat.store.read.read_store` (the one way
to open a store for reading), with the reading seen as a :class:`CampaignView`.
Every reader above the store layer (``predict``, ``inspect``, ``plot``,
``view``, ``status``, :class:`activemat.Store`) takes a store path or a view
through it, so a view read once is never read again.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np

from activemat.campaign.config import CampaignConfig, parse_campaign
from activemat.campaign.ledger import Ledger
from activemat.store import schema as S
from activemat.store.query import StoreView
from activemat.store.read import read_store
from activemat.store.status import summarize


class CampaignView(StoreView):
    """A :class:`~activemat.store.query.StoreView` that also knows the campaign definition stored in it."""

    def config(self) -> CampaignConfig:
        """The campaign definition the store was created with, on the parent structure it recorded (a
        structure file is not read again)."""
        if "_config" not in self.__dict__:
            parent = self.parent if S.ATTR_PARENT in self.attrs else None
            self.__dict__["_config"] = parse_campaign(self.attrs[S.ATTR_CAMPAIGN_TEXT],
                                                      f"{self.path} (stored campaign file)", parent=parent)
        return self.__dict__["_config"]

    @property
    def preset(self) -> str:
        """The campaign's own preset (a multi-fidelity store also holds cheaper ones)."""
        return self.config().calculator.name  # a preset given by path: its file name, as the rows say

    def training_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Candidates with a successful calculation at the campaign's preset (held-out test candidates
        excluded) and their gaps (eV)."""
        return self.results(self.preset)

    def ledger(self) -> Ledger:
        """The campaign's ledger rebuilt from the rows, by the retry policy of its stored campaign file: what
        it has given up and what a resumed run would try again."""
        config = self.config()
        names = config.calculator.presets
        ledger = Ledger(self.test, len(names), config.faults.max_attempts)
        ledger.load(self.calculations, names, retry_failed=False, source=str(self.path))
        return ledger

    def status(self) -> dict:
        """:func:`activemat.store.status.summarize`, with the attempt figures as ``run`` counts them."""
        counts = self.ledger().counts()
        out = {}
        for key, value in summarize(self).items():
            out[key] = counts.get(key, value)
            if key == "retried":
                out.update(given_up=counts["given_up"], to_retry=counts["to_retry"])
        return out

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Held-out candidates with a successful calculation at the campaign's preset and their gaps (eV)."""
        return self.results(self.preset, held_out=True)


def open_campaign(store: str | Path | StoreView) -> CampaignView:
    """A store as its campaign: a path is read with :func:`~activemat.store.read.read_store` (read-only, safe
    while a campaign writes it); a view already read is reused as it is, not read again.

    Raises
    ------
    activemat.errors.StoreError
        Missing, foreign, newer or damaged store (an InputError: fix the path).
    """
    if isinstance(store, CampaignView):
        return store
    view = store if isinstance(store, StoreView) else read_store(store)
    return CampaignView(**{f.name: getattr(view, f.name) for f in fields(StoreView)})
