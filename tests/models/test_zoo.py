"""The model zoo: reference parameter counts, [0, 1] inputs, bad arguments."""

import keras
import numpy as np
import pytest

import keras_robust as kr
from keras_robust.layers import InputStandardization


def trainable_parameters(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        # PyTorch reference models' parameter counts (their BN running
        # statistics are buffers, Keras's are non-trainable weights).
        ("resnet18", {}, 11_173_962),
        ("preact_resnet18", {}, 11_172_170),
        ("wrn34_10", {}, 46_160_474),
        ("wide_resnet", {"depth": 28, "width": 10}, 36_479_194),
        ("small_cnn", {"input_shape": (8, 8, 1)}, 151_402),
    ],
)
def test_parameter_counts_equal_the_references(name, kwargs, expected):
    model = kr.models.get(name, **kwargs)
    assert trainable_parameters(model) == expected
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18", "small_cnn"])
def test_standardisation_is_inside_and_logits_are_float32(name):
    kwargs = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    model = kr.models.get(name, input_shape=(16, 16, 3), num_classes=3, **kwargs)
    assert isinstance(model.layers[1], InputStandardization)
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    assert logits.shape == (2, 3) and logits.dtype == np.float32
    assert np.all(np.isfinite(logits))


def test_wide_resnet_small_trains_one_step():
    model = kr.models.wide_resnet(10, 1, num_classes=4, input_shape=(8, 8, 3))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).uniform(size=(8, 8, 8, 3)).astype("float32")
    y = np.arange(8) % 4
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(x, y, epochs=1, verbose=0)
    changed = [
        not np.array_equal(a, w.numpy())
        for a, w in zip(before, model.trainable_weights, strict=True)
    ]
    assert all(changed)


def test_weight_decay_adds_the_coupled_penalty():
    model = kr.models.small_cnn(input_shape=(8, 8, 1), weight_decay=5e-4)
    model(np.zeros((1, 8, 8, 1), "float32"))
    kernels = [w for w in model.trainable_weights if "kernel" in w.path]
    expected = sum(5e-4 / 2 * float(np.sum(np.square(k.numpy()))) for k in kernels)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: kr.models.get("resnet50"), "name='resnet50'"),
        (lambda: kr.models.wide_resnet(depth=30), "depth=30"),
        (lambda: kr.models.wide_resnet(width=0), "width=0"),
        (lambda: kr.models.resnet18(num_classes=1), "num_classes=1"),
        (lambda: kr.models.small_cnn(input_shape=(8, 8)), "input_shape=(8, 8)"),
        (lambda: kr.models.small_cnn(weight_decay=-1.0), "weight_decay=-1.0"),
        (lambda: kr.models.wide_resnet(16, 1, dropout=1.0), "dropout=1.0"),
    ],
)
def test_bad_arguments_name_the_value(call, message):
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        call()


def test_keras_file_round_trip_gives_the_same_logits(tmp_path):
    model = kr.models.wide_resnet(
        10, 1, num_classes=4, input_shape=(8, 8, 3), dropout=0.3, mean=(0.5,) * 3
    )
    x = np.random.default_rng(1).uniform(size=(3, 8, 8, 3)).astype("float32")
    path = tmp_path / "wrn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode=True
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
        rtol=1e-6,
        atol=1e-6,
    )
