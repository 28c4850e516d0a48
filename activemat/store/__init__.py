"""The campaign store: one HDF5 file per campaign, and everything that reads it.

``schema`` declares every group, column, dtype and unit, and ``layout`` lays
them out in HDF5 (datasets, text, dimension scales). ``write`` is the one
writer (:class:`~activemat.store.write.CampaignStore`: ``create`` a store,
``open`` one to resume; SWMR, batched writes, room checks on every write;
``rows`` says what goes into its rows), ``migrate`` the copy that recovers a
killed writer's file or migrates an older schema, ``files`` the writer's
locks, room and disk reserve. ``read`` holds the one way to open a store for
reading, :func:`~activemat.store.read.read_store`, which returns the store as
a :class:`~activemat.store.query.StoreView` (its columns, candidates and
calculations table); ``export`` and ``status`` work on that view, so they too
are safe while a campaign writes. Only this layer opens HDF5 files (an
import-linter contract). The store returns data and renders nothing
(printing its tables is :mod:`activemat.analysis.tables`'s job). It knows no
model, cluster or loop: which preset is a campaign's own is the campaign
layer's business (:class:`~activemat.campaign.stored.CampaignView`).
"""
