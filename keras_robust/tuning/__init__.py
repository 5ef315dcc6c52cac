"""Tuning robust training with KerasTuner (`pip install "keras-robust[tuning]"`).

`HyperADR` is a `keras_tuner.HyperModel` over ADR's annealing schedules and
EMA decay; `robust_objective()` is the objective that maximises
`val_robust_accuracy`. See docs/tuning.md.
"""

from keras_robust.tuning.hyper_adr import HyperADR, robust_objective

__all__ = ["HyperADR", "robust_objective"]
