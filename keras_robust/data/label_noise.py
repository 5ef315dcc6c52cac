"""Synthetic label noise: transition matrices and seeded noise injection."""

import numbers
from collections.abc import Mapping

import numpy as np

# Class pairs (source -> target) of the asymmetric noise protocol of
# Patrini et al. (2017), also used by Ma et al. (2020).
# CIFAR-10: truck -> automobile, bird -> airplane, deer -> horse, cat <-> dog.
_CIFAR10_FLIPS = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}
# MNIST: 7 -> 1, 2 -> 7, 5 <-> 6, 3 -> 8.
_MNIST_FLIPS = {7: 1, 2: 7, 5: 6, 6: 5, 3: 8}
_CIFAR100_BLOCK = 5
_DATASET_CLASSES = {"cifar10": 10, "mnist": 10, "cifar100": 100}
_KINDS = ("symmetric", "asymmetric")


def _is_int(value):
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _validate_num_classes(num_classes):
    if not _is_int(num_classes) or num_classes < 2:
        raise ValueError(
            "Argument `num_classes` must be an integer >= 2. "
            f"Received: num_classes={num_classes!r}"
        )
    return int(num_classes)


def _validate_rate(rate):
    number = float(rate) if isinstance(rate, numbers.Real) else np.nan
    if isinstance(rate, bool) or not 0.0 <= number <= 1.0:
        raise ValueError(
            f"Argument `rate` must be a number in [0, 1]. Received: rate={rate!r}"
        )
    return number


def _asymmetric_flips(num_classes, dataset):
    """The source -> target map of the asymmetric protocol of a data set."""
    if dataset is None:
        inferred = {10: "cifar10", 100: "cifar100"}.get(num_classes)
        if inferred is None:
            raise ValueError(
                "Asymmetric noise is defined for `dataset` in "
                f"{sorted(_DATASET_CLASSES)}; it can only be inferred for "
                "num_classes=10 (cifar10) or 100 (cifar100). Pass `dataset`, "
                "or a {source: target} mapping as `kind`. "
                f"Received: num_classes={num_classes}"
            )
        dataset = inferred
    if num_classes != _DATASET_CLASSES[dataset]:
        raise ValueError(
            f"Asymmetric noise for dataset={dataset!r} needs "
            f"num_classes={_DATASET_CLASSES[dataset]}. "
            f"Received: num_classes={num_classes}"
        )
    if dataset == "cifar10":
        return _CIFAR10_FLIPS
    if dataset == "mnist":
        return _MNIST_FLIPS
    block = _CIFAR100_BLOCK
    return {i: i - i % block + (i % block + 1) % block for i in range(num_classes)}


def _validate_mapping(mapping, num_classes):
    for source, target in mapping.items():
        in_range = all(_is_int(c) and 0 <= c < num_classes for c in (source, target))
        if not in_range or source == target:
            raise ValueError(
                "Argument `kind`, as a mapping, must map integer class ids in "
                f"[0, {num_classes}) to a different class id; got "
                f"{source!r} -> {target!r}. Received: kind={dict(mapping)!r}"
            )
    return {int(s): int(t) for s, t in mapping.items()}


def transition_matrix(
    num_classes, rate, kind="symmetric", *, dataset=None, include_true_class=False
):
    """Builds the noise transition matrix of a synthetic label-noise protocol.

    Entry `T[i, j]` is the probability that an example of clean class `i` gets
    the noisy label `j`; each row sums to 1.

    - `"symmetric"`: with probability `rate` a label is replaced by a
      uniformly random *other* class: `1 - rate` on the diagonal and
      `rate / (K - 1)` elsewhere (Ma et al., 2020; Patrini et al., 2017).
      With `include_true_class=True` the replacement is drawn from all `K`
      classes, the true one included, as in some other papers:
      `T = (1 - rate) * I + rate / K`, so the effective flip rate is
      `rate * (K - 1) / K`.
    - `"asymmetric"`: class-dependent flips that mimic confusions between
      similar classes, each source class flipping to its target with
      probability `rate`:
        - `"cifar10"`: truck -> automobile (9 -> 1), bird -> airplane
          (2 -> 0), deer -> horse (4 -> 7), cat <-> dog (3 -> 5, 5 -> 3).
        - `"mnist"`: 7 -> 1, 2 -> 7, 5 -> 6, 6 -> 5, 3 -> 8.
        - `"cifar100"`: within each block of 5 consecutive class ids (0-4,
          5-9, ..., 95-99) class `i` flips to the next id of its block, the
          last one to the first. This is how the reference code of Patrini
          et al. and Ma et al. builds the "next class within the
          super-class" noise: it groups consecutive class ids, not the
          official CIFAR-100 super-classes.
    - A mapping `{source: target}` of class ids: each source class flips to
      its target with probability `rate`; other classes keep their label.

    Args:
        num_classes: Integer K >= 2, the number of classes.
        rate: Number in `[0, 1]`, the noise rate (see above).
        kind: `"symmetric"`, `"asymmetric"`, or a `{source: target}` mapping
            of integer class ids.
        dataset: For `kind="asymmetric"`, one of `"cifar10"`, `"mnist"`,
            `"cifar100"`. `None` infers `"cifar10"` for K = 10 and
            `"cifar100"` for K = 100. Ignored by the other kinds.
        include_true_class: For `kind="symmetric"`, whether the random
            replacement may be the true class. Defaults to `False`. Ignored by
            the other kinds.

    Returns:
        A float64 NumPy array of shape `[K, K]`, row-stochastic.

    Raises:
        ValueError: When `num_classes` is not an integer >= 2, `rate` is not
            in `[0, 1]`, `kind` or `dataset` is unknown, `dataset` does not
            match `num_classes`, or a mapping holds class ids outside
            `[0, K)` or maps a class to itself.

    Example:

    >>> import keras_robust
    >>> T = keras_robust.data.transition_matrix(3, 0.2)
    >>> T.round(2).tolist()
    [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]
    >>> T = keras_robust.data.transition_matrix(10, 0.4, "asymmetric")
    >>> float(T[9, 1]), float(T[9, 9])
    (0.4, 0.6)

    References:
        - Patrini et al., 2017. "Making Deep Neural Networks Robust to Label
          Noise: a Loss Correction Approach". CVPR.
        - Ma et al., 2020. "Normalized Loss Functions for Deep Learning with
          Noisy Labels". ICML.
    """
    num_classes = _validate_num_classes(num_classes)
    rate = _validate_rate(rate)
    if dataset is not None and dataset not in _DATASET_CLASSES:
        raise ValueError(
            f"Argument `dataset` must be one of {sorted(_DATASET_CLASSES)} or "
            f"None. Received: dataset={dataset!r}"
        )
    if isinstance(kind, Mapping):
        flips = _validate_mapping(kind, num_classes)
    elif isinstance(kind, str) and kind in _KINDS:
        if kind == "symmetric":
            if include_true_class:
                return (1.0 - rate) * np.eye(num_classes) + rate / num_classes
            matrix = np.full((num_classes, num_classes), rate / (num_classes - 1))
            np.fill_diagonal(matrix, 1.0 - rate)
            return matrix
        flips = _asymmetric_flips(num_classes, dataset)
    else:
        raise ValueError(
            f"Argument `kind` must be one of {list(_KINDS)} or a "
            f"{{source: target}} mapping of class ids. Received: kind={kind!r}"
        )
    matrix = np.eye(num_classes)
    for source, target in flips.items():
        matrix[source, source] = 1.0 - rate
        matrix[source, target] = rate
    return matrix


def _validate_labels(labels):
    array = np.asarray(labels)
    if not np.issubdtype(array.dtype, np.integer) or not (
        array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)
    ):
        raise ValueError(
            "Argument `labels` must be an integer array of shape [N] or "
            f"[N, 1]. Received: labels with dtype {array.dtype} and shape "
            f"{array.shape}"
        )
    return array


def inject_label_noise(
    labels,
    rate,
    kind="symmetric",
    *,
    num_classes=None,
    seed=None,
    dataset=None,
    include_true_class=False,
):
    """Corrupts class labels with seeded synthetic noise.

    Each label `y` is resampled independently from row `T[y]` of
    `transition_matrix(num_classes, rate, kind, dataset=dataset,
    include_true_class=include_true_class)` (see there for the symmetric and
    asymmetric protocols of Patrini et al., 2017, and Ma et al., 2020), with
    `np.random.default_rng(seed)`: the same seed gives the same noisy labels.

    Every example of a class that can flip flips with probability `rate`,
    so the realised noise differs slightly from `rate` (by about
    `sqrt(rate * (1 - rate) / n)` for `n` examples). The reference code of
    Ma et al. instead flips exactly `int(rate * n)` randomly chosen examples
    (per source class for asymmetric noise); the two agree up to that
    sampling fluctuation. Always report the realised noise:

    - the realised noise rate, the fraction of labels that changed,
      `np.mean(noisy_labels != labels)`. For asymmetric noise this is
      `rate` times the fraction of examples in source classes (about
      `rate / 2` on balanced CIFAR-10), not `rate`;
    - the realised transition matrix, the second return value.

    Args:
        labels: Integer array of clean class ids, shape `[N]` or `[N, 1]`.
        rate: Number in `[0, 1]`, the noise rate.
        kind: `"symmetric"`, `"asymmetric"`, or a `{source: target}` mapping
            of class ids (see `transition_matrix`).
        num_classes: Integer K >= 2. `None` uses `max(labels) + 1`.
        seed: Seed of `np.random.default_rng`: an integer, `None` (not
            reproducible) or a `np.random.Generator`.
        dataset: For `kind="asymmetric"`: `"cifar10"`, `"mnist"` or
            `"cifar100"`; `None` infers it from K (10 or 100).
        include_true_class: For `kind="symmetric"`, whether the random
            replacement may be the true class. Defaults to `False`.

    Returns:
        A tuple `(noisy_labels, realised_transition)`:
        - `noisy_labels`: array with the shape and dtype of `labels`.
        - `realised_transition`: float64 array `[K, K]`; entry `[i, j]`
            is the fraction of examples of clean class `i` that got the
            noisy label `j`. The row of a class absent from `labels` is the
            identity row.

    Raises:
        ValueError: When `labels` is not an integer array of shape `[N]` or
            `[N, 1]`, holds ids outside `[0, num_classes)`, or `num_classes`
            cannot be inferred; and for the invalid arguments listed in
            `transition_matrix`.

    Example:

    >>> import numpy as np
    >>> import keras_robust
    >>> labels = np.repeat(np.arange(10), 1000)
    >>> noisy, realised = keras_robust.data.inject_label_noise(
    ...     labels, 0.4, "symmetric", seed=0
    ... )
    >>> noisy.shape, noisy.dtype == labels.dtype
    ((10000,), True)
    >>> bool(abs(np.mean(noisy != labels) - 0.4) < 0.02)
    True
    >>> realised.shape
    (10, 10)

    References:
        - Patrini et al., 2017. "Making Deep Neural Networks Robust to Label
          Noise: a Loss Correction Approach". CVPR.
        - Ma et al., 2020. "Normalized Loss Functions for Deep Learning with
          Noisy Labels". ICML.
    """
    array = _validate_labels(labels)
    flat = array.reshape(-1)
    if num_classes is None:
        if flat.size == 0 or flat.max() < 1:
            raise ValueError(
                "Argument `num_classes` could not be inferred as max(labels) + 1 "
                ">= 2 from `labels`; pass it explicitly. "
                f"Received: num_classes={num_classes}"
            )
        num_classes = int(flat.max()) + 1
    matrix = transition_matrix(
        num_classes,
        rate,
        kind,
        dataset=dataset,
        include_true_class=include_true_class,
    )
    num_classes = matrix.shape[0]
    outside = (flat < 0) | (flat >= num_classes)
    if outside.any():
        raise ValueError(
            f"Argument `labels` must hold class ids in [0, {num_classes}). "
            f"Received: labels containing {np.unique(flat[outside])[:5].tolist()}"
        )
    if np.iinfo(flat.dtype).max < num_classes - 1:
        raise ValueError(
            f"Argument `labels` has dtype {flat.dtype}, too small for class ids "
            f"up to {num_classes - 1}. Received: labels with dtype {flat.dtype}"
        )

    valid_seed = seed is None or isinstance(seed, np.random.Generator)
    valid_seed |= isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
    if not valid_seed or (isinstance(seed, numbers.Integral) and seed < 0):
        raise ValueError(
            "Argument `seed` must be a non-negative integer, None or a "
            f"numpy.random.Generator. Received: seed={seed!r}"
        )
    rng = np.random.default_rng(seed)
    uniform = rng.random(flat.size)
    noisy = np.empty_like(flat)
    for clean in range(num_classes):
        members = flat == clean
        if not members.any():
            continue
        # Inverse-CDF sampling; normalising makes the last entry exactly 1, so
        # a class with zero probability is never drawn.
        cdf = np.cumsum(matrix[clean])
        cdf /= cdf[-1]
        noisy[members] = np.searchsorted(cdf, uniform[members], side="right")

    counts = np.zeros((num_classes, num_classes))
    np.add.at(counts, (flat.astype(np.intp), noisy.astype(np.intp)), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    realised = np.where(
        totals > 0, counts / np.maximum(totals, 1.0), np.eye(num_classes)
    )
    return noisy.reshape(array.shape), realised
