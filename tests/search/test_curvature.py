"""RobustDARTS's curvature pieces: Hessian-vector products and power iteration against an explicitly built Hessian,
and the early-stopping rule on hand-made eigenvalue sequences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.search.curvature import (dominant_eigenvalue, early_stop_epoch, hessian_vector_product,
                                     largest_eigenvalue, local_average)


def quadratic_and_hessian(eigenvalues, seed=0):
    """``f(x) = 0.5 x^T H x + sum(sin x) * 0`` on a pytree of two leaves, with ``H`` of the given spectrum."""
    n = len(eigenvalues)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    h = q @ np.diag(eigenvalues) @ q.T

    def f(tree):
        x = jnp.concatenate([tree["a"].ravel(), tree["b"].ravel()])
        return 0.5 * x @ jnp.asarray(h, jnp.float32) @ x + jnp.sum(jnp.cos(x)) * 0.0

    x = {"a": jnp.ones((2, 3)), "b": jnp.zeros((n - 6,))}
    return f, x, h


def test_hessian_vector_product_is_exact():
    f, x, h = quadratic_and_hessian([3.0, -1.0, 0.5, 2.0, 0.1, -0.2, 1.0, 0.3])
    v = {"a": jnp.arange(6.0).reshape(2, 3), "b": jnp.array([1.0, -1.0])}
    hv = hessian_vector_product(f, x, v)
    flat = np.concatenate([np.arange(6.0), [1.0, -1.0]])
    np.testing.assert_allclose(np.concatenate([np.ravel(hv["a"]), hv["b"]]), h @ flat, rtol=1e-5, atol=1e-5)


def test_power_iteration_matches_the_explicit_hessian():
    spectrum = [4.0, -1.5, 0.5, 2.0, 0.1, -0.2, 1.0, 0.3]
    f, x, h = quadratic_and_hessian(spectrum)
    value, vec = jax.jit(lambda x: dominant_eigenvalue(f, x, jax.random.PRNGKey(0), 60))(x)
    assert float(value) == pytest.approx(max(np.linalg.eigvalsh(h), key=abs), rel=1e-3)
    assert float(largest_eigenvalue(f, x, jax.random.PRNGKey(1), 60)) == pytest.approx(4.0, rel=1e-3)
    # a negative dominant eigenvalue: the largest one is still found (the shifted second iteration)
    f, x, h = quadratic_and_hessian([-5.0, 1.0, 0.5, 0.2, 0.1, -0.2, 2.0, 0.3], seed=1)
    assert float(dominant_eigenvalue(f, x, jax.random.PRNGKey(0), 80)[0]) == pytest.approx(-5.0, rel=1e-3)
    assert float(largest_eigenvalue(f, x, jax.random.PRNGKey(0), 200)) == pytest.approx(2.0, rel=2e-2)


def test_early_stop_rule():
    flat = [1.0] * 30
    assert early_stop_epoch(flat) is None
    rising = [1.0] * 12 + [1.0 + 0.2 * i for i in range(1, 18)]
    # window 5, delta 4, factor 1.3, from epoch 10: the first epoch whose local average 4 epochs later is 1.3x its own
    stops = [(e, early_stop_epoch(rising[: e + 1])) for e in range(len(rising))]
    first = next((e, back) for e, back in stops if back is not None)
    e, back = first
    centre = e - 2
    assert back == centre - 4 and back >= 10
    assert local_average(rising, centre, 5) / local_average(rising, back, 5) > 1.3
    assert stops[e - 1][1] is None  # it fires first at epoch e
    assert early_stop_epoch(rising[: e + 1], start_epoch=30) is None
    # without the start epoch, a gentler rise fires where the ratio first passes the factor
    gentle = [1.0] * 5 + [1.0 + 0.1 * i for i in range(1, 25)]
    e = next(e for e in range(len(gentle)) if early_stop_epoch(gentle[: e + 1], start_epoch=0) is not None)
    back = early_stop_epoch(gentle[: e + 1], start_epoch=0)
    prefix = gentle[: e + 1]
    assert local_average(prefix, e - 2, 5) / local_average(prefix, back, 5) > 1.3
    prefix = gentle[:e]
    assert local_average(prefix, e - 3, 5) / local_average(prefix, back - 1, 5) <= 1.3
    with pytest.raises(ValueError, match="window >= 1"):
        early_stop_epoch(rising, window=0)
