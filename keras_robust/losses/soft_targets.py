"""Cross-entropy against soft targets: plain, smoothed, MaxSup, bootstrapped."""

import keras
from keras import ops

from keras_robust.classification import cross_entropy
from keras_robust.losses.base import RobustLoss
from keras_robust.validation import validate_number


@keras.saving.register_keras_serializable(package="keras_robust")
class SoftTargetCrossentropy(RobustLoss):
    """Cross-entropy against dense soft targets (or sparse labels).

    `loss = -sum_k t_k log p_k`. With one-hot or sparse targets this is the
    ordinary categorical cross-entropy; with soft targets (distillation,
    ADR's rectified labels, mixup) it is the soft-target cross-entropy.

    Targets: sparse integer labels `[N]` or dense targets `[N, K]`. Inputs:
    logits by default (`from_logits=True`).

    Args:
        from_logits: Whether `y_pred` holds logits (default) or probabilities.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Ignored for the computation, which runs in float32.

    Example:

    >>> import numpy as np
    >>> import keras_robust
    >>> loss = keras_robust.losses.SoftTargetCrossentropy()
    >>> y_true = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    >>> round(float(loss(y_true, logits)), 4)
    0.4201
    """

    def __init__(
        self,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="soft_target_crossentropy",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )

    def per_example_loss(self, targets, log_probs):
        return cross_entropy(targets, log_probs)


@keras.saving.register_keras_serializable(package="keras_robust")
class LabelSmoothingCrossentropy(RobustLoss):
    """Cross-entropy with label smoothing, for sparse labels too.

    The target becomes `(1 - smoothing) * t + smoothing / K`, Keras's own
    semantics (`keras.losses.CategoricalCrossentropy(label_smoothing=...)`),
    but sparse integer labels are accepted as well, which
    `keras.losses.SparseCategoricalCrossentropy` does not offer.

    Args:
        smoothing: Amount of probability mass spread uniformly over the K
            classes, in `[0, 1]`. Default 0.1 (Szegedy et al. 2016).
        from_logits: Whether `y_pred` holds logits (default) or probabilities.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Ignored for the computation, which runs in float32.

    Raises:
        ValueError: If `smoothing` is outside `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> import keras_robust
    >>> loss = keras_robust.losses.LabelSmoothingCrossentropy(smoothing=0.1)
    >>> round(float(loss(np.array([0]), np.array([[2.0, 0.0]]))), 4)
    0.2269

    References:
        Szegedy et al., "Rethinking the Inception Architecture for Computer
        Vision", CVPR 2016.
    """

    def __init__(
        self,
        smoothing=0.1,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="label_smoothing_crossentropy",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )
        self.smoothing = validate_number("smoothing", smoothing, low=0.0, high=1.0)

    def per_example_loss(self, targets, log_probs):
        num_classes = ops.shape(log_probs)[-1]
        smoothed = targets * (1.0 - self.smoothing) + self.smoothing / num_classes
        return cross_entropy(smoothed, log_probs)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}


@keras.saving.register_keras_serializable(package="keras_robust")
class MaxSupCrossentropy(RobustLoss):
    """Cross-entropy with Max Suppression (MaxSup) regularisation.

    `loss = CE(t, p) + alpha * (max_k z_k - mean_k z_k)`. Label smoothing is
    equivalent to penalising `z_y - mean_k z_k`; MaxSup penalises the top
    logit instead, which keeps the regularisation from rewarding
    over-confident wrong predictions.

    The penalty is invariant to adding a constant to every logit, so it is
    computed from the log-probabilities and the loss works unchanged with
    `from_logits=False`.

    The paper ramps `alpha` from 0.1 to 0.2 over training; this loss takes a
    fixed `alpha` (a schedule can be applied by training in stages).

    Args:
        alpha: Weight of the max-suppression penalty, `>= 0`. Default 0.1.
        from_logits: Whether `y_pred` holds logits (default) or probabilities.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Ignored for the computation, which runs in float32.

    Raises:
        ValueError: If `alpha` is negative.

    References:
        Zhou et al., "MaxSup: Overcoming Representation Collapse in Label
        Smoothing", 2025.
    """

    def __init__(
        self,
        alpha=0.1,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="max_sup_crossentropy",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )
        self.alpha = validate_number("alpha", alpha, low=0.0)

    def per_example_loss(self, targets, log_probs):
        penalty = ops.max(log_probs, axis=-1) - ops.mean(log_probs, axis=-1)
        return cross_entropy(targets, log_probs) + self.alpha * penalty

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="keras_robust")
class BootstrappingCrossentropy(RobustLoss):
    """Bootstrapping cross-entropy (Reed et al. 2015), soft or hard.

    - soft: `-sum_k [beta * t_k + (1 - beta) * p_k] log p_k`, default
      `beta = 0.95`. The gradient flows through both occurrences of `p` (the
      second term is an entropy penalty), as in the paper's formulation.
    - hard: `-sum_k [beta * t_k + (1 - beta) * onehot(argmax p)_k] log p_k`,
      default `beta = 0.8`.

    Args:
        beta: Weight of the given labels, in `[0, 1]`. `None` picks the
            paper's value for `mode`: 0.95 (soft) or 0.8 (hard).
        mode: `"soft"` or `"hard"`.
        from_logits: Whether `y_pred` holds logits (default) or probabilities.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Ignored for the computation, which runs in float32.

    Raises:
        ValueError: If `beta` is outside `[0, 1]` or `mode` is unknown.

    References:
        Reed et al., "Training Deep Neural Networks on Noisy Labels with
        Bootstrapping", ICLR workshop 2015.
    """

    DEFAULT_BETA = {"soft": 0.95, "hard": 0.8}

    def __init__(
        self,
        beta=None,
        mode="soft",
        from_logits=True,
        reduction="sum_over_batch_size",
        name="bootstrapping_crossentropy",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )
        if mode not in self.DEFAULT_BETA:
            raise ValueError(
                f"Argument `mode` must be 'soft' or 'hard'. Received: mode={mode!r}"
            )
        self.mode = mode
        if beta is None:
            beta = self.DEFAULT_BETA[mode]
        self.beta = validate_number("beta", beta, low=0.0, high=1.0)

    def per_example_loss(self, targets, log_probs):
        if self.mode == "soft":
            predicted = ops.exp(log_probs)
        else:
            num_classes = ops.shape(log_probs)[-1]
            predicted = ops.one_hot(
                ops.argmax(log_probs, axis=-1), num_classes, dtype="float32"
            )
        mixed = self.beta * targets + (1.0 - self.beta) * predicted
        return cross_entropy(mixed, log_probs)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "mode": self.mode}
