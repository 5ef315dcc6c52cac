"""Value checks that must work both eagerly and inside a compiled step."""

import numpy as np
import tensorflow as tf

from keras_robust.backend.common import check_label_values, labels_message


def concrete_values(tensor):
    """The values of an array or eager tensor; `None` for a symbolic tensor."""
    if isinstance(tensor, np.ndarray):
        return tensor
    if tf.is_tensor(tensor):
        return None if tf.is_symbolic_tensor(tensor) else tensor.numpy()
    if hasattr(tensor, "op"):
        return None
    return np.asarray(tensor)


def check_labels_in_range(labels, num_classes, name="y_true"):
    """Checks that class labels are integers in `[0, num_classes)`.

    Float labels must hold whole numbers (1.0, not 1.7), so that casting
    them to class indices loses nothing. Eagerly (concrete values) a bad
    label raises `ValueError` at once, with the values as given (an int64
    label is reported before any cast). Inside a compiled function the
    check becomes an assertion op that fails the step with the same message
    (`InvalidArgumentError`); XLA drops it.

    Args:
        labels: Tensor or array of class labels, integer or float.
        num_classes: Number of classes K.
        name: Argument name used in the error message.

    Returns:
        `labels`, carrying the check as a control dependency in graph mode.

    Raises:
        ValueError: When concrete labels are not whole numbers in
            `[0, num_classes)`.
    """
    values = concrete_values(labels)
    if values is not None:
        check_label_values(values, num_classes, name)
        return labels
    valid = tf.logical_and(
        tf.reduce_all(labels >= 0), tf.reduce_all(labels < num_classes)
    )
    if labels.dtype.is_floating:
        valid = tf.logical_and(valid, tf.reduce_all(labels == tf.floor(labels)))
    assertion = tf.debugging.Assert(
        valid,
        [
            labels_message(num_classes, name),
            "Received min/max:",
            tf.reduce_min(labels),
            tf.reduce_max(labels),
        ],
    )
    with tf.control_dependencies([assertion]):
        return tf.identity(labels)
