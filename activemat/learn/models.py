"""The regressor of a model kind, and a fitted model's hyperparameters saved and reused.

:func:`make_model` builds an unfitted regressor of a kind registered in
:data:`activemat.learn.MODEL_KINDS`: ``gp`` (:class:`activemat.learn.gp.GPRegressor`), ``linear``
(:class:`activemat.learn.linear.LinearModel`) or ``nystroem``
(:class:`activemat.learn.scalable.NystroemGP`). :func:`state_json` writes a fitted model's
``state()`` (its kind and exact hyperparameters) as the JSON a snapshot stores, and
:func:`reuse_state` makes an unfitted model that reuses them instead of optimising: how the read
verbs rebuild the campaign's model without a search.
"""

from __future__ import annotations

import json

from activemat.learn.gp import GPRegressor
from activemat.learn.kernels import kernel_from_dict
from activemat.learn.linear import LinearModel
from activemat.learn.scalable import NystroemGP


def state_json(model) -> str:
    """A fitted model's :meth:`state` as compact JSON (what a snapshot stores)."""
    return json.dumps(model.state(), separators=(",", ":"))


def reuse_state(model, state: dict):
    """An unfitted copy of ``model`` (an unfitted regressor of the state's kind) that reuses the fitted
    hyperparameters of ``state`` instead of optimising them; ValueError if they do not fit this model."""
    if hasattr(model, "with_state"):  # NystroemGP reads its own state
        return model.with_state(state)
    if state.get("kind") == "linear" and isinstance(model, LinearModel):
        return model
    if state.get("kind") == "gp" and isinstance(model, GPRegressor):
        stored_mean = state.get("mean", "constant")  # states written before the mean was stored: constant
        if stored_mean != model.mean:
            raise ValueError(f"stored hyperparameters of a GP with a {stored_mean} mean do not fit one with a "
                             f"{model.mean} mean")
        return model.set_params(kernel=kernel_from_dict(state["kernel"]), warm_start=None)
    raise ValueError(f"stored hyperparameters of a {state.get('kind')!r} model do not fit a {type(model).__name__}")


def make_model(kind: str, *, ard: bool = False, restarts: int = 2, random_state: int = 0, scaler=None,
               warm_start=None, groups=None, prior: str | None = None, prior_centre=None, noise: float | None = None,
               mean: str = "constant"):
    """An unfitted regressor of ``kind`` (one of :data:`activemat.learn.MODEL_KINDS`); the linear model ignores
    the GP settings (see :class:`~activemat.learn.gp.GPRegressor` for them); ``nystroem`` is the scalable GP
    with that exact GP setting its kernel (:class:`activemat.learn.scalable.NystroemGP`, its default
    components)."""
    from activemat.learn import MODEL_KINDS

    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; use one of {', '.join(MODEL_KINDS)}")
    if kind == "linear":
        return LinearModel()
    gp = GPRegressor(ard=ard, restarts=restarts, random_state=random_state, scaler=scaler,
                     warm_start=None if kind == "nystroem" else warm_start, groups=groups, prior=prior,
                     prior_centre=prior_centre, noise=noise, mean=mean)
    if kind == "gp":
        return gp
    return NystroemGP(random_state=random_state, scaler=scaler, warm_start=warm_start, exact=gp)
