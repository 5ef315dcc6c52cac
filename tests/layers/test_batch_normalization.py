"""The fused BatchNormalization computes what keras.layers.BatchNormalization
computes: outputs, gradients and moving statistics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr


def _pair(**kwargs):
    fused = kr.layers.BatchNormalization(**kwargs)
    reference = keras.layers.BatchNormalization(**kwargs)
    return fused, reference


def _batch(shape=(8, 5, 5, 3), seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(2.0, 3.0, size=shape).astype("float32")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"momentum": 0.9, "epsilon": 1e-5},
        {"center": False},
        {"scale": False},
    ],
    ids=["default", "pytorch-constants", "no-center", "no-scale"],
)
def test_training_and_inference_match_keras(kwargs):
    fused, reference = _pair(**kwargs)
    for step in range(3):
        x = _batch(seed=step)
        np.testing.assert_allclose(
            fused(x, training=True), reference(x, training=True), atol=2e-5
        )
    np.testing.assert_allclose(
        fused.moving_mean.numpy(), reference.moving_mean.numpy(), atol=1e-5
    )
    np.testing.assert_allclose(
        fused.moving_variance.numpy(), reference.moving_variance.numpy(), rtol=1e-5
    )
    x = _batch(seed=9)
    np.testing.assert_allclose(fused(x), reference(x), atol=2e-5)
    # The moving statistics moved: inference differs from training.
    assert not np.allclose(fused(x), fused(x, training=True), atol=1e-2)


@pytest.mark.tensorflow_only(
    reason="TensorFlow's fused batch-norm op, under tf.GradientTape"
)
def test_gradients_match_keras():
    fused, reference = _pair()
    x = tf.constant(_batch())
    weights = tf.constant(_batch(seed=1))
    gradients = []
    for layer in (fused, reference):
        layer.build(x.shape)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * weights)
        gradients.append(tape.gradient(loss, [x, layer.gamma, layer.beta]))
    for a, b in zip(*gradients, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_frozen_layer_uses_the_moving_statistics():
    fused, reference = _pair()
    x = _batch()
    fused(x, training=True)
    reference(x, training=True)
    fused.trainable = reference.trainable = False
    before = fused.moving_mean.numpy().copy()
    np.testing.assert_allclose(
        fused(x, training=True), reference(x, training=True), atol=2e-5
    )
    np.testing.assert_array_equal(fused.moving_mean.numpy(), before)


@pytest.mark.parametrize(
    "shape, axis", [((8, 6), -1), ((8, 3, 5, 5), 1), ((4, 3, 3, 3, 2), -1)]
)
def test_other_layouts_take_keras_path(shape, axis):
    fused, reference = _pair(axis=axis)
    x = _batch(shape)
    np.testing.assert_allclose(
        fused(x, training=True), reference(x, training=True), atol=2e-5
    )
    np.testing.assert_allclose(fused(x), reference(x), atol=2e-5)


@pytest.mark.tensorflow_only(
    reason="TensorFlow's fused batch-norm op, under tf.function"
)
def test_compiled_and_xla_match_eager():
    fused, _ = _pair()
    x = tf.constant(_batch())
    fused(x)
    eager = fused(x, training=False).numpy()
    for jit in (False, True):
        compiled = tf.function(lambda t: fused(t, training=False), jit_compile=jit)
        np.testing.assert_allclose(compiled(x), eager, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_matches_keras(policy, restore_dtype_policy):
    keras.config.set_dtype_policy(policy)
    fused, reference = _pair()
    x = _batch()
    a, b = fused(x, training=True), reference(x, training=True)
    assert a.dtype == b.dtype == policy.split("_")[1]
    np.testing.assert_allclose(
        np.asarray(a, "float32"), np.asarray(b, "float32"), atol=5e-2
    )
    assert fused.moving_mean.dtype == "float32"
    np.testing.assert_allclose(
        fused.moving_mean.numpy(), reference.moving_mean.numpy(), atol=2e-2
    )


def test_saved_model_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((5, 5, 3)),
            keras.layers.Conv2D(4, 3),
            kr.layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    x = _batch()
    model(x, training=True)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.layers[1], kr.layers.BatchNormalization)
    assert loaded.layers[1].get_config()["epsilon"] == 1e-5
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
