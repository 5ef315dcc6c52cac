"""FGSM: one PGD step of size ε, its defaults, fast-AT variant and settings."""

import keras
import numpy as np
import pytest

from keras_robust.attacks import FGSM, PGD


@pytest.mark.parametrize("random_start", [False, True])
@pytest.mark.parametrize(("norm", "epsilon"), [("linf", 0.1), ("l2", 1.0)])
def test_equals_one_step_pgd(mlp, norm, epsilon, random_start):
    model, x, y = mlp
    x, y = x[:100], y[:100]
    fgsm = FGSM(epsilon=epsilon, norm=norm, random_start=random_start)
    pgd = PGD(
        epsilon=epsilon,
        step_size=epsilon,
        steps=1,
        norm=norm,
        random_start=random_start,
    )
    np.testing.assert_array_equal(fgsm(model, x, y, seed=4), pgd(model, x, y, seed=4))


def test_defaults():
    attack = FGSM()
    assert attack.epsilon == pytest.approx(8 / 255)
    assert attack.step_size == attack.epsilon
    assert attack.steps == 1
    assert attack.norm == "linf"
    assert attack.random_start is False
    assert attack.value_range == (0.0, 1.0)
    assert FGSM(epsilon=0.2).step_size == 0.2
    assert FGSM(epsilon=0.0).step_size > 0


def test_lowers_accuracy_with_full_sign_steps(mlp, accuracy, clean_accuracy):
    model, x, y = mlp
    epsilon = 0.1
    x_adv = FGSM(epsilon=epsilon)(model, x, y)
    # Observed: 0.576 from 0.962.
    assert accuracy(model, x_adv, y) < clean_accuracy - 0.2
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    # Away from the range bounds every pixel moves by exactly ε.
    interior = (x >= epsilon) & (x <= 1 - epsilon)
    moved = np.abs(x_adv - x)[interior]
    assert np.mean(np.isclose(moved, epsilon, rtol=0, atol=1e-6)) > 0.99
    assert moved.max() <= epsilon + 1e-6


def test_fast_adversarial_training_variant(mlp, accuracy, clean_accuracy):
    model, x, y = mlp
    epsilon = 0.1
    attack = FGSM(epsilon=epsilon, step_size=1.25 * epsilon, random_start=True)
    x_adv = attack(model, x, y, seed=0)
    assert np.abs(x_adv - x).max() <= epsilon + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert accuracy(model, x_adv, y) < clean_accuracy - 0.2
    x, y = x[:100], y[:100]
    np.testing.assert_array_equal(attack(model, x, y, seed=0), x_adv[:100])
    assert not np.allclose(attack(model, x, y, seed=1), x_adv[:100])


def test_config_has_no_steps():
    config = FGSM(epsilon=0.1).get_config()
    assert "steps" not in config
    assert config == {
        "epsilon": 0.1,
        "step_size": 0.1,
        "norm": "linf",
        "random_start": False,
        "value_range": [0.0, 1.0],
    }
    with pytest.raises(TypeError):
        FGSM(epsilon=0.1, steps=3)


def test_serialization_round_trip(mlp):
    model, x, y = mlp
    attack = FGSM(
        epsilon=0.5, step_size=0.6, norm="l2", random_start=True, value_range=(0, 1)
    )
    config = keras.saving.serialize_keras_object(attack)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is FGSM
    assert restored.get_config() == attack.get_config()
    assert restored.steps == 1
    np.testing.assert_array_equal(
        restored(model, x[:50], y[:50], seed=3), attack(model, x[:50], y[:50], seed=3)
    )
    assert type(FGSM.from_config(attack.get_config())) is FGSM


def test_repr_shows_the_settings():
    assert repr(FGSM(epsilon=0.25, norm="l2")) == (
        "FGSM(epsilon=0.25, step_size=0.25, norm='l2', random_start=False, "
        "value_range=[0.0, 1.0])"
    )
