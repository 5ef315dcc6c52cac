"""Data utilities: synthetic label noise and a small offline data set."""

from keras_robust.data.digits import load_digits
from keras_robust.data.label_noise import inject_label_noise, transition_matrix

__all__ = ["inject_label_noise", "load_digits", "transition_matrix"]
