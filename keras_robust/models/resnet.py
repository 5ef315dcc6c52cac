"""CIFAR-style ResNet-18, the architecture of the adversarial-training papers."""

import keras

from keras_robust.layers import InputStandardization

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)


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


def _basic_block(x, filters, strides, regularizer, name):
    shortcut = x
    x = _conv(filters, 3, strides, regularizer, f"{name}_conv1")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn1")(x)
    x = keras.layers.ReLU(name=f"{name}_relu1")(x)
    x = _conv(filters, 3, 1, regularizer, f"{name}_conv2")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn2")(x)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = _conv(filters, 1, strides, regularizer, f"{name}_proj")(shortcut)
        shortcut = keras.layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
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

    References:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
    """
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    inputs = keras.Input(input_shape, name="images")
    x = inputs
    if mean is not None:
        x = InputStandardization(mean, std, name="standardization")(x)
    x = _conv(64, 3, 1, regularizer, "stem_conv")(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, filters, strides, regularizer, f"stage{stage}_{block}")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(
        num_classes, kernel_regularizer=regularizer, dtype="float32", name="logits"
    )(x)
    return keras.Model(inputs, outputs, name=name)
