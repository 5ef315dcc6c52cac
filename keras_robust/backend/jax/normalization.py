"""Batch normalisation on JAX: Keras's own layer, which XLA fuses."""


def can_fuse_batch_norm(layer, inputs, mask):
    """Always `False`: there is no separate fused kernel to call on JAX."""
    return False


def fused_batch_norm(layer, inputs, training):
    raise NotImplementedError(
        "fused_batch_norm is TensorFlow's kernel; on JAX, can_fuse_batch_norm "
        "is False and Keras's BatchNormalization runs."
    )
