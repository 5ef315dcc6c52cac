"""Batch normalisation on TensorFlow's fused kernel."""

import tensorflow as tf

_FUSED_DTYPES = (tf.float16, tf.bfloat16, tf.float32)


def _fused_dtypes():
    """The input dtypes to fuse: bfloat16 only without a GPU, where its
    fused kernel is checked (the CPU's); float16 and float32 everywhere."""
    if tf.config.list_logical_devices("GPU"):
        return (tf.float16, tf.float32)
    return _FUSED_DTYPES


def can_fuse_batch_norm(layer, inputs, mask):
    """Whether `fused_batch_norm` computes what `layer` computes on `inputs`.

    The fused kernel normalises the last axis of a 4-D (NHWC) batch; masks,
    batch renormalisation and synchronised statistics stay on Keras's path.
    """
    return (
        mask is None
        and len(inputs.shape) == 4
        and layer.axis in (3, -1)
        and not layer.renorm
        and not getattr(layer, "synchronized", False)
        and tf.as_dtype(inputs.dtype) in _fused_dtypes()
    )


def fused_batch_norm(layer, inputs, training):
    """`keras.layers.BatchNormalization.call` on one `FusedBatchNormV3` op.

    The same values as Keras's path (up to rounding), the same moving
    statistics: the kernel returns the Bessel-corrected batch variance,
    which is rescaled to the biased variance that Keras averages.

    Args:
        layer: A built `keras.layers.BatchNormalization` (see
            `can_fuse_batch_norm`).
        inputs: NHWC batch, float16, bfloat16 or float32.
        training: Python bool: batch statistics (and moving-statistics
            updates) or the moving statistics.

    Returns:
        The normalised batch in the layer's compute dtype.
    """
    x = tf.convert_to_tensor(inputs)
    channels = x.shape[-1]
    scale = (
        tf.convert_to_tensor(layer.gamma, tf.float32)
        if layer.scale
        else tf.ones((channels,), tf.float32)
    )
    offset = (
        tf.convert_to_tensor(layer.beta, tf.float32)
        if layer.center
        else tf.zeros((channels,), tf.float32)
    )
    moving_mean = tf.convert_to_tensor(layer.moving_mean, tf.float32)
    moving_variance = tf.convert_to_tensor(layer.moving_variance, tf.float32)
    # Training computes the batch statistics (the kernel takes empty ones).
    empty = tf.constant([], tf.float32)
    outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x,
        scale=scale,
        offset=offset,
        mean=empty if training else moving_mean,
        variance=empty if training else moving_variance,
        epsilon=layer.epsilon,
        data_format="NHWC",
        is_training=training,
    )
    if training:
        count = tf.cast(tf.size(x) // channels, tf.float32)
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        momentum = layer.momentum
        layer.moving_mean.assign(moving_mean * momentum + mean * (1.0 - momentum))
        layer.moving_variance.assign(
            moving_variance * momentum + variance * (1.0 - momentum)
        )
    return tf.cast(outputs, layer.compute_dtype)
