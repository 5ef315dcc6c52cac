"""Models: `AdversarialModel` wraps any Keras model for robust training."""

from keras_robust.models.adversarial_model import AdversarialModel
from keras_robust.models.resnet import resnet18

__all__ = ["AdversarialModel", "resnet18"]
