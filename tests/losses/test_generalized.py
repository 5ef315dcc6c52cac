import numpy as np
import pytest

from keras_robust import losses

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(16, 10)).astype("float32") * 3
LABELS = RNG.integers(0, 10, size=16)


def test_gce_with_q_one_is_mae():
    gce = losses.GeneralizedCrossentropy(q=1.0)(LABELS, LOGITS)
    mae = losses.MeanAbsoluteError()(LABELS, LOGITS)
    np.testing.assert_allclose(float(gce), float(mae), rtol=1e-5)


def test_gce_approaches_crossentropy_as_q_goes_to_zero():
    gce = losses.GeneralizedCrossentropy(q=1e-3)(LABELS, LOGITS)
    ce = losses.SoftTargetCrossentropy()(LABELS, LOGITS)
    np.testing.assert_allclose(float(gce), float(ce), rtol=2e-2)


def test_ngce_is_bounded_by_one():
    values = losses.NormalizedGeneralizedCrossentropy(reduction=None)(LABELS, LOGITS)
    values = np.asarray(values)
    assert np.all((values >= 0) & (values <= 1))


@pytest.mark.parametrize(
    "cls", [losses.GeneralizedCrossentropy, losses.NormalizedGeneralizedCrossentropy]
)
@pytest.mark.parametrize("q", [0.0, -0.2, 1.1, float("inf")])
def test_q_outside_unit_interval_raises(cls, q):
    with pytest.raises(ValueError, match=r"Received: q="):
        cls(q=q)
