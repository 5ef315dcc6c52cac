import keras
import numpy as np
import pytest

from keras_robust.evaluation import RobustnessWarning, check_black_box, check_model


@keras.saving.register_keras_serializable(package="tests")
class Quantize(keras.layers.Layer):
    """Rounds inputs to 3 levels: exactly zero gradients (gradient masking)."""

    def call(self, x):
        return keras.ops.round(x * 2) / 2


def _masked(model):
    return keras.Sequential([keras.Input((8, 8, 1)), Quantize(), *model.layers])


def test_healthy_model_passes_every_check(digits_model, recwarn):
    model, x, y = digits_model
    assert check_model(model, x, y, epsilon=0.1) == []
    assert not [w for w in recwarn if issubclass(w.category, RobustnessWarning)]


def test_gradient_masked_model_triggers_the_gradient_warning(digits_model):
    model, x, y = digits_model
    masked = _masked(model)
    with pytest.warns(RobustnessWarning) as caught:
        failed = check_model(masked, x, y, epsilon=0.1)
    # Zero gradients, and PGD fails even at a huge epsilon (observed: 83%).
    assert failed == ["gradients", "large-epsilon"]
    messages = " ".join(str(w.message) for w in caught)
    assert "evaluation.md#gradients" in messages
    assert "evaluation.md#large-epsilon" in messages


def test_softmax_outputs_trigger_the_probabilities_warning(digits_model):
    model, x, y = digits_model
    with_softmax = keras.Sequential([*model.layers, keras.layers.Softmax()])
    with pytest.warns(RobustnessWarning, match="probabilities"):
        failed = check_model(with_softmax, x, y, epsilon=0.1)
    assert "probabilities" in failed


def test_random_outputs_trigger_the_randomness_warning(digits_model):
    model, x, y = digits_model

    class Noisy(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.seed = keras.random.SeedGenerator(0)

        def call(self, logits):
            noise = keras.random.normal(keras.ops.shape(logits), seed=self.seed)
            return logits + noise

    noisy = keras.Sequential([*model.layers, Noisy()])
    with pytest.warns(RobustnessWarning) as caught:
        failed = check_model(noisy, x, y, epsilon=0.1)
    assert "randomness" in failed
    assert any("change between" in str(w.message) for w in caught)


def test_black_box_check():
    per_attack = {"apgd-ce": 0.50, "apgd-t": 0.48, "square": 0.30}
    with pytest.warns(RobustnessWarning, match="black-box"):
        assert check_black_box(per_attack, ["apgd-ce", "apgd-t"], ["square"])
    per_attack["square"] = 0.475
    assert not check_black_box(per_attack, ["apgd-ce", "apgd-t"], ["square"])
    assert np.isfinite(per_attack["square"])
