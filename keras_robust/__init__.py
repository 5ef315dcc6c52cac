"""keras_robust: robust training as an ordinary Keras 3 `model.fit()`."""

__version__ = "0.1.0"

from keras_robust import data, layers, losses  # noqa: E402

__all__ = ["data", "layers", "losses", "__version__"]
