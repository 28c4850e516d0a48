"""Models and strategies on arrays: learning the gap and choosing what to compute next.

Regressors follow the scikit-learn contract with ``predict(X,
return_std=True)`` (a Gaussian process, least squares), with the refit policy
and closed-form cross-validation; recursive co-kriging for several fidelities;
acquisition maths; and the strategies, one registered class each. Nothing here
reads a store or talks to a cluster.
"""

#: Regressor kinds of :func:`activemat.learn.models.make_model`, named here so that the command line can offer
#: them without importing scikit-learn (0.8 s) just to build its parser.
MODEL_KINDS = ("gp", "linear", "nystroem")
