"""Computations on classifier outputs shared by losses, attacks and training.

Each computation has one home here: turning labels into dense targets or
class indices, the cross-entropy against dense targets, the classification
margin, the KL divergence between two predictions and the per-example
correctness. Everything takes logits `[N, K]` in any float dtype, works in
float32 and is written in `keras.ops`.
"""

import numpy as np
from keras import ops

from keras_robust.backend import check_labels_in_range


def dense_targets(y_true, y_pred):
    """Turns sparse labels or dense targets into float32 targets `[..., K]`.

    Args:
        y_true: Sparse labels (rank of `y_pred` minus one, or a trailing axis
            of size 1) or dense targets of the same shape as `y_pred`.
        y_pred: Predictions, shape `[..., K]`.

    Returns:
        float32 dense targets with the shape of `y_pred`.

    Raises:
        ValueError: When the shapes do not match, or (eagerly) when sparse
            labels fall outside `[0, K)`.
    """
    if isinstance(y_true, list | tuple):
        y_true = ops.convert_to_tensor(y_true)
    pred_shape = tuple(y_pred.shape)
    true_shape = tuple(y_true.shape)
    if len(pred_shape) < 1 or pred_shape[-1] is None:
        raise ValueError(
            "Argument `y_pred` must have a known number of classes on its last "
            f"axis. Received: y_pred.shape={pred_shape}"
        )
    num_classes = pred_shape[-1]
    if num_classes < 2:
        raise ValueError(
            "Argument `y_pred` must hold logits over at least 2 classes (a "
            "single output has nothing to classify; for binary problems use "
            f"2 logits). Received: y_pred.shape={pred_shape}"
        )
    sparse = len(true_shape) == len(pred_shape) - 1 or (
        len(true_shape) == len(pred_shape) and true_shape[-1] == 1 and num_classes > 1
    )
    if sparse:
        labels_shape = true_shape[: len(pred_shape) - 1]
        if not _compatible(labels_shape, pred_shape[:-1]):
            raise ValueError(
                "Sparse labels `y_true` must have one label per row of `y_pred`. "
                f"Received: y_true.shape={true_shape} with y_pred.shape={pred_shape}"
            )
        labels = ops.reshape(y_true, ops.shape(y_pred)[:-1])
        labels = check_labels_in_range(labels, num_classes, name="y_true")
        return ops.one_hot(ops.cast(labels, "int32"), num_classes, dtype="float32")
    if len(true_shape) != len(pred_shape) or not _compatible(true_shape, pred_shape):
        raise ValueError(
            "Argument `y_true` must hold sparse labels of shape "
            f"{pred_shape[:-1]} or dense targets of shape {pred_shape}. "
            f"Received: y_true.shape={true_shape}"
        )
    return ops.cast(y_true, "float32")


def _compatible(shape_a, shape_b):
    if len(shape_a) != len(shape_b):
        return False
    pairs = zip(shape_a, shape_b, strict=True)
    return all(a is None or b is None or a == b for a, b in pairs)


def class_indices(y, logits):
    """The class index of each example: the label, or the arg-max of a target.

    Args:
        y: Sparse labels `[N]` (or `[N, 1]`) or dense targets `[N, K]`.
        logits: Logits `[N, K]`, giving the number of classes.

    Returns:
        int32 tensor `[N]`.
    """
    return ops.cast(ops.argmax(dense_targets(y, logits), axis=-1), "int32")


def numpy_class_indices(y, num_classes):
    """`class_indices` for NumPy arrays: `[N]` labels, `[N, 1]` or `[N, K]`.

    Args:
        y: Array-like labels or one-hot/soft targets.
        num_classes: The number of classes K.

    Returns:
        int64 NumPy array `[N]`.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[-1] == num_classes and num_classes > 1:
        return y.argmax(axis=-1).astype("int64")
    return y.reshape(-1).astype("int64")


def cross_entropy(targets, log_probs):
    """Per-example cross-entropy `-sum_k t_k log p_k` from log-probabilities."""
    return -ops.sum(targets * log_probs, axis=-1)


def cross_entropy_with_logits(targets, logits):
    """Per-example cross-entropy of logits against sparse or dense targets.

    Args:
        targets: Sparse labels `[N]` or dense (one-hot or soft) targets
            `[N, K]`.
        logits: Logits `[N, K]`, any float dtype.

    Returns:
        float32 tensor `[N]`.
    """
    logits = ops.cast(logits, "float32")
    return cross_entropy(
        dense_targets(targets, logits), ops.log_softmax(logits, axis=-1)
    )


def class_one_hot(y, logits):
    """One-hot float32 `[N, K]` of each example's class (see `class_indices`)."""
    return ops.one_hot(class_indices(y, logits), ops.shape(logits)[-1], dtype="float32")


def true_and_best_other(logits, one_hot):
    """`(z_y, max_{k != y} z_k)` of each example, each float32 `[N]`.

    Args:
        logits: Logits `z`, `[N, K]`.
        one_hot: One-hot float32 `[N, K]` of the true classes `y` (see
            `class_one_hot`).
    """
    logits = ops.cast(logits, "float32")
    true_logit = ops.sum(one_hot * logits, axis=-1)
    others = ops.where(one_hot > 0, ops.full_like(logits, -np.inf), logits)
    return true_logit, ops.max(others, axis=-1)


def margin(logits, one_hot):
    """The classification margin `z_y - max_{k != y} z_k`, float32 `[N]`.

    Positive when the example is classified correctly. `one_hot` as in
    `true_and_best_other`.
    """
    true_logit, best_other = true_and_best_other(logits, one_hot)
    return true_logit - best_other


def correct(logits, targets):
    """1.0 where the arg-max of the logits is the true class, float32 `[N]`."""
    predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
    return ops.cast(predicted == class_indices(targets, logits), "float32")


def kl_from_logits(reference_logits, logits):
    """Per-example `KL(softmax(reference) || softmax(logits))`, exact log-softmax."""
    reference_log_probs = ops.log_softmax(
        ops.cast(reference_logits, "float32"), axis=-1
    )
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    return ops.sum(
        ops.exp(reference_log_probs) * (reference_log_probs - log_probs), axis=-1
    )
