"""The version of activemat, in a module of its own: the store stamps it on every file it creates, and the
store layer must not import the package's ``__init__`` (which offers the top-layer ``activemat.Store``)."""

__version__ = "0.1.0"
