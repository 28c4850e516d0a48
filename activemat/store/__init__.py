"""The campaign store: one HDF5 file per campaign, and everything that reads it.

``schema`` declares every group, column, dtype and unit; ``hdf5`` is the one
writer (SWMR, a lock file, crash recovery, migration of older schemas) and the
reader; ``query``, ``export`` and ``status`` are read-only views that work
while a campaign writes. The store knows no model, cluster or loop: which
preset is a campaign's own is the campaign layer's business.
"""
