"""`keras.layers.BatchNormalization` on TensorFlow's fused kernel."""

import keras

from keras_robust import backend


@keras.saving.register_keras_serializable(package="keras_robust")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, computed by one fused kernel.

    Keras 3 normalises with separate ops (the moments, then scale and
    shift: about ten kernels per layer and as many in the backward pass);
    TensorFlow's `FusedBatchNormV3` does it in one, as PyTorch's batch norm
    does. The arguments, weights, outputs (up to rounding) and moving
    statistics are Keras's, so the layer is a drop-in replacement; the
    models of `keras_robust.models` use it. A PGD-10 training step of the
    4-convolution CNN of the benchmarks ran 17% faster with it on one CPU
    thread (`benchmarks/NOTES.md`).

    The fused kernel runs on 4-D channels-last batches (`axis=-1`) of
    float16 or float32 (and bfloat16 on CPUs) without a mask,
    renormalisation or synchronised statistics; anything else takes Keras's
    own path.

    Example:

    >>> import numpy as np, keras_robust as kr
    >>> layer = kr.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    >>> x = np.random.default_rng(0).normal(size=(8, 4, 4, 3)).astype("float32")
    >>> y = layer(x, training=True)
    >>> bool(abs(float(y.numpy().mean())) < 1e-5)
    True
    """

    def call(self, inputs, training=None, mask=None):
        if not backend.can_fuse_batch_norm(self, inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        return backend.fused_batch_norm(
            self, inputs, training=bool(training and self.trainable)
        )
