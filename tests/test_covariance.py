"""The covariance structures' interface (glmmjax.covariance): theta <-> Cholesky factor,
parameter names, the variance parameters, singularity, column signs, Kenward-Roger's patterns."""
from __future__ import annotations

import numpy as np
import pytest

from glmmjax.covariance import combine, cov_structure, full_factor

STRUCTURES = {
    "us3": cov_structure("us", 3),
    "diag2": cov_structure("diag", 2),
    "scalar3": cov_structure("scalar", 3),
    "us1+diag2": combine([cov_structure("us", 1), cov_structure("diag", 2)]),
    "us2+us2": combine([cov_structure("us", 2), cov_structure("us", 2)]),
    "full2": full_factor(2),
}


@pytest.mark.parametrize("name", STRUCTURES)
def test_theta_round_trips_through_the_factor(name):
    c = STRUCTURES[name]
    theta = np.arange(1.0, c.n_theta + 1.0)
    L = np.asarray(c.cholesky(theta))
    assert L.shape == (c.k, c.k)
    np.testing.assert_array_equal(np.asarray(c.theta_from_factor(L)), theta)
    if name != "full2":
        assert np.all(np.triu(L, 1) == 0)            # a Cholesky factor is lower triangular
    assert len(c.theta_names([f"c{i}" for i in range(c.k)])) == c.n_theta


def test_parameters_and_their_positions():
    us = STRUCTURES["us3"]
    assert us.n_theta == 6 and us.diagonal_index() == (0, 3, 5)   # lme4's column-wise theta order
    assert us.theta_position(1, 0) == 1 and us.theta_position(2, 2) == 5
    with pytest.raises(ValueError, match="no covariance parameter"):
        us.theta_position(0, 1)
    np.testing.assert_array_equal(np.asarray(us.initial()), [1, 0, 0, 1, 0, 1])
    sc = STRUCTURES["scalar3"]
    assert sc.n_theta == 1 and np.allclose(np.asarray(sc.cholesky(np.array([2.0]))), 2 * np.eye(3))
    assert STRUCTURES["us1+diag2"].diagonal_index() == (0, 1, 2)


def test_singularity_and_signs():
    us = STRUCTURES["us3"]
    th = np.array([1.0, 0.5, 0.2, -2e-5, 0.1, 1.0])
    assert us.is_singular(th, scale=1.0) and not us.is_singular(th, scale=1e-2)
    np.testing.assert_array_equal(us.column_signs(th), [1, 1, 1, -1, -1, 1])


def test_kenward_roger_patterns():
    pats = STRUCTURES["us1+diag2"].variance_patterns()
    assert len(pats) == 3 and all(np.array_equal(P, P.T) for P in pats)
    assert len(STRUCTURES["us3"].variance_patterns()) == 6
    with pytest.raises(ValueError, match="shares a variance"):
        STRUCTURES["scalar3"].variance_patterns()


def test_a_structure_prints_its_parameters():
    assert str(STRUCTURES["us3"]).startswith("3 x 3 Cholesky factor with 6 parameters: L[0,0], L[1,0]")
