"""The Gaussian process's covariance and its hyperprior, and kernels as exact plain data.

:class:`GroupedMatern` shares one Matern length scale among the features of a cluster class;
:class:`LogNormalPrior` and :func:`weak_prior` put the weakly informative hyperprior
(:data:`WEAK_PRIOR`) on a kernel's log-hyperparameters, in the order scikit-learn optimises them;
:func:`kernel_to_dict` and :func:`kernel_from_dict` turn a fitted kernel into JSON-ready data and
back without losing a bit (what a snapshot stores); :func:`white_noise_level` reads a kernel's
white noise. Nothing here fits a model: :class:`activemat.learn.gp.GPRegressor` does.
"""

from __future__ import annotations

import numpy as np
from sklearn.gaussian_process import kernels as sk_kernels
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel, Matern, Sum, WhiteKernel


class GroupedMatern(Matern):
    """Matern kernel whose length scales are shared within groups of features.

    ``groups[i]`` is the group of feature ``i`` (0 .. n_groups - 1); ``length_scale`` holds one value per group.
    The kernel is scikit-learn's anisotropic Matern with feature i's length scale ``length_scale[groups[i]]``;
    the gradient in a group's log length scale is the sum of the per-feature gradients of its features (the
    chain rule), so the marginal-likelihood optimiser sees n_groups length scales instead of n_features.

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


def kernel_to_dict(kernel: Kernel) -> dict:
    """A scikit-learn kernel as plain data: its class name and its parameters, nested kernels as such dicts.

    Floats go into JSON exactly (Python writes the shortest text that reads back to the same double), so
    :func:`kernel_from_dict` rebuilds the same kernel, structure, hyperparameters and bounds:

    >>> import json
    >>> from sklearn.gaussian_process.kernels import ConstantKernel
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


def white_noise_level(kernel) -> float:
    """The summed ``noise_level`` of the ``WhiteKernel`` terms added at the top of ``kernel`` (0 if none).

    >>> from sklearn.gaussian_process.kernels import ConstantKernel
    >>> white_noise_level(ConstantKernel(2.0) * Matern(1.0) + WhiteKernel(0.01))
    0.01
    """
    if isinstance(kernel, WhiteKernel):
        return float(kernel.noise_level)
    if isinstance(kernel, Sum):
        return white_noise_level(kernel.k1) + white_noise_level(kernel.k2)
    return 0.0
