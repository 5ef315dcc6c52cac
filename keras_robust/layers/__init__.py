"""Layers: input standardization, label-noise transition, fused batch norm."""

from keras_robust.layers.batch_normalization import (
    BatchNormalization,
    fuse_batch_normalization,
)
from keras_robust.layers.input_standardization import InputStandardization
from keras_robust.layers.noise_adaptation import NoiseAdaptation

__all__ = [
    "BatchNormalization",
    "InputStandardization",
    "NoiseAdaptation",
    "fuse_batch_normalization",
]
