"""Projected gradient descent (Madry et al. 2018)."""

import math
import numbers

import keras

from keras_robust.attacks.base import GradientAttack
from keras_robust.attacks.losses import margin_loss
from keras_robust.validation import validate_choice

LOSSES = ("ce", "margin")


@keras.saving.register_keras_serializable(package="keras_robust")
class PGD(GradientAttack):
    """Projected gradient descent (PGD) attack, L∞ or L2.

    From a random point of the ε-ball (`random_start=True`), takes `steps`
    steps of size `step_size` along the sign of the loss gradient (L∞) or
    the L2-normalised gradient (L2), projecting back onto the ε-ball around
    the clean input and into `value_range` after each step. The loss is the
    cross-entropy against the given labels (or `loss="margin"`); a training
    objective that prescribes its own attack loss (TRADES' KL divergence)
    replaces it inside `AdversarialModel`.

    Threat model: inputs in `value_range` (default `[0, 1]`), ε in the same
    units (CIFAR L∞: ε = 8/255, step 2/255, 10 steps in training, 20–50 in
    evaluation; L2: ε = 0.5). The model must output logits.

    Args:
        epsilon: Radius of the ε-ball, `>= 0`. Default 8/255.
        step_size: Step length, `> 0`. Default `2.5 * epsilon / steps`
            (2/255 for ε = 8/255 and 10 steps), the rule of Madry et al.
        steps: Number of steps, `>= 1`. Default 10.
        norm: `"linf"` (default) or `"l2"`.
        random_start: Start from a uniformly random point of the ε-ball.
        value_range: `(low, high)` bounds of valid inputs. Default `(0, 1)`.
        restarts: Number of runs from new random starts; each example keeps
            its first misclassified point. Needs `random_start=True` when
            `> 1`. Default 1.
        loss: The loss maximised against the labels: `"ce"` (cross-entropy,
            default) or `"margin"` (Carlini–Wagner's `max_{i≠y} z_i − z_y`,
            in logit units, which keeps working where cross-entropy
            saturates). An objective that prescribes its own attack loss
            (TRADES) replaces it during training.

    Raises:
        ValueError: For `epsilon < 0`, `step_size <= 0`, `steps < 1`, an
            unknown `norm` or `loss`, `restarts < 1`, or an invalid
            `value_range`.

    Example:

    >>> import keras, numpy as np, keras_robust as kr
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.default_rng(0).uniform(size=(8, 4)).astype("float32")
    >>> y = np.arange(8) % 3
    >>> x_adv = kr.attacks.PGD(epsilon=0.1, steps=5)(model, x, y, seed=0)
    >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
    True

    References:
        Madry et al., "Towards Deep Learning Models Resistant to Adversarial
        Attacks", ICLR 2018.
    """

    def __init__(
        self,
        epsilon=8 / 255,
        step_size=None,
        steps=10,
        norm="linf",
        random_start=True,
        value_range=(0.0, 1.0),
        restarts=1,
        loss="ce",
    ):
        if step_size is None:
            step_size = default_step_size(epsilon, steps)
        super().__init__(
            epsilon=epsilon,
            step_size=step_size,
            steps=steps,
            norm=norm,
            random_start=random_start,
            value_range=value_range,
            restarts=restarts,
        )
        self.loss = validate_choice("loss", loss, LOSSES)

    def loss_fn(self, y):
        if self.loss == "ce":
            return super().loss_fn(y)
        return lambda logits: margin_loss(logits, y)

    def get_config(self):
        return {**super().get_config(), "loss": self.loss}


def default_step_size(epsilon, steps, factor=2.5):
    """`factor * epsilon / steps` (2.5: Madry et al.); 1.0 for invalid input.

    Invalid values are left for the attack's own validation to report.
    """
    valid_epsilon = (
        isinstance(epsilon, numbers.Real)
        and not isinstance(epsilon, bool)
        and math.isfinite(epsilon)
        and epsilon > 0
    )
    valid_steps = (
        isinstance(steps, numbers.Integral)
        and not isinstance(steps, bool)
        and steps >= 1
    )
    if valid_epsilon and valid_steps:
        return factor * float(epsilon) / int(steps)
    return 1.0
