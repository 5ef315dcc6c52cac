"""Selecting and gathering values on JAX."""

from jax import numpy as jnp

from keras_robust.backend.common import check_selection_rank


def select(condition, a, b):
    """`a` where `condition` holds, else `b`: whole examples for a `[N]` one.

    Args:
        condition: Boolean array, of rank 0, rank 1 (`[N]`, selecting whole
            examples along the first axis) or the rank and shape of `a`.
        a: Values where `condition` holds.
        b: Values elsewhere, the shape and dtype of `a`.

    Raises:
        ValueError: If the rank of `condition` is none of the above.
    """
    condition = jnp.asarray(condition)
    a = jnp.asarray(a)
    b = jnp.asarray(b, dtype=a.dtype)
    check_selection_rank(condition.ndim, a.ndim, condition.shape, a.shape)
    if condition.ndim == 1 and a.ndim > 1:
        condition = condition.reshape((-1,) + (1,) * (a.ndim - 1))
    return jnp.where(condition, a, b)


def gather(params, indices):
    """`params[indices]` along the first axis, for indices known to be valid."""
    return jnp.take(params, indices, axis=0)
