"""Generalized cross-entropy (Zhang & Sabuncu 2018) and its normalized form."""

import keras
from keras import ops

from keras_robust.losses.base import RobustLoss
from keras_robust.validation import validate_number

# The reference code clips probabilities to [1e-7, 1] before the power.
GCE_EPSILON = 1e-7


def _clipped_probs(log_probs):
    return ops.clip(ops.exp(log_probs), GCE_EPSILON, 1.0)


@keras.saving.register_keras_serializable(package="keras_robust")
class GeneralizedCrossentropy(RobustLoss):
    """Generalized cross-entropy (GCE), a noise-robust loss.

    `loss = (1 - p_t^q) / q` with `p_t = sum_k t_k p_k` and `p` clipped to
    `[1e-7, 1]` (as the reference code does; the gradient is zero where the
    clip is active). `q -> 0` recovers cross-entropy, `q = 1` gives MAE.

    Args:
        q: Exponent in `(0, 1]`. Default 0.7, the published value for
            CIFAR-10 and CIFAR-100.
        from_logits: Whether `y_pred` holds logits (default) or probabilities.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Ignored for the computation, which runs in float32.

    Raises:
        ValueError: If `q` is outside `(0, 1]`.

    References:
        Zhang & Sabuncu, "Generalized Cross Entropy Loss for Training Deep
        Neural Networks with Noisy Labels", NeurIPS 2018.
    """

    def __init__(
        self,
        q=0.7,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="generalized_crossentropy",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )
        self.q = validate_number("q", q, low=0.0, high=1.0, low_open=True)

    def per_example_loss(self, targets, log_probs):
        p_true = ops.sum(targets * _clipped_probs(log_probs), axis=-1)
        return (1.0 - p_true**self.q) / self.q

    def get_config(self):
        return {**super().get_config(), "q": self.q}


@keras.saving.register_keras_serializable(package="keras_robust")
class NormalizedGeneralizedCrossentropy(RobustLoss):
    """Normalized generalized cross-entropy (NGCE), an *active* loss.

    `loss = (1 - p_t^q) / (K - sum_k p_k^q)` with `p` clipped to
    `[1e-7, 1]`, as in the reference code of Ma et al. (no `1/q` factor).

    Args:
        q: Exponent in `(0, 1]`. Default 0.7.
        from_logits: Whether `y_pred` holds logits (default) or probabilities.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Ignored for the computation, which runs in float32.

    Raises:
        ValueError: If `q` is outside `(0, 1]`.

    References:
        Ma et al., "Normalized Loss Functions for Deep Learning with Noisy
        Labels", ICML 2020.
    """

    def __init__(
        self,
        q=0.7,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="normalized_generalized_crossentropy",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )
        self.q = validate_number("q", q, low=0.0, high=1.0, low_open=True)

    def per_example_loss(self, targets, log_probs):
        probs = _clipped_probs(log_probs)
        num_classes = ops.cast(ops.shape(log_probs)[-1], "float32")
        numerator = 1.0 - ops.sum(targets * probs, axis=-1) ** self.q
        return numerator / (num_classes - ops.sum(probs**self.q, axis=-1))

    def get_config(self):
        return {**super().get_config(), "q": self.q}
