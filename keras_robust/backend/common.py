"""Checks on concrete values (NumPy), shared by every backend."""

import numpy as np

# What every backend offers (its modules' `__all__`): code outside
# `keras_robust.backend` reaches the backends through these names only.
NAMES = (
    "apply_gradients",
    "can_fuse_batch_norm",
    "check_in_value_range",
    "check_labels_in_range",
    "compile_batch_function",
    "compile_function",
    "concrete_values",
    "creation_scope",
    "distribution_safe_logs",
    "first_local_value",
    "fori_loop",
    "fused_batch_norm",
    "gather",
    "in_multi_worker_mode",
    "in_xla_context",
    "loss_and_gradients",
    "num_replicas_in_sync",
    "output_shape",
    "padded_batches",
    "random",
    "scale_loss_for_distribution",
    "select",
    "TrainerMixin",
    "unscale_loss_for_distribution",
    "update_loss_metric",
    "value_and_input_gradient",
    "value_and_input_vjp",
    "while_loop",
)

RANGE_ADVICE = (
    "Scale the inputs into the attack's value_range (for images: [0, 1] "
    "floats, e.g. `x.astype('float32') / 255`, with normalisation inside "
    "the model, see keras_robust.layers.InputStandardization), or set the "
    "attack's value_range."
)


def range_tolerance(value_range):
    """The slack allowed at the edges of `value_range` (rounding)."""
    low, high = value_range
    return 1e-6 * max(1.0, abs(high - low))


def labels_message(num_classes, name):
    return (
        f"Argument `{name}` must hold class labels: whole numbers in "
        f"[0, {num_classes})."
    )


def check_label_values(values, num_classes, name):
    """Raises `ValueError` unless `values` are whole numbers in `[0, K)`."""
    values = np.asarray(values)
    bad = (values < 0) | (values >= num_classes)
    if values.dtype.kind == "f":
        bad |= ~np.isfinite(values) | (values != np.floor(values))
    if bad.any():
        raise ValueError(
            f"{labels_message(num_classes, name)} Received: {name} containing "
            f"{values[bad][:5].tolist()}"
        )


def check_range_values(values, value_range, name):
    """Raises `ValueError` unless `values` are finite and inside the range."""
    low, high = value_range
    tolerance = range_tolerance(value_range)
    values = np.asarray(values, dtype="float64")
    if values.size and not np.all(np.isfinite(values)):
        count = int(np.sum(~np.isfinite(values)))
        kind = "NaN" if np.isnan(values).any() else "infinite"
        raise ValueError(
            f"Argument `{name}` must hold finite values. Received: {name} "
            f"with {count} {kind} value(s)"
        )
    if values.size and (
        values.min() < low - tolerance or values.max() > high + tolerance
    ):
        raise ValueError(
            f"Argument `{name}` has values outside value_range=({low}, "
            f"{high}). {RANGE_ADVICE} Received: {name} with "
            f"min={values.min():.6g}, max={values.max():.6g}"
        )


def check_selection_rank(condition_rank, values_rank, condition_shape, values_shape):
    """`select`'s condition is a scalar, `[N]` or of the values' shape."""
    if condition_rank not in (0, 1, values_rank):
        raise ValueError(
            "Argument `condition` must be a scalar, a vector over the first axis "
            "or of the shape of the values. Received: condition.shape="
            f"{condition_shape} for values of shape {values_shape}"
        )
