"""Adversarial attacks. An attack holds configuration only.

Run one on any Keras model with `attack(model, x, y)`, or inside a compiled
step with `attack.perturb(model_fn, x, loss_fn, seed=...)`.
"""

from keras_robust.attacks.apgd import APGD
from keras_robust.attacks.base import GradientAttack
from keras_robust.attacks.fgsm import FGSM
from keras_robust.attacks.losses import (
    cross_entropy_loss,
    dlr_loss,
    margin_loss,
    targeted_dlr_loss,
)
from keras_robust.attacks.pgd import PGD
from keras_robust.attacks.square import Square

__all__ = [
    "APGD",
    "FGSM",
    "PGD",
    "GradientAttack",
    "Square",
    "cross_entropy_loss",
    "dlr_loss",
    "margin_loss",
    "targeted_dlr_loss",
]
