"""Behaviour shared by every loss: targets, dtypes, errors, saving, fit."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_robust import losses

ALL_LOSSES = [
    losses.SoftTargetCrossentropy,
    losses.LabelSmoothingCrossentropy,
    losses.MaxSupCrossentropy,
    losses.BootstrappingCrossentropy,
    losses.NormalizedCrossentropy,
    losses.NormalizedFocalCrossentropy,
    losses.GeneralizedCrossentropy,
    losses.NormalizedGeneralizedCrossentropy,
    losses.ReverseCrossentropy,
    losses.MeanAbsoluteError,
    losses.SymmetricCrossentropy,
    losses.ActivePassiveLoss,
]
IDS = [cls.__name__ for cls in ALL_LOSSES]


def _logits(n=8, k=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, k)).astype("float32") * 2


def _labels(n=8, k=5, seed=1):
    return np.random.default_rng(seed).integers(0, k, size=n)


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=IDS)
def test_sparse_column_and_one_hot_targets_agree(cls):
    loss = cls()
    z, y = _logits(), _labels()
    sparse = float(loss(y, z))
    column = float(loss(y[:, None], z))
    one_hot = float(loss(np.eye(5)[y], z))
    assert np.isfinite(sparse)
    np.testing.assert_allclose(column, sparse, rtol=1e-6)
    np.testing.assert_allclose(one_hot, sparse, rtol=1e-6)


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=IDS)
def test_reductions_and_sample_weight(cls):
    z, y = _logits(), _labels()
    per_example = keras.ops.convert_to_numpy(cls(reduction=None)(y, z))
    assert per_example.shape == (8,)
    np.testing.assert_allclose(float(cls()(y, z)), per_example.mean(), rtol=1e-5)
    np.testing.assert_allclose(
        float(cls(reduction="sum")(y, z)), per_example.sum(), rtol=1e-5
    )
    weights = np.linspace(0.0, 2.0, 8).astype("float32")
    np.testing.assert_allclose(
        float(cls()(y, z, sample_weight=weights)),
        (weights * per_example).sum() / 8,
        rtol=1e-5,
    )


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=IDS)
def test_computes_in_float32_from_half_precision_logits(cls):
    z, y = _logits(), _labels()
    value_16 = cls()(y, tf.constant(z, dtype="float16"))
    value_bf16 = cls()(y, tf.constant(z, dtype="bfloat16"))
    value_32 = cls()(y, tf.constant(z.astype("float16").astype("float32")))
    assert value_16.dtype == "float32"
    assert value_bf16.dtype == "float32"
    np.testing.assert_allclose(float(value_16), float(value_32), rtol=1e-6)


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=IDS)
def test_nan_logits_give_nan_loss(cls):
    z, y = _logits(), _labels()
    z[3, 2] = np.nan
    assert np.isnan(float(cls()(y, z)))


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=IDS)
def test_from_logits_false_matches_logits(cls):
    z, y = _logits(), _labels()
    probs = tf.nn.softmax(z).numpy()
    np.testing.assert_allclose(
        float(cls(from_logits=False)(y, probs)), float(cls()(y, z)), rtol=1e-4
    )


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=IDS)
def test_warns_when_inputs_look_like_the_other_kind(cls):
    z, y = _logits(), _labels()
    probs = tf.nn.softmax(z).numpy()
    with pytest.warns(UserWarning, match="looks like probabilities"):
        cls()(y, probs)
    with pytest.warns(UserWarning, match="looks like logits"):
        cls(from_logits=False)(y, z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls()(y, z)
        cls(from_logits=False)(y, probs)


@pytest.mark.tensorflow_only(
    reason="only TensorFlow marks a traced softmax output (docs/backends.md)"
)
def test_warns_at_trace_time_for_a_softmax_output():
    loss = losses.NormalizedCrossentropy()

    @tf.function
    def step(y, z):
        return loss(y, tf.nn.softmax(z))

    with pytest.warns(UserWarning, match="looks like probabilities"):
        step(tf.constant(_labels()), tf.constant(_logits()))


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=IDS)
def test_labels_out_of_range_raise(cls):
    z = _logits()
    for bad in (5, -1):
        y = _labels()
        y[2] = bad
        with pytest.raises(ValueError, match=r"y_true.*Received"):
            cls()(y, z)


@pytest.mark.tensorflow_only(
    reason="a compiled JAX step cannot fail (docs/backends.md)"
)
def test_labels_out_of_range_fail_inside_a_compiled_step():
    loss = losses.GeneralizedCrossentropy()
    step = tf.function(lambda y, z: loss(y, z))
    y = _labels()
    y[0] = 7
    with pytest.raises(tf.errors.InvalidArgumentError, match="y_true"):
        step(tf.constant(y), tf.constant(_logits()))


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=IDS)
def test_mismatched_target_shape_raises(cls):
    z = _logits()
    with pytest.raises(ValueError, match=r"y_true.*Received: y_true.shape"):
        cls()(np.eye(4)[_labels(k=4)], z)
    with pytest.raises(ValueError, match=r"Received: y_true.shape"):
        cls()(np.zeros((8, 5, 2)), z)


def test_invalid_from_logits_raises():
    with pytest.raises(ValueError, match=r"Received: from_logits='yes'"):
        losses.NormalizedCrossentropy(from_logits="yes")


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=IDS)
def test_serialization_round_trip(cls):
    loss = cls(from_logits=False, reduction="sum")
    config = keras.saving.serialize_keras_object(loss)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is cls
    assert restored.get_config() == loss.get_config()
    z, y = tf.nn.softmax(_logits()).numpy(), _labels()
    np.testing.assert_allclose(float(restored(y, z)), float(loss(y, z)), rtol=1e-6)


def _toy_problem(n=256, k=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, 6)) * 3
    y = rng.integers(0, k, size=n)
    x = (centers[y] + rng.normal(size=(n, 6))).astype("float32")
    return x, y


def _small_model(k=4):
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(k),
        ]
    )


@pytest.mark.parametrize("cls", ALL_LOSSES, ids=IDS)
def test_fit_learns_and_keras_file_round_trip(cls, tmp_path):
    keras.utils.set_random_seed(0)
    x, y = _toy_problem()
    model = _small_model()
    model.compile(
        optimizer=keras.optimizers.Adam(0.02), loss=cls(), metrics=["accuracy"]
    )
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9

    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored.loss) is cls
    assert restored.loss.get_config() == model.loss.get_config()
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )
    np.testing.assert_allclose(
        restored.evaluate(x, y, verbose=0)[0],
        model.evaluate(x, y, verbose=0)[0],
        rtol=1e-5,
    )


def test_fit_under_mixed_precision(restore_dtype_policy):
    keras.config.set_dtype_policy("mixed_float16")
    keras.utils.set_random_seed(0)
    x, y = _toy_problem()
    model = _small_model()
    assert model.layers[-1].compute_dtype == "float16"
    model.compile(
        optimizer=keras.optimizers.Adam(0.02),
        loss=losses.ActivePassiveLoss("nce", "rce"),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["accuracy"][-1] > 0.8
