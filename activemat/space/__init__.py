"""The candidate space: what could be computed.

One module per job, each importing only those above it in this list:

- :mod:`~activemat.space.lattice`: the parent structure (a named lattice or a file, with the species
  allowed on each site; an element pair is the diamond lattice), end-member lattice constants (Vegard),
  cells and supercells, and the reference and mixing sites that number every decoration's columns;
- :mod:`~activemat.space.parents`: a campaign file's ``[space]`` keys -> its parent (a named lattice or a
  structure file), every mistake a one-line error;
- :mod:`~activemat.space.formula`: formulas of a cell's compositions, written and parsed;
- :mod:`~activemat.space.symmetry`: the supercell's space group as site permutations, decoration codes and
  their canonical (symmetry-class) codes;
- :mod:`~activemat.space.features`: what a model learns from (neighbour shells, every cluster of the
  supercell, icet cluster vectors) and the cluster class of each feature;
- :mod:`~activemat.space.sampling`: which decorations a pool holds: exact enumeration, random draws,
  icet's special quasirandom structures;
- :mod:`~activemat.space.pool`: the :class:`~activemat.space.pool.CandidatePool` and how it is built;
- :mod:`~activemat.space.matching`: any structure file -> its candidate, by symmetry.

Imports nothing of activemat but :mod:`activemat.errors`; ase, spglib, numpy, and icet when its
features or SQS are asked for. The package imports none of its modules itself: ``import
activemat.space.lattice`` loads no pool.
"""
