"""The campaign store: one HDF5 file per campaign, and everything that reads it.

``schema`` declares every group, column, dtype and unit, and ``layout`` lays
them out in HDF5 (datasets, text, dimension scales). ``write`` is the one
writer (SWMR, batched writes, room checks on every write; ``rows`` says what
goes into its rows), ``migrate`` the copy that recovers a killed writer's file
or migrates an older schema, ``files`` the writer's locks, room and disk
reserve, and ``read`` the reader. ``query``, ``export`` and ``status`` are
read-only views that work while a campaign writes. The store returns data and
renders nothing (printing its tables is :mod:`activemat.analysis.tables`'s
job). It knows no model, cluster or loop: which preset is a campaign's own is
the campaign layer's business.
"""
