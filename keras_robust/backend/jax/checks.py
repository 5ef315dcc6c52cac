"""Value checks on JAX: eagerly they raise, inside `jax.jit` they are skipped."""

import jax
import numpy as np

from keras_robust.backend.common import check_label_values


def concrete_values(tensor):
    """The values of an array; `None` for one being traced (inside `jax.jit`)."""
    if isinstance(tensor, np.ndarray):
        return tensor
    if isinstance(tensor, jax.core.Tracer) or hasattr(tensor, "_keras_history"):
        return None
    return np.asarray(tensor)


def check_labels_in_range(labels, num_classes, name="y_true"):
    """Checks that class labels are integers in `[0, num_classes)`.

    With concrete values a bad label raises `ValueError` at once. A traced
    function has no assertion that could fail it (as under TensorFlow's
    XLA), so there the labels pass unchecked: `fit()` checks NumPy and
    tf.data inputs before the first step (`keras_robust.models`).

    Returns:
        `labels`.
    """
    values = concrete_values(labels)
    if values is not None:
        check_label_values(values, num_classes, name)
    return labels
