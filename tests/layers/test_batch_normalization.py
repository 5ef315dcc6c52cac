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


# --- fuse_batch_normalization ------------------------------------------------------


class _ShiftedBatchNorm(keras.layers.BatchNormalization):
    """A user's subclass: its call differs, so it must be kept."""

    def call(self, inputs, training=None, mask=None):
        return super().call(inputs, training=training, mask=mask) + 1.0


def _user_model():
    """A Functional model with Keras batch norms at the top level and inside
    a nested Sequential model, one of them a subclass."""
    keras.utils.set_random_seed(0)
    inner = keras.Sequential(
        [
            keras.Input((5, 5, 4)),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False),
            keras.layers.ReLU(),
        ],
        name="block",
    )
    inputs = keras.Input((5, 5, 3))
    h = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    h = keras.layers.BatchNormalization(scale=False)(h)
    h = inner(h)
    h = _ShiftedBatchNorm()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(3)(keras.layers.BatchNormalization()(h))
    return keras.Model(inputs, outputs, name="user_model")


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def test_fuse_replaces_keras_batch_norms_and_copies_every_variable():
    model = _user_model()
    for seed in range(2):  # move the moving statistics off their initial values
        model(_batch(seed=seed), training=True)
    fused = kr.layers.fuse_batch_normalization(model)

    pairs = list(zip(_layers(model), _layers(fused), strict=True))
    kinds = [(type(a).__name__, type(b).__module__) for a, b in pairs]
    converted = [b for a, b in pairs if type(a) is keras.layers.BatchNormalization]
    assert len(converted) == 3  # two top-level, one nested; not the subclass
    assert all(type(b) is kr.layers.BatchNormalization for b in converted), kinds
    for a, b in pairs:
        if not isinstance(a, keras.layers.InputLayer):  # clones get new inputs
            assert a.name == b.name
        if type(a) is not keras.layers.BatchNormalization:
            assert type(b) is type(a)
        if isinstance(a, keras.layers.BatchNormalization):
            assert b.get_config() == a.get_config()
    assert len(fused.weights) == len(model.weights) == 20
    for a, b in zip(model.weights, fused.weights, strict=True):
        assert a is not b
        np.testing.assert_array_equal(b.numpy(), a.numpy(), err_msg=a.path)
    # The moved statistics were copied: inference gives the model's outputs.
    x = _batch(seed=5)
    np.testing.assert_allclose(fused(x), model(x), atol=2e-5)
    np.testing.assert_allclose(
        fused(x, training=True), model(x, training=True), atol=2e-5
    )
    for a, b in zip(model.weights, fused.weights, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5, err_msg=a.path)


def test_fused_copy_trains_as_the_model_and_leaves_it_alone():
    model = _user_model()
    fused = kr.layers.fuse_batch_normalization(model)
    before = [w.numpy().copy() for w in model.weights]
    x = np.concatenate([_batch(seed=s) for s in range(4)])
    y = np.arange(len(x)) % 3
    trained = []
    for net in (model, fused):
        net.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        net.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        trained.append([w.numpy() for w in net.weights])
    # Training the copy did not touch the model's variables.
    for a, b in zip(model.weights, trained[0], strict=True):
        np.testing.assert_array_equal(a.numpy(), b)
    # Both trained the same way, from the same start, away from it.
    for a, b, w in zip(*trained, model.weights, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4, err_msg=w.path)
    moved = [not np.allclose(a, b) for a, b in zip(before, trained[1], strict=True)]
    assert sum(moved) >= 20


def test_fuse_refuses_models_it_cannot_rebuild():
    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    model = _user_model()
    cases = [
        (Subclassed(), "In a subclassed model"),
        (kr.AdversarialModel(model), r"Fuse the base model before wrapping it"),
        ("model.keras", r"Received: model='model.keras' of type str"),
    ]
    for value, message in cases:
        with pytest.raises(TypeError, match=r"`model` must be a Sequential or "):
            kr.layers.fuse_batch_normalization(value)
        with pytest.raises(TypeError, match=message):
            kr.layers.fuse_batch_normalization(value)


def test_fuse_warns_when_there_is_nothing_to_fuse():
    model = keras.Sequential(
        [keras.Input((5, 5, 3)), _ShiftedBatchNorm(), keras.layers.Dense(2)]
    )
    with pytest.warns(UserWarning, match=r"has no keras.layers.BatchNormalization"):
        copy = kr.layers.fuse_batch_normalization(model)
    assert type(copy.layers[0]) is _ShiftedBatchNorm
    np.testing.assert_array_equal(copy(_batch()), model(_batch()))
