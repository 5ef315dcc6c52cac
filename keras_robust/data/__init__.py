"""Data: synthetic label noise, the embedded digits data and tfds pipelines."""

from keras_robust.data.digits import load_digits
from keras_robust.data.label_noise import inject_label_noise, transition_matrix
from keras_robust.data.tfds import (
    ALIASES,
    NUM_CLASSES,
    STATISTICS,
    load_tfds,
    prepare_images,
)

__all__ = [
    "ALIASES",
    "NUM_CLASSES",
    "STATISTICS",
    "inject_label_noise",
    "load_digits",
    "load_tfds",
    "prepare_images",
    "transition_matrix",
]
