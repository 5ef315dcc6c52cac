"""Models: `AdversarialModel` wraps any Keras model for robust training."""

from keras_robust.models.adversarial_model import AdversarialModel

__all__ = ["AdversarialModel"]
