"""The least-squares model (``kind = "linear"``, the seed tutorial's), with a predictive std.

:class:`LinearModel` follows the scikit-learn contract, as the Gaussian process does
(:class:`activemat.learn.gp.GPRegressor`): ordinary least squares on the features, whose std is
the prediction standard error of a new observation and whose :meth:`LinearModel.latent_cov` is
the covariance of the fitted line, for the acquisition maths and the gap curve.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression


class LinearModel(RegressorMixin, BaseEstimator):
    """Ordinary least squares with a residual-based predictive std (the seed tutorial's model).

    std is the prediction standard error of OLS: s * sqrt(1 + x (X'X)^-1 x').

    Attributes
    ----------
    coef_, intercept_ : the fitted coefficients (eV per feature unit) and intercept (eV).
    sigma_ : the residual std (eV), with n - p - 1 degrees of freedom (at least 1).
    cov_ : (D'D)^+ of the design D = [1, X]: the coefficients' covariance is ``cov_ * sigma_**2``.
    lr_ : the fitted :class:`sklearn.linear_model.LinearRegression`.
    """

    def __init__(self):
        pass

    def fit(self, X, y):
        X, y = np.asarray(X, float), np.asarray(y, float)
        self.lr_ = LinearRegression().fit(X, y)
        self.coef_, self.intercept_ = self.lr_.coef_, self.lr_.intercept_
        design = np.column_stack([np.ones(len(X)), X])
        dof = max(len(X) - design.shape[1], 1)
        self.sigma_ = float(np.sqrt(np.sum((y - self.lr_.predict(X)) ** 2) / dof))
        self.cov_ = np.linalg.pinv(design.T @ design)
        return self

    def predict(self, X, return_std: bool = False, return_cov: bool = False):
        """Mean, with the prediction std or covariance of a new observation (residual noise included)."""
        if return_std and return_cov:
            raise RuntimeError("at most one of return_std and return_cov can be requested")
        X = np.asarray(X, float)
        mean = self.lr_.predict(X)
        if return_cov:
            _, cov = self.latent_cov(X)
            return mean, cov + self.sigma_ ** 2 * np.eye(len(X))
        if not return_std:
            return mean
        design = np.column_stack([np.ones(len(X)), X])
        leverage = np.einsum("ij,jk,ik->i", design, self.cov_, design)
        return mean, self.sigma_ * np.sqrt(1.0 + leverage)

    def latent_cov(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Mean (eV) and covariance (eV^2) of the fitted mean at the rows of ``X``: ``D cov_ D' sigma_^2``.

        ``D`` is ``X`` with a column of ones; the residual noise term of
        :meth:`predict` is left out (the uncertainty of the regression line,
        not of a new measurement).
        """
        X = np.asarray(X, float)
        design = np.column_stack([np.ones(len(X)), X])
        return self.lr_.predict(X), self.sigma_ ** 2 * (design @ self.cov_ @ design.T)

    def with_fixed_kernel(self) -> "LinearModel":
        return LinearModel()

    def describe(self) -> str:
        coefs = ", ".join(f"{c:+.4f}" for c in self.coef_)
        return f"linear: intercept {self.intercept_:+.4f}, coef [{coefs}]"

    def state(self) -> dict:
        """Least squares has no hyperparameters: a fit on the same data is the same model."""
        return {"kind": "linear"}
