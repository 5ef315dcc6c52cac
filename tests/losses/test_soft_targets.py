import keras
import numpy as np
import pytest

from keras_robust import losses

from ..backend_tools import value_and_gradient

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(16, 10)).astype("float32") * 3
LABELS = RNG.integers(0, 10, size=16)


def test_soft_target_crossentropy_equals_keras_categorical_crossentropy():
    targets = RNG.dirichlet(np.ones(10), size=16).astype("float32")
    expected = keras.losses.CategoricalCrossentropy(from_logits=True)(targets, LOGITS)
    got = losses.SoftTargetCrossentropy()(targets, LOGITS)
    np.testing.assert_allclose(float(got), float(expected), rtol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5, 1.0])
def test_label_smoothing_matches_keras_on_sparse_labels(smoothing):
    keras_loss = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=smoothing
    )
    expected = keras_loss(np.eye(10)[LABELS], LOGITS)
    got = losses.LabelSmoothingCrossentropy(smoothing)(LABELS, LOGITS)
    np.testing.assert_allclose(float(got), float(expected), rtol=1e-6)


@pytest.mark.parametrize("smoothing", [-0.1, 1.5, float("nan"), "0.1x", None])
def test_label_smoothing_rejects_bad_smoothing(smoothing):
    with pytest.raises(ValueError, match=r"Received: smoothing="):
        losses.LabelSmoothingCrossentropy(smoothing)


def test_max_sup_penalises_the_top_logit_not_the_true_one():
    alpha = 0.2
    got = losses.MaxSupCrossentropy(alpha=alpha, reduction=None)(LABELS, LOGITS)
    ce = keras.losses.sparse_categorical_crossentropy(LABELS, LOGITS, from_logits=True)
    penalty = LOGITS.max(axis=-1) - LOGITS.mean(axis=-1)
    np.testing.assert_allclose(
        np.asarray(got), np.asarray(ce) + alpha * penalty, rtol=1e-5
    )


def test_max_sup_gradient_of_penalty_hits_the_top_logit():
    def difference(z):
        with_penalty = losses.MaxSupCrossentropy(alpha=1.0)([1], z)
        return with_penalty - losses.SoftTargetCrossentropy()([1], z)

    _, gradient = value_and_gradient(difference, np.array([[3.0, 1.0, 0.0]], "float32"))
    np.testing.assert_allclose(gradient, [[1 - 1 / 3, -1 / 3, -1 / 3]], rtol=1e-6)


def test_max_sup_rejects_negative_alpha():
    with pytest.raises(ValueError, match=r"Received: alpha=-1"):
        losses.MaxSupCrossentropy(alpha=-1)


def test_bootstrapping_defaults_follow_the_paper():
    assert losses.BootstrappingCrossentropy().beta == 0.95
    assert losses.BootstrappingCrossentropy(mode="hard").beta == 0.8


def test_hard_bootstrapping_uses_the_predicted_class():
    beta = 0.8
    got = losses.BootstrappingCrossentropy(beta=beta, mode="hard", reduction=None)(
        LABELS, LOGITS
    )
    log_p = np.asarray(keras.ops.log_softmax(LOGITS))
    rows = np.arange(16)
    expected = -(beta * log_p[rows, LABELS] + (1 - beta) * log_p.max(axis=-1))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


def test_bootstrapping_with_beta_one_is_crossentropy():
    for mode in ("soft", "hard"):
        got = losses.BootstrappingCrossentropy(beta=1.0, mode=mode)(LABELS, LOGITS)
        expected = losses.SoftTargetCrossentropy()(LABELS, LOGITS)
        np.testing.assert_allclose(float(got), float(expected), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"mode": "medium"}, "Received: mode='medium'"), ({"beta": 1.2}, "beta=1.2")],
)
def test_bootstrapping_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        losses.BootstrappingCrossentropy(**kwargs)
