"""Seeded random draws that stay fast under XLA.

`keras.random.uniform`/`normal` call TensorFlow's stateless samplers with
the default `alg="auto_select"`. Under XLA on CPU that choice compiles to
one slow loop fusion: drawing a CIFAR batch of noise (64×32×32×3) took about
150 ms inside a `jit_compile=True` step, against about 5 ms with
`alg="philox"`; that is a tenth of a PGD-10 training step
(benchmarks/RESULTS.md). `auto_select` resolves to Philox anyway, so naming
it changes no value: the draws equal `keras.random`'s for the same seed,
eagerly, in graph mode and under XLA. (As with `keras.random`, XLA's Philox
stream differs from the TensorFlow kernel's, so a step draws other values
with `jit_compile=True`.)
"""

import numbers

import keras
import tensorflow as tf

_ALGORITHM = "philox"
# `tf.random.Algorithm.PHILOX`, as the sampling kernels number it.
_PHILOX = 1
_INT32_MAX = 2**31 - 1


def _seed(seed):
    """The `[2]` int32 seed of one draw, advancing a `SeedGenerator`.

    Mirrors Keras' own seeding: a `SeedGenerator` yields its next state,
    folded into int32 as Keras folds it; an integer `s` is the fixed seed
    `[s, 0]`. Returns `None` for `seed=None` (no generator to draw from).
    """
    if isinstance(seed, keras.random.SeedGenerator):
        state = tf.cast(seed.next(), tf.int64)
    elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        state = tf.constant([int(seed), 0], dtype=tf.int64)
    elif seed is None:
        return None
    else:
        raise ValueError(
            "Argument `seed` must be an integer, a keras.random.SeedGenerator "
            f"or None. Received: seed={seed!r} (of type {type(seed).__name__})"
        )
    return tf.cast(tf.math.floormod(state, _INT32_MAX - 1), tf.int32)


def uniform(shape, minval=0.0, maxval=1.0, dtype="float32", seed=None):
    """`keras.random.uniform` on the Philox generator (see module docstring)."""
    draw = _seed(seed)
    if draw is None:
        return keras.random.uniform(shape, minval, maxval, dtype=dtype)
    return tf.random.stateless_uniform(
        shape,
        seed=draw,
        minval=tf.cast(minval, dtype),
        maxval=tf.cast(maxval, dtype),
        dtype=dtype,
        alg=_ALGORITHM,
    )


def normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None):
    """`keras.random.normal` on the Philox generator (see module docstring)."""
    draw = _seed(seed)
    if draw is None:
        return keras.random.normal(shape, mean, stddev, dtype=dtype)
    return tf.random.stateless_normal(
        shape, seed=draw, mean=mean, stddev=stddev, dtype=dtype, alg=_ALGORITHM
    )


def key(seed):
    """A key from `seed`, for many draws with `uniform_from_key`.

    A loop that draws at each iteration takes one key before the loop and
    folds the iteration into it (`fold_in`), instead of advancing a
    `SeedGenerator` at each iteration: the generator's state is a variable,
    and reading and writing it orders every iteration's ops behind it. The
    key is Philox's own key and counter, scrambled from the seed once here,
    so a draw inside the loop is one sampling operation, where
    `tf.random.stateless_uniform` scrambles its seed again with about twenty
    small operations at each call.

    Returns:
        `(key, counter)`: uint64 tensors `[1]` and `[2]`.
    """
    draw = _seed(seed)
    if draw is None:
        # Unseeded: a fresh seed from TensorFlow's global generator.
        draw = tf.random.uniform([2], maxval=_INT32_MAX, dtype=tf.int32)
    return tuple(tf.raw_ops.StatelessRandomGetKeyCounter(seed=draw))


def fold_in(key, data):
    """A new key from `key` and an integer `data` (e.g. a loop counter).

    It adds `data` to the high word of Philox's 128-bit counter. A draw of
    `n` values advances the low word from the key's own by about `n / 4`,
    so keys that differ in `data` draw from disjoint blocks of Philox's
    stream: the draws are independent.
    """
    philox_key, counter = key
    step = tf.stack([tf.constant(0, tf.uint64), tf.cast(data, tf.uint64)])
    return philox_key, counter + step


def uniform_from_key(shape, key, dtype="float32"):
    """`U[0, 1)` draws of `shape` from a key made by `key` or `fold_in`."""
    philox_key, counter = key
    return tf.raw_ops.StatelessRandomUniformV2(
        shape=shape, key=philox_key, counter=counter, alg=_PHILOX, dtype=dtype
    )
