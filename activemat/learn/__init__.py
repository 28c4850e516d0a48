"""Models and strategies on arrays: learning the gap and choosing what to compute next.

Regressors follow the scikit-learn contract with ``predict(X,
return_std=True)`` (a Gaussian process, least squares), with the refit policy
and closed-form cross-validation; recursive co-kriging for several fidelities;
acquisition maths; and the strategies, one registered class each. Nothing here
reads a store or talks to a cluster.
"""

#: The one registry of regressor kinds: the campaign file's ``[model] kind``, the command line's ``--model`` and
#: :func:`activemat.learn.models.make_model` all read it (named here so that the command line can offer them
#: without importing scikit-learn, 0.8 s, just to build its parser). A ``gp`` campaign becomes ``nystroem``
#: above ``[model] scalable_above`` training points; a multi-fidelity or transfer campaign's model is a
#: co-kriging of ``gp`` levels (:mod:`activemat.campaign.model`).
MODEL_KINDS = ("gp", "linear", "nystroem")
