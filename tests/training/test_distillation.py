"""Training toward a fixed teacher's calibrated labels (Dong et al. 2022)."""

import keras
import numpy as np
import pytest

import keras_robust as kr

from ..backend_tools import loss_and_weight_gradients

EPSILON = 0.1


@pytest.fixture(scope="module")
def digits():
    (x, y), (x_test, y_test) = kr.data.load_digits()
    return x[:256], y[:256], x_test[:128], y_test[:128]


def _base(seed=0, num_classes=10):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(num_classes),
        ]
    )


@pytest.fixture(scope="module")
def teacher(digits):
    x, y, _, _ = digits
    model = _base(seed=1)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, epochs=3, verbose=0)
    return model


def _model(teacher, temperature=2.0, interpolation=0.4, attack=None):
    return kr.AdversarialModel(
        _base(),
        attack=attack,
        objective=kr.training.Distillation(temperature, interpolation),
        teacher=kr.training.FixedTeacher(teacher),
        eval_attack=None,
    )


def test_step_equals_the_formula_with_the_teacher_on_the_adversarial_batch(
    digits, teacher
):
    x, y, _, _ = digits
    x, y = x[:64], y[:64]
    temperature, rho, learning_rate = 2.0, 0.4, 0.5
    attack = kr.attacks.PGD(epsilon=EPSILON, steps=3)
    model = _model(teacher, temperature, rho, attack)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    assert model.attack_mode == "eval"
    initial = [w.copy() for w in model.base_model.get_weights()]
    # The step's adversarial batch, from the step's own seed state.
    state = model.seed_generator.state.numpy().copy()
    logs = model.train_on_batch(x, y, return_dict=True)

    reference = _base()
    reference.set_weights(initial)
    seed = keras.random.SeedGenerator(0)
    seed.state.assign(state)

    def forward(inputs):
        return reference(inputs, training=False)

    x_adv = keras.ops.convert_to_numpy(attack.perturb(forward, x, y, seed=seed))
    assert np.abs(x_adv - x).max() <= EPSILON + 1e-6
    teacher_adv = teacher(x_adv, training=False)
    assert not np.allclose(teacher_adv, teacher(x, training=False))
    ops = keras.ops

    def distillation_loss():
        logits = reference(x_adv, training=True)
        hard = ops.mean(
            keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        )
        soft = ops.mean(
            -ops.sum(
                ops.softmax(teacher_adv / temperature)
                * ops.log_softmax(logits / temperature),
                axis=-1,
            )
        )
        return (1 - rho) * hard + rho * temperature**2 * soft

    loss, gradients = loss_and_weight_gradients(
        distillation_loss, reference.trainable_variables
    )
    assert logs["loss"] == pytest.approx(loss, rel=1e-5)
    for weight, start, gradient in zip(
        model.base_model.get_weights(), initial, gradients, strict=True
    ):
        np.testing.assert_allclose(
            weight, start - learning_rate * gradient, rtol=1e-4, atol=1e-6
        )


def test_trains_keeps_the_teacher_fixed_and_reloads(digits, teacher, tmp_path):
    x, y, x_test, _ = digits
    frozen = [w.copy() for w in teacher.get_weights()]
    model = _model(teacher, attack=kr.attacks.PGD(epsilon=EPSILON, steps=2))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, epochs=4, batch_size=64, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    for got, expected in zip(teacher.get_weights(), frozen, strict=True):
        np.testing.assert_array_equal(got, expected)
    path = tmp_path / "distilled.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored.objective, kr.training.Distillation)
    assert restored.objective.get_config() == {
        "temperature": 2.0,
        "interpolation": 0.4,
    }
    np.testing.assert_allclose(
        restored.predict(x_test, verbose=0), model.predict(x_test, verbose=0)
    )


def test_needs_a_teacher_and_valid_settings(digits):
    x, y, _, _ = digits
    model = kr.AdversarialModel(
        _base(), attack=None, objective=kr.training.Distillation(2.0, 0.5)
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    with pytest.raises(ValueError, match="Distillation needs a teacher.*FixedTeacher"):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="`temperature`.*temperature=0"):
        kr.training.Distillation(0, 0.5)
    with pytest.raises(ValueError, match="`interpolation`.*interpolation=1.5"):
        kr.training.Distillation(2.0, 1.5)
