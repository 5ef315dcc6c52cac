"""The base class shared by every classification loss of keras_robust."""

import warnings

import keras
import numpy as np
from keras import ops

from keras_robust.backend import concrete_values
from keras_robust.classification import dense_targets
from keras_robust.validation import validate_bool

# Probabilities are clipped to [PROB_EPSILON, 1] before a logarithm when the
# loss receives probabilities (`from_logits=False`).
PROB_EPSILON = 1e-7


def _looks_like_softmax_output(y_pred):
    """Whether a symbolic tensor was produced by a softmax (trace-time check)."""
    if hasattr(y_pred, "_keras_logits"):
        return True
    op = getattr(y_pred, "op", None)
    return getattr(op, "type", None) == "Softmax"


class RobustLoss(keras.losses.Loss):
    """Base class of keras_robust's classification losses.

    A subclass implements only `per_example_loss(targets, log_probs)`; this
    class turns whatever `compile(loss=...)` receives into those arguments:

    - `y_pred` holds logits (`from_logits=True`, the default of every loss
      in this package, since attacks need logits) or probabilities, shape
      `[..., K]`, in any float dtype. The loss is computed in float32.
    - `y_true` holds sparse integer labels (shape `[...]` or `[..., 1]`) or
      dense targets (one-hot or soft, shape `[..., K]`). Sparse labels are
      turned into one-hot targets.

    Reduction, `sample_weight` and the scaling under `tf.distribute` are
    Keras's own.

    Args:
        from_logits: Whether `y_pred` holds logits (default) or probabilities.
            Probabilities are clipped to `[1e-7, 1]` before the logarithm. A
            warning is issued when the inputs look like the other kind.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Accepted for Keras compatibility; the computation always runs
            in float32.
    """

    def __init__(
        self,
        from_logits=True,
        reduction="sum_over_batch_size",
        name=None,
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = validate_bool("from_logits", from_logits)

    def per_example_loss(self, targets, log_probs):
        """Computes the loss of each example.

        Args:
            targets: float32 dense targets, shape `[N, K]`.
            log_probs: float32 log-probabilities (log-softmax of the logits),
                shape `[N, K]`.

        Returns:
            float32 tensor of shape `[N]`.
        """
        raise NotImplementedError

    def call(self, y_true, y_pred):
        self._warn_if_wrong_kind(y_pred)
        y_pred = ops.cast(y_pred, "float32")
        targets = dense_targets(y_true, y_pred)
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
        else:
            log_probs = ops.log(ops.clip(y_pred, PROB_EPSILON, 1.0))
        return self.per_example_loss(targets, log_probs)

    def _warn_if_wrong_kind(self, y_pred):
        # Once per loss instance: fit() traces the loss several times.
        if getattr(self, "_warned_wrong_kind", False):
            return
        values = concrete_values(y_pred)
        if self.from_logits:
            if values is None:
                suspicious = _looks_like_softmax_output(y_pred)
            else:
                values = values.astype(np.float64)
                suspicious = (
                    values.size > 0
                    and values.shape[-1] > 1
                    and np.all((values >= 0) & (values <= 1))
                    and np.allclose(values.sum(axis=-1), 1.0, atol=1e-3)
                )
            if suspicious:
                self._warned_wrong_kind = True
                warnings.warn(
                    f"`{self.name}` received `from_logits=True`, but `y_pred` "
                    "looks like probabilities (a softmax output). Pass logits, "
                    "or create the loss with `from_logits=False`.",
                    stacklevel=3,
                )
        elif values is not None and values.size > 0:
            values = values.astype(np.float64)
            if np.any(values < 0) or np.any(values > 1):
                self._warned_wrong_kind = True
                warnings.warn(
                    f"`{self.name}` received `from_logits=False`, but `y_pred` "
                    "has values outside [0, 1], so it looks like logits. Create "
                    "the loss with `from_logits=True`.",
                    stacklevel=3,
                )

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}
