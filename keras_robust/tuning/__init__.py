"""Tuning robust training: KerasTuner search spaces and label calibration.

- `HyperADR` is a `keras_tuner.HyperModel` over ADR's annealing schedules
  and EMA decay, and `robust_objective()` the objective that maximises
  `val_robust_accuracy` (`pip install "keras-robust[tuning]"`);
- `calibrate_labels` fits the temperature and interpolation of calibrated
  labels for `keras_robust.training.Distillation` (Dong et al. 2022); it
  does not need KerasTuner.

See docs/tuning.md.
"""

from keras_robust.tuning.calibration import Calibration, calibrate_labels

__all__ = ["Calibration", "HyperADR", "calibrate_labels", "robust_objective"]


def __getattr__(name):
    # KerasTuner is an optional dependency: import it only when asked for.
    if name in ("HyperADR", "robust_objective"):
        from keras_robust.tuning import hyper_adr

        return getattr(hyper_adr, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
