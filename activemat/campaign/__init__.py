"""A campaign: its file, and the loop that runs it.

``config`` validates the campaign file; ``setup`` builds the pool, presets,
fixed list and the one model factory; the loop (``loop``) runs numbered steps
over small collaborators: the ``ledger`` of attempts and its retry policy,
the ``scheduler`` that talks to the cluster, the ``learner`` that refits and
snapshots, the ``selector`` that asks the strategy. ``stored`` reads a store
back as the campaign that wrote it.
"""
