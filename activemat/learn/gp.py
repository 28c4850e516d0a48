"""The exact Gaussian-process regressor of a campaign (``kind = "gp"``), with its optimiser and mean.

:class:`GPRegressor` follows the scikit-learn contract (``__init__`` only stores parameters,
``fit`` returns self, fitted attributes end in ``_``, ``predict(X, return_std=True)``), so
``clone()`` and cross-validation work unchanged: constant x Matern 5/2 (per-class length scales
through :class:`activemat.learn.kernels.GroupedMatern`) + white noise on standardised features,
fitted by maximum likelihood or under the weak hyperprior with :func:`lbfgs`, around a constant
or a bowing mean in x (:func:`bowing_mean`).
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
from scipy.linalg import cho_solve
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, Sum, WhiteKernel
from sklearn.preprocessing import StandardScaler

from activemat.learn.kernels import (
    GroupedMatern,
    LogNormalPrior,
    kernel_to_dict,
    weak_prior,
    white_noise_level,
)

# The marginal likelihood is flat near its optimum (ARD length scales drifting towards their bound): from
# LOOSE_STOP_MIN points on, stopping at a relative change of 1e-4 (scipy's default is ~2e-9) needs several times fewer
# evaluations for the same held-out error (benchmarks/features_cv.py). With fewer points fits are cheap anyway, and
# the looser rule can stop on a flat stretch before the optimum (a GP that predicts the mean).
LML_FTOL = 1e-4
LML_MAXITER = 500
LOOSE_STOP_MIN = 40

# With a handful of labels a hyperparameter at its bound is expected, not a problem. The filter is process-wide on
# purpose: refits run in a thread, and warnings.catch_warnings is not thread-safe (another thread leaving its own
# block restores the filters in the middle of a fit; a CI run failed that way). pytest's "error" shadows it, so
# pyproject.toml repeats it.
warnings.filterwarnings("ignore", message="The optimal value found for dimension", category=ConvergenceWarning)


def lbfgs(obj_func, initial_theta, bounds, ftol: float | None = LML_FTOL, prior: LogNormalPrior | None = None):
    """The marginal-likelihood optimiser: scikit-learn's L-BFGS-B, stopping at relative change ``ftol`` (None:
    scipy's defaults, exactly scikit-learn's own optimiser).

    With ``prior`` it maximises the log posterior of the hyperparameters (a MAP fit): scikit-learn's objective
    is the negative log marginal likelihood and its gradient in log-hyperparameters, and the prior's negative
    log density and gradient are added to both. The value returned is then the negative log posterior, which
    is what scikit-learn compares between restarts.
    """
    options = {} if ftol is None else {"ftol": ftol, "maxiter": LML_MAXITER}
    objective = obj_func
    if prior is not None:
        def objective(theta):
            value, grad = obj_func(theta)
            lp, lp_grad = prior(theta)
            return value - lp, grad - lp_grad
    result = minimize(objective, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds, options=options)
    return result.x, result.fun


#: The degree of the polynomial in x of each prior mean (``mean``); ``"constant"`` is the training mean that
#: ``normalize_y`` subtracts.
MEAN_DEGREES = {"constant": 0, "linear": 1, "bowing": 2}


def bowing_mean(x: np.ndarray, y: np.ndarray, degree: int = 2) -> np.ndarray:
    """Least-squares coefficients (c0, c1, c2) of the mean gap c0 + c1 x + c2 x^2 (a bowing curve in x), or of a
    polynomial of lower ``degree`` (1: the line in x, c2 = 0).

    The polynomial never passes through every labelled composition: with fewer than ``degree + 2`` distinct
    compositions its degree drops (three: a line, two or one: a constant), so the GP always has residuals to
    learn its scale from (a line through the two end members alone would leave none, and a GP fitted to zeros
    is certain of everything) and a handful of labels never gives a wild parabola.

    >>> x = np.array([0.0, 0.25, 0.5, 1.0])
    >>> np.round(bowing_mean(x, 0.6 - 0.2 * x - 0.3 * x ** 2), 6).tolist()
    [0.6, -0.2, -0.3]
    >>> np.round(bowing_mean(np.array([0.0, 0.5, 1.0]), np.array([0.6, 0.4, 0.2]), degree=1), 6).tolist()
    [0.6, -0.4, 0.0]
    >>> np.round(bowing_mean(np.array([0.0, 1.0]), np.array([0.6, 0.2]), degree=1), 6).tolist()
    [0.4, 0.0, 0.0]
    >>> np.round(bowing_mean(np.array([0.5, 0.5]), np.array([0.1, 0.3])), 6).tolist()
    [0.2, 0.0, 0.0]
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    design = mean_design(x, len(np.unique(x)), degree)
    coef = np.zeros(3)
    coef[:design.shape[1]] = np.linalg.lstsq(design, y, rcond=None)[0]
    return coef


def mean_design(x: np.ndarray, n_compositions: int, degree: int) -> np.ndarray:
    """The design matrix [1, x, x^2][:, :p] of a polynomial mean of ``degree`` fitted on ``n_compositions``
    distinct compositions: p = min(degree + 1, n_compositions - 1) columns, at least one (:func:`bowing_mean`)."""
    return np.vander(np.asarray(x, float), max(min(degree + 1, n_compositions - 1), 1), increasing=True)


def bowing_curve(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The mean gap c0 + c1 x + c2 x^2 at ``x`` for coefficients from :func:`bowing_mean`."""
    return coef[0] + coef[1] * x + coef[2] * x ** 2


def _with_noise(kernel: Kernel, level: float) -> Kernel:
    """``kernel`` with every top-level WhiteKernel's noise fixed at ``level``."""
    if isinstance(kernel, WhiteKernel):
        return WhiteKernel(level, "fixed")
    if isinstance(kernel, Sum):
        return Sum(_with_noise(kernel.k1, level), _with_noise(kernel.k2, level))
    return kernel


class GPRegressor(RegressorMixin, BaseEstimator):
    """Gaussian process on standardised features: C * Matern(5/2) + white noise.

    Parameters
    ----------
    ard : one length scale per feature (needs more data than an isotropic kernel).
    groups : the group of each feature (e.g. composition, pairs, triplets, quadruplets: 0, 1, 2, 3): one length
        scale per group (:class:`~activemat.learn.kernels.GroupedMatern`), shared by its features; overrides ``ard``.
    prior : None (maximum likelihood) or ``"weak"``: a MAP fit under :data:`~activemat.learn.kernels.WEAK_PRIOR`.
    prior_centre : a fitted kernel of the same structure (say, from a cheaper fidelity over the same space)
        whose hyperparameters centre the prior (:func:`~activemat.learn.kernels.weak_prior`); needs ``prior="weak"``.
    noise : the white noise's std in eV, fixed (a deterministic code); None fits it.
    mean : ``"constant"`` (the training mean), ``"linear"`` (a line in x, the first feature: the linear
        baseline) or ``"bowing"`` (a quadratic in x), fitted by least squares to the labels (:func:`bowing_mean`);
        the GP models the residual. For ``"linear"`` and ``"bowing"`` the std and covariance include the
        uncertainty of the fitted mean (:meth:`predict`).
    restarts : restarts of the marginal-likelihood optimiser.
    kernel : a fixed, already fitted kernel; skips hyperparameter optimisation
        (used for cross-validation and for "kriging believer" fantasies).
    random_state : seed of the optimiser restarts.
    scaler : a fitted feature scaler (e.g. fitted on the whole candidate pool,
        which is known before any label); None fits one on the training data.
    warm_start : a previously fitted kernel to start the optimiser from, with no
        restarts (a refit after one more label moves the hyperparameters little).

    Attributes
    ----------
    scaler_ : the feature scaler used (``scaler``, or one fitted on the training features).
    mean_coef_ : (c0, c1, c2) of the mean in x (zeros for ``mean="constant"``; c2 = 0 for ``"linear"``).
    y_std_ : std of the training residuals (eV; 1 if they are constant): the factor from the GP's normalised
        units (``normalize_y``) to eV, e.g. for variances in eV^2.
    gp_ : the fitted :class:`sklearn.gaussian_process.GaussianProcessRegressor` (on scaled features, residuals).
    kernel_ : its fitted kernel (C * Matern + White, in normalised units).

    Raises
    ------
    ValueError
        From :meth:`fit`, for a parameter outside its range (one line naming it).
    """

    def __init__(self, ard: bool = False, *, restarts: int = 2, kernel=None, random_state: int | None = 0,
                 scaler=None, warm_start=None, groups=None, prior: str | None = None, prior_centre=None,
                 noise: float | None = None, mean: str = "constant"):
        self.ard = ard
        self.restarts = restarts
        self.kernel = kernel
        self.random_state = random_state
        self.scaler = scaler
        self.warm_start = warm_start
        self.groups = groups
        self.prior = prior
        self.prior_centre = prior_centre
        self.noise = noise
        self.mean = mean

    def _default_kernel(self, n_features: int):
        # Bounds in standardised units: shorter than 0.3 would decorrelate neighbouring compositions.
        if self.groups is not None:
            groups = tuple(int(g) for g in self.groups)
            if len(groups) != n_features:
                raise ValueError(f"groups has {len(groups)} entries for {n_features} features")
            matern = GroupedMatern(np.ones(max(groups) + 1), (0.3, 1e3), nu=2.5, groups=groups)
        else:
            matern = Matern(np.ones(n_features) if self.ard else 1.0, (0.3, 1e3), nu=2.5)
        return ConstantKernel(1.0, (1e-3, 1e2)) * matern + WhiteKernel(1e-4, (1e-8, 1e-1))

    def _mean(self, X: np.ndarray) -> np.ndarray:
        if self.mean == "constant":
            return np.zeros(len(X))
        return bowing_curve(self.mean_coef_, X[:, 0])

    def _check_params(self) -> None:
        """The parameters' ranges, checked when fitting (scikit-learn's convention: ``__init__`` only stores)."""
        if self.mean not in MEAN_DEGREES:
            raise ValueError(f"mean must be one of {', '.join(map(repr, MEAN_DEGREES))}, not {self.mean!r}")
        if self.prior not in (None, "weak"):
            raise ValueError(f"prior must be None or 'weak', not {self.prior!r}")
        if self.prior_centre is not None and self.prior != "weak":
            raise ValueError("prior_centre needs prior='weak'")
        if not isinstance(self.restarts, (int, np.integer)) or isinstance(self.restarts, bool) or self.restarts < 0:
            raise ValueError(f"restarts must be a non-negative integer, not {self.restarts!r}")
        if self.noise is not None and not (np.isfinite(self.noise) and self.noise > 0):
            raise ValueError(f"noise must be None or a positive, finite std in eV, not {self.noise!r}")

    def fit(self, X, y):
        """Fit on features ``X`` (n, d) and gaps ``y`` (n,) in eV; returns self."""
        X, y = np.asarray(X, float), np.asarray(y, float)
        self._check_params()
        self.scaler_ = self.scaler if self.scaler is not None else StandardScaler().fit(X)
        degree = MEAN_DEGREES[self.mean]
        self.mean_coef_ = bowing_mean(X[:, 0], y, degree) if degree else np.zeros(3)
        r = y - self._mean(X)
        # normalize_y divides targets by their std (1 when constant): the factor from the GP's units to eV
        std = float(np.std(r))
        self.y_std_ = std if std > 0 else 1.0
        fixed = self.kernel is not None
        start = self.kernel if fixed else self.warm_start or self._default_kernel(X.shape[1])
        if self.noise is not None and not fixed:
            start = _with_noise(start, (self.noise / self.y_std_) ** 2)
        prior = None
        if self.prior == "weak" and not fixed:
            prior = weak_prior(start, X.shape[1], self.prior_centre)
        self.gp_ = GaussianProcessRegressor(
            kernel=start,
            optimizer=None if fixed else partial(lbfgs, ftol=LML_FTOL if len(y) >= LOOSE_STOP_MIN else None,
                                                 prior=prior),
            n_restarts_optimizer=0 if fixed or self.warm_start is not None else self.restarts,
            normalize_y=True, random_state=self.random_state)
        self.gp_.fit(self.scaler_.transform(X), r)
        self.kernel_ = self.gp_.kernel_
        self._fit_mean_uncertainty(X[:, 0], degree)
        return self

    def _fit_mean_uncertainty(self, x: np.ndarray, degree: int) -> None:
        """What :meth:`_mean_cov` needs: the mean's design H (n x p), K^-1 H and P K P' with P = H^+ (the least
        squares map), K the GP's training covariance in its normalised units (``gp_.L_`` L')."""
        self.n_compositions_ = len(np.unique(x))
        if not degree:
            self.mean_parts_ = None
            return
        H = mean_design(x, self.n_compositions_, degree)
        L = self.gp_.L_
        P = np.linalg.pinv(H)
        PL = P @ L
        self.mean_parts_ = (cho_solve((L, True), H), PL @ PL.T)

    def _mean_cov(self, X: np.ndarray, diagonal: bool = False) -> np.ndarray:
        """Covariance (eV^2) that the least-squares fit of the mean adds at the rows of ``X``: R (P K P') R' with
        R = H* - K*' K^-1 H. The prediction error is the GP's own plus R' P g (g: the training residuals' GP
        draw), and the two are uncorrelated (the GP's error is orthogonal to the training data), so the
        variances add exactly: the std is that of the predictor's error, mean included. ``diagonal``: the
        variances alone."""
        KinvH, PKP = self.mean_parts_
        H_star = mean_design(X[:, 0], self.n_compositions_, MEAN_DEGREES[self.mean])
        K_star = self.gp_.kernel_(self.gp_.X_train_, self.scaler_.transform(X))
        R = H_star - K_star.T @ KinvH
        if diagonal:
            return np.einsum("ij,jk,ik->i", R, PKP, R) * self.y_std_ ** 2
        return (R @ PKP @ R.T) * self.y_std_ ** 2

    def predict(self, X, return_std: bool = False, return_cov: bool = False):
        """Posterior mean, with the std or the covariance (eV^2) of a new noisy observation (scikit-learn's).

        The fitted white-noise term is included, as in scikit-learn; :meth:`latent_cov` leaves it out.
        """
        X = np.asarray(X, float)
        out = self.gp_.predict(self.scaler_.transform(X), return_std=return_std, return_cov=return_cov)
        if self.mean == "constant":
            return out
        if not isinstance(out, tuple):
            return out + self._mean(X)
        mean, spread = out
        if return_cov:
            return mean + self._mean(X), spread + self._mean_cov(X)
        return mean + self._mean(X), np.sqrt(spread ** 2 + self._mean_cov(X, diagonal=True))

    def latent_cov(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean (eV) and covariance (eV^2) of the noise-free gap at the rows of ``X``.

        scikit-learn's ``predict(X, return_cov=True)`` returns the covariance
        of noisy observations: its prior term is ``kernel_(X)``, whose
        ``WhiteKernel`` adds ``noise_level`` on the diagonal only (a white
        kernel between two different inputs, or between a test and a training
        input, is zero, so the data term is the same for both). The latent
        covariance is therefore that matrix minus the fitted ``noise_level``
        on the diagonal, times ``y_std_**2`` (``normalize_y`` fits the kernel
        in units of the targets' std). Uses only public API: ``kernel_`` and
        ``predict``. Rounding can leave tiny negative diagonal entries; they
        are set to zero.

        Returns
        -------
        mean : ndarray of shape (n,)
        cov : ndarray of shape (n, n)
        """
        mean, cov = self.predict(X, return_cov=True)
        cov = np.array(cov, float)
        diag = np.diag_indices_from(cov)
        cov[diag] = np.maximum(cov[diag] - white_noise_level(self.kernel_) * self.y_std_ ** 2, 0.0)
        return np.asarray(mean, float), cov

    def with_fixed_kernel(self) -> "GPRegressor":
        """An unfitted copy that reuses this model's fitted hyperparameters."""
        return GPRegressor(ard=self.ard, restarts=0, kernel=self.kernel_, random_state=self.random_state,
                           scaler=self.scaler_, groups=self.groups, noise=self.noise, mean=self.mean)

    def describe(self) -> str:
        return f"gp: {self.kernel_}"

    def state(self) -> dict:
        """The fitted hyperparameters exactly, as plain data (:func:`~activemat.learn.kernels.kernel_to_dict` of ``kernel_``): with
        ``kernel=kernel_from_dict(state["kernel"])`` a fit on the same data gives the same model, without
        optimising."""
        return {"kind": "gp", "kernel": kernel_to_dict(self.kernel_), "mean": self.mean}
