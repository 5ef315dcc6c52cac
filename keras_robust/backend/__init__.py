"""Backend-specific mechanics. The only package that imports TensorFlow."""

from keras_robust.backend.checks import check_labels_in_range, concrete_values

__all__ = ["check_labels_in_range", "concrete_values"]
