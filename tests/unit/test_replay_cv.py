"""cross_validate's closed-form GP path must equal refitting each fold (what it replaced)."""

from __future__ import annotations

import numpy as np
import pytest

from activemat.learn.cross_validation import cross_validate
from activemat.learn.gp import GPRegressor


class _Refit(GPRegressor):
    """A GPRegressor subclass: cross_validate takes its generic refit-per-fold path."""

    def with_fixed_kernel(self):
        return _Refit(ard=self.ard, restarts=0, kernel=self.kernel_, random_state=self.random_state,
                      scaler=self.scaler_)


@pytest.mark.parametrize("n, d, max_folds", [(8, 1, 20), (20, 3, 20), (45, 5, 20), (33, 2, 4)])
def test_closed_form_cv_equals_refit(n, d, max_folds):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, d))
    y = 0.5 + 0.2 * np.sin(X.sum(axis=1)) + 0.01 * rng.normal(size=n)
    fast = cross_validate(GPRegressor(restarts=0).fit(X, y), X, y, max_folds=max_folds)
    slow = cross_validate(_Refit(restarts=0).fit(X, y), X, y, max_folds=max_folds)
    assert fast == pytest.approx(slow, rel=1e-6, abs=1e-9)
    assert fast["cv_mae"] > 0
