"""A live page of a campaign store in the browser (``activemat view``, ``activemat run --view``)."""
