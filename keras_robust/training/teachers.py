"""Teachers: a second network the training step can consult.

A teacher is a Keras layer tracked by `AdversarialModel`, so its weights
and state are part of the model's: `.keras` files, `save_weights`,
`keras.callbacks.BackupAndRestore` and KerasTuner's checkpoints carry them.
Two kinds:

- `EMA`: the exponential moving average of the student (all weights,
  BatchNorm statistics included), updated inside the compiled train step;
- `FixedTeacher`: a given trained model, never updated.

A teacher runs in eval mode. `AdversarialModel(teacher=...)` sets one at
construction; `keras_robust.callbacks.EMATeacher` attaches an `EMA` when
`fit()` starts.
"""

import keras
from keras import ops

from keras_robust.validation import validate_number


class Teacher(keras.layers.Layer):
    """Base class of the teachers.

    A teacher is attached to its student once (`attach`), prepared at the
    start of each `fit()` (`prepare`), queried in the step (`logits`) and
    updated after each optimizer step (`update`).

    Its state may be created after the model that owns it is built (a
    callback attaches it when `fit()` starts), so it never goes through
    Keras's `build()`, which would freeze its list of variables; it is
    marked built from the start.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.network = None
        self.built = True

    def build(self, input_shape=None):
        # Never called by the owner: the state is created in `attach`.
        pass

    @property
    def metrics(self):
        # The network's own compiled metrics (for `network.evaluate`) are
        # not the owner's.
        return []

    def attach(self, student):
        """Makes the teacher network for `student` (eager, once)."""
        raise NotImplementedError

    def prepare(self, student):
        """Called eagerly when `fit()` starts and when the owner is built."""

    def logits(self, x):
        """The teacher's float32 logits on `x`, in eval mode."""
        return ops.cast(self.network(x, training=False), "float32")

    def update(self, student):
        """Updates the teacher after an optimizer step (inside the step)."""

    def call(self, inputs):
        return self.logits(inputs)


@keras.saving.register_keras_serializable(package="keras_robust")
class EMA(Teacher):
    """The exponential moving average of the student.

    `teacher ← decay · teacher + (1 − decay) · student` over *all* the
    student's weights, BatchNorm moving statistics included, right after
    each optimizer step, inside the compiled step (no warm-up, no bias
    correction). The teacher starts as an exact copy of the student when
    training with it starts (ADR's reference: decay 0.995); a teacher
    restored from a checkpoint is kept.

    Args:
        decay: EMA decay in `[0, 1]`. Default 0.995.
        **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).

    Raises:
        ValueError: If `decay` is outside `[0, 1]`.

    References:
        Wu, Wang, Chen, "Annealing Self-Distillation Rectification Improves
        Adversarial Training", ICLR 2024.
    """

    def __init__(self, decay=0.995, **kwargs):
        super().__init__(**kwargs)
        self._decay = validate_number("decay", decay, low=0.0, high=1.0)
        # Variables are created in `attach`, in the owner's distribution scope.
        self.decay = None
        self.initialized = None

    def set_decay(self, decay):
        """Sets the decay (e.g. from a callback), keeping the teacher's weights."""
        self._decay = validate_number("decay", decay, low=0.0, high=1.0)
        if self.decay is not None:
            self.decay.assign(self._decay)

    def attach(self, student):
        if self.network is not None:
            return
        self.decay = keras.Variable(
            self._decay, trainable=False, dtype="float32", name="decay"
        )
        # 1 once the teacher holds a copy (or an average) of the student.
        self.initialized = keras.Variable(
            0.0, trainable=False, dtype="float32", name="initialized"
        )
        network = keras.models.clone_model(student)
        network.trainable = False
        self.network = network
        self.prepare(student)

    def prepare(self, student):
        if not student.built:
            return
        if not self.network.built:
            self.network.build(_input_shape(student))
        if float(ops.convert_to_numpy(self.initialized)) == 0.0:
            self.network.set_weights(student.get_weights())
            self.initialized.assign(1.0)

    def update(self, student):
        decay = self.decay
        for teacher_weight, weight in zip(
            self.network.weights, student.weights, strict=True
        ):
            teacher_weight.assign(
                decay * teacher_weight + (1.0 - decay) * ops.cast(weight, "float32")
            )

    def get_config(self):
        decay = self._decay if self.decay is None else self.decay
        return {**super().get_config(), "decay": float(ops.convert_to_numpy(decay))}


@keras.saving.register_keras_serializable(package="keras_robust")
class FixedTeacher(Teacher):
    """A given trained model as the teacher, never updated.

    For methods whose teacher is an earlier (e.g. early-stopped) robust
    model, such as label calibration in adversarial training (Dong et al.
    2022). The model's weights are frozen and saved with the student's.

    Args:
        model: A Keras model mapping the student's inputs to logits over
            the same classes.
        **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).

    Raises:
        ValueError: If `model` is not a Keras model.

    References:
        Dong, Liu, Shang, "Label Noise in Adversarial Training: A Novel
        Perspective to Study Robust Overfitting", NeurIPS 2022.
    """

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        if not isinstance(model, keras.Model):
            raise ValueError(
                "Argument `model` must be a trained Keras model (inputs -> "
                f"logits). Received: model={model!r}"
            )
        model.trainable = False
        self.network = model

    def attach(self, student):
        self.prepare(student)

    def prepare(self, student):
        if student.built and not self.network.built:
            self.network.build(_input_shape(student))
        classes = [_num_classes(model) for model in (self.network, student)]
        if None not in classes and classes[0] != classes[1]:
            raise ValueError(
                "Argument `model` of FixedTeacher must output logits over the "
                f"student's {classes[1]} classes. Received: model with "
                f"{classes[0]} outputs"
            )

    def get_config(self):
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.network),
        }


class TeacherSlot(keras.layers.Layer):
    """Holds the owner's teacher, which may be set after the owner is built.

    Like `Teacher`, it never goes through Keras's `build()`, so that a
    teacher attached when `fit()` starts becomes tracked state of the
    model (weights, checkpoints) without touching Keras internals.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.teacher = None
        self.built = True

    def build(self, input_shape=None):
        pass

    @property
    def metrics(self):
        return []  # see Teacher.metrics


def saved_teacher_kind(filepath, slot_path):
    """The kind of teacher a `.weights.h5` file holds: `"ema"`, `"other"` or `None`.

    Args:
        filepath: Path of a weights file written by `save_weights`.
        slot_path: Where the owner's `TeacherSlot` is saved in the file.
    """
    if not str(filepath).endswith(".weights.h5"):
        return None
    import h5py

    try:
        with h5py.File(filepath, "r") as f:
            group = f.get(f"{slot_path}/teacher")
            if group is None:
                return None
            own = group.get("vars")
            # An EMA saves its decay and its `initialized` flag.
            return "ema" if own is not None and len(own) == 2 else "other"
    except OSError:
        return None


def get(identifier):
    """A `Teacher` from an instance, a config dict, `"ema"` or `None`."""
    if identifier is None:
        return None
    if isinstance(identifier, str) and identifier == "ema":
        return EMA()
    if isinstance(identifier, dict):
        identifier = keras.saving.deserialize_keras_object(identifier)
    if not isinstance(identifier, Teacher):
        raise ValueError(
            "Argument `teacher` must be a keras_robust.training.Teacher "
            "(EMA(decay) or FixedTeacher(model)), 'ema' or None. "
            f"Received: teacher={identifier!r}"
        )
    return identifier


def _num_classes(model):
    """The number of logits a functional/Sequential model outputs, if known."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1:
        return None
    return outputs[0].shape[-1]


def _input_shape(model):
    """The input shape a built model was built with."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs and len(inputs) == 1:
        return tuple(inputs[0].shape)
    return (model.get_build_config() or {}).get("input_shape")
