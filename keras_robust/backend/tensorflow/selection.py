"""Selecting and gathering values, fast on TensorFlow's CPU kernels."""

import tensorflow as tf

from keras_robust.backend.common import check_selection_rank


def select(condition, a, b):
    """`a` where `condition` holds, else `b`: `ops.where` without broadcasting.

    `condition` is a boolean scalar, a `[N]` vector selecting whole examples
    along the first axis of `a` and `b`, or a tensor of their full shape.
    TensorFlow's broadcasting select (what `ops.where` runs) took 841 µs on a
    64×32×32×3 batch with a full-shape condition on one CPU thread, the
    non-broadcasting select 28 µs, and 47 µs selecting examples with a `[N]`
    condition, against 75 µs for `ops.where` on `[N, D]` views
    (benchmarks/NOTES.md).

    Args:
        condition: Boolean tensor, of rank 0, rank 1 (`[N]`) or the rank and
            shape of `a`.
        a: Values where `condition` holds.
        b: Values elsewhere, the shape and dtype of `a`.

    Returns:
        A tensor of the shape and dtype of `a`.

    Raises:
        ValueError: If the rank of `condition` is none of the above.
    """
    condition = tf.convert_to_tensor(condition)
    a = tf.convert_to_tensor(a)
    b = tf.convert_to_tensor(b, dtype=a.dtype)
    check_selection_rank(condition.shape.rank, a.shape.rank, condition.shape, a.shape)
    return tf.raw_ops.Select(condition=condition, x=a, y=b)


def gather(params, indices):
    """`params[indices]` along the first axis, for indices known to be valid.

    `ops.take` also maps negative indices, with six more operations per
    call; in a loop of small operations (the Square attack's thousands of
    iterations), where scheduling an operation costs about as much as
    running it, those add up.

    Args:
        params: A tensor.
        indices: Integer tensor of indices in `[0, len(params))`.

    Returns:
        `params` gathered at `indices`, of shape `indices.shape +
        params.shape[1:]`.
    """
    return tf.gather(params, indices)
