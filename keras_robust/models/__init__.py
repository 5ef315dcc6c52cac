"""Models: `AdversarialModel` wraps any Keras model for robust training; the
zoo builds the architectures of the adversarial-training literature."""

from keras_robust.models.adversarial_model import AdversarialModel
from keras_robust.models.zoo import (
    MODELS,
    get,
    preact_resnet18,
    resnet18,
    small_cnn,
    wide_resnet,
    wrn34_10,
)

__all__ = [
    "MODELS",
    "AdversarialModel",
    "get",
    "preact_resnet18",
    "resnet18",
    "small_cnn",
    "wide_resnet",
    "wrn34_10",
]
