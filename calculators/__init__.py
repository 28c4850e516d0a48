"""The DFT presets shipped with activemat (package data; see activemat.compute.presets)."""
