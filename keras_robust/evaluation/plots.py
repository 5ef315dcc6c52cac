"""Plots: reliability diagram, robustness against ε, training curves.

Each function writes a PNG or SVG file (by the path's extension) with
matplotlib (`pip install "keras-robust[plots]"`) and returns the numbers it
plotted.
"""

import numpy as np

from keras_robust.attacks.base import predict_logits
from keras_robust.classification import numpy_class_indices


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "Plots need matplotlib: pip install 'keras-robust[plots]'"
        ) from error
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    _pyplot().close(figure)


def reliability_diagram(logits, labels, path, num_bins=15, title=None):
    """Accuracy against confidence per bin, with the ECE, saved to `path`.

    Args:
        logits: Logits `[N, K]`.
        labels: Sparse labels `[N]` or one-hot targets.
        path: Output file (`.png` or `.svg`).
        num_bins: Number of equal-width confidence bins.
        title: Optional title.

    Returns:
        Dict with `bin_confidence`, `bin_accuracy`, `bin_count` (lists) and
        `ece`.
    """
    from keras_robust.evaluation.calibration import expected_calibration_error

    ece = expected_calibration_error(logits, labels, num_bins)
    logits = np.asarray(logits, dtype=np.float64)
    labels = numpy_class_indices(labels, logits.shape[-1])
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    probs = shifted / shifted.sum(-1, keepdims=True)
    confidence = probs.max(-1)
    correct = probs.argmax(-1) == labels.reshape(-1)
    bins = np.minimum((confidence * num_bins).astype(int), num_bins - 1)
    count = np.bincount(bins, minlength=num_bins)
    with np.errstate(invalid="ignore"):
        accuracy = np.bincount(bins, correct, num_bins) / count
        mean_confidence = np.bincount(bins, confidence, num_bins) / count

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    edges = np.linspace(0, 1, num_bins + 1)
    axis.bar(
        edges[:-1],
        np.nan_to_num(accuracy),
        width=1 / num_bins,
        align="edge",
        edgecolor="black",
        label="accuracy",
    )
    axis.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    axis.set_xlabel("confidence")
    axis.set_ylabel("accuracy")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_title(title or f"Reliability (ECE {ece:.3f})")
    axis.legend(loc="upper left")
    _save(figure, path)
    return {
        "bin_confidence": mean_confidence.tolist(),
        "bin_accuracy": accuracy.tolist(),
        "bin_count": count.tolist(),
        "ece": ece,
    }


def robustness_curve(model, x, y, epsilons, path, attack=None, seed=0, title=None):
    """Robust accuracy against ε under an attack, saved to `path`.

    Args:
        model: Keras model mapping inputs to logits.
        x: Inputs in the attack's value range.
        y: Sparse labels or one-hot targets.
        epsilons: Increasing list of ε values.
        path: Output file (`.png` or `.svg`).
        attack: Callable `epsilon -> attack`; default PGD-20 with step ε/4.
        seed: Seed of the attacks.
        title: Optional title.

    Returns:
        Dict with `epsilons` and `accuracy` (lists).
    """
    from keras_robust.attacks import PGD

    if attack is None:

        def attack(epsilon):
            return PGD(epsilon=epsilon, step_size=max(epsilon / 4, 1e-6), steps=20)

    y = np.asarray(y)
    labels = y.argmax(-1) if y.ndim == 2 and y.shape[-1] > 1 else y.reshape(-1)
    accuracy = []
    for epsilon in epsilons:
        x_adv = (
            np.asarray(x) if epsilon == 0 else attack(epsilon)(model, x, y, seed=seed)
        )
        accuracy.append(
            float(np.mean(predict_logits(model, x_adv).argmax(-1) == labels))
        )

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.plot(list(epsilons), accuracy, "o-")
    axis.set_xlabel("epsilon")
    axis.set_ylabel("robust accuracy")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.set_title(title or "Robust accuracy against epsilon")
    _save(figure, path)
    return {"epsilons": [float(e) for e in epsilons], "accuracy": accuracy}


def training_curves(history, path, title=None):
    """Clean and robust accuracy per epoch from a `History`, saved to `path`.

    A widening gap between `robust_accuracy` (training) and
    `val_robust_accuracy` while the latter falls is robust overfitting.

    Args:
        history: A `keras.callbacks.History` or its `history` dict.
        path: Output file (`.png` or `.svg`).
        title: Optional title.

    Returns:
        The curves plotted, as a dict name → list.
    """
    logs = getattr(history, "history", history)
    names = [
        name
        for name in (
            "accuracy",
            "robust_accuracy",
            "val_accuracy",
            "val_robust_accuracy",
        )
        if name in logs
    ]
    if not names:
        raise ValueError(
            "Argument `history` has no accuracy curves. "
            f"Received: history with keys {sorted(logs)}"
        )
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    for name in names:
        epochs = np.arange(1, len(logs[name]) + 1)
        style = "--" if name.startswith("val_") else "-"
        axis.plot(epochs, logs[name], style, label=name)
    axis.set_xlabel("epoch")
    axis.set_ylabel("accuracy")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(title or "Clean and robust accuracy")
    _save(figure, path)
    return {name: [float(v) for v in logs[name]] for name in names}
