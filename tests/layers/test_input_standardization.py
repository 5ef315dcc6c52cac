import keras
import numpy as np
import pytest

from keras_robust.layers import InputStandardization

MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2470, 0.2435, 0.2616]


def _images(shape=(4, 5, 5, 3), seed=0):
    return np.random.default_rng(seed).random(shape).astype("float32")


def test_standardizes_each_channel():
    x = _images()
    y = keras.ops.convert_to_numpy(InputStandardization(MEAN, STD)(x))
    expected = (x - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    for channel in range(3):
        assert y[..., channel].mean() == pytest.approx(
            (x[..., channel].mean() - MEAN[channel]) / STD[channel], rel=1e-4
        )


def test_channels_first_axis():
    x = _images((2, 3, 4, 4))
    y = keras.ops.convert_to_numpy(InputStandardization(MEAN, STD, axis=1)(x))
    shape = (1, 3, 1, 1)
    expected = (x - np.reshape(MEAN, shape)) / np.reshape(STD, shape)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_scalar_mean_and_std_broadcast():
    x = _images((2, 6))
    y = keras.ops.convert_to_numpy(InputStandardization(0.5, 0.25)(x))
    np.testing.assert_allclose(y, (x - 0.5) / 0.25, rtol=1e-5, atol=1e-6)


def test_scalar_std_with_per_channel_mean():
    x = _images()
    y = keras.ops.convert_to_numpy(InputStandardization(MEAN, 0.5)(x))
    np.testing.assert_allclose(y, (x - np.array(MEAN)) / 0.5, rtol=1e-5, atol=1e-6)


def test_integer_pixels_are_cast():
    x = np.arange(6, dtype="uint8").reshape(1, 2, 3)
    y = InputStandardization([1.0, 2.0, 3.0], 2.0)(x)
    assert y.dtype == "float32"
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(y), (x - np.array([1.0, 2.0, 3.0])) / 2.0
    )


def test_mixed_float16_policy(restore_dtype_policy):
    keras.config.set_dtype_policy("mixed_float16")
    layer = InputStandardization(MEAN, STD)
    x = _images()
    y = layer(x)
    assert layer.compute_dtype == "float16"
    assert y.dtype == "float16"
    expected = (x - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(y).astype("float32"), expected, atol=1e-2
    )


@pytest.mark.parametrize(
    "std", [0.0, -1.0, float("inf"), float("nan"), [0.2, 0.0, 0.3], [[0.2]], "a"]
)
def test_invalid_std_raises(std):
    with pytest.raises(ValueError, match=r"`std`.*Received: std="):
        InputStandardization(0.5, std)


@pytest.mark.parametrize("mean", [float("nan"), float("inf"), [0.1, float("nan")]])
def test_non_finite_mean_raises(mean):
    with pytest.raises(ValueError, match=r"`mean`.*Received: mean="):
        InputStandardization(mean, 0.5)


def test_mean_and_std_length_mismatch_raises():
    with pytest.raises(ValueError, match=r"`mean` and `std`.*Received: mean="):
        InputStandardization([0.1, 0.2], [0.3, 0.4, 0.5])


def test_channel_count_mismatch_raises_in_build():
    layer = InputStandardization(MEAN, STD)
    with pytest.raises(ValueError, match=r"3 values but the input has 4 channels"):
        layer(_images((2, 5, 5, 4)))


def test_invalid_axis_raises():
    with pytest.raises(ValueError, match=r"Received: axis=1.5"):
        InputStandardization(0.5, 0.5, axis=1.5)
    with pytest.raises(ValueError, match=r"Received: axis=4"):
        InputStandardization(MEAN, STD, axis=4)(_images())


def test_get_config_round_trip():
    layer = InputStandardization(np.array(MEAN), STD, axis=-1, name="standardize")
    config = layer.get_config()
    assert config["mean"] == pytest.approx(MEAN)
    assert config["std"] == pytest.approx(STD)
    assert config["axis"] == -1
    clone = InputStandardization.from_config(config)
    assert clone.get_config() == config
    x = _images()
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(clone(x)), keras.ops.convert_to_numpy(layer(x))
    )


def test_keras_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((5, 5, 3)),
            InputStandardization(MEAN, STD),
            keras.layers.Flatten(),
            keras.layers.Dense(4),
        ]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[0], InputStandardization)
    x = _images()
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
