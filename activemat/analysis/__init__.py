"""What a store means: predictions, model cards, figures, the comparison with experiment, replay benchmarks.

Everything here reads stores (never writes them) and rebuilds the campaign's
model through :func:`activemat.campaign.setup.model_factory`, with the
hyperparameters the loop's latest snapshot stored, so its numbers are the
ones the loop got. :mod:`activemat.analysis.tables` prints the store's own
tables for people (``activemat query`` and ``activemat status``).
"""
