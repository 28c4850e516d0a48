"""activemat: active-learning DFT campaigns for alloy band gaps."""

__version__ = "0.1.0"
