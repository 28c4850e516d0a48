"""GPAW keyword arguments of the band-gap task: unoccupied bands grow with the supercell."""

from activemat.compute.bandgap import gpaw_parameters
from activemat.compute.presets import load_preset
from activemat.space.pool import build_pool


def test_unoccupied_bands_scale_with_cells_larger_than_16_atoms():
    fast = load_preset("gpaw-fast").gpaw  # 6 extra, 2 converged
    cells = {2: build_pool(("Si", "Ge"), (1, 1, 1), mode="compositions"),
             16: build_pool(("Si", "Ge"), (2, 2, 2), mode="compositions"),
             32: build_pool(("Si", "Ge"), (2, 2, 4), mode="sampled", samples_per_composition=1),
             64: build_pool(("Si", "Ge"), (2, 2, 2), mode="sampled", samples_per_composition=1, cell="cubic")}
    for n_atoms, pool in cells.items():
        params = gpaw_parameters(pool.atoms(0), fast)
        occupied = 2 * n_atoms  # 4 valence electrons per Si/Ge atom, two per band
        scale = max(1, n_atoms // 16)
        assert params["nbands"] == occupied + fast.extra_bands * scale, n_atoms
        assert params["convergence"]["bands"] == occupied + fast.converge_bands * scale, n_atoms
