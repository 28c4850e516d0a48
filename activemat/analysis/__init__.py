"""What a store means: predictions, model cards, figures, the comparison with experiment, replay benchmarks.

Everything here reads stores (never writes them) and refits the campaign's
model through :func:`activemat.campaign.setup.model_factory`, so its numbers
are the ones the loop would get.
"""
