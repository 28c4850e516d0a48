"""Error types: fix-your-input versus maybe-retry (as ASE separates them)."""


class InputError(ValueError):
    """Bad input the user must fix (campaign file, preset, store path).

    The message is one line naming the thing and the fix; the CLI prints it
    and exits with code 2 without touching any store.
    """


class StoreError(InputError):
    """A store that cannot be used as asked (newer schema, corrupt, foreign)."""


class CalculationFailed(RuntimeError):
    """A DFT calculation that ran and failed; a retry may succeed."""
