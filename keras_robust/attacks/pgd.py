"""Projected gradient descent (Madry et al. 2018)."""

import keras
import numpy as np

from keras_robust.attacks.base import GradientAttack
from keras_robust.attacks.losses import margin_loss
from keras_robust.losses.base import dense_targets

LOSSES = ("ce", "margin")


@keras.saving.register_keras_serializable(package="keras_robust")
class PGD(GradientAttack):
    """Projected gradient descent (PGD) attack, L∞ or L2.

    From a random point of the ε-ball (`random_start=True`), takes `steps`
    steps of size `step_size` along the sign of the loss gradient (L∞) or
    the L2-normalised gradient (L2), projecting back onto the ε-ball around
    the clean input and into `value_range` after each step. The loss is the
    cross-entropy against the given labels (or the objective's loss inside
    `AdversarialModel`).

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
        restarts: Number of runs from new random starts when the attack is
            called on a model; each example keeps its first misclassified
            point. Needs `random_start=True` when `> 1`. Default 1.
        loss: The loss maximised when the attack is called on a model:
            `"ce"` (cross-entropy, default) or `"margin"` (Carlini–Wagner's
            `max_{i≠y} z_i − z_y`, in logit units, which keeps working where
            cross-entropy saturates). Inside `AdversarialModel` the
            objective's loss is used.

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
        valid_steps = (
            isinstance(steps, int | np.integer)
            and not isinstance(steps, bool)
            and steps >= 1
        )
        if step_size is None:
            # Invalid epsilon or steps are reported by the base class.
            step_size = 1.0
            if valid_steps and isinstance(epsilon, int | float) and epsilon > 0:
                step_size = 2.5 * float(epsilon) / int(steps)
        super().__init__(
            epsilon=epsilon,
            step_size=step_size,
            steps=steps,
            norm=norm,
            random_start=random_start,
            value_range=value_range,
        )
        if (
            isinstance(restarts, bool)
            or not isinstance(restarts, int | np.integer)
            or restarts < 1
            or (restarts > 1 and not self.random_start)
        ):
            raise ValueError(
                "Argument `restarts` must be an integer >= 1 (and > 1 only with "
                f"random_start=True). Received: restarts={restarts!r}"
            )
        self.restarts = int(restarts)
        if loss not in LOSSES:
            raise ValueError(
                f"Argument `loss` must be one of {sorted(LOSSES)}. "
                f"Received: loss={loss!r}"
            )
        self.loss = loss

    def loss_fn(self, targets):
        if self.loss == "ce":
            return super().loss_fn(targets)
        return lambda logits: margin_loss(logits, dense_targets(targets, logits))

    def get_config(self):
        return {**super().get_config(), "restarts": self.restarts, "loss": self.loss}
