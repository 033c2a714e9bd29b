"""Tests of the response families (glmmjax.families).

Reference values come from scipy.stats; the mapping of each family's (mu, disp_eta, extra)
onto scipy's parameters is spelled out in ``REF`` below and in each family module docstring.
"""
from __future__ import annotations

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sps
import scipy.stats as st

import glmmjax  # noqa: F401  (turns on x64)
from glmmjax.families import (
    Beta,
    Binomial,
    Family,
    Gamma,
    Gaussian,
    NBinom2,
    NegativeBinomial1,
    NegativeBinomial2,
    Poisson,
    StudentT,
    get_family,
)

# numpy link inverses, independent of the package's JAX links
LINKINV = {
    "identity": lambda e: e,
    "log": np.exp,
    "logit": sps.expit,
    "probit": st.norm.cdf,
    "cloglog": lambda e: -np.expm1(-np.exp(e)),
    "inverse": lambda e: 1.0 / e,
    "sqrt": lambda e: e * e,
}


# scipy log density/mass given (y, mu, disp_eta, extra, size)
def _ref_gaussian(y, mu, d, x, n):
    return st.norm.logpdf(y, loc=mu, scale=np.exp(d / 2))


def _ref_binomial(y, mu, d, x, n):
    return st.binom.logpmf(y, 1 if n is None else n, mu)


def _ref_poisson(y, mu, d, x, n):
    return st.poisson.logpmf(y, mu)


def _ref_nbinom2(y, mu, d, x, n):
    theta = np.exp(d)
    return st.nbinom.logpmf(y, theta, theta / (theta + mu))


def _ref_nbinom1(y, mu, d, x, n):
    phi = np.exp(d)
    return st.nbinom.logpmf(y, mu / phi, 1.0 / (1.0 + phi))


def _ref_gamma(y, mu, d, x, n):
    k = np.exp(d)
    return st.gamma.logpdf(y, a=k, scale=mu / k)


def _ref_beta(y, mu, d, x, n):
    phi = np.exp(d)
    return st.beta.logpdf(y, mu * phi, (1 - mu) * phi)


def _ref_t(y, mu, d, x, n):
    return st.t.logpdf(y, np.exp(x[0]), loc=mu, scale=np.exp(d))


# (family, y values, [(eta, disp_eta, extra), ...], size, reference)
Y_COUNTS = np.array([0, 1, 2, 3, 7, 15, 40], dtype=float)
Y_REAL = np.array([-3.2, -0.4, 0.0, 0.5, 1.7, 6.0])
Y_POS = np.array([0.01, 0.3, 1.0, 2.5, 9.0])
Y_UNIT = np.array([0.001, 0.05, 0.3, 0.5, 0.81, 0.999])
SIZE = np.array([1, 5, 12, 40, 40, 60, 100], dtype=float)
Y_BIN = np.array([0, 3, 12, 1, 20, 59, 100], dtype=float)

CASES = [
    (Gaussian(), Y_REAL, [(0.3, 0.0, []), (-2.0, -1.5, []), (4.0, 2.3, [])], None, _ref_gaussian),
    (Gaussian("log"), Y_REAL, [(0.3, 0.0, []), (-1.0, 1.0, [])], None, _ref_gaussian),
    (Gaussian("inverse"), Y_REAL, [(0.5, 0.0, []), (-2.0, 0.7, [])], None, _ref_gaussian),
    (Binomial(), Y_BIN, [(0.0, 0, []), (-3.0, 0, []), (2.5, 0, [])], SIZE, _ref_binomial),
    (Binomial("probit"), Y_BIN, [(0.0, 0, []), (-1.7, 0, []), (1.2, 0, [])], SIZE, _ref_binomial),
    (Binomial("cloglog"), Y_BIN, [(0.0, 0, []), (-2.5, 0, []), (0.8, 0, [])], SIZE, _ref_binomial),
    (Binomial("log"), Y_BIN, [(-0.2, 0, []), (-3.0, 0, [])], SIZE, _ref_binomial),
    (Binomial(), np.array([0.0, 1.0, 1.0]), [(0.4, 0, []), (-5.0, 0, [])], None, _ref_binomial),
    (Poisson(), Y_COUNTS, [(0.0, 0, []), (-2.0, 0, []), (3.1, 0, [])], None, _ref_poisson),
    (Poisson("identity"), Y_COUNTS, [(0.7, 0, []), (12.0, 0, [])], None, _ref_poisson),
    (Poisson("sqrt"), Y_COUNTS, [(0.7, 0, []), (4.0, 0, [])], None, _ref_poisson),
    (NegativeBinomial2(), Y_COUNTS, [(0.0, 0.0, []), (2.2, -0.62, []), (-1.0, 1.5, []), (3.0, 4.0, [])], None,
     _ref_nbinom2),
    (NegativeBinomial2("sqrt"), Y_COUNTS, [(1.5, 0.3, [])], None, _ref_nbinom2),
    (NegativeBinomial1(), Y_COUNTS, [(0.0, 0.0, []), (2.2, -1.0, []), (-1.0, 1.5, []), (3.0, 2.0, [])], None,
     _ref_nbinom1),
    (Gamma(), Y_POS, [(0.5, 0.0, []), (2.0, 1.5, []), (0.1, -1.0, [])], None, _ref_gamma),
    (Gamma("log"), Y_POS, [(0.0, 0.0, []), (1.2, 2.5, []), (-1.0, -1.2, [])], None, _ref_gamma),
    (Gamma("identity"), Y_POS, [(1.0, 0.5, []), (5.0, 1.0, [])], None, _ref_gamma),
    (Beta(), Y_UNIT, [(0.0, 1.0, []), (-2.0, 3.0, []), (1.5, -0.5, []), (-5.18, 5.71, [])], None, _ref_beta),
    (Beta("probit"), Y_UNIT, [(0.3, 2.0, []), (-1.0, 0.5, [])], None, _ref_beta),
    (Beta("cloglog"), Y_UNIT, [(0.3, 2.0, []), (-1.0, 0.5, [])], None, _ref_beta),
    (StudentT(), Y_REAL, [(0.0, 0.0, [np.log(3.0)]), (1.0, -0.5, [np.log(0.7)]), (-2.0, 1.0, [np.log(80.0)])], None,
     _ref_t),
    (StudentT("log"), Y_REAL, [(0.2, 0.3, [np.log(5.0)])], None, _ref_t),
]


def _case_id(case):
    fam = case[0]
    return f"{fam.name}-{fam.link.name}" + ("" if case[3] is None else "-size")


def _args(fam, y, eta, d, x, size, dtype=jnp.float64):
    n = y.shape[0]
    return (
        jnp.asarray(y, dtype),
        jnp.full(n, eta, dtype),
        jnp.full(n, d, dtype),
        jnp.asarray(np.asarray(x, float).reshape(fam.n_extra), dtype),
        None if size is None else jnp.asarray(size, dtype),
    )


# ---------------------------------------------------------------------------------------
# Vectorized evaluation helpers. Nearly all the time of these tests is JAX compilation, so:
# all parameter values of a case are evaluated in one call, eagerly (no jit: each primitive
# is compiled once per shape and dtype, and shared by all families, whereas a jit would
# recompile the large gammaln/digamma/polygamma kernels for every family and link), and every
# call is padded to one of two fixed lengths so that those compiled primitives are reused.
# loglik is elementwise in (y, eta, disp_eta, size), with one ``extra`` vector per call, so
# rows of parameter values sharing ``extra`` are flattened into one array.
# ---------------------------------------------------------------------------------------
_LENGTHS = (256, 9216)


def _pad(a, length):
    """``a`` (1-d) padded to ``length`` by repeating its first element (a valid value)."""
    a = np.asarray(a, float).ravel()
    assert a.size <= length
    return np.concatenate([a, np.full(length - a.size, a[0])])


def _grid(fam, params, n):
    """(eta, disp, extra) of ``params`` as arrays: eta and disp (P, n), extra (P, n_extra)."""
    eta = np.array([float(q[0]) for q in params])
    d = np.array([float(q[1]) for q in params])
    x = np.array([np.asarray(q[2], float).reshape(fam.n_extra) for q in params]).reshape(len(params), fam.n_extra)
    return np.repeat(eta[:, None], n, axis=1), np.repeat(d[:, None], n, axis=1), x


def _flat_eval(fam, y, e, d, x, size, mask, order):
    """Eager: loglik and (order >= 1) its elementwise eta-derivative, (order 2) the second
    eta-derivative, the disp-derivative, the mixed (eta, disp) derivative and the gradient in
    ``extra`` of sum(mask * loglik)."""

    def ll(e_, d_, x_):
        return fam.loglik(y, e_, d_, x_, size)

    def g(e_, d_):
        # elementwise: d/deta of the sum gives the per-observation derivative
        return jax.grad(lambda v: jnp.sum(ll(v, d_, x)))(e_)

    out = {"ll": ll(e, d, x)}
    if order >= 1:
        out["g"] = g(e, d)
    if order >= 2:
        out["h"] = jax.grad(lambda v: jnp.sum(g(v, d)))(e)
        if fam.has_dispersion:
            out["gd"] = jax.grad(lambda v: jnp.sum(ll(e, v, x)))(d)
            # mixed second derivative (eta, disp) is also needed by a Laplace engine
            out["gde"] = jax.grad(lambda v: jnp.sum(g(e, v)))(d)
        if fam.n_extra:
            out["gx"] = jnp.stack([jax.grad(lambda v, m=m: jnp.sum(m * ll(e, d, v)))(x) for m in mask])
    return out


def _eval(fam, y, eta, disp, extra, size, order=0, dtype=jnp.float64):
    """Evaluate rows of parameter values: eta, disp (R, n), extra (R, n_extra), sharing y and
    size (n,) (size may be None). Returns numpy arrays of shape (R, n) ("gx": (R, n_extra))."""
    y = np.asarray(y, float)
    eta, disp, extra = np.asarray(eta, float), np.asarray(disp, float), np.asarray(extra, float)
    r, n = eta.shape
    groups: dict = {}
    for i in range(r):
        groups.setdefault(extra[i].tobytes(), []).append(i)
    res: dict = {}
    for rows in groups.values():
        k = len(rows) * n
        length = next(m for m in _LENGTHS if m >= k)
        mask = np.zeros((len(rows), length))
        for j in range(len(rows)):
            mask[j, j * n:(j + 1) * n] = 1.0

        def arr(a):
            return jnp.asarray(_pad(a, length), dtype)

        out = _flat_eval(
            fam, arr(np.tile(y, len(rows))), arr(eta[rows]), arr(disp[rows]),
            jnp.asarray(extra[rows[0]], dtype),
            None if size is None else arr(np.tile(np.broadcast_to(np.asarray(size, float), y.shape), len(rows))),
            jnp.asarray(mask, dtype), order,
        )
        for key, v in out.items():
            if key not in res:
                res[key] = np.zeros((r,) + ((fam.n_extra,) if key == "gx" else (n,)), dtype=v.dtype)
                res[key + "_dtype"] = v.dtype
            if key == "gx":
                res[key][rows] = np.asarray(v)
            else:
                res[key][rows] = np.asarray(v)[:k].reshape(len(rows), n)
    return res


def _loglik_grid(fam, y, params, size, dtype=jnp.float64, order=0):
    """Evaluate a case's params (list of (eta, disp, extra)) at y in one go."""
    e, d, x = _grid(fam, params, np.asarray(y).shape[0])
    return _eval(fam, y, e, d, x, size, order, dtype)


_FD_STEP = 1e-5
_CASE_EVAL: dict = {}


def _case_eval(case):
    """Everything the loglik / derivative / float32 tests need from the float64 family for one
    case, evaluated once. Rows are stacked in 7 blocks of the case's P parameter values: the
    point itself, eta +- h, disp +- 1e-5, extra +- 1e-5 (h = 1e-5 max(1, |eta|)); every output
    has a leading (7, P)."""
    key = id(case)
    if key not in _CASE_EVAL:
        fam, y, params, size, _ = case
        p = len(params)
        e, d, x = _grid(fam, params, y.shape[0])
        # shifts computed in float64 exactly as x + h would be
        hstep = np.array([_FD_STEP * max(1.0, abs(q[0])) for q in params])[:, None]
        e_all = np.concatenate([e, e + hstep, e - hstep, e, e, e, e])
        d_all = np.concatenate([d, d, d, d + _FD_STEP, d - _FD_STEP, d, d])
        x_all = np.concatenate([x, x, x, x, x, x + _FD_STEP, x - _FD_STEP])
        out = _eval(fam, y, e_all, d_all, x_all, size, order=2)
        _CASE_EVAL[key] = {k: (v.reshape((7, p) + v.shape[1:]) if isinstance(v, np.ndarray) else v)
                           for k, v in out.items()}
    return _CASE_EVAL[key]


# ---------------------------------------------------------------------------------------
# log-density against scipy
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_loglik_matches_scipy(case):
    fam, y, params, size, ref = case
    ll = _case_eval(case)["ll"][0]
    for i, (eta, d, x) in enumerate(params):
        got = ll[i]
        assert got.shape == y.shape
        mu = LINKINV[fam.link.name](np.full(y.shape, eta, dtype=float))
        want = ref(y, mu, d, x, size)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10, err_msg=f"{fam} eta={eta} disp={d} extra={x}")


def test_binomial_size_none_is_bernoulli():
    fam = Binomial()
    y = jnp.array([0.0, 1.0, 1.0, 0.0])
    eta = jnp.array([[-1.0, 0.3, 2.0, 5.0]])
    z, ex = jnp.zeros((1, 4)), jnp.zeros((1, 0))
    a = _eval(fam, y, eta, z, ex, None)["ll"][0]
    b = _eval(fam, y, eta, z, ex, jnp.ones(4))["ll"][0]
    np.testing.assert_allclose(a, b, rtol=1e-14)
    np.testing.assert_allclose(a, st.bernoulli.logpmf(np.asarray(y), sps.expit(np.asarray(eta[0]))), rtol=1e-12)


# ---------------------------------------------------------------------------------------
# normalization
# ---------------------------------------------------------------------------------------
DISCRETE = [
    (Binomial(), [(0.3, 0.0, [])], 17.0),
    (Binomial("cloglog"), [(-0.4, 0.0, [])], 9.0),
    (Poisson(), [(0.0, 0.0, []), (3.0, 0.0, [])], None),
    (NegativeBinomial2(), [(0.0, 0.0, []), (3.0, np.log(0.5), []), (2.0, 3.0, [])], None),
    (NegativeBinomial1(), [(0.0, 0.0, []), (3.0, np.log(3.0), []), (1.0, -2.0, [])], None),
]


@pytest.mark.parametrize("fam,params,size", DISCRETE, ids=lambda v: repr(v) if isinstance(v, Family) else "")
def test_pmf_sums_to_one(fam, params, size):
    # binomial: exact support 0..size; counts: truncated at 3000, where the tail is < 1e-15
    # for these means (<= e^3) and dispersions (NB2 theta >= 0.5: tail ~ (mu/(mu+theta))^k).
    ymax = size if size is not None else 3000.0
    y = np.arange(0.0, ymax + 1.0)
    ll_all = _loglik_grid(fam, y, params, size)["ll"]
    mus = np.asarray(fam.mean(jnp.asarray([float(q[0]) for q in params])))
    for i, (eta, d, x) in enumerate(params):
        ll = ll_all[i]
        assert ll.shape == y.shape
        assert np.all(np.isfinite(ll))
        np.testing.assert_allclose(np.sum(np.exp(ll)), 1.0, rtol=0, atol=1e-12)
        # and the mean is mu (proportion for binomial)
        m = float(np.sum(y * np.exp(ll)))
        np.testing.assert_allclose(m / (1.0 if size is None else size), float(mus[i]), rtol=1e-10)


CONTINUOUS = [
    (Gaussian(), [(0.3, 0.0, []), (-2.0, 1.2, [])], (-np.inf, np.inf)),
    (Gamma(), [(0.5, 0.0, []), (2.0, 2.0, []), (0.3, -0.7, [])], (0.0, np.inf)),
    (Gamma("log"), [(1.0, 1.0, [])], (0.0, np.inf)),
    (Beta(), [(0.0, 1.0, []), (-1.0, 3.0, []), (1.5, 1.2, [])], (0.0, 1.0)),
    (StudentT(), [(0.0, 0.0, [np.log(3.0)]), (1.0, 0.5, [np.log(1.5)]), (-1.0, -0.3, [np.log(50.0)])],
     (-np.inf, np.inf)),
]


def _de_nodes(support, h, tmax=4.0):
    """Double-exponential quadrature nodes and weights (step h in t on [-tmax, tmax]):
    sinh-sinh on the real line, exp-sinh on (0, inf), tanh-sinh on (0, 1). The transforms
    decay doubly exponentially at both ends, so endpoint singularities (Gamma shape < 1,
    Beta parameters < 1) and heavy tails (t with small df) are integrated accurately.
    Nodes that round onto (or beyond) the end of the support get weight 0."""
    t = -tmax + h * np.arange(int(round(2 * tmax / h)) + 1)
    s = 0.5 * np.pi * np.sinh(t)
    ds = 0.5 * np.pi * np.cosh(t)
    lo, hi = support
    if (lo, hi) == (-np.inf, np.inf):
        x, w = np.sinh(s), np.cosh(s) * ds
    elif (lo, hi) == (0.0, np.inf):
        x = np.exp(s)
        w = x * ds
    elif (lo, hi) == (0.0, 1.0):
        x = sps.expit(2 * s)
        w = 2 * ds * sps.expit(2 * s) * sps.expit(-2 * s)
    else:
        raise ValueError(support)
    ok = (x > lo) & (x < hi) & np.isfinite(x) & np.isfinite(w)
    mid = 0.5 if np.isfinite(hi) else 1.0
    return np.where(ok, x, mid), np.where(ok, h * w, 0.0)


@pytest.mark.parametrize("fam,params,support", CONTINUOUS, ids=lambda v: repr(v) if isinstance(v, Family) else "")
def test_density_integrates_to_one(fam, params, support):
    # one vectorized call on the nodes of a double-exponential rule with step h/2; the rule
    # with step h (every other node, double weight) gives an error estimate.
    h = 1.0 / 32
    x, w = _de_nodes(support, h / 2)
    ll = _loglik_grid(fam, x, params, None)["ll"]
    for i, (eta, d, _) in enumerate(params):
        f = np.exp(ll[i])
        assert np.all(np.isfinite(f)), f"{fam} eta={eta} disp={d}"
        total = float(np.sum(w * f))
        coarse = float(2.0 * np.sum(w[::2] * f[::2]))
        err = abs(total - coarse)
        assert err < 1e-9, (fam, eta, d, total, coarse)  # error estimate << the tolerance
        np.testing.assert_allclose(total, 1.0, atol=1e-8, err_msg=f"{fam} eta={eta} disp={d}")


# ---------------------------------------------------------------------------------------
# sampler
# ---------------------------------------------------------------------------------------
# All draws use the same shape and dtype (N_DRAWS, float64, except the float32 check), so
# jax.random's compiled samplers (gamma, poisson, binomial, beta, ...) are compiled once per
# sampler and shared by all families and tests that use them.
N_DRAWS = 200_000

SAMPLE_CASES = [
    (Gaussian(), 1.3, 0.4, [], None),
    (Gaussian("log"), 0.5, -1.0, [], None),
    (Binomial(), 0.7, 0.0, [], 12.0),
    (Binomial("probit"), -0.5, 0.0, [], None),
    (Binomial("cloglog"), 0.2, 0.0, [], 5.0),
    (Poisson(), 1.5, 0.0, [], None),
    (NegativeBinomial2(), 1.5, np.log(1.7), [], None),
    (NegativeBinomial2(), 0.5, np.log(20.0), [], None),
    (NegativeBinomial1(), 1.5, np.log(2.5), [], None),
    (NegativeBinomial1(), 0.0, np.log(0.3), [], None),
    (Gamma(), 0.4, np.log(3.0), [], None),
    (Gamma("log"), 1.0, np.log(0.8), [], None),
    (Beta(), 0.6, np.log(8.0), [], None),
    (Beta("cloglog"), -1.0, np.log(2.0), [], None),
    (StudentT(), 2.0, np.log(0.7), [np.log(12.0)], None),
]


@pytest.mark.parametrize("fam,eta,d,x,size", SAMPLE_CASES, ids=lambda v: repr(v) if isinstance(v, Family) else "")
def test_sample_moments(fam, eta, d, x, size):
    # N = 200,000 draws. The tolerance is 5 standard errors of the sample mean (SE = sd/sqrt(N))
    # and of the sample variance (SE estimated as sd((y - ybar)^2)/sqrt(N)), so a correct
    # sampler fails with probability ~1e-6 per check, while a wrong variance function (e.g. a
    # mu^2/theta vs mu/theta mix-up) is off by many SEs. Keys are fixed, so the test is exact.
    n = N_DRAWS
    key = jax.random.PRNGKey(20240611)
    # explicit dtypes: strongly typed inputs, so jax.random's compiled samplers are shared
    # between cases (a weakly typed array would be a different cache key)
    eta_v = jnp.full(n, eta, jnp.float64)
    d_v = jnp.full(n, d, jnp.float64)
    ex = jnp.asarray(np.asarray(x, float).reshape(fam.n_extra), jnp.float64)
    sz = None if size is None else jnp.full(n, size, jnp.float64)
    y = np.asarray(fam.sample(key, eta_v, d_v, ex, sz))
    assert y.shape == (n,) and y.dtype == np.float64 and np.all(np.isfinite(y))
    if size is not None or isinstance(fam, Binomial):
        y = y / (1.0 if size is None else size)
    mu = float(fam.mean(jnp.asarray(eta)))
    var = float(fam.variance(jnp.asarray(mu), jnp.asarray(d), ex, None if size is None else jnp.asarray(size)))
    ybar = y.mean()
    sq = (y - ybar) ** 2
    se_mean = np.sqrt(var / n)
    se_var = sq.std() / np.sqrt(n)
    assert abs(ybar - mu) < 5 * se_mean, (ybar, mu, se_mean)
    assert abs(sq.mean() - var) < 5 * se_var, (sq.mean(), var, se_var)


def test_sample_respects_support_and_float32():
    # N_DRAWS (>= the 1000 draws this test needs) so the samplers compiled for
    # test_sample_moments are reused; every draw is checked.
    key = jax.random.PRNGKey(1)
    n = N_DRAWS
    y = Binomial().sample(key, jnp.zeros(n), None, jnp.zeros(0), jnp.full(n, 7.0, jnp.float64))
    assert y.shape == (n,)
    assert np.all((y >= 0) & (y <= 7) & (y == np.round(y)))
    y = NegativeBinomial2().sample(key, jnp.zeros(n), jnp.zeros(n), jnp.zeros(0), None)
    assert y.shape == (n,)
    assert np.all((y >= 0) & (y == np.round(y)))
    y = Beta().sample(key, jnp.zeros(n), jnp.zeros(n), jnp.zeros(0), None)
    assert y.shape == (n,)
    assert np.all((y > 0) & (y < 1))
    y = Gamma("log").sample(key, jnp.zeros(n, jnp.float32), jnp.zeros(n, jnp.float32), jnp.zeros(0, jnp.float32), None)
    assert y.dtype == jnp.float32 and np.all(y > 0)


# ---------------------------------------------------------------------------------------
# response checks
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fam,y,size,match",
    [
        (Poisson(), [0, 2, -1], None, "non-negative counts"),
        (Poisson(), [0, 2.5, 1], None, "integer counts"),
        (NegativeBinomial2(), [3, -2], None, "non-negative counts"),
        (NegativeBinomial2(), [1.2, 3], None, "integer counts"),
        (NegativeBinomial1(), [0.5], None, "integer counts"),
        (Poisson(), [1, np.nan], None, "non-finite"),
        (Gaussian(), [1.0, np.inf], None, "non-finite"),
        (Beta(), [0.2, 1.0], None, r"strictly between 0 and 1"),
        (Beta(), [0.0, 0.5], None, r"strictly between 0 and 1"),
        (Beta(), [-0.1, 0.5], None, r"outside \(0, 1\)"),
        (Gamma(), [1.0, 0.0], None, "strictly positive"),
        (Gamma(), [1.0, -2.0], None, r"value\(s\) <= 0"),
        (Binomial(), [3, 6], [5, 5], "successes <= trials"),
        (Binomial(), [0, 2], None, "0/1 values"),
        (Binomial(), [-1, 2], [5, 5], "non-negative numbers of successes"),
        (StudentT(), [np.nan], None, "non-finite"),
    ],
)
def test_check_response_rejects(fam, y, size, match):
    with pytest.raises(ValueError, match=match):
        fam.check_response(np.asarray(y, float), size)


@pytest.mark.parametrize(
    "fam,y,size",
    [
        (Poisson(), [0, 1, 40], None),
        (NegativeBinomial2(), [0, 3], None),
        (Binomial(), [0, 1, 1], None),
        (Binomial(), [0, 5, 2.5], [5, 5, 5]),
        (Gamma(), [0.1, 3.0], None),
        (Beta(), [0.01, 0.99], None),
        (Gaussian(), [-5.0, 0.0], None),
        (StudentT(), [-5.0, 0.0], None),
    ],
)
def test_check_response_accepts(fam, y, size):
    y = np.asarray(y, float)
    whole = np.all(y == np.round(y)) or not isinstance(fam, Binomial)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fam.check_response(y, size)
    # R's binomial fits non-integer successes with a warning
    assert [str(w.message) for w in caught] == ([] if whole else ["non-integer #successes in a binomial glm!"])


# ---------------------------------------------------------------------------------------
# derivatives
# ---------------------------------------------------------------------------------------
def _fd(f_plus, f_minus, h):
    return (f_plus - f_minus) / (2 * h)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_derivatives_match_finite_differences(case):
    fam, y, params, size, _ = case
    r = _case_eval(case)  # blocks: 0 point, 1/2 eta +- h, 3/4 disp +- 1e-5, 5/6 extra +- 1e-5
    ll, g = r["ll"], r["g"]
    for i, (eta, d, x) in enumerate(params):
        g_e, h_e = r["g"][0, i], r["h"][0, i]
        assert g_e.shape == y.shape and h_e.shape == y.shape
        assert np.all(np.isfinite(g_e)) and np.all(np.isfinite(h_e)), (fam, eta, d)
        hstep = _FD_STEP * max(1.0, abs(eta))
        np.testing.assert_allclose(g_e, _fd(ll[1, i], ll[2, i], hstep), rtol=1e-6, atol=1e-6 * (1 + np.abs(g_e).max()))
        np.testing.assert_allclose(h_e, _fd(g[1, i], g[2, i], hstep), rtol=1e-6, atol=1e-6 * (1 + np.abs(h_e).max()))
        if fam.has_dispersion:
            gd = r["gd"][0, i]
            assert np.all(np.isfinite(gd))
            np.testing.assert_allclose(gd, _fd(ll[3, i], ll[4, i], _FD_STEP), rtol=1e-6,
                                       atol=1e-6 * (1 + np.abs(gd).max()))
            # mixed second derivative (eta, disp) is also needed by a Laplace engine
            gde = r["gde"][0, i]
            assert np.all(np.isfinite(gde))
        if fam.n_extra:
            gx = r["gx"][0, i]
            fx = (np.sum(ll[5, i]) - np.sum(ll[6, i])) / (2 * _FD_STEP)
            np.testing.assert_allclose(gx, [fx], rtol=1e-6)


@pytest.mark.parametrize(
    "fam,y,size,etas,d",
    [
        (Binomial(), [0.0, 3.0, 10.0], 10.0, [-60.0, 60.0], 0.0),
        (Binomial("probit"), [0.0, 3.0, 10.0], 10.0, [-35.0, 35.0], 0.0),
        (Binomial("cloglog"), [0.0, 3.0, 10.0], 10.0, [-30.0, 3.5], 0.0),
        (Binomial("log"), [0.0, 3.0, 10.0], 10.0, [-40.0, -1e-3], 0.0),
        (Poisson(), [0.0, 5.0], None, [-30.0, 20.0], 0.0),
        (NegativeBinomial2(), [0.0, 5.0], None, [-30.0, 20.0], -8.0),
        (NegativeBinomial2(), [0.0, 5.0], None, [-30.0, 20.0], 12.0),
        (NegativeBinomial1(), [0.0, 5.0], None, [-20.0, 15.0], -6.0),
        (Beta(), [1e-6, 0.5, 1 - 1e-6], None, [-25.0, 25.0], 3.0),
        (Gamma("log"), [1e-5, 1e4], None, [-10.0, 10.0], 3.0),
    ],
)
def test_tails_are_finite(fam, y, size, etas, d):
    # extreme linear predictors must give finite log-likelihoods and derivatives
    # (all etas in one call; loglik is elementwise, so the Hessian is diagonal)
    r = _loglik_grid(fam, np.asarray(y), [(eta, d, []) for eta in etas], size, order=2)
    for i, eta in enumerate(etas):
        f0, g0, h0 = np.sum(np.asarray(r["ll"][i])), np.asarray(r["g"][i]), np.asarray(r["h"][i])
        assert np.isfinite(f0), (fam, eta)
        assert np.all(np.isfinite(g0)), (fam, eta)
        assert np.all(np.isfinite(h0)), (fam, eta)


def test_nbinom2_large_theta_tends_to_poisson():
    y = jnp.asarray(Y_COUNTS)
    e = jnp.full((1,) + y.shape, 1.3)
    nb = _eval(NegativeBinomial2(), y, e, jnp.full(e.shape, 25.0), jnp.zeros((1, 0)), None)["ll"][0]
    po = _eval(Poisson(), y, e, jnp.zeros(e.shape), jnp.zeros((1, 0)), None)["ll"][0]
    np.testing.assert_allclose(nb, po, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------
# float32
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_float32(case):
    # float32 carries ~7 digits; the gammaln terms are O(100) here, so the log-density is
    # compared with rtol 1e-4 plus an absolute 1e-4 for values near 0.
    fam, y, params, size, _ = case
    r32 = _loglik_grid(fam, y, params, size, jnp.float32, order=1)
    l32_all, g32_all = r32["ll"], r32["g"]
    assert r32["ll_dtype"] == jnp.float32 and r32["g_dtype"] == jnp.float32
    l64_all = _case_eval(case)["ll"][0]
    for i in range(len(params)):
        l32, g32 = l32_all[i], g32_all[i]
        assert l32.dtype == jnp.float32 and l32.shape == y.shape
        assert np.all(np.isfinite(l32))
        np.testing.assert_allclose(np.asarray(l32, float), l64_all[i], rtol=1e-4, atol=1e-4)
        assert g32.dtype == jnp.float32 and np.all(np.isfinite(g32))


# ---------------------------------------------------------------------------------------
# family objects, get_family, dispersion parameters, starting values
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,cls,link",
    [
        ("gaussian", Gaussian, "identity"),
        ("binomial", Binomial, "logit"),
        ("poisson", Poisson, "log"),
        ("nbinom2", NegativeBinomial2, "log"),
        ("nbinom1", NegativeBinomial1, "log"),
        ("Gamma", Gamma, "inverse"),
        ("gamma", Gamma, "inverse"),
        ("beta", Beta, "logit"),
        ("beta_family", Beta, "logit"),
        ("t", StudentT, "identity"),
    ],
)
def test_get_family_names(name, cls, link):
    f = get_family(name)
    assert type(f) is cls and f.link.name == link
    assert get_family(f) is f
    assert f == cls() and hash(f) == hash(cls())


def test_get_family_links_and_errors():
    assert get_family("binomial", "probit").link.name == "probit"
    assert get_family(Poisson(), link="identity") == Poisson("identity")
    assert NBinom2 is NegativeBinomial2
    with pytest.raises(TypeError, match=r"Expected a Family instance \(Poisson\(\)\), got the class Poisson"):
        get_family(Poisson)
    with pytest.raises(ValueError, match="Unknown family 'negbin'.*nbinom2"):
        get_family("negbin")
    with pytest.raises(TypeError, match="family name"):
        get_family(3)
    with pytest.raises(ValueError, match="does not take the 'logit' link"):
        Poisson("logit")
    with pytest.raises(ValueError, match="Unknown link"):
        get_family("gaussian", "nope")


def test_canonical_and_repr():
    assert Gaussian().canonical and Binomial().canonical and Poisson().canonical and Gamma().canonical
    assert not Binomial("probit").canonical and not Gamma("log").canonical
    assert not NegativeBinomial2().canonical and not Beta().canonical and not StudentT().canonical
    assert repr(Gamma("log")) == "Gamma(link='log')"


def test_families_are_static_jit_args():
    @jax.jit
    def f(fam_eta):
        return fam_eta

    from functools import partial

    @partial(jax.jit, static_argnums=0)
    def ll(fam, y, eta):
        return fam.loglik(y, eta, jnp.zeros_like(eta), jnp.zeros(fam.n_extra), None)

    y = jnp.array([1.0, 2.0])
    e = jnp.array([0.1, 0.2])
    np.testing.assert_allclose(ll(Poisson(), y, e), st.poisson.logpmf([1, 2], np.exp([0.1, 0.2])), rtol=1e-12)
    np.testing.assert_allclose(ll(Gaussian(), y, e), st.norm.logpdf([1, 2], [0.1, 0.2]), rtol=1e-12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Poisson().link = None


def test_dispersion_parameters():
    assert Poisson().dispersion_parameters(None, None) == {}
    assert Binomial().dispersion_parameters(None, None) == {}
    np.testing.assert_allclose(Gaussian().dispersion_parameters(jnp.log(4.0), None)["sigma"], 2.0)
    np.testing.assert_allclose(NegativeBinomial2().dispersion_parameters(-0.623707941169982, None)["theta"],
                               0.535953464753565, rtol=1e-12)
    np.testing.assert_allclose(NegativeBinomial1().dispersion_parameters(np.log(2.5), None)["phi"], 2.5)
    g = Gamma().dispersion_parameters(np.log(4.0), None)
    np.testing.assert_allclose([g["shape"], g["sigma"]], [4.0, 0.5])
    np.testing.assert_allclose(Beta().dispersion_parameters(5.71119481313959, None)["phi"], 302.231963359793,
                               rtol=1e-12)
    t = StudentT().dispersion_parameters(np.log(0.3), np.array([np.log(7.0)]))
    np.testing.assert_allclose([t["sigma"], t["df"]], [0.3, 7.0])
    assert isinstance(t["sigma"], float)
    # a dispersion model with covariates gives one value per observation
    assert NegativeBinomial2().dispersion_parameters(np.array([0.0, 1.0]), None)["theta"].shape == (2,)


@pytest.mark.parametrize(
    "fam,eta,d,x,size,target",
    [
        (Gaussian(), 1.0, np.log(0.25), [], None, np.log(0.25)),
        (NegativeBinomial2(), 2.0, np.log(1.5), [], None, np.log(1.5)),
        (NegativeBinomial1(), 2.0, np.log(2.0), [], None, np.log(2.0)),
        (Gamma(), 0.5, np.log(3.0), [], None, np.log(3.0)),
        (Beta(), 0.3, np.log(20.0), [], None, np.log(20.0)),
        (StudentT(), 1.0, np.log(0.5), [np.log(6.0)], None, np.log(0.5)),
    ],
    ids=lambda v: repr(v) if isinstance(v, Family) else "",
)
def test_initial_values(fam, eta, d, x, size, target):
    # moment estimates at the true means recover the dispersion to within ~0.2 on the log
    # scale from 20,000 draws; starting means are valid for the link
    # (drawn with the N_DRAWS shape so the compiled samplers are shared; the first 20,000 are used)
    n = 20_000
    ex = jnp.asarray(np.asarray(x, float).reshape(fam.n_extra))
    y = np.asarray(fam.sample(jax.random.PRNGKey(3), jnp.full(N_DRAWS, eta, jnp.float64),
                              jnp.full(N_DRAWS, d, jnp.float64), ex, None))[:n]
    assert y.shape == (n,)
    fam.check_response(y)
    mu = np.full(n, float(fam.mean(jnp.asarray(eta))))
    assert abs(fam.initial_disp(y, mu) - target) < 0.2
    ie = fam.initial_extra(y, mu)
    assert ie.shape == (fam.n_extra,) and np.all(np.isfinite(ie))
    m0 = fam.initial_mu(y)
    assert np.all(np.isfinite(np.asarray(fam.link.linkfun(jnp.asarray(m0)))))


def test_initial_mu_binomial_and_defaults():
    m = Binomial().initial_mu(np.array([0.0, 5.0, 10.0]), np.array([10.0, 10.0, 10.0]))
    np.testing.assert_allclose(m, [0.5 / 11, 5.5 / 11, 10.5 / 11])
    assert np.all(np.isfinite(Binomial("log").link.linkfun(jnp.asarray(m))))
    assert Poisson().initial_disp(np.ones(3), np.ones(3)) == 0.0
    assert Poisson().initial_extra(np.ones(3), np.ones(3)).shape == (0,)
    # degenerate data still give finite starting values
    for fam in (Gaussian(), NegativeBinomial2(), NegativeBinomial1(), Gamma(), Beta(), StudentT()):
        y = np.full(4, 0.5) if isinstance(fam, Beta) else np.full(4, 2.0)
        assert np.isfinite(fam.initial_disp(y, y))
        assert np.all(np.isfinite(fam.initial_extra(y, y)))


def test_lgamma_diff_accuracy():
    # against mpmath at 40 digits, across the switch to the Stirling form at a = 50
    mpmath = pytest.importorskip("mpmath")
    from glmmjax.families._stable import lgamma_diff

    mpmath.mp.dps = 40
    ys = [0.0, 1.0, 3.0, 17.0, 250.0]
    as_ = [0.03, 1.0, 49.9, 50.0, 50.1, 1e3, 1e6, 1e10, 1e15]
    # all (y, a) pairs in one (elementwise) call
    aa, yy = np.meshgrid(np.array(as_), np.array(ys), indexing="ij")
    # (padded to the length the family tests use, so their compiled primitives are reused)
    m = aa.size
    got_all = np.asarray(lgamma_diff(jnp.asarray(_pad(yy, _LENGTHS[0])), jnp.asarray(_pad(aa, _LENGTHS[0]))))[:m]
    for k, (a, y) in enumerate(zip(aa.ravel(), yy.ravel())):
        want = float(mpmath.loggamma(mpmath.mpf(float(y)) + mpmath.mpf(float(a)))
                     - mpmath.loggamma(mpmath.mpf(float(a))))
        got = float(got_all[k])
        assert abs(got - want) <= 1e-13 * max(1.0, abs(want)), (y, a, got, want)
    # the derivative with respect to a is continuous across the switch
    # (lgamma_diff is elementwise, so d/da of the sum gives each element's derivative)
    a2 = jnp.asarray(_pad([49.999999, 50.0], _LENGTHS[0]))
    d = jax.grad(lambda a: jnp.sum(lgamma_diff(jnp.full(a.shape, 5.0), a)))(a2)[:2]
    np.testing.assert_allclose(d[0], d[1], rtol=1e-6)


def test_nbinom_large_dispersion_limits_against_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40

    def nb2(y, mu, theta):
        y, mu, theta = map(mpmath.mpf, (y, mu, theta))
        return float(mpmath.loggamma(y + theta) - mpmath.loggamma(theta) - mpmath.loggamma(y + 1)
                     + theta * mpmath.log(theta / (theta + mu)) + y * mpmath.log(mu / (theta + mu)))

    y = np.array([0.0, 1.0, 4.0, 30.0])
    pars = [(1.3, 8.0), (1.3, 20.0), (-2.0, 30.0), (3.0, 5.5)]
    got_all = _loglik_grid(NegativeBinomial2(), y, [(e, d, []) for e, d in pars], None)["ll"]
    # nbinom1 with phi = mu/theta (so size mu/phi = theta) is the same distribution
    got1_all = _loglik_grid(NegativeBinomial1(), y, [(e, e - d, []) for e, d in pars], None)["ll"]
    for i, (eta, d) in enumerate(pars):
        want = [nb2(v, np.exp(eta), np.exp(d)) for v in y]
        np.testing.assert_allclose(got_all[i], want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got1_all[i], want, rtol=1e-10, atol=1e-10)


def test_polygamma_and_the_derivatives_of_lgamma_match_scipy():
    """glmmjax's polygamma (recurrence + asymptotic series), reached by differentiating lgamma,
    against scipy over x in [1e-8, 1e6], on both sides of the series' threshold x = 8."""
    from glmmjax.families._special import digamma, lgamma, polygamma

    x = np.concatenate([np.logspace(-8, 6, 300), np.linspace(0.5, 20, 300), [7.999999, 8.0, 8.000001]])
    for n in range(1, 5):
        np.testing.assert_allclose(np.asarray(polygamma(n, jnp.asarray(x))), sps.polygamma(n, x), rtol=3e-12)
    np.testing.assert_allclose(np.asarray(lgamma(jnp.asarray(x))), sps.gammaln(x), rtol=1e-14, atol=1e-14)
    d = lgamma
    for n in range(5):           # d^(n+1) lgamma / dx^(n+1) = polygamma(n, x)
        d = jax.grad(d)
        for v in (0.3, 2.0, 7.9, 8.1, 50.0):
            assert float(d(v)) == pytest.approx(float(sps.polygamma(n, v)), rel=3e-12)
    assert float(jax.grad(digamma)(3.0)) == pytest.approx(float(sps.polygamma(1, 3.0)), rel=1e-14)


def test_beta_with_one_shape_parameter_small_and_the_other_huge():
    # a = mu phi = 2, b ~ 1e12: lgamma(phi) - lgamma(b) cancels (the direct difference is off
    # by ~6e-3 here); glmmjax takes it by Stirling's formula. Reference: scipy's betaln, which
    # has its own asymptotic form for b >> a
    for mu, phi, y in [(2e-12, 1e12, 1e-12), (1 - 3e-9, 1e9, 1 - 2e-9), (1e-150, 1e152, 3e-151)]:
        a, b = mu * phi, (1 - mu) * phi
        want = -sps.betaln(a, b) + (a - 1) * np.log(y) + (b - 1) * np.log1p(-y)
        eta = np.log(mu) - np.log1p(-mu)
        got = float(Beta().loglik(jnp.asarray([y]), jnp.asarray([eta]), jnp.asarray([np.log(phi)]), jnp.zeros(0),
                                  None)[0])
        np.testing.assert_allclose(got, want, rtol=1e-9)


@pytest.mark.parametrize("name", ["identity", "log", "logit", "probit", "cloglog", "inverse", "sqrt"])
def test_host_links_equal_the_jax_links(name):
    from glmmjax.families._links import get_link

    link = get_link(name)
    mu = np.array([1e-12, 1e-6, 0.03, 0.5, 0.97, 1 - 1e-9])
    eta = np.array([-30.0, -4.0, -0.3, 0.0, 0.7, 3.0, 20.0])
    if name in ("inverse", "sqrt"):
        eta = np.abs(eta) + 0.1
    np.testing.assert_allclose(link.host_linkfun(mu), np.asarray(link.linkfun(jnp.asarray(mu))), rtol=1e-13)
    np.testing.assert_allclose(link.host_linkinv(eta), np.asarray(link.linkinv(jnp.asarray(eta))), rtol=1e-13,
                               atol=1e-300)
    assert link._host is not None


def test_a_link_without_host_functions_evaluates_its_jax_ones():
    from glmmjax.families._links import Link

    @dataclasses.dataclass(frozen=True)
    class Cauchit(Link):
        name = "cauchit"

        def linkfun(self, mu):
            return jnp.tan(jnp.pi * (mu - 0.5))

        def linkinv(self, eta):
            return 0.5 + jnp.arctan(eta) / jnp.pi

    np.testing.assert_allclose(Cauchit().host_linkinv(np.array([0.0, 1.0])), [0.5, 0.75], rtol=1e-14)
    assert isinstance(Cauchit().host_linkfun([0.5]), np.ndarray)


def test_stirling_remainder_against_scipy_on_both_sides_of_the_series():
    from glmmjax.families._stable import stirling_remainder

    x = np.array([1e-8, 1e-3, 0.3, 1.0, 7.9, 8.1, 49.9, 50.0, 50.1, 1e3, 1e8])
    approx = (x - 0.5) * np.log(x) - x + 0.5 * np.log(2 * np.pi)
    # scipy's gammaln minus the approximation cancels for large x: there the first terms of
    # the series are the reference (the next is below 1e-17 at x = 1e3)
    want = np.where(x < 1e3, sps.gammaln(x) - approx, 1 / (12 * x) - 1 / (360 * x ** 3))
    np.testing.assert_allclose(np.asarray(stirling_remainder(jnp.asarray(x))), want, rtol=1e-11, atol=2e-13)
    # its derivative (autodiff through either branch): digamma(x) - log(x) + 1 / (2 x)
    d1 = jax.vmap(jax.grad(stirling_remainder))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(d1), sps.digamma(x) - np.log(x) + 0.5 / x, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("fam, size", [
    (Poisson(), None), (Poisson(link="sqrt"), None), (Poisson(link="identity"), None),
    (Binomial(), jnp.array([1.0, 5.0, 5.0, 12.0])), (Binomial(link="probit"), jnp.array([1.0, 5.0, 5.0, 12.0])),
    (Binomial(link="cloglog"), None), (NBinom2(), None), (NegativeBinomial1(), None),
    (get_family("truncated_poisson"), None), (get_family("truncated_nbinom2"), None),
    (get_family("truncated_nbinom1"), None),
])
def test_loglik_splits_into_terms_with_eta_and_the_rest(fam, size):
    """loglik = loglik_eta + loglik_rest: the conditional-mode search evaluates the first
    alone (the lgammas of log y!, log choose(n, y) and NB2's Gamma ratio are free of eta);
    the rest is free of eta and 0 at y = 0, where zero-inflation mixes the whole density."""
    y = jnp.array([0.0, 1.0, 1.0, 0.0]) if size is None and fam.name == "binomial" else jnp.array([0.0, 1.0, 3.0, 12.0])
    d, extra = jnp.full(4, 0.4), jnp.zeros(1)
    rest = fam.loglik_rest(y, d, extra, size)
    if rest is not None:
        assert float(rest[0]) == 0.0
    for eta in (-0.7, 0.3, 1.9):
        e = jnp.full(4, eta if fam.link.name not in ("identity", "sqrt") else abs(eta) + 0.5)
        whole = np.asarray(fam.loglik(y, e, d, extra, size))
        split = np.asarray(fam.loglik_eta(y, e, d, extra, size)) + (0.0 if rest is None else np.asarray(rest))
        np.testing.assert_allclose(split, whole, rtol=1e-14)
        if fam.name.startswith("truncated"):
            assert np.isneginf(whole[0]) and np.all(np.isfinite(whole[1:]))
        else:
            assert np.all(np.isfinite(whole))


def test_beta_loglik_splits_into_terms_with_eta_and_the_rest():
    fam = Beta()
    y = jnp.array([0.02, 0.3, 0.5, 0.97])
    d, extra = jnp.array([-1.0, 0.5, 3.0, 60.0]), jnp.zeros(0)
    rest = fam.loglik_rest(y, d, extra, None)
    assert float(fam.loglik_rest(jnp.zeros(1), d[:1], extra, None)[0]) == 0.0
    for eta in (-2.0, 0.1, 1.5):
        e = jnp.full(4, eta)
        whole = np.asarray(fam.loglik(y, e, d, extra, None))
        mu, phi = sps.expit(eta), np.exp(np.asarray(d))
        np.testing.assert_allclose(whole, st.beta.logpdf(np.asarray(y), mu * phi, (1 - mu) * phi), rtol=1e-10)
        np.testing.assert_allclose(np.asarray(fam.loglik_eta(y, e, d, extra, None) + rest), whole, rtol=1e-14)


def test_family_loglik_is_the_sum_of_its_parts_or_says_what_is_missing():
    @dataclasses.dataclass(frozen=True, repr=False)
    class Halves(Family):
        name = "halves"
        default_link = "identity"
        allowed_links = ("identity",)

        def loglik_eta(self, y, eta, disp_eta, extra, size):
            return -0.5 * (y - eta) ** 2

        def loglik_rest(self, y, disp_eta, extra, size):
            return jnp.full_like(y, -0.5 * np.log(2 * np.pi))

    @dataclasses.dataclass(frozen=True, repr=False)
    class Empty(Family):
        name = "empty"
        default_link = "identity"
        allowed_links = ("identity",)

    y, e = jnp.array([0.3, -1.2]), jnp.array([0.0, 0.5])
    np.testing.assert_allclose(np.asarray(Halves().loglik(y, e, None, None, None)),
                               st.norm.logpdf(np.asarray(y), np.asarray(e)), rtol=1e-14)
    with pytest.raises(NotImplementedError, match="Empty defines neither loglik nor loglik_eta"):
        Empty().loglik(y, e, None, None, None)
