"""Annealing schedules: pure functions of the training step.

A schedule maps the training step `s` (the optimizer's iteration counter)
and a horizon `S` to a value. It is evaluated inside the compiled training
step, so resuming, Hyperband warm starts and distribution strategies all
see the same value for the same step. With `total_steps=None` the horizon
is taken from `fit()` (epochs × steps per epoch) when training starts.
"""

import math
import numbers

import keras
from keras import ops

from keras_robust.validation import Configurable, validate_integer, validate_number


def _validate_total_steps(total_steps):
    return validate_integer("total_steps", total_steps, allow_none=True)


class Schedule(Configurable):
    """Base class: a value as a function of the step and the horizon.

    Subclasses implement `value_at(progress)` for `progress = s / S`
    clipped to `[0, 1]`, in `keras.ops`.

    Args:
        total_steps: The horizon `S` in optimizer steps, or `None` to take
            it from `fit()` (epochs × steps per epoch).
    """

    def __init__(self, total_steps=None):
        self.total_steps = _validate_total_steps(total_steps)

    def value_at(self, progress):
        raise NotImplementedError

    def bounds(self):
        """`(lowest, highest)` value the schedule takes, or `None` if unknown."""
        return None

    def __call__(self, step, total_steps=None):
        """The scheduled value at `step`.

        Args:
            step: The training step `s` (0 at the first step); a number or
                scalar tensor.
            total_steps: The horizon to use when the schedule has none of
                its own (`fit()`'s, passed by `AdversarialModel`).

        Returns:
            float32 scalar tensor.

        Raises:
            ValueError: When neither the schedule nor the caller gives a
                horizon.
        """
        horizon = self.total_steps if self.total_steps is not None else total_steps
        if horizon is None:
            raise ValueError(
                f"{type(self).__name__} has `total_steps=None` and no horizon "
                "was given. Pass `total_steps` to the schedule, or train with "
                "`fit()` on data of known length (the horizon is then epochs "
                "× steps per epoch). Received: total_steps=None, with "
                f"total_steps=None on {self!r}"
            )
        step = ops.cast(step, "float32")
        horizon = ops.maximum(ops.cast(horizon, "float32"), 1.0)
        return ops.cast(self.value_at(ops.clip(step / horizon, 0.0, 1.0)), "float32")

    def get_config(self):
        return {"total_steps": self.total_steps}


@keras.saving.register_keras_serializable(package="keras_robust")
class CosineAnnealing(Schedule):
    """Cosine annealing from `start` (step 0) to `end` (step `S`).

    `value(s) = end + ½ (start − end) (1 + cos(π s / S))`, constant at `end`
    after `S`. This is ADR's schedule for both of its quantities:
    temperature `τ_s = τ_min + ½(τ_max − τ_min)(1 + cos(π s / S))` is
    `CosineAnnealing(τ_max, τ_min)`, and interpolation
    `ρ_s = ρ_max + ½(ρ_min − ρ_max)(1 + cos(π s / S))` is
    `CosineAnnealing(ρ_min, ρ_max)`.

    Args:
        start: Value at step 0.
        end: Value at step `S` and after.
        total_steps: The horizon `S`, or `None` to take it from `fit()`.

    Example:

    >>> from keras_robust.schedules import CosineAnnealing
    >>> schedule = CosineAnnealing(2.5, 2.0, total_steps=100)
    >>> round(float(schedule(50)), 4)
    2.25
    """

    def __init__(self, start, end, total_steps=None):
        super().__init__(total_steps)
        self.start = validate_number("start", start)
        self.end = validate_number("end", end)

    def value_at(self, progress):
        return self.end + 0.5 * (self.start - self.end) * (
            1.0 + ops.cos(math.pi * progress)
        )

    def bounds(self):
        return (min(self.start, self.end), max(self.start, self.end))

    def get_config(self):
        return {"start": self.start, "end": self.end, **super().get_config()}


@keras.saving.register_keras_serializable(package="keras_robust")
class LinearAnnealing(Schedule):
    """Linear annealing from `start` (step 0) to `end` (step `S`).

    `value(s) = start + (end − start) · s / S`, constant at `end` after `S`.

    Args:
        start: Value at step 0.
        end: Value at step `S` and after.
        total_steps: The horizon `S`, or `None` to take it from `fit()`.
    """

    def __init__(self, start, end, total_steps=None):
        super().__init__(total_steps)
        self.start = validate_number("start", start)
        self.end = validate_number("end", end)

    def value_at(self, progress):
        return self.start + (self.end - self.start) * progress

    def bounds(self):
        return (min(self.start, self.end), max(self.start, self.end))

    def get_config(self):
        return {"start": self.start, "end": self.end, **super().get_config()}


@keras.saving.register_keras_serializable(package="keras_robust")
class Constant(Schedule):
    """A constant value (needs no horizon).

    Args:
        value: The value at every step.
    """

    def __init__(self, value):
        super().__init__(total_steps=1)
        self.value = validate_number("value", value)

    def value_at(self, progress):
        return ops.zeros_like(progress) + self.value

    def bounds(self):
        return (self.value, self.value)

    def get_config(self):
        return {"value": self.value}


def get(identifier, name):
    """A `Schedule` from a schedule, a number (constant) or a config dict."""
    if isinstance(identifier, Schedule):
        return identifier
    if isinstance(identifier, dict):
        schedule = keras.saving.deserialize_keras_object(identifier)
        if isinstance(schedule, Schedule):
            return schedule
    elif isinstance(identifier, numbers.Real) and not isinstance(identifier, bool):
        return Constant(identifier)
    raise ValueError(
        f"Argument `{name}` must be a number or a keras_robust.schedules "
        f"schedule. Received: {name}={identifier!r}"
    )
