"""A small real image data set that needs no download."""

import numbers

import numpy as np


def load_digits(test_fraction=0.25, seed=0):
    """Loads scikit-learn's handwritten digits as a small image data set.

    The 1,797 grey-scale 8x8 images of digits 0-9 of the UCI optical
    recognition data set ship with scikit-learn (`sklearn.datasets.
    load_digits`), so this works offline. Pixel values (0-16) are scaled to
    `[0, 1]`, the range that attacks with `value_range=(0, 1)` and label-noise
    experiments expect. The train/test split is stratified by class and
    fixed by `seed`.

    Args:
        test_fraction: Number in `(0, 1)`, the fraction of the examples in
            the test split. Defaults to `0.25`.
        seed: Integer seed of the split. Defaults to `0`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: images as float32 arrays of
        shape `[N, 8, 8, 1]` with values in `[0, 1]`, labels as int64 arrays
        of shape `[N]`.

    Raises:
        ValueError: When `test_fraction` is not in `(0, 1)`.

    Example:

    >>> import keras_robust
    >>> (x_train, y_train), (x_test, y_test) = keras_robust.data.load_digits()
    >>> x_train.shape, x_test.shape
    ((1347, 8, 8, 1), (450, 8, 8, 1))
    """
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, numbers.Real)
        or not 0.0 < test_fraction < 1.0
    ):
        raise ValueError(
            "Argument `test_fraction` must be a number in (0, 1). "
            f"Received: test_fraction={test_fraction!r}"
        )
    from sklearn.datasets import load_digits as sklearn_load_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_load_digits()
    images = (digits.images / 16.0).astype("float32")[..., np.newaxis]
    labels = digits.target.astype("int64")
    x_train, x_test, y_train, y_test = train_test_split(
        images,
        labels,
        test_size=float(test_fraction),
        random_state=seed,
        stratify=labels,
    )
    return (x_train, y_train), (x_test, y_test)
