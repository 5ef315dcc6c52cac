"""Training targets: what the model is trained toward in each step.

`AdversarialModel.train_step` asks its targets twice: `before_attack` (on
the clean batch; the attack then runs against these targets) and
`after_attack` (with the adversarial batch, for methods whose teacher looks
at `x'`, such as label calibration after Dong et al. 2022). The default
keeps the labels. A loss can bring its own targets by defining
`training_targets()` (as `keras_robust.losses.ADRLoss` does); the model
asks the compiled loss for them in `compile()`.
"""

import keras
from keras import ops

from keras_robust import schedules
from keras_robust.classification import dense_targets
from keras_robust.validation import Configurable


class Targets(Configurable):
    """Base class: the labels themselves.

    Attributes:
        requires_teacher: Whether the targets need the model's teacher
            (`AdversarialModel.teacher`), e.g. from the `EMATeacher`
            callback.
        teacher_hint: How to attach a teacher, shown when one is missing.
    """

    requires_teacher = False
    teacher_hint = ""

    def needs_horizon(self):
        """Whether a schedule needs the horizon that `fit()` sets."""
        return False

    def before_attack(self, batch, teacher):
        """The targets for the attack and training, and extra logs.

        Args:
            batch: The `Batch`.
            teacher: The model's teacher (`keras_robust.training.Teacher`),
                or `None`.

        Returns:
            `(targets, logs)`: sparse labels or dense targets `[N, K]`, and a
            dict of scalars added to the step's logs.
        """
        return batch.y, {}

    def after_attack(self, batch, x_adv, targets, teacher):
        """The targets for training, given the adversarial batch."""
        return targets


@keras.saving.register_keras_serializable(package="keras_robust")
class Labels(Targets):
    """Train toward the labels given to `fit()` (the default)."""


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
class ADRTargets(Targets):
    """ADR's rectified labels from the teacher on the clean batch.

    At step `s`, `ỹ = adr_targets(y, teacher(x), τ_s, ρ_s)` with the
    teacher in eval mode on the clean batch, before the attack; the attack
    and the training loss then use `ỹ`. `τ_s` and `ρ_s` follow the
    schedules at the model's step counter; the logs carry them as
    `temperature` and `interpolation`. `keras_robust.losses.ADRLoss`
    brings these targets to the model.

    Args:
        temperature: Schedule (or number) of the teacher's softmax
            temperature, `> 0`. Default `CosineAnnealing(2.5, 2.0)`.
        interpolation: Schedule (or number) of ρ, in `[0, 1]`. Default
            `CosineAnnealing(0.7, 0.95)`.

    References:
        Wu, Wang, Chen, "Annealing Self-Distillation Rectification Improves
        Adversarial Training", ICLR 2024.
    """

    requires_teacher = True
    teacher_hint = (
        "pass `callbacks=[keras_robust.callbacks.EMATeacher()]` to fit(), or "
        "`teacher=keras_robust.training.EMA()` to AdversarialModel"
    )

    def __init__(self, temperature=None, interpolation=None):
        if temperature is None:
            temperature = schedules.CosineAnnealing(2.5, 2.0)
        if interpolation is None:
            interpolation = schedules.CosineAnnealing(0.7, 0.95)
        self.temperature = schedules.get(temperature, "temperature")
        self.interpolation = schedules.get(interpolation, "interpolation")
        _check_bounds("temperature", self.temperature, low=0.0, low_open=True)
        _check_bounds("interpolation", self.interpolation, low=0.0, high=1.0)

    def needs_horizon(self):
        return any(
            s.total_steps is None for s in (self.temperature, self.interpolation)
        )

    def schedule_values(self, step, total_steps):
        """`(τ_s, ρ_s)` at step `step` with horizon `total_steps`."""
        return (
            self.temperature(step, total_steps),
            self.interpolation(step, total_steps),
        )

    def before_attack(self, batch, teacher):
        temperature, interpolation = self.schedule_values(batch.step, batch.horizon)
        targets = adr_targets(
            batch.y, teacher.logits(batch.x), temperature, interpolation
        )
        return targets, {"temperature": temperature, "interpolation": interpolation}

    def get_config(self):
        return {
            "temperature": keras.saving.serialize_keras_object(self.temperature),
            "interpolation": keras.saving.serialize_keras_object(self.interpolation),
        }


def _check_bounds(name, schedule, low, high=None, low_open=False):
    """Checks every value a schedule takes (when its bounds are known)."""
    bounds = schedule.bounds()
    if bounds is None:
        return
    lowest, highest = bounds
    too_low = lowest <= low if low_open else lowest < low
    if too_low or (high is not None and highest > high):
        interval = (
            f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}]"
        )
        raise ValueError(
            f"Argument `{name}` must stay in {interval} at every step (ADR "
            "keeps the true class on top of the rectified label only then). "
            f"Received: {name}={schedule!r}"
        )


def get(identifier):
    """`Targets` from an instance, a config dict or `None` (the labels)."""
    if identifier is None:
        return Labels()
    if isinstance(identifier, dict):
        identifier = keras.saving.deserialize_keras_object(identifier)
    if not isinstance(identifier, Targets):
        raise ValueError(
            "Argument `targets` must be a keras_robust.training.Targets or "
            f"None. Received: targets={identifier!r}"
        )
    return identifier
