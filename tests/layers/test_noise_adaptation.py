import keras
import numpy as np
import pytest
from keras import ops

from keras_robust.layers import NoiseAdaptation

T3 = np.array([[0.7, 0.3, 0.0], [0.1, 0.8, 0.1], [0.0, 0.0, 1.0]])


def _logits(n=8, k=3, seed=0):
    return (3.0 * np.random.default_rng(seed).standard_normal((n, k))).astype("float32")


def _numpy(x):
    return ops.convert_to_numpy(x)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_identity_transition_returns_log_softmax():
    z = _logits()
    out = _numpy(NoiseAdaptation(3)(z))
    np.testing.assert_allclose(out, _numpy(ops.log_softmax(z)), atol=1e-5)


@pytest.mark.parametrize("trainable", [False, True])
def test_output_is_log_of_noisy_distribution(trainable):
    z = _logits()
    out = NoiseAdaptation(3, T3, trainable=trainable)(z)
    assert out.dtype == "float32"
    # Learnable mode initialises log(clip(T, 1e-6, 1)): zeros become ~1e-6.
    atol = 1e-5 if trainable else 1e-6
    np.testing.assert_allclose(_numpy(ops.softmax(out)), _softmax(z) @ T3, atol=atol)
    # The outputs are log-probabilities, already normalised.
    np.testing.assert_allclose(np.exp(_numpy(out)).sum(axis=-1), 1.0, atol=1e-5)


def test_extreme_logits_stay_finite():
    z = np.array([[80.0, -80.0, 0.0], [-1e4, 1e4, 0.0]], dtype="float32")
    out = _numpy(NoiseAdaptation(3, T3)(z))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(np.exp(out), _softmax(z) @ T3, atol=1e-6)


def test_gradients_finite_when_a_class_is_never_a_noisy_label():
    # Column 2 of T is all zeros: class 2 never occurs as a noisy label.
    transition = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(3), NoiseAdaptation(3, transition)]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(
        _logits(16), np.arange(16) % 2, epochs=2, batch_size=16, verbose=0
    )
    assert np.all(np.isfinite(history.history["loss"]))
    assert all(np.all(np.isfinite(_numpy(w))) for w in model.weights)


def test_float16_input_gives_float32_output(restore_dtype_policy):
    keras.config.set_dtype_policy("mixed_float16")
    for trainable in (False, True):
        layer = NoiseAdaptation(3, T3, trainable=trainable)
        out = layer(_logits().astype("float16"))
        assert out.dtype == "float32"
        assert all(w.dtype == "float32" for w in layer.weights)


def test_fixed_mode_weights():
    layer = NoiseAdaptation(3, T3)
    layer.build((None, 3))
    assert layer.trainable_weights == []
    assert len(layer.non_trainable_weights) == 1
    np.testing.assert_allclose(_numpy(layer.transition), T3, atol=1e-7)


def test_learnable_mode_initialisation():
    layer = NoiseAdaptation(3, T3, trainable=True)
    layer.build((None, 3))
    assert len(layer.trainable_weights) == 1
    np.testing.assert_allclose(
        _numpy(layer.trainable_weights[0]),
        np.log(np.clip(T3, 1e-6, 1.0)),
        rtol=1e-6,
    )
    np.testing.assert_allclose(_numpy(layer.transition), T3, atol=1e-5)
    identity = NoiseAdaptation(4, trainable=True)
    identity.build((None, 4))
    np.testing.assert_allclose(_numpy(identity.transition), np.eye(4), atol=1e-5)


def test_learnable_transition_moves_towards_the_true_noise():
    # Clean inputs are one-hot class codes; a frozen base model classifies
    # them with ~99.9% confidence. Labels of class 0 flip to class 1 with
    # probability 0.4, so the learned T[0, 1] should rise towards 0.4.
    num_classes, per_class = 3, 200
    clean = np.repeat(np.arange(num_classes), per_class)
    x = np.eye(num_classes, dtype="float32")[clean]
    rng = np.random.default_rng(0)
    noisy = clean.copy()
    noisy[(clean == 0) & (rng.random(clean.size) < 0.4)] = 1
    true_rate = np.mean(noisy[clean == 0] == 1)

    base = keras.layers.Dense(num_classes, trainable=False)
    base.build((None, num_classes))
    base.set_weights([8.0 * np.eye(num_classes), np.zeros(num_classes)])
    start = np.full((num_classes, num_classes), 0.05)
    np.fill_diagonal(start, 0.9)
    noise = NoiseAdaptation(num_classes, start, trainable=True)
    model = keras.Sequential([keras.Input((num_classes,)), base, noise])
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, noisy, epochs=15, batch_size=100, verbose=0)

    learned = _numpy(noise.transition)
    np.testing.assert_allclose(learned.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(learned >= 0)
    assert learned[0, 1] > start[0, 1]
    assert abs(learned[0, 1] - true_rate) < 0.05
    # Pairs without noise lose their off-diagonal mass.
    assert learned[1, 0] < start[1, 0]
    assert learned[2, 0] < start[2, 0]
    # The frozen base model did not change.
    np.testing.assert_array_equal(_numpy(base.kernel), 8.0 * np.eye(num_classes))


@pytest.mark.parametrize(
    "transition",
    [
        np.ones((3, 3)),
        np.array([[1.2, -0.2, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
        np.eye(2),
        np.eye(3)[None],
        np.full((3, 3), np.nan),
        [[1.0, 0.0], [0.0]],
    ],
)
@pytest.mark.parametrize("trainable", [False, True])
def test_invalid_transition_raises(transition, trainable):
    with pytest.raises(ValueError, match=r"`transition`.*Received: transition="):
        NoiseAdaptation(3, transition, trainable=trainable)


def test_row_sum_tolerance():
    nearly = np.eye(3)
    nearly[0, 0] = 1.0 + 5e-5
    NoiseAdaptation(3, nearly)
    nearly[0, 0] = 1.0 + 5e-3
    with pytest.raises(ValueError, match="row-stochastic"):
        NoiseAdaptation(3, nearly)


@pytest.mark.parametrize("num_classes", [1, 0, 2.5, True, "3"])
def test_invalid_num_classes_raises(num_classes):
    with pytest.raises(ValueError, match=r"Received: num_classes="):
        NoiseAdaptation(num_classes)


def test_input_dimension_mismatch_raises():
    with pytest.raises(ValueError, match="num_classes=4"):
        NoiseAdaptation(4)(_logits(k=3))


@pytest.mark.parametrize("trainable", [False, True])
def test_get_config_round_trip(trainable):
    layer = NoiseAdaptation(3, T3, trainable=trainable, name="noise")
    config = layer.get_config()
    assert config["num_classes"] == 3
    assert config["transition"] == T3.tolist()
    assert config["trainable"] is trainable
    clone = NoiseAdaptation.from_config(config)
    assert clone.get_config() == config
    assert clone.learnable is trainable
    z = _logits()
    np.testing.assert_allclose(_numpy(clone(z)), _numpy(layer(z)), atol=1e-7)
    assert NoiseAdaptation(3).get_config()["transition"] is None


def test_frozen_learnable_layer_round_trip():
    layer = NoiseAdaptation(3, trainable=True)
    layer.trainable = False
    clone = NoiseAdaptation.from_config(layer.get_config())
    assert clone.learnable
    assert not clone.trainable
    fixed = NoiseAdaptation(3)
    fixed.trainable = True
    assert not NoiseAdaptation.from_config(fixed.get_config()).learnable


@pytest.mark.parametrize("trainable", [False, True])
def test_keras_save_and_load(tmp_path, trainable):
    keras.utils.set_random_seed(0)
    noise = NoiseAdaptation(3, T3, trainable=trainable)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), noise])
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = np.random.default_rng(0).standard_normal((32, 4)).astype("float32")
    model.fit(x, np.arange(32) % 3, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    loaded_noise = loaded.layers[-1]
    assert isinstance(loaded_noise, NoiseAdaptation)
    assert loaded_noise.learnable is trainable
    np.testing.assert_array_equal(
        _numpy(loaded_noise.transition), _numpy(noise.transition)
    )
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    if trainable:
        # Training moved the learnable matrix away from its initial value.
        assert not np.allclose(_numpy(noise.transition), T3, atol=1e-3)
