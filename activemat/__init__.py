"""activemat: active-learning DFT campaigns for alloy band gaps.

``activemat.Store(path)`` opens a campaign store for notebooks and scripts (:class:`activemat.analysis.api.Store`:
its tables as pandas DataFrames, its model, predictions and gap curve); it is the documented way to read a
store. It is imported on first use, so ``import activemat`` stays light.
"""

from activemat.version import __version__

__all__ = ["Store", "__version__"]


def __getattr__(name: str):
    if name == "Store":
        from activemat.analysis.api import Store

        return Store
    raise AttributeError(f"module 'activemat' has no attribute {name!r}")
