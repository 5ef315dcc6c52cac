"""Sanity checks that flag an evaluation not to be trusted.

After Carlini et al., "On Evaluating Adversarial Robustness" (2019), and
the checks of AutoAttack. Each check warns with a `RobustnessWarning` that
names a section of docs/evaluation.md.
"""

import warnings

import keras
import numpy as np

from keras_robust.attacks.base import input_gradients, predict_logits
from keras_robust.classification import numpy_class_indices

DOCS = "docs/evaluation.md"


class RobustnessWarning(UserWarning):
    """An evaluation result that is probably too optimistic."""


def _warn(message, anchor):
    warnings.warn(f"{message} See {DOCS}#{anchor}.", RobustnessWarning, stacklevel=3)


def check_model(
    model,
    x,
    y,
    *,
    epsilon,
    norm="linf",
    value_range=(0.0, 1.0),
    large_epsilon=None,
    max_examples=256,
    seed=0,
):
    """Runs the model-level sanity checks and warns about each failure.

    Checks: outputs that look like probabilities instead of logits; zero or
    non-finite input gradients; randomness in the eval-mode outputs; and
    accuracy that does not fall to about zero under APGD-CE at a large ε.
    The last check runs the standard ensemble's APGD-CE with another ε, so
    after an evaluation of the same model and input shape it reuses that
    attack's compiled function instead of compiling one of its own.

    Args:
        model: Keras model mapping inputs in `value_range` to logits.
        x: Inputs (array-like), `value_range`.
        y: Sparse labels or one-hot targets.
        epsilon: The evaluation's ε (the large-ε check uses more).
        norm: `"linf"` or `"l2"`.
        value_range: `(low, high)` of valid inputs.
        large_epsilon: ε at which accuracy must be about zero. Default: half
            the value range (L∞), or the L2 norm of a full-range image (L2).
        max_examples: Number of examples the checks use.
        seed: Seed of the attack's random start.

    Returns:
        A list of the names of the failed checks (empty if all pass):
        `"probabilities"`, `"gradients"`, `"randomness"`, `"large-epsilon"`.
    """
    from keras_robust.attacks import APGD

    x = np.asarray(x, dtype="float32")[:max_examples]
    y = np.asarray(y)[:max_examples]
    logits = keras.ops.convert_to_numpy(model(x, training=False)).astype("float64")
    labels = numpy_class_indices(y, logits.shape[-1])
    failed = []

    if np.all((logits >= 0) & (logits <= 1)) and np.allclose(
        logits.sum(-1), 1, atol=1e-3
    ):
        failed.append("probabilities")
        _warn(
            "The model's outputs look like probabilities (non-negative, rows "
            "summing to 1): attacks need logits, and a softmax output masks "
            "gradients. Evaluate the model without its final softmax.",
            "probabilities",
        )

    gradient = input_gradients(model, x, labels)
    flat = gradient.reshape(len(x), -1)
    zero_share = float(np.mean(np.all(flat == 0, axis=1)))
    if not np.all(np.isfinite(flat)) or zero_share > 0.5:
        failed.append("gradients")
        _warn(
            f"The input gradients are zero for {zero_share:.0%} of the examples "
            "or not finite: gradient-based attacks cannot work on this model "
            "(gradient masking), so their robust accuracy means nothing. Rely on "
            "black-box attacks (Square) and remove the non-differentiable part.",
            "gradients",
        )

    again = keras.ops.convert_to_numpy(model(x, training=False)).astype("float64")
    if not np.allclose(logits, again, rtol=1e-5, atol=1e-6):
        failed.append("randomness")
        _warn(
            "The model's eval-mode outputs change between two calls on the same "
            "inputs: randomised defences need attacks that average over the "
            "randomness (EOT), and single-run results overestimate robustness.",
            "randomness",
        )

    low, high = value_range
    if large_epsilon is None:
        span = high - low
        large_epsilon = span / 2 if norm == "linf" else span * float(np.sqrt(x[0].size))
    with warnings.catch_warnings():
        # A large ε is the point here: no warning about it.
        warnings.simplefilter("ignore", UserWarning)
        attack = APGD(
            epsilon=large_epsilon, norm=norm, loss="ce", value_range=value_range
        )
    x_adv = attack(model, x, labels, seed=seed)
    adversarial_logits = predict_logits(model, x_adv)
    accuracy = float(np.mean(adversarial_logits.argmax(-1) == labels))
    if accuracy > 0.05:
        failed.append("large-epsilon")
        _warn(
            f"Accuracy stays at {accuracy:.1%} under APGD-CE at epsilon="
            f"{large_epsilon:.3g} (evaluation epsilon {epsilon:.3g}), where any "
            "classifier can be fooled: the attacks are not working on this model.",
            "large-epsilon",
        )
    return failed


def check_black_box(report, white_box, black_box, threshold=0.01):
    """Warns when black-box attacks break what the white-box ones did not.

    Args:
        report: `per_attack` of a sequential `evaluate_robustness` run.
        white_box: Names of the gradient-based attacks, run first.
        black_box: Names of the black-box attacks, run after them.
        threshold: Accuracy drop (fraction of all examples) that counts.

    Returns:
        `True` if the check failed.
    """
    if not white_box or not black_box:
        return False
    after_white = min(report[name] for name in white_box)
    after_black = min(report[name] for name in black_box)
    if after_white - after_black > threshold:
        _warn(
            f"Black-box attacks lowered robust accuracy from {after_white:.2%} to "
            f"{after_black:.2%} after the white-box attacks had stopped: the "
            "gradients mislead the white-box attacks (gradient masking).",
            "black-box",
        )
        return True
    return False
