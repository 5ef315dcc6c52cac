import numpy as np
import pytest

from keras_robust.evaluation import expected_calibration_error


def test_matches_a_hand_computed_example():
    # Two examples at confidence ~0.88 (one right, one wrong) and one at ~0.5
    # (right): bins hold |0.5 - 0.88| * 2/3 + |1 - 0.5| * 1/3.
    logits = np.log(np.array([[0.88, 0.12], [0.88, 0.12], [0.5, 0.5]]))
    labels = np.array([0, 1, 0])
    expected = 2 / 3 * abs(0.5 - 0.88) + 1 / 3 * abs(1.0 - 0.5)
    assert expected_calibration_error(logits, labels) == pytest.approx(expected)


def test_perfectly_calibrated_predictions_have_small_ece():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5) * 0.5, size=200_000)
    labels = np.array([rng.choice(5, p=p) for p in probs[:20_000]])
    ece = expected_calibration_error(np.log(probs[:20_000]), labels)
    assert ece < 0.02


def test_overconfident_predictions_have_large_ece():
    logits = np.array([[10.0, 0.0]] * 100)
    labels = np.array([0] * 50 + [1] * 50)
    assert expected_calibration_error(logits, labels) == pytest.approx(0.5, abs=1e-3)


def test_one_hot_labels_and_bad_input():
    logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(logits, np.eye(2)) == expected_calibration_error(
        logits, np.array([0, 1])
    )
    with pytest.raises(ValueError, match="Received: logits.shape"):
        expected_calibration_error(logits, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="Received: num_bins=0"):
        expected_calibration_error(logits, np.array([0, 1]), num_bins=0)
