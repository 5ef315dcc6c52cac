"""What several benchmark scripts build, on any Keras backend: the step
benchmarks' CNN and the PGD-10 adversarial training they time, and the
evaluation benchmarks' digits MLP."""

import keras

import keras_robust as kr

EPSILON, STEP_SIZE = 8 / 255, 2 / 255


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


def pgd10_at(base, jit_compile=False, learning_rate=0.01, **compile_options):
    """`base` in PGD-10 adversarial training (L∞ ε 8/255, step 2/255, the
    attack in train mode) with SGD and momentum, compiled."""
    model = kr.AdversarialModel(
        base,
        attack=kr.attacks.PGD(epsilon=EPSILON, step_size=STEP_SIZE, steps=10),
        eval_attack=None,
        clean_metrics=False,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        loss=kr.losses.SoftTargetCrossentropy(),
        jit_compile=jit_compile,
        **compile_options,
    )
    return model


def digits_model():
    """The evaluation benchmarks' MLP for 8x8 digits (64 hidden units), untrained."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def digits_mlp():
    """`(model, x_test, y_test)`: the digits MLP after 10 epochs of Adam
    (seed 0) on the digits training split."""
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = kr.data.load_digits()
    model = digits_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, epochs=10, batch_size=64, verbose=0)
    return model, x_test, y_test
