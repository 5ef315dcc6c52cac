"""The EMA teacher of ADR (and of weight averaging)."""

import keras

from keras_robust.training.teachers import EMA
from keras_robust.validation import validate_number


@keras.saving.register_keras_serializable(package="keras_robust")
class EMATeacher(keras.callbacks.Callback):
    """Keeps an exponential moving average of the student as a teacher.

    The callback attaches a `keras_robust.training.EMA` teacher to the
    model through `AdversarialModel.attach_teacher` when `fit()` starts (or
    sets the decay of the one it has). The teacher is a copy of
    `AdversarialModel.base_model` whose weights
    follow `teacher ← decay · teacher + (1 − decay) · student` over *all*
    the student's weights, BatchNorm moving statistics included, updated
    inside the compiled train step right after each optimizer step (no
    warm-up, no bias correction). It is initialised as a copy of the student
    when the callback is first attached (`fit()` start), and is then part of
    the model's weights: `.keras` files, `save_weights` and
    `keras.callbacks.BackupAndRestore` checkpoints carry it, so an
    interrupted run resumes with its teacher.

    `model.teacher` is a plain Keras model (inputs → logits) with the EMA
    weights; it runs in eval mode and can be evaluated, attacked or exported
    in place of the student (ADR's "WA" results evaluate it). With
    `keras_robust.losses.ADRLoss` it supplies the rectified labels.

    Args:
        decay: EMA decay in `[0, 1]`. Default 0.995 (ADR's reference).

    Raises:
        ValueError: If `decay` is outside `[0, 1]`, or the model is not a
            `keras_robust.AdversarialModel`.

    Example:

    ```python
    model = keras_robust.AdversarialModel(base, attack=keras_robust.attacks.PGD())
    model.compile(optimizer="sgd", loss=keras_robust.losses.ADRLoss())
    model.fit(ds, epochs=100, callbacks=[keras_robust.callbacks.EMATeacher(0.995)])
    model.teacher.predict(x)
    ```

    References:
        Wu, Wang, Chen, "Annealing Self-Distillation Rectification Improves
        Adversarial Training", ICLR 2024.
    """

    def __init__(self, decay=0.995):
        super().__init__()
        self.decay = validate_number("decay", decay, low=0.0, high=1.0)

    def set_model(self, model):
        # Called when fit() assembles its callbacks, before the train function
        # is traced and before any callback restores a checkpoint.
        attach = getattr(model, "attach_teacher", None)
        if attach is None:
            raise ValueError(
                "EMATeacher needs a keras_robust.AdversarialModel (wrap your "
                "model: `keras_robust.AdversarialModel(model, attack=None)` "
                f"for clean training). Received: model of type "
                f"{type(model).__name__}"
            )
        super().set_model(model)
        attach(self.training_teacher())

    def training_teacher(self):
        """The teacher this callback attaches: `EMA(decay)`."""
        return EMA(self.decay)

    def get_config(self):
        return {"decay": self.decay}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
