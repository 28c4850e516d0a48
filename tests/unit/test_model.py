"""Tests for the regressors (activemat.learn.gp, .linear, .models): predict(X, return_std=True) and cross-validation."""

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from activemat.learn.cross_validation import cross_validate
from activemat.learn.gp import GPRegressor
from activemat.learn.linear import LinearModel
from activemat.learn.models import make_model


@pytest.fixture(scope="module")
def smooth_data():
    rng = np.random.default_rng(0)
    X = np.sort(rng.uniform(0.0, 1.0, 12))[:, None]
    y = 0.6 - 0.5 * X[:, 0] + 0.1 * np.sin(6 * X[:, 0])
    return X, y


@pytest.fixture(scope="module")
def fitted_gp(smooth_data):
    X, y = smooth_data
    return GPRegressor(restarts=1, random_state=0).fit(X, y)


# -- Gaussian process -------------------------------------------------------------

def test_gp_fit_returns_self_and_predict_shapes(smooth_data):
    X, y = smooth_data
    gp = GPRegressor(restarts=0)
    assert gp.fit(X, y) is gp
    Xq = np.linspace(-0.5, 1.5, 7)[:, None]
    mean = gp.predict(Xq)
    assert mean.shape == (7,)
    mean2, std = gp.predict(Xq, return_std=True)
    assert mean2.shape == (7,) and std.shape == (7,)
    assert np.allclose(mean, mean2)
    assert np.all(std >= 0)


def test_gp_multifeature_ard_shapes():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(15, 3))
    y = X @ np.array([0.3, -0.2, 0.1]) + 0.5
    gp = GPRegressor(ard=True, restarts=0).fit(X, y)
    assert np.shape(gp.kernel_.k1.k2.length_scale) == (3,)
    mean, std = gp.predict(X[:4], return_std=True)
    assert mean.shape == (4,) and std.shape == (4,)


def test_gp_interpolates_with_small_std_at_training_points(smooth_data, fitted_gp):
    X, y = smooth_data
    mean, std = fitted_gp.predict(X, return_std=True)
    assert np.max(np.abs(mean - y)) < 0.02
    assert np.max(std) < 0.05


def test_gp_std_grows_away_from_data(smooth_data, fitted_gp):
    X, _ = smooth_data
    _, std_train = fitted_gp.predict(X, return_std=True)
    _, std_far = fitted_gp.predict(np.array([[3.0], [10.0]]), return_std=True)
    assert np.all(std_far > 5 * std_train.max())
    _, std_line = fitted_gp.predict(np.array([[1.2], [2.0], [4.0]]), return_std=True)
    assert std_line[0] < std_line[1] < std_line[2]  # monotone with distance beyond the data


def test_gp_is_deterministic_for_a_seed(smooth_data):
    X, y = smooth_data
    a = GPRegressor(restarts=2, random_state=3).fit(X, y).predict(X + 0.05)
    b = GPRegressor(restarts=2, random_state=3).fit(X, y).predict(X + 0.05)
    assert np.array_equal(a, b)


def test_clone_of_unfitted_gp():
    gp = GPRegressor(ard=True, restarts=5, random_state=7)
    copy = clone(gp)
    assert copy is not gp
    assert copy.get_params() == gp.get_params()
    assert copy.get_params()["restarts"] == 5 and copy.get_params()["ard"] is True
    assert not hasattr(copy, "gp_")


def test_clone_of_fitted_gp_is_unfitted(fitted_gp):
    copy = clone(fitted_gp)
    assert not hasattr(copy, "kernel_") and not hasattr(copy, "gp_")


def test_with_fixed_kernel_keeps_fitted_hyperparameters(smooth_data, fitted_gp):
    X, y = smooth_data
    fixed = fitted_gp.with_fixed_kernel()
    assert not hasattr(fixed, "gp_")
    assert fixed.kernel is fitted_gp.kernel_
    assert fixed.scaler is fitted_gp.scaler_
    fixed.fit(X[::2], y[::2])  # different data, but no optimisation
    assert np.allclose(fixed.kernel_.theta, fitted_gp.kernel_.theta)
    assert repr(fixed.kernel_) == repr(fitted_gp.kernel_)
    # a default GP on the same subset optimises and ends elsewhere
    free = GPRegressor(restarts=0).fit(X[::2], y[::2])
    assert not np.allclose(free.kernel_.theta, fitted_gp.kernel_.theta)


def test_describe_mentions_kernel(fitted_gp):
    assert fitted_gp.describe().startswith("gp: ") and "Matern" in fitted_gp.describe()


# -- linear model -------------------------------------------------------------------

def test_linear_recovers_coefficients_exactly():
    x = np.linspace(0, 1, 17)[:, None]
    y = 0.6 - 0.5 * x[:, 0]
    lm = LinearModel().fit(x, y)
    assert lm.intercept_ == pytest.approx(0.6, abs=1e-12)
    assert lm.coef_ == pytest.approx([-0.5], abs=1e-12)
    mean, std = lm.predict(np.array([[0.25], [2.0]]), return_std=True)
    assert mean == pytest.approx([0.475, -0.4], abs=1e-12)
    assert std.shape == (2,)
    assert std == pytest.approx([0.0, 0.0], abs=1e-9)  # noiseless: no residual
    assert "-0.5000" in lm.describe() and "+0.6000" in lm.describe()


def test_linear_std_with_noise_grows_with_leverage():
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 30)[:, None]
    y = 0.6 - 0.5 * x[:, 0] + rng.normal(0, 0.02, 30)
    lm = LinearModel().fit(x, y)
    assert lm.coef_[0] == pytest.approx(-0.5, abs=0.05)
    _, std = lm.predict(np.array([[0.5], [1.0], [3.0]]), return_std=True)
    assert np.all(std > 0)
    assert std[0] < std[1] < std[2]
    assert lm.sigma_ == pytest.approx(0.02, rel=0.5)
    assert std[0] == pytest.approx(lm.sigma_ * math.sqrt(1 + 1 / 30), rel=1e-6)  # leverage 1/n at the mean of x


def test_make_model():
    assert isinstance(make_model("gp", ard=True, restarts=1), GPRegressor)
    assert make_model("gp", ard=True).ard is True
    assert isinstance(make_model("linear"), LinearModel)
    with pytest.raises(ValueError):
        make_model("forest")


# -- cross-validation -----------------------------------------------------------------

def _linear_data(n):
    x = np.linspace(0, 1, n)[:, None]
    return x, 0.6 - 0.5 * x[:, 0]


def test_cv_linear_noiseless_is_exact():
    X, y = _linear_data(10)
    cv = cross_validate(LinearModel().fit(X, y), X, y)
    assert cv["cv_mae"] == pytest.approx(0.0, abs=1e-10)
    assert cv["cv_rmse"] == pytest.approx(0.0, abs=1e-10)
    assert cv["cv_r2"] == pytest.approx(1.0)
    # leave-one-out of the mean: |y_i - mean(others)| = n/(n-1) |y_i - mean|
    expected = np.mean(np.abs(y - y.mean())) * 10 / 9
    assert cv["baseline_mae"] == pytest.approx(expected)
    assert cv["baseline_mae"] > 0.1


def test_cv_gp_beats_baseline(smooth_data, fitted_gp):
    X, y = smooth_data
    cv = cross_validate(fitted_gp, X, y)
    assert cv["cv_mae"] < cv["baseline_mae"] / 3


@pytest.mark.parametrize("n", [0, 1, 2])
def test_cv_needs_three_points(n):
    X, y = _linear_data(5)
    cv = cross_validate(LinearModel(), X[:n], y[:n])
    assert set(cv) == {"cv_mae", "cv_rmse", "cv_r2", "baseline_mae"}
    assert all(math.isnan(v) for v in cv.values())


class _Counting(LinearModel):
    """LinearModel whose with_fixed_kernel() copies record the size of each training fold."""

    def __init__(self, log=None):
        self.log = log

    def with_fixed_kernel(self):
        return _Counting(self.log)

    def fit(self, X, y):
        self.log.append(len(y))
        return super().fit(X, y)


@pytest.mark.parametrize("n, max_folds, folds, train_sizes", [
    (8, 20, 8, {7}),       # leave-one-out
    (20, 20, 20, {19}),    # leave-one-out up to max_folds
    (30, 5, 5, {24}),      # k-fold above
    (23, 4, 4, {17, 18}),  # uneven folds
])
def test_cv_switches_to_kfold_above_max_folds(n, max_folds, folds, train_sizes):
    X, y = _linear_data(n)
    log = []
    cv = cross_validate(_Counting(log), X, y, max_folds=max_folds)
    assert len(log) == folds
    assert set(log) == train_sizes
    assert sum(n - t for t in log) == n  # every point predicted exactly once
    assert cv["cv_mae"] == pytest.approx(0.0, abs=1e-10)


def test_warm_start_refines_from_the_previous_fit_and_finds_the_same_optimum():
    rng = np.random.default_rng(1)
    X = rng.uniform(0.0, 1.0, (40, 3))
    y = 0.6 - 0.5 * X[:, 0] + 0.1 * np.sin(6 * X[:, 1]) + 0.01 * rng.normal(size=40)
    previous = GPRegressor(ard=True, restarts=2, random_state=0).fit(X[:-1], y[:-1])
    warm = GPRegressor(ard=True, restarts=2, random_state=0, warm_start=previous.kernel_).fit(X, y)
    cold = GPRegressor(ard=True, restarts=2, random_state=0).fit(X, y)
    assert warm.gp_.n_restarts_optimizer == 0 and cold.gp_.n_restarts_optimizer == 2
    assert warm.gp_.log_marginal_likelihood_value_ == pytest.approx(cold.gp_.log_marginal_likelihood_value_, abs=0.05)
    assert np.allclose(warm.predict(X), cold.predict(X), atol=2e-3)
    assert warm.kernel_ is not previous.kernel_  # refined, not reused as is


def test_optimiser_tolerance_keeps_the_optimum_of_scipys_default():
    """The looser L-BFGS-B stopping rule ends within a small fraction of a nat of scikit-learn's default search."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    rng = np.random.default_rng(2)
    X = rng.uniform(0.0, 1.0, (60, 5))
    y = 0.6 - 0.5 * X[:, 0] + 0.1 * np.sin(6 * X[:, 1]) + 0.05 * X[:, 2] * X[:, 3] + 0.005 * rng.normal(size=60)
    ours = GPRegressor(ard=True, restarts=1, random_state=0).fit(X, y)
    default = GaussianProcessRegressor(ours._default_kernel(5), optimizer="fmin_l_bfgs_b", n_restarts_optimizer=1,
                                       normalize_y=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a hyperparameter at its bound, as GPRegressor allows
        default.fit(ours.scaler_.transform(X), y)
    assert ours.gp_.log_marginal_likelihood_value_ == pytest.approx(default.log_marginal_likelihood_value_, abs=0.3)
    assert np.abs(ours.predict(X) - default.predict(ours.scaler_.transform(X))).max() < 5e-3


_FIT_WHILE_ANOTHER_THREAD_FILTERS = """
import threading, warnings
import numpy as np
from activemat.learn.gp import GPRegressor
X = np.random.default_rng(0).uniform(size=(6, 2))
y = 2.0 * X[:, 0]  # noiseless: the noise level ends at its lower bound
stop = threading.Event()
def churn():  # enters and leaves catch_warnings, as Dask and the pool's featurizer do in other threads
    while not stop.is_set():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
thread = threading.Thread(target=churn)
thread.start()
try:
    for _ in range(20):
        GPRegressor(restarts=0).fit(X, y)
finally:
    stop.set()
    thread.join()
"""


def test_a_hyperparameter_at_its_bound_is_not_an_error_while_another_thread_changes_the_warning_filters():
    # The loop refits in a thread. A catch_warnings block around the fit lost its filter whenever another thread
    # left its own block mid-fit, and CI (pytest's "error") failed on the ConvergenceWarning. Outside pytest, with
    # -W error standing in for pytest's filter.
    run = subprocess.run([sys.executable, "-W", "error", "-c", _FIT_WHILE_ANOTHER_THREAD_FILTERS],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_estimators_take_keywords_and_name_a_bad_parameter():
    """scikit-learn style: keyword-only parameters after the first, checked when fitting, one kind registry."""
    from activemat.learn import MODEL_KINDS
    from activemat.learn.scalable import NystroemGP

    X = np.linspace(0, 1, 8)[:, None]
    y = X[:, 0] ** 2
    with pytest.raises(TypeError):
        GPRegressor(False, 2)
    with pytest.raises(TypeError):
        NystroemGP(64, 100)
    for bad, name in (({"restarts": -1}, "restarts"), ({"noise": float("inf")}, "noise"),
                      ({"mean": "cubic"}, "mean"), ({"prior": "strong"}, "prior")):
        with pytest.raises(ValueError, match=name):
            GPRegressor(**bad).fit(X, y)
    with pytest.raises(ValueError, match="n_components"):
        NystroemGP(0).fit(X, y)
    for kind in MODEL_KINDS:  # every registered kind is built by the factory
        model = make_model(kind, restarts=0).fit(X, y)
        assert model.state()["kind"] == kind
    with pytest.raises(ValueError, match="unknown model kind"):
        make_model("forest")
