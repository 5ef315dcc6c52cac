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


def expected_traces(*calls):
    """How often a compiled batch function traces for these calls, each
    `(number of examples, batch_size)` of an attack or of `predict_logits`:
    once on TensorFlow (any batch size); on JAX once per size the calls' batches
    run at (`keras_robust.backend.jax.gradients.padded_batches`: every batch
    of a call, and every subset of one that APGD-T attacks, runs at one
    size)."""
    if keras.backend.backend() != "jax":
        return 1
    from keras_robust.backend.jax.gradients import padded_batches, padded_size

    sizes = set()
    for count, batch_size in calls:
        with padded_batches(batch_size, count):
            sizes |= {
                padded_size(min(batch_size, count - start))
                for start in range(0, count, batch_size)
            }
    return len(sizes)


def loss_and_weight_gradients(loss_fn, variables):
    """`loss_fn()` (a scalar) and its gradients by `variables`, as NumPy."""
    loss, _, gradients = backend.loss_and_gradients(
        lambda: (loss_fn(), ()), list(variables)
    )
    return float(loss), [keras.ops.convert_to_numpy(g) for g in gradients]
