"""Value checks that must work both eagerly and inside a compiled step."""

import numpy as np
import tensorflow as tf


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
    message = (
        f"Argument `{name}` must hold class labels: whole numbers in "
        f"[0, {num_classes})."
    )
    values = concrete_values(labels)
    if values is not None:
        values = np.asarray(values)
        bad = (values < 0) | (values >= num_classes)
        if values.dtype.kind == "f":
            bad |= ~np.isfinite(values) | (values != np.floor(values))
        if bad.any():
            raise ValueError(
                f"{message} Received: {name} containing {values[bad][:5].tolist()}"
            )
        return labels
    valid = tf.logical_and(
        tf.reduce_all(labels >= 0), tf.reduce_all(labels < num_classes)
    )
    if labels.dtype.is_floating:
        valid = tf.logical_and(valid, tf.reduce_all(labels == tf.floor(labels)))
    assertion = tf.debugging.Assert(
        valid,
        [message, "Received min/max:", tf.reduce_min(labels), tf.reduce_max(labels)],
    )
    with tf.control_dependencies([assertion]):
        return tf.identity(labels)
