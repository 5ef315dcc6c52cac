"""`AdversarialModel`: adversarial training inside the standard `fit()`."""

import inspect
import warnings

import keras
from keras import ops

from keras_robust import backend, classification
from keras_robust.attacks.base import Attack
from keras_robust.attacks.pgd import PGD
from keras_robust.losses.soft_targets import SoftTargetCrossentropy
from keras_robust.models import data_checks
from keras_robust.training import hooks, objectives, teachers
from keras_robust.training import targets as training_targets
from keras_robust.training.batch import Batch, driving
from keras_robust.validation import validate_bool


def _validate_attack(name, attack, allow_none):
    if attack is None and allow_none:
        return None
    if isinstance(attack, dict):
        attack = keras.saving.deserialize_keras_object(attack)
    if not isinstance(attack, Attack):
        raise ValueError(
            f"Argument `{name}` must be a keras_robust.attacks attack "
            f"(e.g. PGD(...)){' or None' if allow_none else ''}. "
            f"Received: {name}={attack!r}"
        )
    return attack


def default_eval_attack(attack):
    """PGD-10 with the training attack's ε, norm and range."""
    with warnings.catch_warnings():
        # The training attack has warned about its ε already.
        warnings.simplefilter("ignore", UserWarning)
        return _pgd10(attack)


def _pgd10(attack):
    return PGD(
        epsilon=attack.epsilon,
        step_size=attack.epsilon / 4 if attack.epsilon > 0 else 1e-3,
        steps=10,
        norm=attack.norm,
        random_start=True,
        value_range=attack.value_range,
    )


@keras.saving.register_keras_serializable(package="keras_robust")
class AdversarialModel(backend.TrainerMixin, keras.Model):
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

    The training step is one skeleton whose roles are small objects of
    `keras_robust.training` (see docs/training.md):

    1. the *targets* say what the model is trained toward: the labels, or
       (brought by `keras_robust.losses.ADRLoss`) ADR's rectified labels
       from the teacher on the clean batch;
    2. the *attack* perturbs the batch against the targets, with the loss,
       start point and model mode that the *objective* prescribes;
    3. the *objective* gives the training loss: Madry (the compiled loss on
       `x'`), TRADES (on `x`, plus `beta · KL(p(x) ‖ p(x'))`) or MART;
    4. the *gradient hook* turns the loss into gradients; the optimizer
       steps, the *teacher* (if any) is updated, and the model's own step
       counter advances.

    Objectives (Madry PGD-AT is the default):

    - `"madry"`: minimise the compiled loss on `x' = attack(x)`, the attack
      maximising its own loss (cross-entropy for PGD) against the targets
      (Madry et al. 2018).
    - `"trades"`: compiled loss on the clean input plus
      `beta * KL(p(x) || p(x'))`, the attack maximising that KL from
      `x + 0.001 * N(0, 1)` (Zhang et al. 2019; `beta = 6`).
    - `"mart"`: compiled loss on `x'` (cross-entropy in the paper) plus
      `-log(1 - max_{k != y} p_k(x')) + beta * KL(p(x) || p(x')) *
      (1 - p_y(x))`, the attack maximising its own loss from
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
    `keras_robust.callbacks.EMATeacher` callback (or pass
    `teacher=keras_robust.training.EMA(decay)`); each step then builds the
    rectified labels from the teacher on the clean batch before the attack,
    and the logs carry `temperature` and `interpolation`. With an EMA
    teacher and any other loss, the teacher is the weight average ("WA") of
    the student. `model.teacher` is the teacher network, compiled for
    `evaluate`.

    Schedules read the model's own step counter `model.training_step`
    (saved with the weights, so resuming and KerasTuner's warm starts keep
    it) with the horizon `model.schedule_horizon`, set by the first `fit()`
    that needs one to its epochs × steps per epoch and then kept; assign it
    to choose another.

    Args:
        base_model: The Keras model to train (inputs -> logits).
        attack: The training attack, any `keras_robust.attacks` attack;
            `"auto"` (default) for `PGD()`: L∞, ε = 8/255, step 2/255, 10
            steps; `None` for no attack (clean training, e.g. ADR on noisy
            labels).
        objective: `"madry"`, `"trades"`, `"mart"` or a
            `keras_robust.training.Objective` instance.
        beta: With `objective="trades"` or `"mart"`: the regulariser weight,
            `>= 0`; `None` (default) for the reference value 6.
        attack_mode: `"train"` runs the model in train mode during the
            attack (BatchNorm batch statistics, as the ADR and Madry
            reference codes do; Keras also updates the moving statistics on
            those passes, as PyTorch does), `"eval"` in eval mode. `None`
            (default) picks the objective's reference: train for Madry,
            eval for TRADES and MART.
        eval_attack: The attack of `test_step` (always in eval mode), any
            `keras_robust.attacks` attack: `"auto"` (default) for PGD-10
            with the training attack's ε and norm and step ε/4 (none without
            a training attack), or `None` to skip robust evaluation.
        clean_metrics: When the objective computes no clean logits (Madry):
            update the compiled metrics with an extra eval-mode forward pass
            on the clean batch (default). With `False` they are computed on
            the adversarial batch instead, saving one forward pass per step.
        seed: Integer seed of the attacks' random draws, or `None`.
        targets: A `keras_robust.training.Targets`, or `None` (default) for
            the compiled loss's own (`loss.training_targets()`, as ADRLoss
            has) or else the labels.
        teacher: A `keras_robust.training.Teacher` (`EMA(decay)` or
            `FixedTeacher(model)`), `"ema"` for `EMA()`, or `None`
            (default; the `EMATeacher` callback can attach one in `fit()`).
        gradient_hook: A `keras_robust.training.GradientHook`, or `None`
            for the plain gradient.
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
        beta=None,
        attack_mode=None,
        eval_attack="auto",
        clean_metrics=True,
        seed=None,
        targets=None,
        teacher=None,
        gradient_hook=None,
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
        self.objective = objectives.get(objective, beta)
        self.attack_mode = objectives.resolve_attack_mode(attack_mode, self.objective)
        if isinstance(eval_attack, str) and eval_attack == "auto":
            eval_attack = (
                None if self.attack is None else default_eval_attack(self.attack)
            )
        self.eval_attack = _validate_attack("eval_attack", eval_attack, allow_none=True)
        self.clean_metrics = validate_bool("clean_metrics", clean_metrics)
        output_shape = _declared_output_shape(base_model)
        for attack_ in (self.attack, self.eval_attack):
            if attack_ is not None and output_shape is not None:
                attack_.check_num_classes(output_shape[-1])
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Keras does not checkpoint random-generator states; tracking the
        # state as one of the model's variables puts it into `.keras` files,
        # `save_weights` and BackupAndRestore, so a resumed run draws the
        # same random starts as an uninterrupted one.
        self.seed_state = self.seed_generator.state
        # The step the schedules read and their horizon: the model's own
        # variables, so that checkpoints and KerasTuner's warm starts (which
        # restore weights but not the optimizer) carry them.
        self.training_step = keras.Variable(
            0,
            trainable=False,
            dtype="int64",
            name="training_step",
            aggregation="only_first_replica",
        )
        self.schedule_horizon = keras.Variable(
            0.0,
            trainable=False,
            dtype="float32",
            name="schedule_horizon",
            aggregation="only_first_replica",
        )
        self._targets = None if targets is None else training_targets.get(targets)
        self.gradient_hook = gradient_hook or hooks.GradientHook()
        if not isinstance(self.gradient_hook, hooks.GradientHook):
            raise ValueError(
                "Argument `gradient_hook` must be a keras_robust.training."
                f"GradientHook or None. Received: gradient_hook={gradient_hook!r}"
            )
        self.robust_accuracy_tracker = keras.metrics.Mean(name="robust_accuracy")
        self.teacher_slot = teachers.TeacherSlot(name="teacher_slot")
        teacher = teachers.get(teacher)
        if teacher is not None:
            self.attach_teacher(teacher)
        if base_model.built and _declared_input_shape(base_model) is not None:
            self.build(_declared_input_shape(base_model))

    # --- forward passes --------------------------------------------------------

    def call(self, inputs, training=None):
        return self.base_model(inputs, training=training)

    def logits(self, x, training):
        """The student's logits on `x` as float32, checked to be `[N, K]`."""
        logits = self(x, training=training)
        _check_output_shape(logits.shape)
        return ops.cast(logits, "float32")

    def build(self, input_shape):
        if not self.base_model.built:
            self.base_model.build(input_shape)
        if self.teacher_role is not None:
            self.teacher_role.prepare(self.base_model)
        super().build(input_shape)

    # --- the teacher ------------------------------------------------------------

    @property
    def teacher_role(self):
        """The `keras_robust.training.Teacher`, or `None`."""
        return self.teacher_slot.teacher

    @property
    def teacher(self):
        """The teacher network (inputs -> logits, compiled), or `None`."""
        role = self.teacher_role
        return None if role is None else role.network

    @property
    def teacher_decay(self):
        """The EMA teacher's decay variable, or `None`."""
        return getattr(self.teacher_role, "decay", None)

    def attach_teacher(self, teacher):
        """Sets the model's teacher; the protocol of teacher callbacks.

        A callback such as `keras_robust.callbacks.EMATeacher` calls this
        from `set_model`, when `fit()` starts. A new teacher is attached to
        the student (an `EMA` starts as an exact copy of it) and becomes part
        of the model's weights. If the model already has a teacher of the
        same kind (a later `fit()`, or one restored from a checkpoint), it
        is kept and only its settings taken from `teacher` (an EMA's decay).

        Args:
            teacher: A `keras_robust.training.Teacher`.

        Raises:
            ValueError: If the model already has a teacher of another kind.
        """
        teacher = teachers.get(teacher)
        current = self.teacher_role
        if current is not None:
            if type(current) is not type(teacher):
                raise ValueError(
                    "The model already has a teacher of another kind. Received: "
                    f"teacher={teacher!r} for a model whose teacher is {current!r}"
                )
            if isinstance(current, teachers.EMA):
                current.set_decay(float(teacher._decay))
            return
        with backend.creation_scope(self):
            teacher.attach(self.base_model)
        teacher.network.compile(loss=SoftTargetCrossentropy(), metrics=["accuracy"])
        self.teacher_slot.teacher = teacher
        # A train function traced without the teacher must be traced again.
        self.train_function = None

    # --- configuration from compile() and fit() ------------------------------------

    @property
    def targets(self):
        """What the model trains toward: a `keras_robust.training.Targets`.

        The constructor's `targets`; else the compiled loss's own, when it
        has a `training_targets()` method (as `keras_robust.losses.ADRLoss`
        does); else the labels.
        """
        provider = getattr(getattr(self, "loss", None), "training_targets", None)
        if self._targets is not None:
            if provider is not None:
                raise ValueError(
                    "The compiled loss brings its own training targets, and "
                    "`targets` was also given to AdversarialModel; keep one. "
                    f"Received: loss={self.loss!r}, targets={self._targets!r}"
                )
            return self._targets
        return provider() if provider is not None else training_targets.Labels()

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`; also checks the data and prepares the roles.

        Before the compiled step runs, the arrays (or the first batch of a
        dataset) and the validation data are checked eagerly, so that bad
        input gets a clear `ValueError`; the teacher is prepared and the
        schedules' horizon set.
        """
        arguments = _bind(keras.Model.fit, args, kwargs)
        value_range = None if self.attack is None else self.attack.value_range
        self._check_data(arguments, value_range, "x")
        validation = arguments.get("validation_data")
        if isinstance(validation, tuple | list) and len(validation) in (2, 3):
            eval_range = (
                None if self.eval_attack is None else self.eval_attack.value_range
            )
            self._check_data(
                dict(zip(("x", "y", "sample_weight"), validation, strict=False)),
                eval_range,
                "validation_data",
            )
        callbacks = list(arguments.get("callbacks") or [])
        _warn_on_mid_epoch_backups(callbacks)
        arguments["callbacks"] = [*callbacks, ScheduleHorizon()]
        if self.teacher_role is not None:
            self.teacher_role.prepare(self.base_model)
        with driving(self):
            return super().fit(**arguments)

    def evaluate(self, *args, **kwargs):
        """`keras.Model.evaluate`; also checks the data eagerly first."""
        if not kwargs.get("_use_cached_eval_dataset"):  # fit()'s validation
            arguments = _bind(keras.Model.evaluate, args, kwargs)
            value_range = (
                None if self.eval_attack is None else self.eval_attack.value_range
            )
            self._check_data(arguments, value_range, "x")
        with driving(self):
            return super().evaluate(*args, **kwargs)

    def _check_data(self, arguments, value_range, name):
        output_shape = _declared_output_shape(self.base_model)
        data_checks.check_data(
            arguments.get("x"),
            arguments.get("y"),
            arguments.get("sample_weight"),
            value_range=value_range,
            num_classes=None if output_shape is None else output_shape[-1],
            name=name,
        )

    def train_on_batch(self, *args, **kwargs):
        with driving(self):
            return super().train_on_batch(*args, **kwargs)

    def test_on_batch(self, *args, **kwargs):
        with driving(self):
            return super().test_on_batch(*args, **kwargs)

    def load_weights(self, filepath, *args, **kwargs):
        """`keras.Model.load_weights`; also restores a saved EMA teacher.

        A model saved with an EMA teacher (attached by the `EMATeacher`
        callback during `fit()`) can be loaded into a freshly built model
        without one, as KerasTuner's `get_best_models()` does: the teacher
        is attached first, then restored with the rest.
        """
        kind = teachers.saved_teacher_kind(filepath, "layers/teacher_slot")
        if self.teacher_role is None and kind == "ema":
            self.attach_teacher(teachers.EMA())
        return super().load_weights(filepath, *args, **kwargs)

    def export(
        self,
        filepath,
        format="tf_saved_model",
        *,
        weights=None,
        overwrite=False,
        report=None,
        serving_layout=False,
        version=None,
        opset_version=None,
        verbose=False,
    ):
        """Exports the teacher or the student for serving, with a robustness card.

        The artifact is the clean forward pass of one network, with the
        signature `serving_default`: float32 `images` (dynamic batch, in the
        attack's `value_range`) to float32 `logits` and `probabilities`. It
        loads with TensorFlow alone (`tf.saved_model.load`, TF Serving), and
        carries the card `assets/keras_robust.json` (training attack,
        objective, ADR schedules, and the `report`'s robust accuracy); see
        `keras_robust.export.export_model` and docs/deployment.md.

        Args:
            filepath: The folder to write (a file for `"onnx"`).
            format: `"tf_saved_model"` (default) or `"onnx"`.
            weights: `"teacher"`, `"student"` or `None` (default) for the
                teacher when the model has one, else the student.
            overwrite: Whether to replace an existing artifact.
            report: Optional `keras_robust.evaluation.RobustnessReport` of the
                exported weights, copied into the card.
            serving_layout: Write TF Serving's layout `filepath/<version>/`.
            version: The TF Serving version (implies `serving_layout`);
                default 1.
            opset_version: With `format="onnx"`: the ONNX opset.
            verbose: Print where the artifact was written.

        Returns:
            The path of the artifact as a string.

        Raises:
            ValueError: For an invalid argument, an unbuilt model,
                `weights="teacher"` without a teacher, or an existing target
                without `overwrite=True`; nothing is written then.
        """
        from keras_robust.export import export_model

        return export_model(
            self,
            filepath,
            format,
            weights=weights,
            overwrite=overwrite,
            report=report,
            serving_layout=serving_layout,
            version=version,
            opset_version=opset_version,
            verbose=verbose,
        )

    # --- steps -----------------------------------------------------------------

    def _train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if self.attack is not None:
            x = backend.check_in_value_range(x, self.attack.value_range, name="x")
        batch = Batch(
            x,
            y,
            sample_weight,
            ops.cast(self.training_step, "float32"),
            ops.convert_to_tensor(self.schedule_horizon),
        )
        targets_role = self.targets
        teacher = self._teacher_for(targets_role)

        targets, logs = targets_role.before_attack(batch, teacher)
        x_adv = self._attack(batch, targets)
        targets = targets_role.after_attack(batch, x_adv, targets, teacher)

        def objective_loss():
            output = self.objective.loss(self, batch, x_adv, targets)
            return output.loss, output

        loss, output, gradients = self.gradient_hook(
            self, objective_loss, self.trainable_variables
        )
        backend.apply_gradients(self.optimizer, gradients, self.trainable_variables)
        if self.teacher_role is not None:
            self.teacher_role.update(self.base_model)
        self.training_step.assign_add(1)

        clean_logits = output.clean_logits
        if clean_logits is None:
            clean_logits = (
                self.logits(x, training=False)
                if self.clean_metrics and self.attack is not None
                else output.adv_logits
            )
        adv_logits = None if self.attack is None else output.adv_logits
        return self._logs(batch, loss, clean_logits, adv_logits, logs)

    def _teacher_for(self, targets):
        for role in (targets, self.objective):
            if role.requires_teacher and self.teacher_role is None:
                raise ValueError(
                    f"{type(role).__name__} needs a teacher: "
                    f"{role.teacher_hint}. Received: a model without a teacher"
                )
        return self.teacher_role

    def _attack(self, batch, targets):
        """The training attack's examples, as the objective prescribes."""
        if self.attack is None:
            return batch.x
        training_mode = self.attack_mode == "train"

        def forward(inputs):
            return self.logits(inputs, training=training_mode)

        return self.attack.perturb(
            forward,
            batch.x,
            targets,
            loss_fn=self.objective.attack_loss(forward, batch, targets),
            seed=self.seed_generator,
            start=self.objective.attack_start(batch, self.seed_generator),
        )

    def _test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        logits = self.logits(x, training=False)
        loss = self.compute_loss(
            x=x, y=y, y_pred=logits, sample_weight=sample_weight, training=False
        )
        adv_logits = None
        if self.eval_attack is not None:
            x = backend.check_in_value_range(x, self.eval_attack.value_range, "x")

            def forward(inputs):
                return self.logits(inputs, training=False)

            x_adv = self.eval_attack.perturb(forward, x, y, seed=self.seed_generator)
            adv_logits = forward(x_adv)
        batch = Batch(x, y, sample_weight, None, None)
        return self._logs(batch, loss, logits, adv_logits, {})

    def _logs(self, batch, loss, logits, adv_logits, extra):
        """Updates the metrics; the step's logs."""
        backend.update_loss_metric(self, loss, ops.shape(batch.x)[0])
        results = self.compute_metrics(
            batch.x, batch.y, logits, sample_weight=batch.sample_weight
        )
        if adv_logits is None:
            results.pop("robust_accuracy", None)
        else:
            self.robust_accuracy_tracker.update_state(
                classification.correct(adv_logits, batch.y),
                sample_weight=batch.sample_weight,
            )
            results["robust_accuracy"] = self.robust_accuracy_tracker.result()
        return backend.distribution_safe_logs({**results, **extra})

    # --- serialization ------------------------------------------------------

    def get_config(self):
        def serialize(value):
            return None if value is None else keras.saving.serialize_keras_object(value)

        config = super().get_config()
        config.update(
            {
                "base_model": serialize(self.base_model),
                "attack": serialize(self.attack),
                "objective": serialize(self.objective),
                "beta": getattr(self.objective, "beta", None),
                "attack_mode": self.attack_mode,
                "eval_attack": serialize(self.eval_attack),
                "clean_metrics": self.clean_metrics,
                "seed": self.seed,
                "targets": serialize(self._targets),
                "teacher": serialize(self.teacher_role),
                "gradient_hook": serialize(self.gradient_hook),
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in (
            "base_model",
            "attack",
            "eval_attack",
            "objective",
            "targets",
            "teacher",
            "gradient_hook",
        ):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        if not isinstance(config.get("objective"), str):
            config.pop("beta", None)  # the objective carries it
        return cls(**config)


class ScheduleHorizon(keras.callbacks.Callback):
    """Sets an unset `schedule_horizon` to epochs × steps per epoch.

    `AdversarialModel.fit` adds one after the user's callbacks, so a horizon
    restored by `BackupAndRestore` (or set by an earlier `ScheduleHorizon`)
    is kept. Once set, later `fit()` calls keep it: the schedules' value at
    a step does not depend on the `fit()` calls before.

    Args:
        epochs: The training length in epochs, or `None` for the `epochs`
            of this `fit()` (`keras_robust.tuning.HyperADR` passes its own).
    """

    def __init__(self, epochs=None):
        super().__init__()
        self.epochs = epochs

    def on_train_begin(self, logs=None):
        model = self.model
        horizon = float(ops.convert_to_numpy(model.schedule_horizon))
        if horizon > 0 or not model.targets.needs_horizon():
            return
        epochs = self.epochs or self.params.get("epochs")
        steps = self.params.get("steps")
        if not (epochs and steps):
            raise ValueError(
                "Schedules with `total_steps=None` take their horizon from the "
                "first fit() as epochs x steps per epoch, but the number of "
                "steps per epoch is unknown. Pass `steps_per_epoch` to fit(), "
                "`total_steps` to the schedules, or assign "
                "`model.schedule_horizon`. "
                f"Received: epochs={epochs}, steps per epoch={steps}"
            )
        model.schedule_horizon.assign(float(epochs * steps))


def _bind(method, args, kwargs):
    """The arguments of a call to `method` (without `self`), by name."""
    bound = inspect.signature(method).bind(None, *args, **kwargs)
    arguments = dict(bound.arguments)
    arguments.pop("self")
    arguments.update(arguments.pop("kwargs", {}))
    return arguments


def _warn_on_mid_epoch_backups(callbacks):
    """Warns about `BackupAndRestore(save_freq=<int>)`, which resumes inexactly."""
    for callback in callbacks:
        save_freq = getattr(callback, "save_freq", "epoch")
        mid_epoch = isinstance(save_freq, int) and not isinstance(save_freq, bool)
        if isinstance(callback, keras.callbacks.BackupAndRestore) and mid_epoch:
            warnings.warn(
                "BackupAndRestore with an integer `save_freq` restores mid-epoch "
                "weights and then replays the epoch from its first batch, so a "
                "resumed AdversarialModel (its teacher, schedules and random "
                "starts) does not continue where it stopped. Use "
                "save_freq='epoch' for an exact resume. Received: "
                f"save_freq={callback.save_freq!r}",
                stacklevel=3,
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
