"""ADR: Annealing Self-Distillation Rectification (Wu, Wang, Chen; ICLR 2024)."""

import keras
from keras import ops

from keras_robust import schedules
from keras_robust.losses.base import RobustLoss, dense_targets
from keras_robust.losses.soft_targets import cross_entropy


def adr_targets(labels, teacher_logits, temperature, interpolation):
    """Rectified soft labels of ADR from a teacher's logits.

    With `P = softmax(teacher_logits / temperature)`, the per-example
    interpolation `λ_i = clip(interpolation − (max_k P[i, k] − P[i, y_i]),
    0, 1)` and `ỹ_i = λ_i · P[i] + (1 − λ_i) · onehot(y_i)`. For
    `interpolation < 1` the true class is always the arg-max of `ỹ_i`: the
    teacher's distribution is mixed in only as far as it keeps the label on
    top.

    Args:
        labels: Sparse labels `[N]` (or `[N, 1]`) or one-hot targets `[N, K]`.
        teacher_logits: The teacher's logits on the clean inputs, `[N, K]`.
        temperature: Softmax temperature `τ > 0` (number or scalar tensor).
        interpolation: `ρ` in `[0, 1]` (number or scalar tensor).

    Returns:
        float32 soft targets `[N, K]`, with no gradient to the teacher.

    Example:

    >>> import numpy as np
    >>> from keras_robust.losses import adr_targets
    >>> targets = adr_targets(np.array([0]), np.array([[1.0, 2.0, 0.0]]), 1.0, 0.9)
    >>> bool(np.argmax(targets[0]) == 0)
    True

    References:
        Wu, Wang, Chen, "Annealing Self-Distillation Rectification Improves
        Adversarial Training", ICLR 2024.
    """
    teacher_logits = ops.stop_gradient(ops.cast(teacher_logits, "float32"))
    one_hot = dense_targets(labels, teacher_logits)
    temperature = ops.cast(temperature, "float32")
    interpolation = ops.cast(interpolation, "float32")
    probs = ops.softmax(teacher_logits / temperature, axis=-1)
    gap = ops.max(probs, axis=-1) - ops.sum(probs * one_hot, axis=-1)
    lam = ops.clip(interpolation - gap, 0.0, 1.0)[:, None]
    return ops.stop_gradient(lam * probs + (1.0 - lam) * one_hot)


@keras.saving.register_keras_serializable(package="keras_robust")
class ADRLoss(RobustLoss):
    """ADR's loss: soft-target cross-entropy on teacher-rectified labels.

    Use it with `keras_robust.AdversarialModel` and the
    `keras_robust.callbacks.EMATeacher` callback. In each training step the
    model builds the rectified labels `ỹ = adr_targets(y, teacher(x), τ_s,
    ρ_s)` from the EMA teacher (eval mode) on the *clean* batch, before the
    attack; the attack maximises the cross-entropy against `ỹ` and training
    minimises `-Σ_k ỹ_k log p_k(x')` (with `objective="trades"`:
    `CE(f(x), ỹ) + β · KL(p(x) ‖ p(x'))`). `attack=None` gives ADR on clean
    data. `τ_s` and `ρ_s` follow the schedules, evaluated at the optimizer's
    step `s` with horizon `S` (epochs × steps per epoch unless the schedule
    sets `total_steps`); the logs show them as `temperature` and
    `interpolation`.

    In evaluation (`test_step`) the loss is the cross-entropy against the
    given labels.

    Reference settings (τ_max → τ_min, ρ_min → ρ_max; cosine over the
    iterations, no warm-up; EMA decay 0.995):

    | dataset       | setting | temperature | interpolation |
    |---------------|---------|-------------|---------------|
    | CIFAR-10      | SGD     | 2.5 → 2.0   | 0.7 → 0.95    |
    | CIFAR-10      | +AWP    | 2.5 → 1.5   | 0.7 → 0.85    |
    | CIFAR-100     | SGD     | 1.5 → 1.0   | 0.7 → 0.95    |
    | CIFAR-100     | +AWP    | 2.0 → 1.0   | 0.7 → 0.85    |
    | TinyImageNet  | most    | 2.0 → 1.5   | 0.5 → 0.9     |

    Args:
        temperature: Schedule (or number) of the teacher's softmax
            temperature, `> 0`. Default `CosineAnnealing(2.5, 2.0)`
            (CIFAR-10).
        interpolation: Schedule (or number) of ρ, in `[0, 1]`. Default
            `CosineAnnealing(0.7, 0.95)`.
        from_logits: Whether `y_pred` holds logits (default) or probabilities.
        reduction: Keras reduction, `"sum_over_batch_size"` by default.
        name: Name of the loss instance.
        dtype: Ignored for the computation, which runs in float32.

    Raises:
        ValueError: For a schedule argument of the wrong type; and when
            called outside `AdversarialModel` (it needs the teacher).

    References:
        Wu, Wang, Chen, "Annealing Self-Distillation Rectification Improves
        Adversarial Training", ICLR 2024.
    """

    def __init__(
        self,
        temperature=None,
        interpolation=None,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="adr_loss",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )
        if temperature is None:
            temperature = schedules.CosineAnnealing(2.5, 2.0)
        if interpolation is None:
            interpolation = schedules.CosineAnnealing(0.7, 0.95)
        self.temperature = schedules.get(temperature, "temperature")
        self.interpolation = schedules.get(interpolation, "interpolation")
        # Set by AdversarialModel when it compiles with this loss.
        self.attached = False

    def schedule_values(self, step, total_steps):
        """`(τ_s, ρ_s)` at optimizer step `step` with horizon `total_steps`."""
        return (
            self.temperature(step, total_steps),
            self.interpolation(step, total_steps),
        )

    def rectify(self, labels, teacher_logits, step, total_steps):
        """Rectified labels at `step`: `adr_targets` with the scheduled τ, ρ."""
        temperature, interpolation = self.schedule_values(step, total_steps)
        return adr_targets(labels, teacher_logits, temperature, interpolation)

    def call(self, y_true, y_pred):
        if not self.attached:
            raise ValueError(
                "ADRLoss builds its targets from an EMA teacher, which only "
                "keras_robust.AdversarialModel provides: wrap the model, "
                "`model = keras_robust.AdversarialModel(base, attack=...)`, "
                "compile it with this loss and pass "
                "`callbacks=[keras_robust.callbacks.EMATeacher()]` to fit(). "
                "Received: ADRLoss used directly, with y_true of shape "
                f"{tuple(y_true.shape)}"
            )
        return super().call(y_true, y_pred)

    def per_example_loss(self, targets, log_probs):
        return cross_entropy(targets, log_probs)

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": keras.saving.serialize_keras_object(self.temperature),
            "interpolation": keras.saving.serialize_keras_object(self.interpolation),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("temperature", "interpolation"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
