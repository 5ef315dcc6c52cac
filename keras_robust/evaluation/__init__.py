"""Evaluation: robust accuracy under attack ensembles, calibration, checks."""

from keras_robust.evaluation.calibration import expected_calibration_error
from keras_robust.evaluation.checks import (
    RobustnessWarning,
    check_black_box,
    check_model,
)
from keras_robust.evaluation.plots import (
    reliability_diagram,
    robustness_curve,
    training_curves,
)
from keras_robust.evaluation.robustness import (
    RobustnessReport,
    evaluate_robustness,
    standard_attacks,
)

__all__ = [
    "RobustnessReport",
    "RobustnessWarning",
    "check_black_box",
    "check_model",
    "evaluate_robustness",
    "expected_calibration_error",
    "reliability_diagram",
    "robustness_curve",
    "standard_attacks",
    "training_curves",
]
