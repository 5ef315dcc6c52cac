"""Model zoo: the architectures of the adversarial-training literature.

Every model takes images in `[0, 1]` (channels last) and returns logits; the
per-channel standardisation is the model's first layer
(`keras_robust.layers.InputStandardization`), so attacks perturb raw pixels
and `epsilon` keeps its published meaning (8/255 on CIFAR-10). Batch
normalisation uses PyTorch's constants (momentum 0.1, i.e. Keras
`momentum=0.9`, and `epsilon=1e-5`), those of the reference implementations
whose numbers the papers report, on TensorFlow's fused kernel
(`keras_robust.layers.BatchNormalization`).

| name | reference | parameters (10 classes) |
|------|-----------|-------------------------|
| `small_cnn` | two conv blocks and a dense layer, for small images | 151,402 (8×8×1) |
| `resnet18` | He et al. (2016), CIFAR variant (Madry, TRADES, MART) | 11,173,962 |
| `preact_resnet18` | He et al. (2016b), as in Rice et al. (2020) and ADR | 11,172,170 |
| `wrn34_10` | Zagoruyko & Komodakis (2016), as in TRADES | 46,160,474 |

(Trainable parameters, equal to the PyTorch reference models'.)
"""

import keras

from keras_robust.data.tfds import STATISTICS
from keras_robust.layers import BatchNormalization, InputStandardization
from keras_robust.validation import validate_integer

CIFAR10_MEAN, CIFAR10_STD = STATISTICS["cifar10"]

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "MODELS",
    "get",
    "preact_resnet18",
    "resnet18",
    "small_cnn",
    "wide_resnet",
    "wrn34_10",
]


def _regularizer(weight_decay):
    if weight_decay is None or weight_decay == 0:
        return None
    weight_decay = float(weight_decay)
    if not weight_decay >= 0:
        raise ValueError(
            "Argument `weight_decay` must be a non-negative number. "
            f"Received: weight_decay={weight_decay!r}"
        )
    # PyTorch-style (coupled) decay: gradient weight_decay · w.
    return keras.regularizers.L2(weight_decay / 2)


def _conv(filters, kernel_size, strides, regularizer, name):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizer,
        name=name,
    )


def _bn(name):
    return BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def _stem(input_shape, mean, std, name):
    inputs = keras.Input(tuple(input_shape), name="images")
    x = inputs
    if mean is not None:
        x = InputStandardization(mean, 1.0 if std is None else std, name=name)(x)
    return inputs, x


def _head(x, num_classes, regularizer, name):
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    # float32 logits also under a mixed-precision policy.
    outputs = keras.layers.Dense(
        num_classes, kernel_regularizer=regularizer, dtype="float32", name="logits"
    )(x)
    return outputs


def _check(num_classes, input_shape):
    validate_integer("num_classes", num_classes, low=2)
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(
            "Argument `input_shape` must be (height, width, channels) of "
            f"positive integers. Received: input_shape={input_shape!r}"
        )
    return shape


def _basic_block(x, filters, strides, regularizer, name):
    shortcut = x
    x = _conv(filters, 3, strides, regularizer, f"{name}_conv1")(x)
    x = _bn(f"{name}_bn1")(x)
    x = keras.layers.ReLU(name=f"{name}_relu1")(x)
    x = _conv(filters, 3, 1, regularizer, f"{name}_conv2")(x)
    x = _bn(f"{name}_bn2")(x)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = _conv(filters, 1, strides, regularizer, f"{name}_proj")(shortcut)
        shortcut = _bn(f"{name}_proj_bn")(shortcut)
    x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def resnet18(
    num_classes=10,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    weight_decay=0.0,
    name="resnet18",
):
    """ResNet-18 for 32×32 images (3×3 stem, no max-pool), outputting logits.

    The variant of He et al. (2016) used by Madry et al., TRADES, MART and
    ADR on CIFAR: a 3×3 stem convolution, four stages of two basic blocks
    (64, 128, 256, 512 filters), global average pooling and a dense layer.
    Inputs are images in `[0, 1]`; normalisation by `mean`/`std` happens
    inside the model (`InputStandardization`), so attacks work in pixel
    units.

    Args:
        num_classes: Number of classes (logits).
        input_shape: Input image shape, channels last.
        mean: Per-channel mean for standardisation, or `None` to skip it.
        std: Per-channel standard deviation (used with `mean`).
        weight_decay: PyTorch-style (coupled) weight decay: an L2 penalty
            `weight_decay / 2 · ‖w‖²` on convolution and dense kernels, so
            that its gradient is `weight_decay · w` as with
            `torch.optim.SGD(weight_decay=...)`. The papers use 5e-4. (Keras
            optimizers' own `weight_decay` is decoupled, a different
            regulariser.)
        name: Model name.

    Returns:
        A functional `keras.Model`.

    Example:

    >>> import keras_robust as kr
    >>> model = kr.models.resnet18(num_classes=10)
    >>> model.output_shape
    (None, 10)

    References:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
    """
    input_shape = _check(num_classes, input_shape)
    regularizer = _regularizer(weight_decay)
    inputs, x = _stem(input_shape, mean, std, "standardization")
    x = _conv(64, 3, 1, regularizer, "stem_conv")(x)
    x = _bn("stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, filters, strides, regularizer, f"stage{stage}_{block}")
    outputs = _head(x, num_classes, regularizer, name)
    return keras.Model(inputs, outputs, name=name)


def _preact_block(x, filters, strides, regularizer, name, dropout=0.0):
    """Pre-activation block: BN-ReLU-conv twice (dropout between them); the
    shortcut is projected from the activated input when the shape changes."""
    out = _bn(f"{name}_bn1")(x)
    out = keras.layers.ReLU(name=f"{name}_relu1")(out)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(filters, 1, strides, regularizer, f"{name}_proj")(out)
    else:
        shortcut = x
    out = _conv(filters, 3, strides, regularizer, f"{name}_conv1")(out)
    out = _bn(f"{name}_bn2")(out)
    out = keras.layers.ReLU(name=f"{name}_relu2")(out)
    if dropout:
        out = keras.layers.Dropout(dropout, name=f"{name}_dropout")(out)
    out = _conv(filters, 3, 1, regularizer, f"{name}_conv2")(out)
    return keras.layers.Add(name=f"{name}_add")([out, shortcut])


def preact_resnet18(
    num_classes=10,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    weight_decay=0.0,
    name="preact_resnet18",
):
    """Pre-activation ResNet-18, the model of Rice et al. (2020) and ADR.

    A 3×3 stem convolution, four stages of two pre-activation blocks
    (BN-ReLU-conv; 64, 128, 256, 512 filters; 1×1 projection shortcuts
    where the shape changes), a final BN-ReLU, global average pooling and a
    dense layer. Arguments as in `resnet18`.

    Returns:
        A functional `keras.Model` from `[0, 1]` images to logits.

    References:
        He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016;
        Rice et al., "Overfitting in adversarially robust deep learning",
        ICML 2020.
    """
    input_shape = _check(num_classes, input_shape)
    regularizer = _regularizer(weight_decay)
    inputs, x = _stem(input_shape, mean, std, "standardization")
    x = _conv(64, 3, 1, regularizer, "stem_conv")(x)
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _preact_block(x, filters, strides, regularizer, f"stage{stage}_{block}")
    x = _bn("final_bn")(x)
    x = keras.layers.ReLU(name="final_relu")(x)
    outputs = _head(x, num_classes, regularizer, name)
    return keras.Model(inputs, outputs, name=name)


def wide_resnet(
    depth=34,
    width=10,
    num_classes=10,
    input_shape=(32, 32, 3),
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    weight_decay=0.0,
    dropout=0.0,
    name=None,
):
    """Wide ResNet WRN-`depth`-`width` (Zagoruyko & Komodakis, 2016).

    Three stages of `(depth - 4) / 6` pre-activation blocks with
    `16·width`, `32·width` and `64·width` filters (strides 1, 2, 2) after a
    16-filter 3×3 stem, then BN-ReLU, global average pooling and a dense
    layer: the model of Madry et al., TRADES and MART (WRN-34-10), built as
    in the TRADES reference code (where a block widens, the BN-ReLU output
    feeds both the convolution and the 1×1 projection shortcut).

    Args:
        depth: Total depth; `depth - 4` must be a positive multiple of 6
            (16, 22, 28, 34, 40, ...).
        width: Widening factor, a positive integer.
        num_classes: Number of classes (logits).
        input_shape: Input image shape, channels last.
        mean: Per-channel mean for standardisation, or `None` to skip it.
        std: Per-channel standard deviation (used with `mean`).
        weight_decay: PyTorch-style coupled weight decay (see `resnet18`).
        dropout: Dropout rate between the two convolutions of a block
            (the adversarial-training papers use 0).
        name: Model name (default `"wrn{depth}_{width}"`).

    Returns:
        A functional `keras.Model` from `[0, 1]` images to logits.

    Raises:
        ValueError: When `depth` or `width` is not valid.

    References:
        Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016.
    """
    validate_integer("depth", depth, low=10)
    validate_integer("width", width, low=1)
    if (depth - 4) % 6:
        raise ValueError(
            "Argument `depth` must be 6n + 4 (e.g. 16, 22, 28, 34, 40). "
            f"Received: depth={depth!r}"
        )
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(
            f"Argument `dropout` must be in [0, 1). Received: dropout={dropout!r}"
        )
    input_shape = _check(num_classes, input_shape)
    name = name or f"wrn{depth}_{width}"
    regularizer = _regularizer(weight_decay)
    blocks = (depth - 4) // 6
    inputs, x = _stem(input_shape, mean, std, "standardization")
    x = _conv(16, 3, 1, regularizer, "stem_conv")(x)
    for stage, (filters, stride) in enumerate(
        ((16 * width, 1), (32 * width, 2), (64 * width, 2))
    ):
        for block in range(blocks):
            x = _preact_block(
                x,
                filters,
                stride if block == 0 else 1,
                regularizer,
                f"stage{stage}_{block}",
                dropout=dropout,
            )
    x = _bn("final_bn")(x)
    x = keras.layers.ReLU(name="final_relu")(x)
    outputs = _head(x, num_classes, regularizer, name)
    return keras.Model(inputs, outputs, name=name)


def wrn34_10(num_classes=10, input_shape=(32, 32, 3), **kwargs):
    """WRN-34-10, the CIFAR model of Madry et al., TRADES and MART.

    `wide_resnet(34, 10, ...)`; the other arguments are `wide_resnet`'s.
    """
    kwargs.setdefault("name", "wrn34_10")
    return wide_resnet(
        34, 10, num_classes=num_classes, input_shape=input_shape, **kwargs
    )


def small_cnn(
    num_classes=10,
    input_shape=(28, 28, 1),
    mean=None,
    std=None,
    filters=(32, 64),
    dense_units=128,
    weight_decay=0.0,
    name="small_cnn",
):
    """A small CNN for small images (digits 8×8, MNIST 28×28, 32×32).

    Two 3×3 convolutions with BN and ReLU (`filters`), 2×2 max-pooling, a
    ReLU dense layer of `dense_units` and the logits. Trains on CPU in
    seconds per epoch on the embedded digits data; the default model of
    `keras-robust train`.

    Args:
        num_classes: Number of classes (logits).
        input_shape: Input image shape, channels last.
        mean: Per-channel mean for standardisation, or `None` to skip it.
        std: Per-channel standard deviation (used with `mean`).
        filters: Filters of the two convolutions.
        dense_units: Units of the hidden dense layer.
        weight_decay: PyTorch-style coupled weight decay (see `resnet18`).
        name: Model name.

    Returns:
        A functional `keras.Model` from `[0, 1]` images to logits.

    Example:

    >>> import keras_robust as kr
    >>> model = kr.models.small_cnn(num_classes=10, input_shape=(8, 8, 1))
    >>> model.count_params() > 0
    True
    """
    input_shape = _check(num_classes, input_shape)
    regularizer = _regularizer(weight_decay)
    inputs, x = _stem(input_shape, mean, std, "standardization")
    for i, count in enumerate(filters):
        x = _conv(count, 3, 1, regularizer, f"conv{i + 1}")(x)
        x = _bn(f"bn{i + 1}")(x)
        x = keras.layers.ReLU(name=f"relu{i + 1}")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(
        dense_units, activation="relu", kernel_regularizer=regularizer, name="dense"
    )(x)
    outputs = keras.layers.Dense(
        num_classes, kernel_regularizer=regularizer, dtype="float32", name="logits"
    )(x)
    return keras.Model(inputs, outputs, name=name)


MODELS = {
    "small_cnn": small_cnn,
    "resnet18": resnet18,
    "preact_resnet18": preact_resnet18,
    "wide_resnet": wide_resnet,
    "wrn34_10": wrn34_10,
}


def get(name, **kwargs):
    """Builds a zoo model by name: `get("wrn34_10", num_classes=100)`.

    Args:
        name: One of `keras_robust.models.MODELS`: `"small_cnn"`,
            `"resnet18"`, `"preact_resnet18"`, `"wide_resnet"`, `"wrn34_10"`.
        **kwargs: Arguments of the model function.

    Returns:
        A new functional `keras.Model` from `[0, 1]` images to logits.

    Raises:
        ValueError: When `name` is not a zoo model.
    """
    if name not in MODELS:
        raise ValueError(
            f"Argument `name` must be one of {sorted(MODELS)}. Received: name={name!r}"
        )
    return MODELS[name](**kwargs)
