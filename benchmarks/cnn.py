"""The CNN of the step benchmarks, on any Keras backend."""

import keras


def small_cnn(num_classes=10, batch_norm=keras.layers.BatchNormalization):
    """A 4-conv CNN for 32x32x3 inputs in [0, 1], with BatchNorm (Keras's, or
    `batch_norm`, e.g. `keras_robust.layers.BatchNormalization`)."""
    layers = [keras.Input((32, 32, 3))]
    for filters in (16, 32):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            batch_norm(),
            keras.layers.ReLU(),
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
        ]
    layers += [
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(num_classes),
    ]
    return keras.Sequential(layers)
