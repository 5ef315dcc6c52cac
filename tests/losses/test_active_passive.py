import numpy as np
import pytest

from keras_robust import losses

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(16, 10)).astype("float32") * 3
LABELS = RNG.integers(0, 10, size=16)

COMPONENTS = {
    "ce": losses.SoftTargetCrossentropy,
    "nce": losses.NormalizedCrossentropy,
    "nfl": losses.NormalizedFocalCrossentropy,
    "gce": losses.GeneralizedCrossentropy,
    "ngce": losses.NormalizedGeneralizedCrossentropy,
    "rce": losses.ReverseCrossentropy,
    "mae": losses.MeanAbsoluteError,
}


@pytest.mark.parametrize("active", ["nce", "nfl", "ngce", "ce", "gce"])
@pytest.mark.parametrize("passive", ["rce", "mae"])
def test_combination_is_the_weighted_sum_of_its_parts(active, passive):
    alpha, beta = 10.0, 0.1
    loss = losses.ActivePassiveLoss(active, passive, alpha=alpha, beta=beta)
    expected = alpha * float(COMPONENTS[active]()(LABELS, LOGITS)) + beta * float(
        COMPONENTS[passive]()(LABELS, LOGITS)
    )
    np.testing.assert_allclose(float(loss(LABELS, LOGITS)), expected, rtol=1e-5)
    assert loss.name == f"{active}_{passive}"


def test_components_can_be_configured_instances():
    active = losses.NormalizedFocalCrossentropy(gamma=2.0)
    loss = losses.ActivePassiveLoss(active, "MAE")
    expected = float(active(LABELS, LOGITS)) + float(
        losses.MeanAbsoluteError()(LABELS, LOGITS)
    )
    np.testing.assert_allclose(float(loss(LABELS, LOGITS)), expected, rtol=1e-5)


def test_symmetric_crossentropy_is_ce_plus_rce():
    loss = losses.SymmetricCrossentropy(alpha=6.0, beta=0.1)
    expected = losses.ActivePassiveLoss("ce", "rce", alpha=6.0, beta=0.1)
    np.testing.assert_allclose(
        float(loss(LABELS, LOGITS)), float(expected(LABELS, LOGITS)), rtol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"active": "xent"}, r"Received: active='xent'"),
        ({"passive": "nce"}, r"Received: passive='nce'"),
        ({"active": 3}, r"Received: active=3"),
        ({"alpha": -1.0}, r"Received: alpha=-1.0"),
        ({"beta": -0.5}, r"Received: beta=-0.5"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        losses.ActivePassiveLoss(**kwargs)


def test_symmetric_crossentropy_rejects_bad_label_clip():
    with pytest.raises(ValueError, match=r"Received: label_clip=0"):
        losses.SymmetricCrossentropy(label_clip=0)
