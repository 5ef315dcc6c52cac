"""keras_robust: robust training as an ordinary Keras 3 `model.fit()`."""

__version__ = "0.1.0"

from keras_robust import (  # noqa: E402
    attacks,
    callbacks,
    data,
    evaluation,
    export,
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
    "export",
    "layers",
    "losses",
    "models",
    "schedules",
    "training",
    "__version__",
]


def __getattr__(name):
    # `keras_robust.tuning` needs the `tuning` extra (KerasTuner): imported
    # on first use only, so the core package does not depend on it.
    if name == "tuning":
        import importlib

        return importlib.import_module("keras_robust.tuning")
    raise AttributeError(f"module 'keras_robust' has no attribute {name!r}")
