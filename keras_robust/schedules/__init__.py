"""Annealing schedules evaluated from the training step counter."""

from keras_robust.schedules.schedules import (
    Constant,
    CosineAnnealing,
    LinearAnnealing,
    Schedule,
    get,
)

__all__ = ["Constant", "CosineAnnealing", "LinearAnnealing", "Schedule", "get"]
