"""Cross-validation of a fitted regressor: held-out errors, out-of-fold predictions, their splits.

Leave-one-out up to :data:`MAX_FOLDS` points, seeded k-fold above (:func:`cv_splits`). A fitted
model is refitted per fold with its hyperparameters fixed (the standard cheap LOO for a GP);
an exact GP with a constant mean needs no refit at all: one matrix inverse gives every fold's
held-out prediction in closed form. :func:`cross_validate` scores the model and the
training-mean baseline (snapshots, ``activemat inspect``); :func:`cv_predictions` returns the
out-of-fold predictions and stds (the parity figure).
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold, LeaveOneOut

from activemat.learn.gp import GPRegressor

#: Leave-one-out up to this many points, k-fold with this many folds above.
MAX_FOLDS = 20


def cv_splits(n: int, max_folds: int = MAX_FOLDS):
    """The cross-validation splitter for ``n`` points: leave-one-out, or shuffled k-fold (seeded) above ``max_folds``."""
    return LeaveOneOut() if n <= max_folds else KFold(max_folds, shuffle=True, random_state=0)


def cv_predictions(model, X: np.ndarray, y: np.ndarray, max_folds: int = MAX_FOLDS) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions and their std, with the splits of :func:`cross_validate` (NaN below 3 points).

    A fitted GP is reused with its hyperparameters fixed (the cheap LOO).
    """
    n = len(y)
    pred, std = np.full(n, np.nan), np.full(n, np.nan)
    if n < 3:
        return pred, std
    for train, test in cv_splits(n, max_folds).split(X):
        pred[test], std[test] = model.with_fixed_kernel().fit(X[train], y[train]).predict(X[test], return_std=True)
    return pred, std


def cross_validate(model, X: np.ndarray, y: np.ndarray, max_folds: int = MAX_FOLDS) -> dict[str, float]:
    """Leave-one-out CV (k-fold above `max_folds` points) of a fitted model.

    A fitted GP is re-used with its hyperparameters fixed, the standard cheap
    LOO for GPs; the mean-value baseline is cross-validated the same way.
    """
    n = len(y)
    nan = float("nan")
    if n < 3:
        return {"cv_mae": nan, "cv_rmse": nan, "cv_r2": nan, "baseline_mae": nan}
    pred, base = np.empty(n), np.empty(n)
    closed = (_gp_fold_predictor(model, X, y) if type(model) is GPRegressor and hasattr(model, "gp_")
              and model.mean == "constant" else None)
    for train, test in cv_splits(n, max_folds).split(X):
        if closed is not None:
            pred[test] = closed(test, y[train].mean())
        else:
            pred[test] = model.with_fixed_kernel().fit(X[train], y[train]).predict(X[test])
        base[test] = y[train].mean()
    err = pred - y
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {"cv_mae": float(np.mean(np.abs(err))), "cv_rmse": float(np.sqrt(np.mean(err ** 2))),
            "cv_r2": 1.0 - float(np.sum(err ** 2)) / ss_tot if ss_tot > 0 else nan,
            "baseline_mae": float(np.mean(np.abs(base - y)))}


def _gp_fold_predictor(model: GPRegressor, X: np.ndarray, y: np.ndarray):
    """Closed-form held-out predictions of a GP with fixed hyperparameters, for any fold.

    With K the training covariance (white noise and jitter included) and
    A = K^-1, the prediction for fold F from the rest with prior mean m is
    y_F - A_FF^-1 A_F (y - m), exactly what refitting without F gives
    (``normalize_y`` rescales y and the prediction back, so only the mean of
    the remaining targets, m, matters). One inverse replaces one fit per fold.
    """
    gp = model.gp_
    Z = model.scaler_.transform(np.asarray(X, float))
    K = gp.kernel_(Z)
    K[np.diag_indices_from(K)] += gp.alpha
    A = np.linalg.inv(K)
    Ay, A1 = A @ y, A.sum(axis=1)

    def predict(test: np.ndarray, prior_mean: float) -> np.ndarray:
        r = Ay[test] - prior_mean * A1[test]
        return y[test] - np.linalg.solve(A[np.ix_(test, test)], r)

    return predict
