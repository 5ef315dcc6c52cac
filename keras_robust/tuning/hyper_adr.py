"""`HyperADR`: a KerasTuner search space over ADR's schedules."""

import inspect

import keras
import keras_tuner as kt

from keras_robust import schedules
from keras_robust.attacks.base import Attack
from keras_robust.losses.adr import ADRLoss
from keras_robust.models.adversarial_model import AdversarialModel, ScheduleHorizon
from keras_robust.training import objectives
from keras_robust.training.teachers import EMA
from keras_robust.validation import validate_integer, validate_number

SCHEDULES = {"cosine": schedules.CosineAnnealing, "linear": schedules.LinearAnnealing}
# (name, min, max, default) of the float hyperparameters; the defaults are
# the CIFAR-10 reference of ADR (Wu, Wang, Chen; ICLR 2024).
FLOAT_HYPERPARAMETERS = (
    ("temperature_start", 0.5, 5.0, 2.5),
    ("temperature_end", 0.5, 5.0, 2.0),
    ("interpolation_start", 0.0, 1.0, 0.7),
    ("interpolation_end", 0.0, 1.0, 0.95),
    ("ema_decay", 0.9, 0.9999, 0.995),
)
# The domain of each hyperparameter: (low, high, low excluded).
DOMAINS = {
    "temperature_start": (0.0, None, True),
    "temperature_end": (0.0, None, True),
    "interpolation_start": (0.0, 1.0, False),
    "interpolation_end": (0.0, 1.0, False),
    "ema_decay": (0.0, 1.0, False),
}


def robust_objective():
    """The tuning objective of robust training: `val_robust_accuracy`, maximised.

    KerasTuner cannot infer the direction of a custom metric from its name,
    so a bare `"val_robust_accuracy"` fails; this is the spelled-out
    objective. Alternatives: `kt.Objective("val_accuracy", "max")` for
    clean accuracy, or a list of both (KerasTuner sums them, a clean/robust
    trade-off).

    Returns:
        `keras_tuner.Objective("val_robust_accuracy", "max")`.
    """
    return kt.Objective("val_robust_accuracy", direction="max")


def _default_optimizer():
    # ADR's reference recipe.
    return keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=5e-4)


class HyperADR(kt.HyperModel):
    """ADR with its annealing schedules and EMA decay as a KerasTuner space.

    `build(hp)` returns a compiled `keras_robust.AdversarialModel` with an
    EMA teacher (`keras_robust.training.EMA`) and `ADRLoss`; `fit(hp,
    model, ...)` trains it with the tuner's callbacks and fixes the
    schedules' horizon. Hyperparameters (names other code depends on):

    | name | range | default (CIFAR-10 reference) |
    |---|---|---|
    | `temperature_start` | [0.5, 5] | 2.5 |
    | `temperature_end` | [0.5, 5] | 2.0 |
    | `interpolation_start` | [0, 1] | 0.7 |
    | `interpolation_end` | [0, 1] | 0.95 |
    | `schedule` | `"cosine"`, `"linear"` | `"cosine"` |
    | `ema_decay` | [0.9, 0.9999] | 0.995 |

    Fix or narrow any of them with KerasTuner's own `HyperParameters`
    passed to the tuner (`hp.Fixed("schedule", "cosine")`,
    `tune_new_entries=...`). Values outside a hyperparameter's domain
    (temperature ≤ 0, interpolation or decay outside [0, 1]) raise a
    `ValueError` naming it.

    The horizon: with `epochs=None` the schedules anneal over the `epochs`
    of the trial's first `fit()` (× steps per epoch); with Hyperband pass
    its `max_epochs`, so that every bracket sees the same schedule value at
    the same step and the last epoch reaches the end values. The horizon
    and the step counter are the model's own variables, so Hyperband's
    warm-started trials continue the schedules where they stopped.

    Args:
        build_base_model: Callable returning a fresh Keras model (inputs in
            the attack's `value_range` → logits); it receives `hp` if it
            takes an argument, so the architecture can be searched too.
        attack: The training attack (any `keras_robust.attacks` attack), or
            `None` for ADR on clean data.
        epochs: The training length the schedules anneal over, or `None`.
        optimizer: Callable returning a fresh optimizer for each trial, or
            `None` for SGD(0.1, momentum 0.9, weight decay 5e-4), ADR's
            recipe.
        objective: The training objective of `AdversarialModel`
            (`"madry"`, `"trades"`, ...).
        eval_attack: The evaluation attack of `AdversarialModel`
            (`"auto"`: PGD-10 with the training ε).
        metrics: Compiled metrics. Default `["accuracy"]`.
        **kwargs: Passed to `keras_tuner.HyperModel` (`name`, `tunable`).

    Raises:
        ValueError: For a bad argument.

    Example:

    ```python
    tuner = keras_tuner.RandomSearch(
        keras_robust.tuning.HyperADR(make_model, attack=keras_robust.attacks.PGD()),
        objective=keras_robust.tuning.robust_objective(),
        max_trials=10,
    )
    tuner.search(train_ds, validation_data=val_ds, epochs=30)
    best = tuner.get_best_models(1)[0]  # with its EMA teacher
    ```
    """

    def __init__(
        self,
        build_base_model,
        *,
        attack,
        epochs=None,
        optimizer=None,
        objective="madry",
        eval_attack="auto",
        metrics=("accuracy",),
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not callable(build_base_model):
            raise ValueError(
                "Argument `build_base_model` must be a callable returning a "
                f"Keras model. Received: build_base_model={build_base_model!r}"
            )
        self.build_base_model = build_base_model
        if attack is not None and not isinstance(attack, Attack):
            raise ValueError(
                "Argument `attack` must be a keras_robust.attacks attack or None. "
                f"Received: attack={attack!r}"
            )
        self.attack = attack
        self.epochs = validate_integer("epochs", epochs, allow_none=True)
        if optimizer is not None and not callable(optimizer):
            raise ValueError(
                "Argument `optimizer` must be a callable returning a fresh "
                "optimizer for each trial (e.g. `lambda: keras.optimizers."
                f"Adam(1e-3)`), or None. Received: optimizer={optimizer!r}"
            )
        self.optimizer = optimizer or _default_optimizer
        self.objective = objective
        self.eval_attack = eval_attack
        self.metrics = list(metrics)
        # Fail now, not in the first trial, for a bad objective or eval attack.
        objectives.get(objective)
        if not (
            eval_attack is None
            or isinstance(eval_attack, Attack)
            or (isinstance(eval_attack, str) and eval_attack == "auto")
        ):
            raise ValueError(
                "Argument `eval_attack` must be a keras_robust.attacks attack, "
                f"'auto' or None. Received: eval_attack={eval_attack!r}"
            )

    def _model(self, base, teacher=None):
        return AdversarialModel(
            base,
            attack=self.attack,
            objective=self.objective,
            eval_attack=self.eval_attack,
            teacher=teacher,
        )

    def declare(self, hp):
        """Declares the search space in `hp`; the chosen values by name."""
        values = {}
        for name, low, high, default in FLOAT_HYPERPARAMETERS:
            values[name] = hp.Float(name, low, high, default=default)
        values["schedule"] = hp.Choice("schedule", list(SCHEDULES), default="cosine")
        for name, (low, high, low_open) in DOMAINS.items():
            validate_number(name, values[name], low=low, high=high, low_open=low_open)
        return values

    def build(self, hp):
        values = self.declare(hp)
        takes_hp = bool(inspect.signature(self.build_base_model).parameters)
        base = self.build_base_model(hp) if takes_hp else self.build_base_model()
        schedule = SCHEDULES[values["schedule"]]
        model = self._model(base, teacher=EMA(values["ema_decay"]))
        model.compile(
            optimizer=self.optimizer(),
            loss=ADRLoss(
                temperature=schedule(
                    values["temperature_start"], values["temperature_end"]
                ),
                interpolation=schedule(
                    values["interpolation_start"], values["interpolation_end"]
                ),
            ),
            metrics=list(self.metrics),
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        """Trains `model` with the tuner's callbacks and a fixed horizon."""
        callbacks = list(kwargs.pop("callbacks", None) or [])
        callbacks.append(ScheduleHorizon(self.epochs))
        return model.fit(*args, callbacks=callbacks, **kwargs)
