"""Input gradients: through the tape, and from a loss's written-out derivative."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_robust import backend

pytestmark = pytest.mark.tensorflow_only(
    reason="TensorFlow's backend module, in its execution modes; "
    "tests/backend/test_jax_backend.py tests JAX's"
)


def _model_and_inputs():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(3),
        ]
    )
    x = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")
    return model, x


def test_vjp_with_the_loss_derivative_equals_the_tape_gradient():
    model, x = _model_and_inputs()
    one_hot = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2]]

    def loss(logits):
        return -tf.reduce_sum(one_hot * tf.nn.log_softmax(logits), axis=-1)

    def head(logits):
        # The cross-entropy's derivative by the logits: softmax − one-hot.
        return loss(logits), tf.nn.softmax(logits) - one_hot

    expected_loss, expected = backend.value_and_input_gradient(
        lambda inputs: loss(model(inputs)), tf.constant(x)
    )
    values, gradient = backend.value_and_input_vjp(model, head, tf.constant(x))
    np.testing.assert_allclose(values.numpy(), expected_loss.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gradient.numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)
    assert np.abs(gradient.numpy()).sum() > 0


def test_vjp_records_no_gradient_into_an_outer_tape_nor_weight_gradients():
    model, x = _model_and_inputs()
    x = tf.constant(x)
    with tf.GradientTape(persistent=True) as outer:
        outer.watch(x)
        (values, _), gradient = backend.value_and_input_vjp(
            model, lambda logits: ((logits, logits), tf.ones_like(logits)), x
        )
        total = tf.reduce_sum(values) + tf.reduce_sum(gradient)
    assert outer.gradient(total, x) is None
    assert all(g is None for g in outer.gradient(total, model.trainable_variables))


def test_vjp_of_an_input_independent_function_is_zero():
    x = tf.ones((2, 3))
    values, gradient = backend.value_and_input_vjp(
        lambda inputs: tf.zeros((2, 4)), lambda out: (out, tf.ones_like(out)), x
    )
    np.testing.assert_array_equal(gradient.numpy(), np.zeros((2, 3)))
    assert values.shape == (2, 4)


def test_gather_takes_rows_by_index():
    params = tf.constant(np.arange(12, dtype="float32").reshape(6, 2))
    index = tf.constant([[5, 0], [2, 2]])
    np.testing.assert_array_equal(
        backend.gather(params, index).numpy(), params.numpy()[index.numpy()]
    )
