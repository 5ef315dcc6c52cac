"""Seeded random draws on JAX: Keras's own, and keys for loops of draws.

TensorFlow's module works around a slow sampler under XLA; on JAX,
`keras.random` draws with `jax.random` directly, so `uniform` and
`normal` are Keras's.
"""

import numbers

import jax
import keras
from jax import numpy as jnp

_INT32_MAX = 2**31 - 1


def uniform(shape, minval=0.0, maxval=1.0, dtype="float32", seed=None):
    """`keras.random.uniform`."""
    return keras.random.uniform(shape, minval, maxval, dtype=dtype, seed=seed)


def normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None):
    """`keras.random.normal`."""
    return keras.random.normal(shape, mean, stddev, dtype=dtype, seed=seed)


def key(seed):
    """A `jax.random` key from `seed`, for many draws with `uniform_from_key`.

    A loop that draws at each iteration takes one key before the loop and
    folds the iteration into it (`fold_in`), instead of advancing a
    `SeedGenerator` (a variable) at each iteration.

    Args:
        seed: A `keras.random.SeedGenerator` (advanced once), an integer,
            or `None` for a fresh seed from Keras's global generator.
    """
    if isinstance(seed, keras.random.SeedGenerator):
        data = seed.next()
    elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return jax.random.key(int(seed))
    elif seed is None:
        data = keras.random.randint((2,), 0, _INT32_MAX, dtype="int32")
    else:
        raise ValueError(
            "Argument `seed` must be an integer, a keras.random.SeedGenerator "
            f"or None. Received: seed={seed!r} (of type {type(seed).__name__})"
        )
    return jax.random.wrap_key_data(
        jnp.asarray(data).astype(jnp.uint32), impl="threefry2x32"
    )


def fold_in(key, data):
    """A new key from `key` and an integer `data` (e.g. a loop counter)."""
    return jax.random.fold_in(key, data)


def uniform_from_key(shape, key, dtype="float32"):
    """`U[0, 1)` draws of `shape` from a key made by `key` or `fold_in`."""
    return jax.random.uniform(key, tuple(shape), dtype=dtype)
