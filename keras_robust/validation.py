"""Argument validation shared by every module."""

import math
import numbers

import numpy as np


def validate_number(name, value, *, low=None, high=None, low_open=False):
    """Checks that a loss hyperparameter is a finite number within bounds.

    Args:
        name: Argument name, used in the error message.
        value: The value received.
        low: Smallest allowed value, or `None`.
        high: Largest allowed value (inclusive), or `None`.
        low_open: Whether `low` itself is excluded.

    Returns:
        `value` as a Python float.

    Raises:
        ValueError: When `value` is not a finite number within the bounds.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    ok = math.isfinite(number) and not isinstance(value, bool)
    if ok and low is not None:
        ok = number > low if low_open else number >= low
    if ok and high is not None:
        ok = number <= high
    if not ok:
        left = "(" if low_open else "["
        bounds = f"{left}{'-inf' if low is None else low}, "
        bounds += f"{'inf' if high is None else high}]"
        raise ValueError(
            f"Argument `{name}` must be a finite number in {bounds}. "
            f"Received: {name}={value!r}"
        )
    return number


def validate_integer(name, value, *, low=1, allow_none=False):
    """Checks that a count (steps, batch size, classes, ...) is an integer.

    Python and NumPy integers are accepted; `bool` is not.

    Args:
        name: Argument name, used in the error message.
        value: The value received.
        low: Smallest allowed value.
        allow_none: Whether `None` is accepted (and returned as is).

    Returns:
        `value` as a Python int (or `None`).

    Raises:
        ValueError: When `value` is not an integer `>= low`.
    """
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < low
    ):
        alternative = " or None" if allow_none else ""
        raise ValueError(
            f"Argument `{name}` must be an integer >= {low}{alternative}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def validate_bool(name, value):
    """Checks that a flag is a bool (Python or NumPy).

    Returns:
        `value` as a Python bool.

    Raises:
        ValueError: When `value` is not a bool.
    """
    if not isinstance(value, bool | np.bool_):
        raise ValueError(
            f"Argument `{name}` must be a bool. Received: {name}={value!r}"
        )
    return bool(value)


def validate_choice(name, value, choices, *, allow_none=False):
    """Checks that a string option is one of `choices`.

    Returns:
        `value` unchanged.

    Raises:
        ValueError: When `value` is not one of `choices` (or `None` when
            allowed).
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or value not in choices:
        alternative = " or None" if allow_none else ""
        raise ValueError(
            f"Argument `{name}` must be one of {tuple(choices)}{alternative}. "
            f"Received: {name}={value!r}"
        )
    return value


def validate_value_range(value_range):
    """Checks a `(low, high)` pair of finite numbers with `low < high`.

    Returns:
        `(low, high)` as Python floats.

    Raises:
        ValueError: For anything else.
    """
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        low, high = math.nan, math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(
            "Argument `value_range` must be a pair (low, high) of finite "
            f"numbers with low < high. Received: value_range={value_range!r}"
        )
    return (low, high)


class Configurable:
    """A plain configuration object: `get_config`, `from_config` and a repr.

    The base of attacks, schedules and the training step's roles: their
    constructor arguments are their config, as with Keras objects.
    """

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"
