"""The candidate space: what could be computed.

The parent lattice (diamond, Vegard lattice constants), supercells and their
decorations: exact enumeration reduced by the supercell's symmetry, random
sampling for large cells, one representative per composition; the features a
model learns from; and matching of any structure file onto a candidate by
symmetry. Depends on nothing else in activemat (only ase, spglib, numpy).
"""
