"""Per-example attack losses on logits, all maximised by the attacker.

Each loss maps logits `[N, K]` (any float dtype; computed in float32) and
dense targets `[N, K]` (one-hot; for soft targets the arg-max class counts
as the true class `y`, except in the cross-entropy, which uses the targets
as given) to a float32 loss per example `[N]`. The sign convention is the
attacker's: a higher value is a stronger attack, and for the DLR and margin
losses a value above 0 means the example is misclassified (untargeted) or
scored above the true class by the target class (targeted).
"""

from keras import ops

from keras_robust import classification
from keras_robust.validation import validate_number

# Keeps the DLR denominators away from zero, as in the reference code.
DLR_EPSILON = 1e-12


def _check_num_classes(logits, minimum, name):
    num_classes = logits.shape[-1]
    if num_classes is not None and num_classes < minimum:
        raise ValueError(
            f"`{name}` needs logits over at least {minimum} classes. "
            f"Received: logits.shape={tuple(logits.shape)}"
        )


def _sorted_logits(logits, k):
    """The `k` largest logits of each example, in descending order, `[N, k]`."""
    values, _ = ops.top_k(logits, k=k, sorted=True)
    return values


def cross_entropy_loss(logits, targets):
    """Cross-entropy `-sum_k t_k log softmax(z)_k` of each example.

    Args:
        logits: Logits `z`, shape `[N, K]`.
        targets: Sparse labels `[N]` or dense (one-hot or soft) targets
            `[N, K]`.

    Returns:
        float32 tensor `[N]`; larger means the model is further from the
        targets.
    """
    return classification.cross_entropy_with_logits(targets, logits)


def dlr_loss(logits, targets):
    """Untargeted Difference of Logits Ratio (DLR) loss of Croce & Hein.

    `DLR(z, y) = -(z_y - max_{i != y} z_i) / (z_π1 - z_π3 + 1e-12)`, with
    `π` ordering the logits decreasingly. It is invariant to shifting and
    (positively) scaling the logits, so it does not saturate like the
    cross-entropy when a model inflates its logits. Above 0 exactly when the
    example is misclassified.

    Args:
        logits: Logits `z`, shape `[N, K]` with `K >= 3`.
        targets: Sparse labels `[N]` or dense targets `[N, K]` (arg-max:
            the true class).

    Returns:
        float32 tensor `[N]`, in `[-1, 1]` up to the `1e-12`.

    Raises:
        ValueError: If there are fewer than 3 classes.

    References:
        Croce & Hein, "Reliable evaluation of adversarial robustness with an
        ensemble of diverse parameter-free attacks", ICML 2020.
    """
    _check_num_classes(logits, 3, "dlr_loss")
    logits = ops.cast(logits, "float32")
    true_logit, best_other = classification.true_and_best_other(
        logits, classification.class_one_hot(targets, logits)
    )
    top = _sorted_logits(logits, 3)
    return -(true_logit - best_other) / (top[:, 0] - top[:, 2] + DLR_EPSILON)


def targeted_dlr_loss(logits, targets, target_classes):
    """Targeted DLR loss of Croce & Hein, maximised to reach a target class.

    `DLR_t(z, y) = -(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2 + 1e-12)`, with
    `π` ordering the logits decreasingly and `t` the target class. Invariant
    to shifting and scaling the logits; above 0 when the target class scores
    higher than the true class.

    Args:
        logits: Logits `z`, shape `[N, K]` with `K >= 4`.
        targets: Sparse labels `[N]` or dense targets `[N, K]` (arg-max:
            the true class).
        target_classes: Target classes, integer indices `[N]` or one-hot
            `[N, K]`.

    Returns:
        float32 tensor `[N]`.

    Raises:
        ValueError: If there are fewer than 4 classes.

    References:
        Croce & Hein, "Reliable evaluation of adversarial robustness with an
        ensemble of diverse parameter-free attacks", ICML 2020.
    """
    _check_num_classes(logits, 4, "targeted_dlr_loss")
    logits = ops.cast(logits, "float32")
    mask = classification.class_one_hot(targets, logits)
    if len(target_classes.shape) == 1:
        target_mask = ops.one_hot(
            ops.cast(target_classes, "int32"), ops.shape(logits)[-1], dtype="float32"
        )
    else:
        target_mask = ops.cast(target_classes, "float32")
    true_logit = ops.sum(mask * logits, axis=-1)
    target_logit = ops.sum(target_mask * logits, axis=-1)
    top = _sorted_logits(logits, 4)
    scale = top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + DLR_EPSILON
    return -(true_logit - target_logit) / scale


def margin_loss(logits, targets, confidence=None):
    """Carlini–Wagner margin `max_{i != y} z_i - z_y`, optionally clipped.

    The attacker maximises the margin by which the best wrong class beats
    the true class; above 0 means misclassified. With a confidence `κ` the
    margin is clipped at `κ` (`min(max_{i != y} z_i - z_y, κ)`), so the
    attack stops pushing once an example is misclassified by `κ`, as in the
    Carlini–Wagner objective `max(z_y - max_{i != y} z_i, -κ)`, negated.

    Args:
        logits: Logits `z`, shape `[N, K]` with `K >= 2`.
        targets: Sparse labels `[N]` or dense targets `[N, K]` (arg-max:
            the true class).
        confidence: `κ >= 0`, or `None` for no clipping.

    Returns:
        float32 tensor `[N]`, in logit units.

    Raises:
        ValueError: If `confidence` is negative or not a number.

    References:
        Carlini & Wagner, "Towards Evaluating the Robustness of Neural
        Networks", IEEE S&P 2017.
    """
    if confidence is not None:
        confidence = validate_number("confidence", confidence, low=0.0)
    _check_num_classes(logits, 2, "margin_loss")
    margin = -classification.margin(
        logits, classification.class_one_hot(targets, logits)
    )
    if confidence is not None:
        margin = ops.minimum(margin, confidence)
    return margin
