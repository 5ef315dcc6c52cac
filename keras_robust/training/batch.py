"""What every role of the training step sees of one batch."""

import contextlib
from typing import Any, NamedTuple


class Batch(NamedTuple):
    """One training batch, as the roles of `AdversarialModel.train_step` see it.

    Attributes:
        x: Clean inputs, in the attack's `value_range`.
        y: The labels as given to `fit()`: sparse `[N]` or dense `[N, K]`.
        sample_weight: Per-example weights `[N]`, or `None`.
        step: The model's own training-step counter (float32 scalar), 0 at
            the first step ever; it survives `fit()` calls, checkpoints and
            KerasTuner's warm starts.
        horizon: The schedules' horizon in steps (float32 scalar; 0 until a
            `fit()` that needs one sets it).
    """

    x: Any
    y: Any
    sample_weight: Any
    step: Any
    horizon: Any


_DRIVING = []


@contextlib.contextmanager
def driving(model):
    """Marks `model` as running `fit()` / `evaluate()` for the roles it uses.

    A loss that only makes sense inside `AdversarialModel` (such as
    `keras_robust.losses.ADRLoss`, whose targets the model builds) checks
    `active_model()` to refuse to run anywhere else. The mark is global,
    not per thread, because `tf.distribute` traces each replica's step in a
    thread of its own.
    """
    _DRIVING.append(model)
    try:
        yield model
    finally:
        _DRIVING.pop()


def active_model():
    """The `AdversarialModel` whose `fit()`/`evaluate()` is running, or `None`."""
    return _DRIVING[-1] if _DRIVING else None
