"""keras_robust: robust training as an ordinary Keras 3 `model.fit()`."""

__version__ = "0.1.0"

from keras_robust import attacks, data, layers, losses, models  # noqa: E402
from keras_robust.models import AdversarialModel  # noqa: E402

__all__ = [
    "AdversarialModel",
    "attacks",
    "data",
    "layers",
    "losses",
    "models",
    "__version__",
]
