"""Layers: input standardization and label-noise transition."""

from keras_robust.layers.input_standardization import InputStandardization
from keras_robust.layers.noise_adaptation import NoiseAdaptation

__all__ = ["InputStandardization", "NoiseAdaptation"]
