import numpy as np
import pytest

from keras_robust import losses

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(16, 10)).astype("float32") * 3
LABELS = RNG.integers(0, 10, size=16)


@pytest.mark.parametrize(
    "cls", [losses.NormalizedCrossentropy, losses.NormalizedFocalCrossentropy]
)
def test_normalized_losses_sum_to_one_over_labels(cls):
    # Normalization: the loss summed over every possible label equals one.
    loss = cls(reduction=None)
    total = sum(np.asarray(loss(np.full(16, k), LOGITS)) for k in range(10))
    np.testing.assert_allclose(total, np.ones(16), rtol=1e-5)


def test_nfl_with_gamma_zero_is_nce():
    nfl = losses.NormalizedFocalCrossentropy(gamma=0.0)(LABELS, LOGITS)
    nce = losses.NormalizedCrossentropy()(LABELS, LOGITS)
    np.testing.assert_allclose(float(nfl), float(nce), rtol=1e-6)


def test_nfl_rejects_negative_gamma():
    with pytest.raises(ValueError, match=r"Received: gamma=-1"):
        losses.NormalizedFocalCrossentropy(gamma=-1)
