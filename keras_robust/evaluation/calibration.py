"""Calibration: expected calibration error."""

import warnings

import numpy as np

from keras_robust.backend import check_labels_in_range
from keras_robust.classification import numpy_class_indices
from keras_robust.validation import validate_integer


def expected_calibration_error(logits, labels, num_bins=15):
    """Expected calibration error (ECE) over equal-width confidence bins.

    `ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b|`, where the
    confidence of an example is its top softmax probability and the bins
    split `[0, 1]` into `num_bins` equal intervals (15 by convention).

    Args:
        logits: Logits `[N, K]` (array-like).
        labels: Sparse labels `[N]` or one-hot targets `[N, K]`.
        num_bins: Number of equal-width bins, `>= 1`.

    Returns:
        The ECE as a Python float in `[0, 1]`.

    Raises:
        ValueError: For mismatched shapes or a bad `num_bins`.

    References:
        Guo et al., "On Calibration of Modern Neural Networks", ICML 2017.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2 or logits.shape[-1] < 2:
        raise ValueError(
            "Argument `logits` must have shape [N, K] with K >= 2. "
            f"Received: logits.shape={logits.shape}"
        )
    raw_labels = labels
    labels = numpy_class_indices(labels, logits.shape[-1])
    if len(labels) != len(logits):
        raise ValueError(
            "Arguments `logits` [N, K] and `labels` [N] must describe the same "
            f"examples. Received: logits.shape={logits.shape}, "
            f"labels.shape={raw_labels.shape}"
        )
    if raw_labels.ndim < 2 or raw_labels.shape[-1] == 1:
        check_labels_in_range(raw_labels.reshape(-1), logits.shape[-1], "labels")
    num_bins = validate_integer("num_bins", num_bins)
    if (
        logits.size
        and np.all((logits >= 0) & (logits <= 1))
        and np.allclose(logits.sum(axis=-1), 1.0, atol=1e-3)
    ):
        warnings.warn(
            "Argument `logits` looks like probabilities (rows in [0, 1] that "
            "sum to 1); the ECE applies a softmax, so pass the logits (or log "
            "probabilities, `np.log(p)`).",
            UserWarning,
            stacklevel=2,
        )
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    confidence = probs.max(axis=-1)
    correct = probs.argmax(axis=-1) == labels
    bins = np.minimum((confidence * num_bins).astype(int), num_bins - 1)
    ece = 0.0
    for b in range(num_bins):
        members = bins == b
        if members.any():
            ece += members.mean() * abs(
                correct[members].mean() - confidence[members].mean()
            )
    return float(ece)
