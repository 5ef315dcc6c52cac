"""`AdversarialModel`: adversarial training inside the standard `fit()`."""

import keras
import numpy as np
from keras import ops

from keras_robust import backend
from keras_robust.attacks.base import GradientAttack
from keras_robust.attacks.pgd import PGD
from keras_robust.losses.adr import ADRLoss, adr_targets
from keras_robust.losses.base import dense_targets
from keras_robust.losses.soft_targets import cross_entropy
from keras_robust.models.objectives import batch_mean, kl_from_logits, mart_regularizer
from keras_robust.validation import validate_number

OBJECTIVES = ("madry", "trades", "mart")
ATTACK_MODES = ("train", "eval")
# The train/eval mode of the model during the attack in each reference code.
DEFAULT_ATTACK_MODE = {"madry": "train", "trades": "eval", "mart": "eval"}
# TRADES and MART start the attack from x + 0.001 * N(0, 1).
GAUSSIAN_START_STD = 0.001


def _validate_attack(name, attack, allow_none):
    if attack is None and allow_none:
        return None
    if isinstance(attack, dict):
        attack = keras.saving.deserialize_keras_object(attack)
    if not isinstance(attack, GradientAttack):
        raise ValueError(
            f"Argument `{name}` must be a keras_robust.attacks attack "
            f"(e.g. PGD(...)){' or None' if allow_none else ''}. "
            f"Received: {name}={attack!r}"
        )
    return attack


def default_eval_attack(attack):
    """PGD-10 with the training attack's ε, norm and range."""
    return PGD(
        epsilon=attack.epsilon,
        step_size=attack.epsilon / 4 if attack.epsilon > 0 else 1e-3,
        steps=10,
        norm=attack.norm,
        random_start=True,
        value_range=attack.value_range,
    )


@keras.saving.register_keras_serializable(package="keras_robust")
class AdversarialModel(keras.Model):
    """Wraps a Keras model so that `fit()` trains it adversarially.

    `train_step` builds adversarial examples for each batch with `attack`
    and trains on them with the compiled loss (any `keras_robust.losses` or
    `keras.losses` loss); `test_step` reports the clean metrics and, with an
    `eval_attack`, the robust accuracy. `fit()` therefore logs `loss`, the
    compiled metrics (on clean inputs), `robust_accuracy` and their `val_`
    versions, so `keras.callbacks.ModelCheckpoint(monitor=
    "val_robust_accuracy", mode="max")` keeps the most robust epoch.

    `call` is the clean forward pass of `base_model`: `predict`, `evaluate`
    without attack, export and serving never carry the attack.

    Objectives (Madry PGD-AT is the default):

    - `"madry"`: minimise the compiled loss on `x' = attack(x)`, the attack
      maximising the cross-entropy against the labels (Madry et al. 2018).
    - `"trades"`: compiled loss on the clean input plus
      `beta * KL(p(x) || p(x'))`, the attack maximising that KL from
      `x + 0.001 * N(0, 1)` (Zhang et al. 2019; `beta = 6`).
    - `"mart"`: compiled loss on `x'` (cross-entropy in the paper) plus
      `-log(1 - max_{k != y} p_k(x')) + beta * KL(p(x) || p(x')) *
      (1 - p_y(x))`, the attack maximising the cross-entropy from
      `x + 0.001 * N(0, 1)` (Wang et al. 2020; `beta = 6`).

    The model must map inputs in the attack's `value_range` (default
    `[0, 1]`; put normalisation inside the model with
    `keras_robust.layers.InputStandardization`) to one logit vector per
    example. Labels may be sparse integers or dense one-hot/soft targets.

    Mixed precision: set a `mixed_float16`/`mixed_bfloat16` policy before
    building `base_model`; logits and losses are computed in float32 and
    `compile()` wraps the optimizer for loss scaling as usual. `jit_compile`
    and `tf.distribute` strategies work as for any Keras model. The input
    range check is an assertion that XLA (`jit_compile=True`) drops.

    ADR: compile with `keras_robust.losses.ADRLoss` and train with the
    `keras_robust.callbacks.EMATeacher` callback; each step then builds the
    rectified labels from the teacher on the clean batch before the attack
    (see `ADRLoss`), and the logs carry `temperature` and `interpolation`.
    With an `EMATeacher` and any other loss, the teacher is the weight
    average ("WA") of the student. `model.teacher` is the teacher model.

    Args:
        base_model: The Keras model to train (inputs -> logits).
        attack: The training attack, a `keras_robust.attacks` instance;
            `"auto"` (default) for `PGD()`: L∞, ε = 8/255, step 2/255, 10
            steps; `None` for no attack (clean training, e.g. ADR on noisy
            labels).
        objective: `"madry"`, `"trades"` or `"mart"`.
        beta: Weight of the TRADES / MART regulariser, `>= 0`. Default 6.
        attack_mode: `"train"` runs the model in train mode during the
            attack (BatchNorm batch statistics, as the ADR and Madry
            reference codes do; Keras also updates the moving statistics on
            those passes, as PyTorch does), `"eval"` in eval mode. `None`
            (default) picks each objective's reference: train for Madry,
            eval for TRADES and MART.
        eval_attack: The attack of `test_step` (always in eval mode):
            `"auto"` (default) for PGD-10 with the training attack's ε and
            norm and step ε/4 (none without a training attack), an attack
            instance, or `None` to skip robust evaluation.
        clean_metrics: Madry only: update the compiled metrics with an extra
            eval-mode forward pass on the clean batch (default). With
            `False` they are computed on the adversarial batch instead,
            saving one forward pass per step.
        seed: Integer seed of the attacks' random starts, or `None`.
        teacher_decay: Create the EMA teacher at construction with this
            decay (as `EMATeacher(decay)` does when training starts); used
            when a saved model with a teacher is loaded. Default `None`.
        **kwargs: Passed to `keras.Model` (e.g. `name`).

    Raises:
        ValueError: For an invalid argument, or a base model whose output
            is not one logit vector per example.

    Example:

    ```python
    model = keras_robust.AdversarialModel(
        base, attack=keras_robust.attacks.PGD(epsilon=8 / 255, steps=10)
    )
    model.compile(optimizer="adam", loss=keras_robust.losses.SoftTargetCrossentropy(),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=10)
    ```

    References:
        Madry et al., "Towards Deep Learning Models Resistant to Adversarial
        Attacks", ICLR 2018. Zhang et al., "Theoretically Principled
        Trade-off between Robustness and Accuracy", ICML 2019. Wang et al.,
        "Improving Adversarial Robustness Requires Revisiting Misclassified
        Examples", ICLR 2020.
    """

    def __init__(
        self,
        base_model,
        attack="auto",
        objective="madry",
        beta=6.0,
        attack_mode=None,
        eval_attack="auto",
        clean_metrics=True,
        seed=None,
        teacher_decay=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(base_model, keras.layers.Layer):
            raise ValueError(
                "Argument `base_model` must be a Keras model mapping inputs to "
                f"logits. Received: base_model={base_model!r}"
            )
        _check_output_shape(_declared_output_shape(base_model))
        self.base_model = base_model
        if isinstance(attack, str) and attack == "auto":
            attack = PGD()
        self.attack = _validate_attack("attack", attack, allow_none=True)
        if objective not in OBJECTIVES:
            raise ValueError(
                f"Argument `objective` must be one of {OBJECTIVES}. "
                f"Received: objective={objective!r}"
            )
        self.objective = objective
        self.beta = validate_number("beta", beta, low=0.0)
        if attack_mode is None:
            attack_mode = DEFAULT_ATTACK_MODE[objective]
        if attack_mode not in ATTACK_MODES:
            raise ValueError(
                f"Argument `attack_mode` must be one of {ATTACK_MODES} or None. "
                f"Received: attack_mode={attack_mode!r}"
            )
        self.attack_mode = attack_mode
        if isinstance(eval_attack, str) and eval_attack == "auto":
            eval_attack = (
                None if self.attack is None else default_eval_attack(self.attack)
            )
        self.eval_attack = _validate_attack("eval_attack", eval_attack, allow_none=True)
        if not isinstance(clean_metrics, bool | np.bool_):
            raise ValueError(
                "Argument `clean_metrics` must be a bool. "
                f"Received: clean_metrics={clean_metrics!r}"
            )
        self.clean_metrics = bool(clean_metrics)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Keras does not checkpoint random-generator states; tracking the
        # state as one of the model's variables puts it into `.keras` files,
        # `save_weights` and BackupAndRestore, so a resumed run draws the
        # same random starts as an uninterrupted one.
        self.seed_state = self.seed_generator.state
        self.robust_accuracy_tracker = keras.metrics.Mean(name="robust_accuracy")
        self._multi_worker = backend.in_multi_worker_mode()
        # The horizon of schedules without their own: epochs x steps per
        # epoch of the current fit(), set when training starts.
        self.schedule_horizon = keras.Variable(
            0.0, trainable=False, dtype="float32", name="schedule_horizon"
        )
        self.teacher = None
        self.teacher_decay = None
        if teacher_decay is not None:
            self.attach_teacher(teacher_decay)
        if base_model.built and _declared_input_shape(base_model) is not None:
            self.build(_declared_input_shape(base_model))

    # --- forward passes --------------------------------------------------------

    def call(self, inputs, training=None):
        return self.base_model(inputs, training=training)

    def build(self, input_shape):
        if not self.base_model.built:
            self.base_model.build(input_shape)
        if self.teacher is not None and not self.teacher.built:
            self.teacher.build(input_shape)
            self.teacher.set_weights(self.base_model.get_weights())
        super().build(input_shape)

    # --- the EMA teacher, ADR and schedules -------------------------------------

    def attach_teacher(self, decay):
        """Creates the EMA teacher (a copy of the student) if there is none.

        A new teacher starts as an exact copy of the student; an existing one
        (a later `fit()`, or one restored from a checkpoint) is kept and only
        its decay set. Called by `keras_robust.callbacks.EMATeacher`.

        Args:
            decay: EMA decay in `[0, 1]`.
        """
        decay = validate_number("decay", decay, low=0.0, high=1.0)
        if self.teacher is None:
            with backend.creation_scope(self):
                teacher = keras.models.clone_model(self.base_model)
                teacher.trainable = False
                if self.base_model.built:
                    if not teacher.built:
                        teacher.build(_declared_input_shape(self.base_model))
                    teacher.set_weights(self.base_model.get_weights())
                decay_variable = keras.Variable(
                    decay, trainable=False, dtype="float32", name="teacher_decay"
                )
            # The teacher is state added to a possibly built model, as Keras
            # itself does when quantizing a built layer.
            was_locked = self._tracker.locked
            self._tracker.unlock()
            try:
                self.teacher = teacher
                self.teacher_decay = decay_variable
            finally:
                if was_locked:
                    self._tracker.lock()
            # A train function traced without a teacher must be rebuilt.
            self.train_function = None
        self.teacher_decay.assign(decay)

    def _update_teacher(self):
        decay = self.teacher_decay
        for teacher_weight, weight in zip(
            self.teacher.weights, self.base_model.weights, strict=True
        ):
            teacher_weight.assign(
                decay * teacher_weight + (1.0 - decay) * ops.cast(weight, "float32")
            )

    def _adr_loss(self):
        """The compiled `ADRLoss`, marked as used by this model; else `None`."""
        loss = getattr(self, "loss", None)
        if not isinstance(loss, ADRLoss):
            return None
        loss.attached = True
        return loss

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`; also sets the horizon of the schedules."""
        position = 5  # of `callbacks` in keras.Model.fit's signature
        if len(args) > position:
            args = list(args)
            callbacks = list(args[position] or []) + [_ScheduleHorizon()]
            args[position] = callbacks
        else:
            kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [
                _ScheduleHorizon()
            ]
        return super().fit(*args, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras reduces the first (nested) batch across replicas before its
        # symbolic build, which MultiWorkerMirroredStrategy rejects
        # (keras-team/keras#20585). The build needs only shapes: hand it one
        # local replica's batch instead.
        self._adr_loss()  # the build computes the loss once
        if iterator is not None and self._distribute_strategy is not None:
            for _, _, batches in iterator:
                data_batch = backend.first_local_value(
                    self._distribute_strategy, next(batches)
                )
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def _logits(self, x, training):
        logits = self(x, training=training)
        _check_output_shape(logits.shape)
        return ops.cast(logits, "float32")

    def _attack_model_fn(self, training):
        return lambda inputs: self._logits(inputs, training)

    def _gaussian_start(self, x):
        noise = backend.random.normal(
            ops.shape(x),
            stddev=GAUSSIAN_START_STD,
            dtype=x.dtype,
            seed=self.seed_generator,
        )
        return x + noise

    # --- steps -----------------------------------------------------------------

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        extra_logs = {}
        targets = y  # the training targets: the labels, or ADR's rectified ones
        adr = self._adr_loss()
        if adr is not None:
            if self.teacher is None:
                raise ValueError(
                    "ADRLoss needs the EMA teacher: pass "
                    "`callbacks=[keras_robust.callbacks.EMATeacher()]` to fit(). "
                    "Received: fit() without an EMATeacher callback"
                )
            temperature, interpolation = adr.schedule_values(
                self.optimizer.iterations, self.schedule_horizon
            )
            teacher_logits = self.teacher(x, training=False)
            targets = adr_targets(y, teacher_logits, temperature, interpolation)
            extra_logs = {"temperature": temperature, "interpolation": interpolation}
        if self.attack is None:
            x_adv = x
        else:
            x_adv = self._adversarial_batch(x, targets)

        with backend.GradientTape() as tape:
            adv_logits = self._logits(x_adv, training=True)
            if self.objective == "madry":
                clean_logits = None
                loss = self.compute_loss(
                    x=x, y=targets, y_pred=adv_logits, sample_weight=sample_weight
                )
            else:
                clean_logits = self._logits(x, training=True)
                if self.objective == "trades":
                    loss = self.compute_loss(
                        x=x, y=targets, y_pred=clean_logits, sample_weight=sample_weight
                    )
                    extra = self.beta * kl_from_logits(clean_logits, adv_logits)
                else:
                    loss = self.compute_loss(
                        x=x, y=targets, y_pred=adv_logits, sample_weight=sample_weight
                    )
                    extra = mart_regularizer(
                        dense_targets(targets, clean_logits),
                        clean_logits,
                        adv_logits,
                        self.beta,
                    )
                loss = loss + batch_mean(extra, sample_weight)
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        if self.teacher is not None:
            self._update_teacher()

        if clean_logits is None:
            if self.attack is None:
                clean_logits = adv_logits
            elif self.clean_metrics:
                clean_logits = self._logits(x, training=False)
            else:
                clean_logits = adv_logits
        results = self._update_metrics(
            x,
            y,
            sample_weight,
            loss,
            clean_logits,
            None if self.attack is None else ops.stop_gradient(adv_logits),
        )
        if extra_logs and self._multi_worker:
            extra_logs = {k: ops.reshape(v, (1,)) for k, v in extra_logs.items()}
        return {**results, **extra_logs}

    def _adversarial_batch(self, x, targets):
        """The training attack's examples, with the objective's attack loss."""
        x = backend.check_in_value_range(x, self.attack.value_range, name="x")
        attack_fn = self._attack_model_fn(self.attack_mode == "train")
        if self.objective == "trades":
            clean_reference = ops.stop_gradient(attack_fn(x))
            return self.attack.perturb(
                attack_fn,
                x,
                lambda logits: kl_from_logits(clean_reference, logits),
                start=self._gaussian_start(x),
            )
        start = self._gaussian_start(x) if self.objective == "mart" else None
        return self.attack.perturb(
            attack_fn,
            x,
            _cross_entropy_against(targets),
            seed=self.seed_generator,
            start=start,
        )

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        logits = self._logits(x, training=False)
        loss = self.compute_loss(
            x=x, y=y, y_pred=logits, sample_weight=sample_weight, training=False
        )
        adv_logits = None
        if self.eval_attack is not None:
            x = backend.check_in_value_range(x, self.eval_attack.value_range, "x")
            eval_fn = self._attack_model_fn(False)
            x_adv = self.eval_attack.perturb(
                eval_fn, x, self.eval_attack.loss_fn(y), seed=self.seed_generator
            )
            adv_logits = eval_fn(x_adv)
        return self._update_metrics(x, y, sample_weight, loss, logits, adv_logits)

    def _update_metrics(self, x, y, sample_weight, loss, logits, adv_logits):
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(
                    backend.unscale_loss_for_distribution(loss),
                    sample_weight=ops.shape(x)[0],
                )
        results = self.compute_metrics(x, y, logits, sample_weight=sample_weight)
        if adv_logits is None:
            results.pop("robust_accuracy", None)
        else:
            labels = ops.argmax(dense_targets(y, adv_logits), axis=-1)
            correct = ops.cast(ops.argmax(adv_logits, axis=-1) == labels, "float32")
            self.robust_accuracy_tracker.update_state(
                correct, sample_weight=sample_weight
            )
            results["robust_accuracy"] = self.robust_accuracy_tracker.result()
        if self._multi_worker:
            # Across workers Keras averages the logs with a reduction over
            # axis 0, which scalars lack (keras-team/keras#20585): give each
            # log one axis of length one, so the average is over replicas.
            results = {name: ops.reshape(v, (1,)) for name, v in results.items()}
        return results

    # --- serialization ------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "base_model": keras.saving.serialize_keras_object(self.base_model),
                "attack": None
                if self.attack is None
                else keras.saving.serialize_keras_object(self.attack),
                "objective": self.objective,
                "beta": self.beta,
                "attack_mode": self.attack_mode,
                "eval_attack": None
                if self.eval_attack is None
                else keras.saving.serialize_keras_object(self.eval_attack),
                "clean_metrics": self.clean_metrics,
                "seed": self.seed,
                "teacher_decay": None
                if self.teacher_decay is None
                else float(ops.convert_to_numpy(self.teacher_decay)),
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["base_model"] = keras.saving.deserialize_keras_object(
            config["base_model"], custom_objects=custom_objects
        )
        for key in ("attack", "eval_attack"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        return cls(**config)


def _cross_entropy_against(y):
    """The attack loss: per-example cross-entropy of logits against `y`."""
    return lambda logits: cross_entropy(
        dense_targets(y, logits), ops.log_softmax(logits, axis=-1)
    )


def _declared_input_shape(model):
    """The input shape of a functional/Sequential model; `None` if unknown."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs or len(inputs) != 1:
        return None
    return tuple(inputs[0].shape)


class _ScheduleHorizon(keras.callbacks.Callback):
    """Sets `schedule_horizon` to epochs x steps per epoch when fit() starts."""

    def on_train_begin(self, logs=None):
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        if epochs and steps:
            self.model.schedule_horizon.assign(float(epochs * steps))
            return
        self.model.schedule_horizon.assign(0.0)
        adr = self.model._adr_loss()
        needs_horizon = adr is not None and any(
            s.total_steps is None for s in (adr.temperature, adr.interpolation)
        )
        if needs_horizon:
            raise ValueError(
                "ADRLoss schedules with `total_steps=None` take their horizon "
                "from fit() as epochs x steps per epoch, but the number of "
                "steps per epoch is unknown. Pass `steps_per_epoch` to fit() "
                "or `total_steps` to the schedules. "
                f"Received: epochs={epochs}, steps per epoch={steps}"
            )


def _declared_output_shape(model):
    """The output shape of a functional/Sequential model; `None` if unknown."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs:
        return None
    if len(outputs) != 1:
        raise ValueError(
            "Argument `base_model` must have a single output of logits. "
            f"Received: base_model with {len(outputs)} outputs"
        )
    return outputs[0].shape


def _check_output_shape(shape):
    if not shape:
        return
    shape = tuple(shape)
    if len(shape) != 2 or shape[-1] is None or shape[-1] < 2:
        raise ValueError(
            "Argument `base_model` must output one logit vector per example, "
            "shape (batch_size, num_classes) with num_classes >= 2. "
            f"Received: base_model with output shape {shape}"
        )
