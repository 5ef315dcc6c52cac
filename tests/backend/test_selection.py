import numpy as np
import pytest
import tensorflow as tf

from keras_robust import backend

pytestmark = pytest.mark.tensorflow_only(
    reason="TensorFlow's backend module, in its execution modes; "
    "tests/backend/test_jax_backend.py tests JAX's"
)


def _values(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(4, 3, 2)).astype("float32")
    b = rng.normal(size=(4, 3, 2)).astype("float32")
    return a, b


def test_select_per_example_takes_whole_examples():
    a, b = _values()
    mask = np.array([True, False, True, False])
    selected = backend.select(mask, a, b).numpy()
    np.testing.assert_array_equal(selected, np.where(mask[:, None, None], a, b))


def test_select_full_shape_and_scalar_conditions():
    a, b = _values(1)
    mask = a > 0
    np.testing.assert_array_equal(
        backend.select(mask, a, b).numpy(), np.where(mask, a, b)
    )
    np.testing.assert_array_equal(backend.select(True, a, b).numpy(), a)
    np.testing.assert_array_equal(backend.select(False, a, b).numpy(), b)


def test_select_gradient_flows_to_the_chosen_values():
    a, b = (tf.constant(v) for v in _values(2))
    mask = tf.constant([True, False, False, True])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([a, b])
        total = tf.reduce_sum(backend.select(mask, a, b))
    expected = np.broadcast_to(mask.numpy()[:, None, None], a.shape).astype("float32")
    np.testing.assert_array_equal(tape.gradient(total, a).numpy(), expected)
    np.testing.assert_array_equal(tape.gradient(total, b).numpy(), 1 - expected)


def test_select_rejects_a_broadcasting_condition():
    a, b = _values()
    with pytest.raises(ValueError, match="condition"):
        backend.select(np.ones((4, 3), dtype=bool), a, b)


def test_keys_fold_in_loop_counters_reproducibly():
    key = backend.random.key(7)
    first = backend.random.uniform_from_key((3, 2), backend.random.fold_in(key, 0))
    again = backend.random.uniform_from_key((3, 2), backend.random.fold_in(key, 0))
    other = backend.random.uniform_from_key((3, 2), backend.random.fold_in(key, 1))
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.allclose(first.numpy(), other.numpy())
    assert np.all((first.numpy() >= 0) & (first.numpy() < 1))


def test_an_unseeded_key_works_inside_a_compiled_function():
    @tf.function
    def draw():
        return backend.random.uniform_from_key((2,), backend.random.key(None))

    assert draw().shape == (2,)
