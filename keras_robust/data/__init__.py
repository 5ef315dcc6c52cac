"""Data: synthetic label noise, the embedded digits data and tfds pipelines."""

from keras_robust.data.digits import load_digits
from keras_robust.data.label_noise import inject_label_noise, transition_matrix
from keras_robust.data.tfds import NUM_CLASSES, load_tfds

__all__ = [
    "NUM_CLASSES",
    "inject_label_noise",
    "load_digits",
    "load_tfds",
    "transition_matrix",
]
