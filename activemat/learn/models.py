"""Regressors with the scikit-learn contract and predict(X, return_std=True).

`__init__` only stores parameters, `fit` returns self, fitted attributes end
in `_`, so clone() and cross-validation work unchanged.
"""

from __future__ import annotations

import json
import warnings
from functools import partial

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process import kernels as sk_kernels
from sklearn.gaussian_process.kernels import ConstantKernel, Hyperparameter, Kernel, Matern, Sum, WhiteKernel
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, LeaveOneOut
from sklearn.preprocessing import StandardScaler


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


def lbfgs(obj_func, initial_theta, bounds, ftol: float | None = LML_FTOL, prior: "LogNormalPrior | None" = None):
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


class GroupedMatern(Matern):
    """Matern kernel whose length scales are shared within groups of features.

    ``groups[i]`` is the group of feature ``i`` (0 .. n_groups - 1); ``length_scale`` holds one value per group.
    The kernel is scikit-learn's anisotropic Matern with feature i's length scale ``length_scale[groups[i]]``;
    the gradient in a group's log length scale is the sum of the per-feature gradients of its features (the
    chain rule), so the marginal-likelihood optimiser sees n_groups length scales instead of n_features.

    >>> import numpy as np
    >>> k = GroupedMatern([1.0, 2.0], groups=[0, 1, 1], nu=2.5)
    >>> X = np.random.default_rng(0).normal(size=(4, 3))
    >>> same = Matern([1.0, 2.0, 2.0], nu=2.5)
    >>> bool(np.allclose(k(X), same(X))), k.theta.shape, k(X, eval_gradient=True)[1].shape
    (True, (2,), (4, 4, 2))
    """

    def __init__(self, length_scale=1.0, length_scale_bounds=(1e-5, 1e5), nu=1.5, groups=None):
        super().__init__(length_scale=length_scale, length_scale_bounds=length_scale_bounds, nu=nu)
        self.groups = groups

    @property
    def hyperparameter_length_scale(self):
        n = np.size(self.length_scale)
        return Hyperparameter("length_scale", "numeric", self.length_scale_bounds, n if n > 1 else 1)

    def _per_feature(self) -> Matern:
        groups = np.asarray(self.groups, int)
        scales = np.broadcast_to(np.atleast_1d(np.asarray(self.length_scale, float)), (groups.max() + 1,))
        return Matern(scales[groups], self.length_scale_bounds, nu=self.nu)

    def __call__(self, X, Y=None, eval_gradient=False):
        inner = self._per_feature()
        if not eval_gradient:
            return inner(X, Y)
        K, grad = inner(X, Y, eval_gradient=True)
        if self.hyperparameter_length_scale.fixed:
            return K, grad
        groups = np.asarray(self.groups, int)
        onehot = np.zeros((len(groups), np.size(self.length_scale)))
        onehot[np.arange(len(groups)), groups if np.size(self.length_scale) > 1 else 0] = 1.0
        return K, grad @ onehot


#: Kernel classes of this module that :func:`kernel_from_dict` rebuilds besides scikit-learn's own.
OWN_KERNELS = {"GroupedMatern": GroupedMatern}


class LogNormalPrior:
    """Independent normal priors on log-hyperparameters (a weakly informative hyperprior).

    Called with the kernel's ``theta`` (log-hyperparameters, the free ones in scikit-learn's order), returns
    the log density (up to a constant) and its gradient. ``mean`` and ``sd`` hold one entry per element of
    ``theta``; an infinite ``sd`` leaves that element unconstrained.

    >>> p = LogNormalPrior(np.array([0.0, 1.0]), np.array([1.0, np.inf]))
    >>> p(np.array([2.0, 5.0]))
    (-2.0, array([-2., -0.]))
    """

    def __init__(self, mean: np.ndarray, sd: np.ndarray):
        self.mean, self.sd = np.asarray(mean, float), np.asarray(sd, float)

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = (np.asarray(theta, float) - self.mean) / self.sd
        return float(-0.5 * np.sum(z ** 2)), -z / self.sd


#: The weakly informative hyperprior (``prior = "weak"``), in the GP's own units: targets divided by their std
#: (``normalize_y``), features standardised over the pool. Each entry is (centre, sd) of the natural log of the
#: hyperparameter; None as a centre means sqrt(n_features) (length scales: with n standardised features of
#: comparable weight, a typical pair of candidates is then about one length scale apart). Chosen from these
#: units alone, before any label (no data of a benchmarked pool enter): signal variance about the targets'
#: variance, length scales within a factor ~10 of sqrt(n), a white noise near 1e-4 of the target variance
#: (deterministic DFT: ~1 % of the spread as std) but free to move by orders of magnitude.
WEAK_PRIOR = {"constant_value": (0.0, 1.5), "length_scale": (None, 1.15), "noise_level": (np.log(1e-4), 2.0)}


def weak_prior(kernel: Kernel, n_features: int, centre: Kernel | None = None, centre_sd: float = 0.5) -> LogNormalPrior:
    """The :data:`WEAK_PRIOR` over ``kernel``'s free hyperparameters, in the order of ``kernel.theta``.

    ``centre``: a kernel of the same structure fitted elsewhere (say, on a cheaper fidelity's campaign over
    the same space): its log-hyperparameters become the centres, with sd ``centre_sd``, except the white
    noise, whose prior stays the weak one (a cheaper code's noise says little about this one's).
    """
    mean, sd = [], []
    centre_theta = dict(_named_theta(centre)) if centre is not None else {}
    for name, n in _free_hyperparameters(kernel):
        short = name.rsplit("__", 1)[-1]
        m, s = WEAK_PRIOR.get(short, (0.0, np.inf))
        if m is None:
            m = 0.5 * np.log(n_features)
        if name in centre_theta and short != "noise_level":
            mean += list(np.broadcast_to(centre_theta[name], (n,)))
            sd += [centre_sd] * n
        else:
            mean += [m] * n
            sd += [s] * n
    return LogNormalPrior(np.array(mean), np.array(sd))


def _free_hyperparameters(kernel: Kernel) -> list[tuple[str, int]]:
    return [(h.name, h.n_elements) for h in kernel.hyperparameters if not h.fixed]


def _named_theta(kernel: Kernel) -> list[tuple[str, np.ndarray]]:
    out, at = [], 0
    for name, n in _free_hyperparameters(kernel):
        out.append((name, kernel.theta[at:at + n]))
        at += n
    return out


def bowing_mean(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (c0, c1, c2) of the mean gap c0 + c1 x + c2 x^2 (a bowing curve in x).

    With fewer than three distinct compositions the polynomial's degree drops (two: a line, one: a
    constant), so a handful of labels never gives a wild parabola.

    >>> x = np.array([0.0, 0.25, 0.5, 1.0])
    >>> np.round(bowing_mean(x, 0.6 - 0.2 * x - 0.3 * x ** 2), 6).tolist()
    [0.6, -0.2, -0.3]
    >>> np.round(bowing_mean(np.array([0.5, 0.5]), np.array([0.1, 0.3])), 6).tolist()
    [0.2, 0.0, 0.0]
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    degree = min(len(np.unique(x)), 3) - 1
    coef = np.zeros(3)
    coef[:degree + 1] = np.linalg.lstsq(np.vander(x, degree + 1, increasing=True), y, rcond=None)[0]
    return coef


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
        scale per group (:class:`GroupedMatern`), shared by its features; overrides ``ard``.
    prior : None (maximum likelihood) or ``"weak"``: a MAP fit under :data:`WEAK_PRIOR`.
    prior_centre : a fitted kernel of the same structure (say, from a cheaper fidelity over the same space)
        whose hyperparameters centre the prior (:func:`weak_prior`); needs ``prior="weak"``.
    noise : the white noise's std in eV, fixed (a deterministic code); None fits it.
    mean : ``"constant"`` (the training mean) or ``"bowing"``: a quadratic in x (the first feature) fitted by
        least squares to the labels (:func:`bowing_mean`); the GP models the residual. The std does not include
        the uncertainty of the three coefficients.
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
    mean_coef_ : (c0, c1, c2) of the bowing mean in x (zeros for ``mean="constant"``).
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
        if self.mean not in ("constant", "bowing"):
            raise ValueError(f"mean must be 'constant' or 'bowing', not {self.mean!r}")
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
        self.mean_coef_ = bowing_mean(X[:, 0], y) if self.mean == "bowing" else np.zeros(3)
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
        return self

    def predict(self, X, return_std: bool = False, return_cov: bool = False):
        """Posterior mean, with the std or the covariance (eV^2) of a new noisy observation (scikit-learn's).

        The fitted white-noise term is included, as in scikit-learn; :meth:`latent_cov` leaves it out.
        """
        X = np.asarray(X, float)
        out = self.gp_.predict(self.scaler_.transform(X), return_std=return_std, return_cov=return_cov)
        if self.mean == "constant":
            return out
        if isinstance(out, tuple):
            return (out[0] + self._mean(X), *out[1:])
        return out + self._mean(X)

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
        """The fitted hyperparameters exactly, as plain data (:func:`kernel_to_dict` of ``kernel_``): with
        ``kernel=kernel_from_dict(state["kernel"])`` a fit on the same data gives the same model, without
        optimising."""
        return {"kind": "gp", "kernel": kernel_to_dict(self.kernel_)}


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


def kernel_to_dict(kernel: Kernel) -> dict:
    """A scikit-learn kernel as plain data: its class name and its parameters, nested kernels as such dicts.

    Floats go into JSON exactly (Python writes the shortest text that reads back to the same double), so
    :func:`kernel_from_dict` rebuilds the same kernel, structure, hyperparameters and bounds:

    >>> k = ConstantKernel(0.7) * Matern([1.5, 2.0], nu=2.5) + WhiteKernel(1e-3)
    >>> same = kernel_from_dict(json.loads(json.dumps(kernel_to_dict(k))))
    >>> same == k and bool((same.theta == k.theta).all())
    True
    """
    params = {}
    for name, value in kernel.get_params(deep=False).items():
        if isinstance(value, Kernel):
            params[name] = kernel_to_dict(value)
        elif isinstance(value, (np.ndarray, np.generic)):
            params[name] = value.tolist()
        elif isinstance(value, tuple):
            params[name] = [v.tolist() if isinstance(v, (np.ndarray, np.generic)) else v for v in value]
        else:
            params[name] = value
    return {"kernel": type(kernel).__name__, "params": params}


def kernel_from_dict(data: dict) -> Kernel:
    """The kernel :func:`kernel_to_dict` described (a class of ``sklearn.gaussian_process.kernels``).

    Raises
    ------
    ValueError
        Not a kernel description, or a class that is not a scikit-learn kernel.
    """
    try:
        cls = OWN_KERNELS.get(data["kernel"]) or getattr(sk_kernels, data["kernel"])
        items = data["params"].items()
    except (AttributeError, KeyError, TypeError):
        raise ValueError(f"not a kernel description: {str(data)[:80]}") from None
    if not (isinstance(cls, type) and issubclass(cls, Kernel)):
        raise ValueError(f"{data['kernel']} is not a scikit-learn kernel")
    params = {}
    for name, value in items:
        if isinstance(value, dict):
            value = kernel_from_dict(value)
        elif isinstance(value, list):
            # bounds are a pair (or one pair per dimension); other lists are vector hyperparameters (ARD)
            value = (tuple(value) if name.endswith("_bounds") or name == "groups" else np.asarray(value, float))
        params[name] = value
    return cls(**params)


def state_json(model) -> str:
    """A fitted model's :meth:`state` as compact JSON (what a snapshot stores)."""
    return json.dumps(model.state(), separators=(",", ":"))


def reuse_state(model, state: dict):
    """An unfitted copy of ``model`` (an unfitted regressor of the state's kind) that reuses the fitted
    hyperparameters of ``state`` instead of optimising them; ValueError if they do not fit this model."""
    if hasattr(model, "with_state"):  # a model of another module (activemat.learn.scalable) reads its own state
        return model.with_state(state)
    if state.get("kind") == "linear" and isinstance(model, LinearModel):
        return model
    if state.get("kind") == "gp" and isinstance(model, GPRegressor):
        return model.set_params(kernel=kernel_from_dict(state["kernel"]), warm_start=None)
    raise ValueError(f"stored hyperparameters of a {state.get('kind')!r} model do not fit a {type(model).__name__}")


def white_noise_level(kernel) -> float:
    """The summed ``noise_level`` of the ``WhiteKernel`` terms added at the top of ``kernel`` (0 if none).

    >>> white_noise_level(ConstantKernel(2.0) * Matern(1.0) + WhiteKernel(0.01))
    0.01
    """
    if isinstance(kernel, WhiteKernel):
        return float(kernel.noise_level)
    if isinstance(kernel, Sum):
        return white_noise_level(kernel.k1) + white_noise_level(kernel.k2)
    return 0.0


def make_model(kind: str, *, ard: bool = False, restarts: int = 2, random_state: int = 0, scaler=None,
               warm_start=None, groups=None, prior: str | None = None, prior_centre=None, noise: float | None = None,
               mean: str = "constant"):
    """An unfitted regressor of ``kind`` (one of :data:`activemat.learn.MODEL_KINDS`); the linear model ignores
    the GP settings (see :class:`GPRegressor` for them); ``nystroem`` is the scalable GP with that exact GP
    setting its kernel (:class:`activemat.learn.scalable.NystroemGP`, its default components)."""
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
    from activemat.learn.scalable import NystroemGP  # it builds on this module

    return NystroemGP(random_state=random_state, scaler=scaler, warm_start=warm_start, exact=gp)


class RefitSchedule:
    """When a refit runs a full hyperparameter search: scheduled by the work done, not every N refits.

    A full search (optimiser restarts; for :class:`~activemat.learn.scalable.NystroemGP` the subsample GP) runs on the first fit and
    whenever the training set has grown by ``growth`` (relative) and at least ``min_new`` labels since the
    last one; refits in between start from (exact GP: warm-started optimiser) or reuse (NystroemGP) the last
    hyperparameters. With a geometric schedule the full searches of a whole campaign cost a constant factor
    of the last one, however many results arrive and however they are batched. Below ``warm_min`` labels every
    refit is a full search (one label can move the hyperparameters far).

    One result at a time, full searches run at these training sizes (then every 10 %):

    >>> s = RefitSchedule()
    >>> [n for n in range(2, 400) if s.full(n) and s.done(n)][16:]
    [18, 19, 29, 39, 49, 59, 69, 79, 89, 99, 109, 120, 132, 146, 161, 178, 196, 216, 238, 262, 289, 318, 350, 386]
    """

    def __init__(self, growth: float = 0.1, min_new: int = 10, warm_min: int = 20):
        self.growth, self.min_new, self.warm_min = growth, min_new, warm_min
        self.last: int | None = None  # training size of the last full search

    def full(self, n_labels: int) -> bool:
        """Whether a refit on ``n_labels`` results should run a full search."""
        if self.last is None or n_labels < self.warm_min:
            return True
        return n_labels >= max(self.last * (1 + self.growth), self.last + self.min_new)

    def done(self, n_labels: int) -> bool:
        """Record that a full search ran on ``n_labels`` results; returns True (for use in expressions)."""
        self.last = n_labels
        return True

    def start(self, previous, n_labels: int):
        """The kernel a refit on ``n_labels`` results starts from: ``previous.kernel_`` between full searches,
        None (a full search, recorded) when the schedule calls for one or there is no previous fit."""
        if not hasattr(previous, "kernel_") or self.full(n_labels):
            self.done(n_labels)
            return None
        return previous.kernel_


MAX_FOLDS = 20  # leave-one-out up to this many points, k-fold with this many folds above


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
