"""The shared argument checks: the value returned and the error raised."""

import numpy as np
import pytest

from keras_robust.validation import validate_integer


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int32(1)])
def test_integer_accepted_as_python_int(value):
    result = validate_integer("steps", value)
    assert result == int(value) and type(result) is int


@pytest.mark.parametrize("value", [0, -2, True, 2.0, "3", None, np.float32(2)])
def test_integer_rejected_with_name_and_value(value):
    with pytest.raises(
        ValueError, match=r"Argument `steps` must be an integer >= 1\. Received: steps="
    ):
        validate_integer("steps", value)


def test_integer_lower_bound_and_none():
    assert validate_integer("num_classes", 2, low=2) == 2
    with pytest.raises(ValueError, match=r"integer >= 2\. Received: num_classes=1"):
        validate_integer("num_classes", 1, low=2)
    assert validate_integer("total_steps", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r">= 1 or None\. Received: total_steps=0"):
        validate_integer("total_steps", 0, allow_none=True)
