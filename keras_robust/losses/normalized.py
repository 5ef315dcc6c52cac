"""Normalized losses (Ma et al. 2020): NCE and NFL."""

import keras
from keras import ops

from keras_robust.losses.base import RobustLoss
from keras_robust.validation import validate_number


@keras.saving.register_keras_serializable(package="keras_robust")
class NormalizedCrossentropy(RobustLoss):
    """Normalized cross-entropy (NCE), an *active* noise-robust loss.

    `loss = (-sum_k t_k log p_k) / (-sum_k log p_k)`, with the exact
    log-softmax and the gradient flowing through the denominator, as in the
    reference code of Ma et al. Its value lies in `[0, 1]`. Alone it
    underfits; pair it with a passive loss (`ActivePassiveLoss("nce",
    "rce")`).

    Args:
        from_logits: Whether `y_pred` holds logits (default) or probabilities
            (clipped to `[1e-7, 1]` before the logarithm).
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Ignored for the computation, which runs in float32.

    References:
        Ma et al., "Normalized Loss Functions for Deep Learning with Noisy
        Labels", ICML 2020.
    """

    def __init__(
        self,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="normalized_crossentropy",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )

    def per_example_loss(self, targets, log_probs):
        return ops.sum(targets * log_probs, axis=-1) / ops.sum(log_probs, axis=-1)


@keras.saving.register_keras_serializable(package="keras_robust")
class NormalizedFocalCrossentropy(RobustLoss):
    """Normalized focal loss (NFL), an *active* noise-robust loss.

    With the focal loss `FL_k = -(1 - p_k)^gamma log p_k`,
    `loss = sum_k t_k FL_k / sum_k FL_k`. As in the reference code, the
    focal factors `(1 - p_k)^gamma` are treated as constants
    (stop-gradient) in numerator and denominator; the gradient flows through
    the `log p_k` factors only.

    Args:
        gamma: Focusing parameter, `>= 0`. Default 0.5, the value of the
            published NFL+RCE / NFL+MAE results.
        from_logits: Whether `y_pred` holds logits (default) or probabilities.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Ignored for the computation, which runs in float32.

    Raises:
        ValueError: If `gamma` is negative.

    References:
        Ma et al., "Normalized Loss Functions for Deep Learning with Noisy
        Labels", ICML 2020. Lin et al., "Focal Loss for Dense Object
        Detection", ICCV 2017.
    """

    def __init__(
        self,
        gamma=0.5,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="normalized_focal_crossentropy",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )
        self.gamma = validate_number("gamma", gamma, low=0.0)

    def per_example_loss(self, targets, log_probs):
        focal = ops.stop_gradient((1.0 - ops.exp(log_probs)) ** self.gamma)
        weighted = focal * log_probs
        return ops.sum(targets * weighted, axis=-1) / ops.sum(weighted, axis=-1)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}
