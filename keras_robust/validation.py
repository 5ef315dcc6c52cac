"""Argument validation shared by every module."""

import math


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
