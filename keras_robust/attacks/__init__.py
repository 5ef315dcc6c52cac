"""Adversarial attacks. An attack holds configuration only.

Every attack has one interface (`keras_robust.attacks.Attack`): run it on
any Keras model with `attack(model, x, y)`, or inside a compiled step with
`attack.perturb(model_fn, x, y, loss_fn=None, seed=..., start=None)`. Any
attack can therefore train or evaluate an `AdversarialModel`.
"""

from keras_robust.attacks.apgd import APGD
from keras_robust.attacks.base import Attack, GradientAttack
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
    "Attack",
    "GradientAttack",
    "Square",
    "cross_entropy_loss",
    "dlr_loss",
    "margin_loss",
    "targeted_dlr_loss",
]
