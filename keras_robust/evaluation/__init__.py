"""Evaluation: calibration."""

from keras_robust.evaluation.calibration import expected_calibration_error

__all__ = ["expected_calibration_error"]
