"""Automatic label calibration for adversarial training (Dong et al. 2022)."""

import numbers
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from keras_robust.attacks.base import Attack
from keras_robust.validation import validate_integer, validate_number

# The reference grid: 100 temperatures log-spaced in [0.2, 16] and 100
# interpolations linearly spaced in [0.01, 1].
TEMPERATURES = np.exp(np.linspace(np.log(0.2), np.log(16.0), 100))
INTERPOLATIONS = np.linspace(0.01, 1.0, 100)
# Added to the mixed probability of the true class before the logarithm.
NLL_OFFSET = 1e-8


class Calibration(NamedTuple):
    """The result of `calibrate_labels`; unpacks as `(temperature, interpolation)`.

    Attributes:
        temperature: The fitted temperature `T`.
        interpolation: The fitted interpolation `ρ`.
    """

    temperature: float
    interpolation: float


def calibrate_labels(
    teacher,
    last_model,
    validation_data,
    training_data,
    *,
    attack,
    min_agreement=0.9,
    temperatures=None,
    interpolations=None,
    batch_size=256,
    seed=0,
    verbose=1,
    return_grid=False,
):
    """Fits the temperature and interpolation of calibrated labels.

    Dong, Liu & Shang (2022) train a robust model toward the soft labels of
    an early-stopped robust `teacher` (`keras_robust.training.Distillation`
    with `keras_robust.training.FixedTeacher`). The labels' temperature `T`
    and interpolation `ρ` are fitted once, by a grid search that minimises
    the negative log-likelihood of the true labels of held-out adversarial
    examples under

    `ρ · softmax(z_teacher(x') / T) + (1 − ρ) · softmax(z_last(x') / T)`,

    where `last_model` is the final (over-fitted) model of the same run.
    Only pairs whose labels keep the training label on top are allowed:
    `argmax(ρ · softmax(z_teacher(x'_train) / T) + (1 − ρ) · onehot(y)) = y`
    (strictly) on at least `min_agreement` of the training examples.

    The adversarial examples are made by `attack` against the teacher, for
    the validation and the training examples alike (as in the reference
    code); the last model is evaluated on the teacher's adversarial
    examples. The grid is the reference one: 100 temperatures log-spaced in
    `[0.2, 16]` and 100 interpolations in `[0.01, 1]`. The attack runs
    batched and compiled; the grid is evaluated by a compiled function, one
    temperature per call; both show a progress bar when `verbose`.

    Args:
        teacher: The early-stopped (best robust) Keras model: inputs in the
            attack's `value_range` → logits.
        last_model: The final model of the same run, with the same classes.
        validation_data: `(x, y)` held-out inputs and sparse labels (NumPy
            arrays or array-likes).
        training_data: `(x, y)` training inputs and sparse labels for the
            agreement constraint (a random subset is enough).
        attack: A `keras_robust.attacks.Attack` (e.g. the training attack),
            or `None` to calibrate on clean inputs.
        min_agreement: Fraction in `[0, 1]` of training examples whose label
            must stay the arg-max. Default 0.9 (the paper's).
        temperatures: The temperatures to search (positive), or `None` for
            the reference grid.
        interpolations: The interpolations to search (in `[0, 1]`), or
            `None` for the reference grid.
        batch_size: Examples per attack call.
        seed: Integer seed of the attack's random draws.
        verbose: 0 for silence, 1 for progress bars and a summary line.
        return_grid: Also return a dict with the grids, the NLL `[T, ρ]`
            and the agreement `[T, ρ]`.

    Returns:
        A `Calibration` `(temperature, interpolation)` of Python floats; with
        `return_grid=True`, `(calibration, grid)`.

    Raises:
        ValueError: For empty data, labels that do not match the inputs or
            the models' classes, models of different class counts, a bad
            `attack`, `min_agreement` or grid, or when no pair reaches
            `min_agreement` (the message gives the best agreement found).

    References:
        Dong, Liu, Shang, "Label Noise in Adversarial Training: A Novel
        Perspective to Study Robust Overfitting", NeurIPS 2022.
    """
    for name, model in (("teacher", teacher), ("last_model", last_model)):
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"Argument `{name}` must be a Keras model (inputs -> logits). "
                f"Received: {name}={model!r}"
            )
    if attack is not None and not isinstance(attack, Attack):
        raise ValueError(
            "Argument `attack` must be a keras_robust.attacks.Attack or None "
            f"(clean inputs). Received: attack={attack!r}"
        )
    min_agreement = validate_number("min_agreement", min_agreement, low=0.0, high=1.0)
    temperatures = _grid("temperatures", temperatures, TEMPERATURES, low_open=True)
    interpolations = _grid(
        "interpolations", interpolations, INTERPOLATIONS, high=1.0, low_open=False
    )
    batch_size = validate_integer("batch_size", batch_size)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"Argument `seed` must be an integer. Received: seed={seed!r}")
    x_val, y_val = _unpack("validation_data", validation_data)
    x_train, y_train = _unpack("training_data", training_data)

    progress = bool(verbose)
    x_val_adv = _adversarial(attack, teacher, x_val, y_val, batch_size, seed, progress)
    teacher_val = _logits(teacher, x_val_adv, batch_size)
    last_val = _logits(last_model, x_val_adv, batch_size)
    if teacher_val.shape[-1] != last_val.shape[-1]:
        raise ValueError(
            "Arguments `teacher` and `last_model` must output logits over the "
            f"same classes. Received: teacher with {teacher_val.shape[-1]} "
            f"outputs, last_model with {last_val.shape[-1]}"
        )
    num_classes = teacher_val.shape[-1]
    for name, y in (("validation_data", y_val), ("training_data", y_train)):
        if y.min() < 0 or y.max() >= num_classes:
            raise ValueError(
                f"The labels of `{name}` must be class indices in "
                f"[0, {num_classes}) (the models' outputs). Received: labels "
                f"from {y.min()} to {y.max()}"
            )
    x_train_adv = _adversarial(
        attack, teacher, x_train, y_train, batch_size, seed + 1, progress
    )
    teacher_train = _logits(teacher, x_train_adv, batch_size)

    nll, agreement = _search(
        (teacher_val, last_val, y_val),
        (teacher_train, y_train),
        temperatures,
        interpolations,
        progress,
    )
    allowed = agreement >= min_agreement
    if not allowed.any():
        best = np.unravel_index(np.argmax(agreement), agreement.shape)
        raise ValueError(
            f"No (temperature, interpolation) pair keeps the label on top for "
            f"min_agreement={min_agreement} of the training examples. The best "
            f"agreement found is {agreement[best]:.4f} (temperature="
            f"{temperatures[best[0]]:.4g}, interpolation="
            f"{interpolations[best[1]]:.4g}); lower `min_agreement` or check "
            "that the teacher is accurate on the training examples."
        )
    masked = np.where(allowed, nll, np.inf)
    i, j = np.unravel_index(np.argmin(masked), masked.shape)
    result = Calibration(float(temperatures[i]), float(interpolations[j]))
    if verbose:
        print(
            f"Calibrated labels: temperature={result.temperature:.4g}, "
            f"interpolation={result.interpolation:.4g} (validation NLL "
            f"{nll[i, j]:.4f}, training agreement {agreement[i, j]:.4f})"
        )
    if return_grid:
        grid = {
            "temperatures": temperatures,
            "interpolations": interpolations,
            "nll": nll,
            "agreement": agreement,
        }
        return result, grid
    return result


def _grid(name, values, default, high=None, low_open=True):
    if values is None:
        return default.astype("float64")
    values = np.asarray(values, dtype="float64").reshape(-1)
    low_ok = values > 0 if low_open else values >= 0
    high_ok = True if high is None else values <= high
    if values.size == 0 or not np.all(np.isfinite(values) & low_ok & high_ok):
        interval = f"{'(' if low_open else '['}0, {'inf)' if high is None else '1]'}"
        raise ValueError(
            f"Argument `{name}` must be a non-empty list of numbers in "
            f"{interval}. Received: {name}={values.tolist()!r}"
        )
    return values


def _unpack(name, data):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"Argument `{name}` must be a tuple `(x, y)` of inputs and sparse "
            f"labels. Received: {name} of type {type(data).__name__}"
        )
    x = np.asarray(data[0], dtype="float32")
    y = np.asarray(data[1])
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(
            f"Argument `{name}` holds no examples. Received: x of shape {x.shape}"
        )
    if y.ndim == 2 and y.shape[-1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(
            f"Argument `{name}` must hold one sparse label per input. Received: "
            f"x of shape {x.shape} and y of shape {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(
                f"The labels of `{name}` must be whole-number class indices. "
                f"Received: labels of dtype {y.dtype}"
            )
    return x, y.astype("int64")


def _adversarial(attack, model, x, y, batch_size, seed, progress):
    if attack is None:
        return x
    chunks = range(0, len(x), batch_size)
    bar = keras.utils.Progbar(len(x), unit_name="example") if progress else None
    outputs = []
    for index, start in enumerate(chunks):
        stop = start + batch_size
        outputs.append(
            attack(model, x[start:stop], y[start:stop], seed=seed * 100003 + index)
        )
        if bar is not None:
            bar.update(min(stop, len(x)))
    return np.concatenate(outputs)


def _logits(model, x, batch_size):
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), "float32")


def _search(validation, training, temperatures, interpolations, progress):
    """The NLL and the agreement on the grid, `[len(T), len(ρ)]` each."""
    teacher_val, last_val, y_val = (tf.constant(v) for v in validation)
    teacher_train, y_train = (tf.constant(v) for v in training)
    rhos = tf.constant(interpolations, tf.float32)

    @tf.function(reduce_retracing=True)
    def evaluate(temperature):
        p_teacher = _true_class_probability(teacher_val, y_val, temperature)
        p_last = _true_class_probability(last_val, y_val, temperature)
        mixed = rhos[:, None] * p_teacher + (1.0 - rhos[:, None]) * p_last
        nll = -tf.reduce_mean(tf.math.log(mixed + NLL_OFFSET), axis=1)

        probs = tf.nn.softmax(teacher_train / temperature)
        true_mask = tf.one_hot(y_train, tf.shape(probs)[-1]) > 0.5
        p_true = tf.reduce_sum(tf.where(true_mask, probs, 0.0), axis=-1)
        p_other = tf.reduce_max(tf.where(true_mask, -1.0, probs), axis=-1)
        # argmax(ρ·p + (1 − ρ)·onehot(y)) = y  ⇔  ρ·p_y + 1 − ρ > ρ·max_{k≠y} p_k
        top = rhos[:, None] * p_true + (1.0 - rhos[:, None]) > rhos[:, None] * p_other
        agreement = tf.reduce_mean(tf.cast(top, tf.float32), axis=1)
        return nll, agreement

    bar = (
        keras.utils.Progbar(len(temperatures), unit_name="temperature")
        if progress
        else None
    )
    nll = np.empty((len(temperatures), len(interpolations)))
    agreement = np.empty_like(nll)
    for i, temperature in enumerate(temperatures):
        values = evaluate(tf.constant(temperature, tf.float32))
        nll[i], agreement[i] = (v.numpy() for v in values)
        if bar is not None:
            bar.update(i + 1)
    if not np.all(np.isfinite(nll)):
        raise ValueError(
            "The models' logits give a non-finite NLL (NaN or infinite logits). "
            f"Received: {int(np.sum(~np.isfinite(nll)))} non-finite grid values"
        )
    return nll, agreement


def _true_class_probability(logits, labels, temperature):
    probs = tf.nn.softmax(logits / temperature)
    return tf.gather(probs, labels, axis=1, batch_dims=1)
