"""ADR: Annealing Self-Distillation Rectification (Wu, Wang, Chen; ICLR 2024)."""

import keras

from keras_robust.classification import cross_entropy
from keras_robust.losses.base import RobustLoss
from keras_robust.training.batch import active_model
from keras_robust.training.targets import ADRTargets, adr_targets

__all__ = ["ADRLoss", "adr_targets"]


@keras.saving.register_keras_serializable(package="keras_robust")
class ADRLoss(RobustLoss):
    """ADR's loss: soft-target cross-entropy on teacher-rectified labels.

    Use it with `keras_robust.AdversarialModel` and the
    `keras_robust.callbacks.EMATeacher` callback. The loss brings its
    targets to the model through `training_targets()`, which returns
    `keras_robust.training.ADRTargets`: in each training step the model
    builds the rectified labels `ỹ = adr_targets(y, teacher(x), τ_s, ρ_s)`
    from the EMA teacher (eval mode) on the *clean* batch, before the
    attack; the attack maximises its loss (cross-entropy for PGD) against
    `ỹ` and training minimises `-Σ_k ỹ_k log p_k(x')` (with
    `objective="trades"`: `CE(f(x), ỹ) + β · KL(p(x) ‖ p(x'))`).
    `attack=None` gives ADR on clean data. `τ_s` and `ρ_s` follow the
    schedules, evaluated at the model's own step counter `s` with horizon
    `S` (epochs × steps per epoch of the first `fit()` that needs one,
    unless the schedule sets `total_steps`); the logs show them as
    `temperature` and `interpolation`.

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
        ValueError: For a schedule argument of the wrong type, a temperature
            that reaches 0 or below, or an interpolation outside `[0, 1]`;
            and when called outside `AdversarialModel` (it needs the
            teacher).

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
        targets = ADRTargets(temperature, interpolation)
        self.temperature = targets.temperature
        self.interpolation = targets.interpolation

    def training_targets(self):
        """The targets this loss trains toward: `ADRTargets` with its schedules.

        `AdversarialModel.compile` asks the compiled loss for them; any loss
        may define this method to bring its own `keras_robust.training.Targets`.
        """
        return ADRTargets(self.temperature, self.interpolation)

    def schedule_values(self, step, total_steps):
        """`(τ_s, ρ_s)` at step `step` with horizon `total_steps`."""
        return self.training_targets().schedule_values(step, total_steps)

    def call(self, y_true, y_pred):
        if active_model() is None:
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
