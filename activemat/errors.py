"""Every error type activemat raises on purpose: fix-your-input versus the store's state.

Each is an :class:`InputError`: the CLI prints its one-line message (naming
the thing and the fix) and exits with code 2, touching no store. A DFT
calculation that fails is not an exception but data: a failed
:class:`~activemat.compute.records.CalculationRecord` row in the store.
"""


class InputError(ValueError):
    """Bad input the user must fix (campaign file, preset, store path, structure)."""


class SpaceError(InputError):
    """Bad candidate-space input (elements, supercell, formula, structure)."""


class StoreError(InputError):
    """A store that cannot be used as asked (newer schema, corrupt, foreign)."""


class StoreLocked(StoreError):
    """Another running campaign holds the store's lock."""


class NotEnoughData(InputError):
    """The store has too few successful calculations to fit a model."""
