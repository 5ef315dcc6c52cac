"""Fast gradient sign method (Goodfellow et al. 2015; Wong et al. 2020)."""

import keras

from keras_robust.attacks.base import GradientAttack
from keras_robust.attacks.pgd import default_step_size


@keras.saving.register_keras_serializable(package="keras_robust")
class FGSM(GradientAttack):
    """Fast gradient sign method: one gradient step of size ε.

    Without a random start this is the original FGSM. With
    `random_start=True` and `step_size=1.25 * epsilon` it is the "fast
    adversarial training" attack of Wong et al. (2020). `norm="l2"` gives
    the fast gradient method (one step along the L2-normalised gradient).

    Threat model: inputs in `value_range` (default `[0, 1]`), ε in the same
    units; the result is projected onto the ε-ball and into the range. The
    model must output logits.

    Args:
        epsilon: Radius of the ε-ball, `>= 0`. Default 8/255.
        step_size: Step length, `> 0`. Default `epsilon`.
        norm: `"linf"` (default) or `"l2"`.
        random_start: Start from a uniformly random point of the ε-ball.
            Default `False`.
        value_range: `(low, high)` bounds of valid inputs. Default `(0, 1)`.

    Raises:
        ValueError: For `epsilon < 0`, `step_size <= 0`, an unknown `norm`
            or an invalid `value_range`.

    References:
        Goodfellow et al., "Explaining and Harnessing Adversarial Examples",
        ICLR 2015. Wong et al., "Fast is better than free: Revisiting
        adversarial training", ICLR 2020.
    """

    def __init__(
        self,
        epsilon=8 / 255,
        step_size=None,
        norm="linf",
        random_start=False,
        value_range=(0.0, 1.0),
    ):
        if step_size is None:
            step_size = default_step_size(epsilon, 1, factor=1.0)
        super().__init__(
            epsilon=epsilon,
            step_size=step_size,
            steps=1,
            norm=norm,
            random_start=random_start,
            value_range=value_range,
        )

    def get_config(self):
        config = super().get_config()
        del config["steps"], config["restarts"]
        return config
