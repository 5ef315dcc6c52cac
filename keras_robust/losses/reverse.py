"""Passive losses: reverse cross-entropy and mean absolute error."""

import keras
from keras import ops

from keras_robust.losses.base import RobustLoss
from keras_robust.validation import validate_number

RCE_PROB_EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="keras_robust")
class ReverseCrossentropy(RobustLoss):
    """Reverse cross-entropy (RCE), a *passive* noise-robust loss.

    `loss = -sum_k clip(p_k, 1e-7, 1) * log clip(t_k, label_clip, 1)`, the
    reference code's form: with one-hot targets it equals
    `-log(label_clip) * (1 - p_y)` up to the 1e-7 clip, i.e.
    `9.2103 * (1 - p_y)` for the default `label_clip = 1e-4`. (The
    symmetric cross-entropy paper writes `A = -4` for `log 0`; the code,
    and every published number, uses `log(1e-4)`. Pass
    `label_clip=math.exp(-4)` for the paper's `A`.)

    Args:
        label_clip: Smallest target value before the logarithm, in `(0, 1)`.
            Default `1e-4`.
        from_logits: Whether `y_pred` holds logits (default) or probabilities.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Ignored for the computation, which runs in float32.

    Raises:
        ValueError: If `label_clip` is outside `(0, 1)`.

    References:
        Wang et al., "Symmetric Cross Entropy for Robust Learning with Noisy
        Labels", ICCV 2019.
    """

    def __init__(
        self,
        label_clip=1e-4,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="reverse_crossentropy",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )
        self.label_clip = validate_number(
            "label_clip", label_clip, low=0.0, high=1.0, low_open=True
        )
        if self.label_clip == 1.0:
            raise ValueError(
                "Argument `label_clip` must be smaller than 1. "
                f"Received: label_clip={label_clip!r}"
            )

    def per_example_loss(self, targets, log_probs):
        probs = ops.clip(ops.exp(log_probs), RCE_PROB_EPSILON, 1.0)
        log_targets = ops.log(ops.clip(targets, self.label_clip, 1.0))
        return -ops.sum(probs * log_targets, axis=-1)

    def get_config(self):
        return {**super().get_config(), "label_clip": self.label_clip}


@keras.saving.register_keras_serializable(package="keras_robust")
class MeanAbsoluteError(RobustLoss):
    """Mean absolute error between prediction and label, `1 - p_y`.

    The classification form of MAE used by the noise-robust literature:
    `loss = 1 - sum_k t_k p_k`, which for one-hot targets is half of
    `sum_k |p_k - t_k|`. The published α/β of the active-passive losses
    assume this form. (Not to be confused with `keras.losses.MeanAbsoluteError`,
    the regression loss on raw outputs.)

    Args:
        from_logits: Whether `y_pred` holds logits (default) or probabilities.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Ignored for the computation, which runs in float32.

    References:
        Ghosh et al., "Robust Loss Functions under Label Noise for Deep
        Neural Networks", AAAI 2017.
    """

    def __init__(
        self,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="mean_absolute_error",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )

    def per_example_loss(self, targets, log_probs):
        return 1.0 - ops.sum(targets * ops.exp(log_probs), axis=-1)
