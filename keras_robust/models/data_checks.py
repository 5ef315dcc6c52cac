"""Eager checks of the data given to `AdversarialModel.fit()` and `evaluate()`.

Inside the compiled step a bad input can only fail an assertion, with a
graph trace around the message. Before the step runs, these checks look at
the arrays (or the first batch of a `tf.data.Dataset`) and raise the same
`ValueError` the attacks raise outside `fit()`, naming the argument and the
value received.
"""

import numpy as np
from keras import ops

from keras_robust import backend


def _first_batch(x, y, sample_weight):
    """`(x, y, sample_weight)` as NumPy arrays, or `None` when not at hand.

    Arrays and tensors are taken whole; of a `tf.data.Dataset` only the
    first batch is read. Generators and `keras.utils.PyDataset` are left to
    the in-graph checks (reading them would consume data).
    """
    if _is_dataset(x):
        for batch in x.take(1):
            if not isinstance(batch, tuple | list):
                return None
            x, y, sample_weight = (list(batch) + [None, None])[:3]
        if _is_dataset(x):  # an empty dataset
            return None
    if not all(_is_array(v) for v in (x, y, sample_weight) if v is not None):
        return None
    return tuple(None if v is None else _numpy(v) for v in (x, y, sample_weight))


def _is_dataset(value):
    return type(value).__name__.endswith("Dataset") and hasattr(value, "take")


def _is_array(value):
    return isinstance(value, np.ndarray) or (
        hasattr(value, "shape") and hasattr(value, "dtype") and not _is_dataset(value)
    )


def _numpy(value):
    return value if isinstance(value, np.ndarray) else ops.convert_to_numpy(value)


def check_data(x, y, sample_weight, *, value_range, num_classes, name="x"):
    """Checks inputs, labels and sample weights before a compiled step runs.

    Args:
        x, y, sample_weight: As given to `fit()` or `evaluate()`.
        value_range: The attack's `(low, high)`, or `None` (no attack).
        num_classes: The model's number of classes, or `None` if unknown.
        name: The argument name for messages (`"x"`, `"validation_data"`).

    Raises:
        ValueError: For integer (e.g. uint8) images, NaN or out-of-range
            inputs, labels that are not whole numbers in `[0, K)`, or
            sample weights or labels of another length than the inputs.
    """
    arrays = _first_batch(x, y, sample_weight)
    if arrays is None:
        return
    x, y, sample_weight = arrays
    if value_range is not None and x.dtype.kind in "iub":
        raise ValueError(
            f"Argument `{name}` must hold float inputs in value_range="
            f"{tuple(value_range)}; integer images are not scaled implicitly. "
            "Convert them first, e.g. `x.astype('float32') / 255` for 8-bit "
            f"images. Received: {name} of dtype {x.dtype}"
        )
    for label, values in (("y", y), ("sample_weight", sample_weight)):
        if values is not None and len(values) != len(x):
            raise ValueError(
                f"Argument `{label}` must have one entry per example of `{name}`. "
                f"Received: len({label})={len(values)}, len({name})={len(x)}"
            )
    if value_range is not None:
        backend.check_in_value_range(x, value_range, name=name)
    sparse = y is not None and (y.ndim == 1 or (y.ndim == 2 and y.shape[-1] == 1))
    if sparse and num_classes is not None:
        backend.check_labels_in_range(y, num_classes, name="y")
