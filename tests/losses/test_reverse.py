import math

import numpy as np
import pytest

from keras_robust import losses

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(16, 10)).astype("float32") * 3
LABELS = RNG.integers(0, 10, size=16)


def softmax(z):
    z = z.astype("float64")
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_rce_is_a_scaled_mae_for_one_hot_labels():
    rce = np.asarray(losses.ReverseCrossentropy(reduction=None)(LABELS, LOGITS))
    p_true = softmax(LOGITS)[np.arange(16), LABELS]
    np.testing.assert_allclose(rce, -math.log(1e-4) * (1 - p_true), rtol=1e-4)


def test_rce_label_clip_sets_the_constant():
    clip = math.exp(-4)
    rce = losses.ReverseCrossentropy(label_clip=clip, reduction=None)(LABELS, LOGITS)
    p_true = softmax(LOGITS)[np.arange(16), LABELS]
    np.testing.assert_allclose(np.asarray(rce), 4 * (1 - p_true), rtol=1e-4)


def test_mae_is_half_the_l1_distance():
    mae = np.asarray(losses.MeanAbsoluteError(reduction=None)(LABELS, LOGITS))
    probs = softmax(LOGITS)
    l1 = np.abs(probs - np.eye(10)[LABELS]).sum(axis=-1)
    np.testing.assert_allclose(mae, l1 / 2, rtol=1e-5)


@pytest.mark.parametrize("clip", [0.0, 1.0, -1e-4, 2.0])
def test_rce_rejects_bad_label_clip(clip):
    with pytest.raises(ValueError, match=r"Received: label_clip="):
        losses.ReverseCrossentropy(label_clip=clip)
