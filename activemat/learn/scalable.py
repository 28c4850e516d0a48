"""Learning at scale: a regressor whose refit does not grow as n^3, and predictions in chunks.

:class:`NystroemGP` is an approximate Gaussian process built from
scikit-learn parts: the campaign's own exact GP (:class:`~activemat.learn.gp.GPRegressor`: its
Matern kernel, length-scale grouping, hyperprior and mean), fitted on a
subsample of at most ``subsample`` training points, gives the kernel;
:class:`sklearn.kernel_approximation.Nystroem` turns that kernel, evaluated
against ``n_components`` landmarks drawn from the candidate pool (``basis``,
known before any label), into kernel features; and
:class:`sklearn.linear_model.BayesianRidge` fits a Bayesian linear model on
them, with its noise and weight precisions from the evidence. Its predictive
std is BayesianRidge's (weights' posterior covariance + noise). A refit on
more labels costs O(n m^2) for m components; a full search (the subsample
GP) runs only when :class:`activemat.learn.refit.RefitSchedule` says so.

:func:`predict_chunked` predicts mean and std over a pool of any size in
blocks of rows, so memory stays bounded (an exact GP's prediction over
10^5 candidates at once holds a 10^5 x n matrix).
"""

from __future__ import annotations


import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import BayesianRidge
from sklearn.preprocessing import StandardScaler

from activemat.learn.gp import MEAN_DEGREES, GPRegressor, bowing_curve, bowing_mean
from activemat.learn.kernels import kernel_from_dict, kernel_to_dict, white_noise_level

#: Rows per block when predicting over a pool (memory: a block times the training set or the components).
PREDICT_CHUNK = 8192
#: Landmark candidates drawn from the pool for the Nystroem map (the map picks ``n_components`` of them).
BASIS_ROWS = 4096


def predict_chunked(model, X: np.ndarray, chunk: int = PREDICT_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """``model.predict(X, return_std=True)`` in blocks of ``chunk`` rows (the same numbers, bounded memory)."""
    X = np.asarray(X, float)
    mean, std = np.empty(len(X)), np.empty(len(X))
    for s in range(0, len(X), chunk):
        mean[s:s + chunk], std[s:s + chunk] = model.predict(X[s:s + chunk], return_std=True)
    return mean, std


def pool_basis(features: np.ndarray, seed: int, rows: int = BASIS_ROWS) -> np.ndarray:
    """Rows of the pool the Nystroem landmarks are drawn from: all of it, or ``rows`` of it at random (seeded)."""
    if len(features) <= rows:
        return np.asarray(features, float)
    idx = np.sort(np.random.default_rng([seed, 19]).choice(len(features), rows, replace=False))
    return np.asarray(features[idx], float)


class NystroemGP(RegressorMixin, BaseEstimator):
    """Approximate GP: the exact GP's kernel through a Nystroem map on pool landmarks + Bayesian ridge regression.

    Parameters
    ----------
    n_components : Nystroem components (landmarks); refit cost O(n m^2), prediction O(m^2) per candidate.
    subsample : training points the exact GP that sets the kernel sees, at most (random, seeded).
    exact : the unfitted exact GP (:class:`~activemat.learn.gp.GPRegressor`) whose fit on the subsample gives
        the kernel and the mean (``"linear"`` or ``"bowing"``: refitted on all labels); None:
        ``GPRegressor(ard=ard, restarts=restarts)``.
    ard, restarts : the default exact GP's, when ``exact`` is None.
    kernel : a fitted kernel to use as it is (no GP fit): cross-validation, believer fantasies, stored
        hyperparameters.
    random_state : seed of the subsample, the landmarks and the default exact GP's optimiser restarts.
    scaler : a fitted feature scaler (the pool's); None fits one on the training data.
    warm_start : the previous fit's kernel: between full searches a refit reuses it and only refits the
        Bayesian ridge (noise and amplitude from the evidence). Any scikit-learn kernel on scaled features
        will do, e.g. the exact GP's when a campaign switches model above a size.
    basis : rows (unscaled features) the landmarks are drawn from, e.g. :func:`pool_basis`; None: the
        training rows.

    Attributes
    ----------
    kernel_ : the kernel the features use (on scaled features; its white noise does not enter them).
    landmarks_ : the scaled landmark rows.
    scaler_, nystroem_, ridge_ : the fitted scaler, feature map and Bayesian ridge.
    mean_coef_ : (c0, c1, c2) of the mean in x (None for a constant mean).

    Raises
    ------
    ValueError
        From :meth:`fit`, for ``n_components`` or ``subsample`` below 1 (one line naming it).
    """

    def __init__(self, n_components: int = 256, *, subsample: int = 500, ard: bool = False, restarts: int = 2,
                 kernel=None, random_state: int | None = 0, scaler=None, warm_start=None, basis=None, exact=None):
        self.n_components = n_components
        self.subsample = subsample
        self.ard = ard
        self.restarts = restarts
        self.kernel = kernel
        self.random_state = random_state
        self.scaler = scaler
        self.warm_start = warm_start
        self.basis = basis
        self.exact = exact

    def _exact(self) -> GPRegressor:
        if self.exact is not None:
            return clone(self.exact).set_params(scaler=self.scaler_, kernel=None, warm_start=None)
        return GPRegressor(ard=self.ard, restarts=self.restarts, random_state=self.random_state, scaler=self.scaler_)

    def _search(self, X: np.ndarray, y: np.ndarray):
        """The kernel: the exact GP fitted on a subsample of at most ``subsample`` training points."""
        if len(y) > self.subsample:
            keep = np.sort(np.random.default_rng(self.random_state).choice(len(y), self.subsample, replace=False))
            X, y = X[keep], y[keep]
        return self._exact().fit(X, y).kernel_

    def _mean(self, X: np.ndarray) -> np.ndarray:
        if self.mean_coef_ is None:
            return np.zeros(len(X))
        return bowing_curve(self.mean_coef_, X[:, 0])

    def fit(self, X, y):
        """Fit on features ``X`` (n, d) and gaps ``y`` (n,) in eV; returns self."""
        for name in ("n_components", "subsample"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        X, y = np.asarray(X, float), np.asarray(y, float)
        self.scaler_ = self.scaler if self.scaler is not None else StandardScaler().fit(X)
        given = self.kernel if self.kernel is not None else self.warm_start
        self.kernel_ = given if given is not None else self._search(X, y)
        degree = MEAN_DEGREES[getattr(self.exact, "mean", "constant")] if self.exact is not None else 0
        self.mean_coef_ = bowing_mean(X[:, 0], y, degree) if degree else None
        self.landmarks_ = self._landmarks(self.scaler_.transform(X))
        # kernel_(A, B) with B given leaves the white noise out: the features span the noise-free kernel
        self.nystroem_ = Nystroem(kernel="precomputed", n_components=len(self.landmarks_), random_state=0).fit(
            self.kernel_(self.landmarks_, self.landmarks_))
        self.ridge_ = BayesianRidge().fit(self.features(X), y - self._mean(X))
        return self

    def _landmarks(self, Z: np.ndarray) -> np.ndarray:
        """``n_components`` scaled rows of ``basis`` (the pool, known before any label; None: the training rows),
        drawn at random (seeded)."""
        rows = self.scaler_.transform(np.asarray(self.basis, float)) if self.basis is not None else Z
        m = min(self.n_components, len(rows))
        return rows[np.sort(np.random.default_rng(self.random_state).choice(len(rows), m, replace=False))]

    def features(self, X) -> np.ndarray:
        """The kernel features of the rows of ``X`` (what the Bayesian ridge is linear in)."""
        Z = self.scaler_.transform(np.asarray(X, float))
        return self.nystroem_.transform(self.kernel_(Z, self.landmarks_))

    def weight_cov(self) -> np.ndarray:
        """Posterior covariance of the ridge weights (BayesianRidge's ``sigma_``), eV^2 per feature^2."""
        return self.ridge_.sigma_

    def predict(self, X, return_std: bool = False, return_cov: bool = False):
        """Posterior mean, with the std or covariance (eV^2) of a new noisy observation (BayesianRidge's)."""
        if return_std and return_cov:
            raise RuntimeError("at most one of return_std and return_cov can be requested")
        X = np.asarray(X, float)
        if return_cov:
            mean, cov = self.latent_cov(X)
            return mean, cov + np.eye(len(mean)) / self.ridge_.alpha_
        phi = self.features(X)
        if not return_std:
            return self.ridge_.predict(phi) + self._mean(X)
        mean, std = self.ridge_.predict(phi, return_std=True)
        return mean + self._mean(X), np.sqrt(std ** 2 + self.unexplained_variance(X, phi))

    def latent_cov(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean (eV) and covariance (eV^2) of the noise-free gap at the rows of ``X``: ``phi @ ridge_.sigma_ @ phi.T``
        for the kernel features ``phi``."""
        X = np.asarray(X, float)
        phi = self.features(X)
        cov = phi @ self.weight_cov() @ phi.T
        cov[np.diag_indices_from(cov)] += self.unexplained_variance(X, phi)
        return self.ridge_.predict(phi) + self._mean(X), cov

    def unexplained_variance(self, X: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Prior variance (eV^2) the features miss at each row, ``(k(x, x) - |phi(x)|^2) / lambda``: far from
        the landmarks the features fade and the Bayesian ridge alone would be sure of itself there. Added as
        independent variance, as FITC does."""
        Z = self.scaler_.transform(X)
        k = self.kernel_.diag(Z) - white_noise_level(self.kernel_)
        return np.maximum(k - np.einsum("ij,ij->i", phi, phi), 0.0) / self.ridge_.lambda_

    def noise_std(self) -> float:
        """Std (eV) of the observation noise BayesianRidge estimated."""
        return float(1.0 / np.sqrt(self.ridge_.alpha_))

    def with_fixed_kernel(self) -> "NystroemGP":
        """An unfitted copy that reuses this model's kernel (and its landmarks)."""
        return clone(self).set_params(kernel=self.kernel_, warm_start=None, scaler=self.scaler_)

    def describe(self) -> str:
        return f"nystroem: {self.nystroem_.n_components} components, {self.kernel_}"

    def state(self) -> dict:
        """The kernel exactly (with it a fit on the same data gives the same model) and the size."""
        return {"kind": "nystroem", "kernel": kernel_to_dict(self.kernel_), "n_components": self.n_components,
                "mean": getattr(self.exact, "mean", "constant")}

    def with_state(self, state: dict) -> "NystroemGP":
        """This unfitted model set to reuse a stored :meth:`state` (ValueError if it is another kind's)."""
        if state.get("kind") != "nystroem":
            raise ValueError(f"stored hyperparameters of a {state.get('kind')!r} model do not fit a NystroemGP")
        return self.set_params(kernel=kernel_from_dict(state["kernel"]), warm_start=None,
                               n_components=int(state.get("n_components", self.n_components)))
