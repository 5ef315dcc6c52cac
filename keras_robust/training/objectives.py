"""Training objectives: what the attack maximises and what training minimises.

An objective owns everything its paper prescribes about the attack (its
loss, its starting point and the model's mode while it runs) and the
training loss. `AdversarialModel.train_step` calls, in this order:

1. `attack_loss(forward, batch, targets)`: the per-example loss the attack
   maximises (a callable on logits), or `None` for the attack's own loss
   against the targets;
2. `attack_start(batch, seed)`: the attack's starting point, or `None` for
   the attack's own (random) start;
3. `loss(model, batch, x_adv, targets)`: the training loss, differentiated
   with respect to the student's weights, as an `ObjectiveOutput`.

A new objective is one subclass; the step does not change.
"""

from typing import Any, NamedTuple

import keras
from keras import ops

from keras_robust import backend, classification
from keras_robust.validation import Configurable, validate_choice, validate_number

ATTACK_MODES = ("train", "eval")
# TRADES and MART start the attack from x + 0.001 * N(0, 1).
GAUSSIAN_START_STD = 0.001


class ObjectiveOutput(NamedTuple):
    """What `Objective.loss` returns.

    Attributes:
        loss: The scalar training loss (float32, scaled for `tf.distribute`
            as Keras losses are).
        adv_logits: The student's logits on the adversarial batch (train
            mode), for the robust accuracy.
        clean_logits: The student's logits on the clean batch when the
            objective computed them (for the clean metrics), else `None`.
    """

    loss: Any
    adv_logits: Any
    clean_logits: Any = None


def batch_mean(values, sample_weight=None):
    """`sum(w * values) / batch_size`, scaled for `tf.distribute` like Keras."""
    values = ops.cast(values, "float32")
    if sample_weight is not None:
        values = values * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
    mean = ops.sum(values) / ops.cast(ops.shape(values)[0], "float32")
    return backend.scale_loss_for_distribution(mean)


def gaussian_start(x, seed):
    """`x + 0.001 * N(0, 1)`, the start of the TRADES and MART attacks."""
    noise = backend.random.normal(
        ops.shape(x), stddev=GAUSSIAN_START_STD, dtype=x.dtype, seed=seed
    )
    return x + noise


class Objective(Configurable):
    """Base class of the training objectives. See the module docstring.

    Attributes:
        name: Short name (`"madry"`, ...), accepted by `AdversarialModel`.
        attack_mode: `"train"` or `"eval"`: the model's mode during the
            attack in the objective's reference code, used unless
            `AdversarialModel(attack_mode=...)` says otherwise.
        requires_teacher: Whether `loss` consults the model's teacher
            (`model.teacher_role`).
        teacher_hint: How to attach a teacher, shown when one is missing.
    """

    name = None
    attack_mode = "eval"
    requires_teacher = False
    teacher_hint = ""

    def attack_loss(self, forward, batch, targets):
        """The per-example loss the attack maximises, or `None`.

        Args:
            forward: Inputs → float32 logits, in the attack's mode.
            batch: The `Batch`.
            targets: What the model is trained toward (labels or soft
                targets).

        Returns:
            A callable mapping logits `[N, K]` to a loss `[N]`, or `None` for
            the attack's own loss against `targets` (cross-entropy for PGD).
        """
        return None

    def attack_start(self, batch, seed):
        """The attack's starting point, or `None` for the attack's own."""
        return None

    def loss(self, model, batch, x_adv, targets):
        """The training loss, as an `ObjectiveOutput`.

        Args:
            model: The `AdversarialModel`: `model.logits(x, training=True)`
                gives float32 logits, and `model.compute_loss(x=..., y=...,
                y_pred=..., sample_weight=...)` the compiled loss.
            batch: The `Batch`.
            x_adv: The adversarial batch (`batch.x` without an attack).
            targets: What the model is trained toward.
        """
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="keras_robust")
class Madry(Objective):
    """PGD adversarial training (Madry et al. 2018).

    The attack maximises its own loss (cross-entropy for PGD) against the
    targets from its own random start; training minimises the compiled
    loss on the adversarial batch. The reference code attacks in train
    mode.

    References:
        Madry et al., "Towards Deep Learning Models Resistant to Adversarial
        Attacks", ICLR 2018.
    """

    name = "madry"
    attack_mode = "train"

    def loss(self, model, batch, x_adv, targets):
        adv_logits = model.logits(x_adv, training=True)
        loss = model.compute_loss(
            x=batch.x, y=targets, y_pred=adv_logits, sample_weight=batch.sample_weight
        )
        return ObjectiveOutput(loss, adv_logits)


class RegularizedObjective(Objective):
    """Base of TRADES and MART: a compiled-loss term plus a regulariser.

    Both attack from `x + 0.001 · N(0, 1)` in eval mode and train on the
    clean and the adversarial logits (train mode). A subclass chooses which
    logits the compiled loss sees (`compiled_on`) and the per-example
    `regularizer`, weighted by `beta`.

    Args:
        beta: Weight of the regulariser, `>= 0`. Default 6 (the reference
            value of both papers).
    """

    compiled_on = "adversarial"

    def __init__(self, beta=6.0):
        self.beta = validate_number("beta", beta, low=0.0)

    def attack_start(self, batch, seed):
        return gaussian_start(batch.x, seed)

    def regularizer(self, targets, clean_logits, adv_logits):
        """The per-example regulariser `[N]`, `beta` included."""
        raise NotImplementedError

    def loss(self, model, batch, x_adv, targets):
        clean_logits = model.logits(batch.x, training=True)
        adv_logits = model.logits(x_adv, training=True)
        compiled = clean_logits if self.compiled_on == "clean" else adv_logits
        loss = model.compute_loss(
            x=batch.x, y=targets, y_pred=compiled, sample_weight=batch.sample_weight
        )
        extra = self.regularizer(targets, clean_logits, adv_logits)
        loss = loss + batch_mean(extra, batch.sample_weight)
        return ObjectiveOutput(loss, adv_logits, clean_logits)

    def get_config(self):
        return {"beta": self.beta}


@keras.saving.register_keras_serializable(package="keras_robust")
class TRADES(RegularizedObjective):
    """TRADES (Zhang et al. 2019).

    The attack maximises `KL(p(x) ‖ p(x'))` from `x + 0.001 · N(0, 1)`, in
    eval mode; training minimises the compiled loss on the clean batch plus
    `beta · KL(p(x) ‖ p(x'))`.

    Args:
        beta: Weight of the KL term, `>= 0`. Default 6 (the reference).

    References:
        Zhang et al., "Theoretically Principled Trade-off between
        Robustness and Accuracy", ICML 2019.
    """

    name = "trades"
    compiled_on = "clean"

    def attack_loss(self, forward, batch, targets):
        reference = ops.stop_gradient(forward(batch.x))
        return lambda logits: classification.kl_from_logits(reference, logits)

    def regularizer(self, targets, clean_logits, adv_logits):
        return self.beta * classification.kl_from_logits(clean_logits, adv_logits)


def mart_regularizer(targets, clean_logits, adv_logits, beta):
    """MART's terms besides the adversarial cross-entropy, per example.

    `-log(1.0001 - max_{k != y} p_k(x') + 1e-12)
    + beta * KL(p(x) || p(x')) * (1.0000001 - p_y(x))` with the constants of
    the reference code (Wang et al. 2020); in the KL term the adversarial
    probabilities are offset by 1e-12 inside the logarithm, as there.
    """
    true_mask = classification.class_one_hot(targets, adv_logits)
    adv_probs = ops.softmax(adv_logits, axis=-1)
    clean_probs = ops.softmax(clean_logits, axis=-1)
    # The probability of the most likely wrong class under the adversarial example.
    _, runner_up_prob = classification.true_and_best_other(adv_probs, true_mask)
    margin = -ops.log(1.0001 - runner_up_prob + 1e-12)
    kl = ops.sum(
        clean_probs * (ops.log(clean_probs + 1e-30) - ops.log(adv_probs + 1e-12)),
        axis=-1,
    )
    p_true = ops.sum(clean_probs * true_mask, axis=-1)
    return margin + beta * kl * (1.0000001 - p_true)


@keras.saving.register_keras_serializable(package="keras_robust")
class MART(RegularizedObjective):
    """MART (Wang et al. 2020).

    The attack maximises its own loss (cross-entropy for PGD) from
    `x + 0.001 · N(0, 1)`, in eval mode; training minimises the compiled
    loss on the adversarial batch (cross-entropy in the paper) plus
    `-log(1 - max_{k≠y} p_k(x')) + beta · KL(p(x) ‖ p(x')) · (1 - p_y(x))`.

    Args:
        beta: Weight of the KL term, `>= 0`. Default 6 (the reference).

    References:
        Wang et al., "Improving Adversarial Robustness Requires Revisiting
        Misclassified Examples", ICLR 2020.
    """

    name = "mart"

    def regularizer(self, targets, clean_logits, adv_logits):
        return mart_regularizer(targets, clean_logits, adv_logits, self.beta)


@keras.saving.register_keras_serializable(package="keras_robust")
class Distillation(Objective):
    """Adversarial training toward a fixed teacher's calibrated labels.

    Label calibration in adversarial training (Dong, Liu & Shang 2022, "KD-AT"
    in their code): the attack maximises its own loss (cross-entropy for
    PGD) against the labels, in eval mode; training minimises

    `(1 − ρ) · L(y, f(x')) + ρ · T² · CE(softmax(f_t(x') / T), softmax(f(x') / T))`

    where `L` is the compiled loss (the cross-entropy in the paper), `f` the
    student in train mode, `f_t` the model's teacher in eval mode on the
    *adversarial* batch, `T` the temperature and `ρ` the interpolation.
    `keras_robust.tuning.calibrate_labels` fits `T` and `ρ`; the teacher is
    the early-stopped robust model, given as
    `AdversarialModel(teacher=keras_robust.training.FixedTeacher(best))`.

    Args:
        temperature: Softmax temperature `T > 0` of both distributions.
        interpolation: Weight `ρ` in `[0, 1]` of the teacher's term.

    Raises:
        ValueError: If `temperature <= 0` or `interpolation` is outside
            `[0, 1]`.

    References:
        Dong, Liu, Shang, "Label Noise in Adversarial Training: A Novel
        Perspective to Study Robust Overfitting", NeurIPS 2022.
    """

    name = "distillation"
    attack_mode = "eval"
    requires_teacher = True
    teacher_hint = (
        "pass `teacher=keras_robust.training.FixedTeacher(model)` to "
        "AdversarialModel (the early-stopped robust model)"
    )

    def __init__(self, temperature, interpolation):
        self.temperature = validate_number(
            "temperature", temperature, low=0.0, low_open=True
        )
        self.interpolation = validate_number(
            "interpolation", interpolation, low=0.0, high=1.0
        )

    def loss(self, model, batch, x_adv, targets):
        adv_logits = model.logits(x_adv, training=True)
        hard = model.compute_loss(
            x=batch.x, y=targets, y_pred=adv_logits, sample_weight=batch.sample_weight
        )
        teacher_logits = ops.stop_gradient(model.teacher_role.logits(x_adv))
        soft = distillation_term(teacher_logits, adv_logits, self.temperature)
        rho = self.interpolation
        loss = (1.0 - rho) * hard + rho * batch_mean(soft, batch.sample_weight)
        return ObjectiveOutput(loss, adv_logits)

    def get_config(self):
        return {"temperature": self.temperature, "interpolation": self.interpolation}


def distillation_term(teacher_logits, student_logits, temperature):
    """`T² · CE(softmax(z_t / T), softmax(z_s / T))` per example, float32."""
    temperature = float(temperature)
    teacher_probs = ops.softmax(ops.cast(teacher_logits, "float32") / temperature)
    student_log_probs = ops.log_softmax(
        ops.cast(student_logits, "float32") / temperature, axis=-1
    )
    return temperature**2 * classification.cross_entropy(
        teacher_probs, student_log_probs
    )


OBJECTIVES = {cls.name: cls for cls in (Madry, TRADES, MART)}


def get(identifier, beta=None):
    """An `Objective` from a name, an instance or a serialized config.

    Args:
        identifier: `"madry"`, `"trades"`, `"mart"`, an `Objective` or its
            `keras.saving.serialize_keras_object` config.
        beta: For a name only: the regulariser weight of TRADES or MART
            (`None`: the reference value 6).

    Raises:
        ValueError: For an unknown identifier, or `beta` given with an
            objective that has none or with an instance.
    """
    if isinstance(identifier, dict):
        identifier = keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, Objective):
        if beta is not None:
            raise ValueError(
                "Argument `beta` applies to objectives given by name; set it on "
                f"the objective instead ({type(identifier).__name__}(beta=...)). "
                f"Received: beta={beta!r} with objective={identifier!r}"
            )
        return identifier
    if not isinstance(identifier, str) or identifier not in OBJECTIVES:
        raise ValueError(
            f"Argument `objective` must be one of {tuple(OBJECTIVES)} or a "
            "keras_robust.training.Objective. "
            f"Received: objective={identifier!r}"
        )
    cls = OBJECTIVES[identifier]
    if beta is None:
        return cls()
    if not issubclass(cls, RegularizedObjective):
        raise ValueError(
            "Argument `beta` weighs the regulariser of TRADES and MART; "
            f"objective={identifier!r} has none. Received: beta={beta!r}"
        )
    return cls(beta)


def resolve_attack_mode(attack_mode, objective):
    """`attack_mode`, or the objective's reference mode for `None`."""
    attack_mode = validate_choice(
        "attack_mode", attack_mode, ATTACK_MODES, allow_none=True
    )
    return objective.attack_mode if attack_mode is None else attack_mode
