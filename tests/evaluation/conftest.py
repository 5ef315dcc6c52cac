import keras
import pytest

import keras_robust as kr


@pytest.fixture(scope="session")
def digits_model():
    """An undefended MLP trained on the digits data, with test data."""
    (x, y), (x_test, y_test) = kr.data.load_digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=kr.losses.SoftTargetCrossentropy(),
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=10, batch_size=64, verbose=0)
    return model, x_test[:200], y_test[:200]
