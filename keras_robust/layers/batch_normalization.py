"""`keras.layers.BatchNormalization` on TensorFlow's fused kernel, and
`fuse_batch_normalization`, which puts it into an existing model."""

import warnings

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
    models of `keras_robust.models` use it, and `fuse_batch_normalization`
    puts it into a model you already have. A PGD-10 training step of the
    4-convolution CNN of the benchmarks ran 1.13 times as fast with it on
    one CPU thread with TensorFlow's oneDNN kernels, and as fast under XLA,
    which fuses Keras's ops itself (`benchmarks/fused_batch_norm.py`).

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


def _is_graph_model(model):
    """Whether `keras.models.clone_model` can rebuild `model` layer by layer
    (a Sequential or Functional model, not a subclassed one)."""
    from keras.src.models.functional import Functional

    return isinstance(model, keras.Sequential | Functional)


def fuse_batch_normalization(model):
    """A copy of `model` whose Keras batch norms run on the fused kernel.

    Each `keras.layers.BatchNormalization` of a Sequential or Functional
    model (nested models included) becomes a
    `keras_robust.layers.BatchNormalization` with the same configuration;
    every weight and moving statistic is copied, so the copy computes what
    `model` computes (up to rounding) and trains as it would. `model` is
    left unchanged and shares nothing with the copy. On TensorFlow this
    gives a model you already have the speed of the model zoo's batch
    norm: a PGD-10 training step of the benchmarks' CNN ran 1.13 times as
    fast on one CPU thread with oneDNN's kernels, 1.03 times without
    them, and as fast under XLA (`benchmarks/fused_batch_norm.py`). On JAX
    the copy's batch norms run Keras's ops, which XLA fuses, as `model`'s
    do.

    Subclasses of `keras.layers.BatchNormalization` are kept (their `call`
    may differ); layers the fused kernel does not cover (not 4-D
    channels-last, masked, renormalised, synchronised) are converted and
    run on Keras's path, as `keras_robust.layers.BatchNormalization` does.
    The copy is not compiled: fuse the base model before wrapping it in an
    `AdversarialModel` and compiling.

    Example:

    >>> import keras, keras_robust as kr
    >>> model = keras.Sequential([
    ...     keras.Input((8, 8, 3)),
    ...     keras.layers.Conv2D(4, 3),
    ...     keras.layers.BatchNormalization(),
    ...     keras.layers.GlobalAveragePooling2D(),
    ...     keras.layers.Dense(10),
    ... ])
    >>> fused = kr.layers.fuse_batch_normalization(model)
    >>> type(fused.layers[1]).__name__, fused.layers[1].name == model.layers[1].name
    ('BatchNormalization', True)
    >>> type(fused.layers[1]) is kr.layers.BatchNormalization
    True

    Args:
        model: A Sequential or Functional `keras.Model`.

    Returns:
        The copy, with new layers and variables: a `keras.Sequential` or a
        Functional `keras.Model` as `model` is (a subclass of either comes
        back as that base class, as from `keras.models.clone_model`).

    Raises:
        TypeError: `model` is not a Sequential or Functional Keras model (a
            subclassed model, an `AdversarialModel`: replace the layers in
            its code, or fuse the base model before wrapping it).
    """
    if not isinstance(model, keras.Model) or not _is_graph_model(model):
        hint = ""
        if hasattr(model, "base_model"):
            hint = (
                " Fuse the base model before wrapping it: "
                "AdversarialModel(fuse_batch_normalization(base), ...)."
            )
        elif isinstance(model, keras.Model):
            hint = (
                " In a subclassed model, use keras_robust.layers."
                "BatchNormalization in its code."
            )
        raise TypeError(
            "`model` must be a Sequential or Functional keras.Model, whose "
            f"layers can be rebuilt one by one.{hint} Received: model={model!r} "
            f"of type {type(model).__name__}."
        )
    replaced = []

    def clone_layer(layer):
        config = layer.get_config()
        if type(layer) is keras.layers.BatchNormalization:
            replaced.append(layer.name)
            return BatchNormalization.from_config(config)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    if not replaced:
        warnings.warn(
            f"fuse_batch_normalization: model {model.name!r} has no "
            "keras.layers.BatchNormalization layer (subclasses are kept); the "
            "copy computes exactly what it computes, on the same kernels.",
            UserWarning,
            stacklevel=2,
        )
    _copy_variables(model, copy)
    return copy


def _copy_variables(source, target):
    """Assigns each variable of `source` to its counterpart in `target`, a
    clone (the same layers, in the same order)."""
    pairs = list(zip(source.weights, target.weights, strict=False))
    if len(source.weights) != len(target.weights) or any(
        a.path.split("/")[-2:] != b.path.split("/")[-2:] or a.shape != b.shape
        for a, b in pairs
    ):
        raise RuntimeError(
            f"The copy of model {source.name!r} does not have its variables: "
            f"{[v.path for v in source.weights]} against "
            f"{[v.path for v in target.weights]}."
        )
    for a, b in pairs:
        # A copy: on JAX, assigning the array itself would share its buffer,
        # which a compiled training step of either model may donate.
        b.assign(keras.ops.copy(a.value))
