"""Adversarial attacks. An attack holds configuration only.

Run one on any Keras model with `attack(model, x, y)`, or inside a compiled
step with `attack.perturb(model_fn, x, loss_fn, seed=...)`.
"""

from keras_robust.attacks.base import GradientAttack
from keras_robust.attacks.fgsm import FGSM
from keras_robust.attacks.pgd import PGD

__all__ = ["FGSM", "PGD", "GradientAttack"]
