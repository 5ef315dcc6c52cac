"""Helpers for tests that run on every Keras backend."""

import keras
import numpy as np

from keras_robust import backend


def value_and_gradient(fn, x):
    """`fn(x)` and the gradient of its sum by `x`, as NumPy, on any backend."""
    value, gradient = backend.value_and_input_gradient(
        fn, keras.ops.convert_to_tensor(np.asarray(x))
    )
    return keras.ops.convert_to_numpy(value), keras.ops.convert_to_numpy(gradient)


def compiled(fn):
    """`fn` compiled by the backend: `tf.function`, or `jax.jit` on JAX."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    import tensorflow as tf

    return tf.function(fn)


def expected_traces(*batch_sizes):
    """How often an attack's compiled batch function traces for batches of
    these sizes: once on TensorFlow (any batch size), once per padded size
    on JAX (`keras_robust.backend.jax.gradients.padded_size`)."""
    if keras.backend.backend() != "jax":
        return 1
    from keras_robust.backend.jax.gradients import padded_size

    return len({padded_size(size) for size in batch_sizes})


def loss_and_weight_gradients(loss_fn, variables):
    """`loss_fn()` (a scalar) and its gradients by `variables`, as NumPy."""
    loss, _, gradients = backend.loss_and_gradients(
        lambda: (loss_fn(), ()), list(variables)
    )
    return float(loss), [keras.ops.convert_to_numpy(g) for g in gradients]
