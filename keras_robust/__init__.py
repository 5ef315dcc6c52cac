"""keras_robust: robust training as an ordinary Keras 3 `model.fit()`."""

__version__ = "0.1.0"

from keras_robust import (  # noqa: E402
    attacks,
    callbacks,
    data,
    evaluation,
    layers,
    losses,
    models,
    schedules,
    training,
)
from keras_robust.models import AdversarialModel  # noqa: E402

__all__ = [
    "AdversarialModel",
    "attacks",
    "callbacks",
    "data",
    "evaluation",
    "layers",
    "losses",
    "models",
    "schedules",
    "training",
    "__version__",
]
