"""A small undefended classifier on the digits data, trained once per session."""

import keras
import numpy as np
import pytest

from keras_robust.data import load_digits


def _mlp():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


@pytest.fixture(scope="session")
def digits():
    """`(x_train, y_train), (x_test, y_test)` of `keras_robust.data.load_digits`."""
    return load_digits()


@pytest.fixture(scope="session")
def mlp(digits):
    """`(model, x_test, y_test)`: an MLP with logits, ~96% clean test accuracy."""
    (x_train, y_train), (x_test, y_test) = digits
    keras.utils.set_random_seed(0)
    model = _mlp()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x_train, y_train, epochs=15, batch_size=32, verbose=0)
    return model, x_test, y_test


@pytest.fixture(scope="session")
def accuracy():
    """`accuracy(model, x, y)`: eval-mode top-1 accuracy as a Python float."""

    def evaluate(model, x, y):
        logits = keras.ops.convert_to_numpy(model(x, training=False))
        return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(y)))

    return evaluate


@pytest.fixture(scope="session")
def clean_accuracy(mlp, accuracy):
    model, x, y = mlp
    value = accuracy(model, x, y)
    assert value > 0.9
    return value
