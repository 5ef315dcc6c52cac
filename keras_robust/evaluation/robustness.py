"""Robust accuracy under an attack ensemble, worst case per example."""

import json
import time
import warnings

import keras
import numpy as np

from keras_robust import backend
from keras_robust.attacks.base import (
    NORMS,
    Attack,
    predict_logits,
    warn_if_epsilon_is_suspicious,
)
from keras_robust.classification import numpy_class_indices
from keras_robust.evaluation.calibration import expected_calibration_error
from keras_robust.evaluation.checks import check_black_box, check_model
from keras_robust.validation import (
    validate_choice,
    validate_integer,
    validate_number,
    validate_value_range,
)


def standard_attacks(epsilon, norm="linf", value_range=(0.0, 1.0)):
    """AutoAttack's standard ensemble (without FAB-T) for `epsilon` and `norm`.

    APGD-CE and APGD-T (targeted DLR, 9 target classes), 100 steps each,
    then (L∞ only) the black-box Square attack with 5,000 queries.

    Returns:
        A list of `(name, attack)` pairs.
    """
    from keras_robust.attacks import APGD, Square

    attacks = [
        (
            "apgd-ce",
            APGD(epsilon=epsilon, norm=norm, loss="ce", value_range=value_range),
        ),
        (
            "apgd-t",
            APGD(
                epsilon=epsilon,
                norm=norm,
                loss="dlr",
                targeted=True,
                num_target_classes=9,
                value_range=value_range,
            ),
        ),
    ]
    if norm == "linf":
        attacks.append(
            ("square", Square(epsilon=epsilon, queries=5000, value_range=value_range))
        )
    return attacks


def _as_arrays(data):
    """`(x, y)` NumPy arrays from a `(x, y)` pair or a dataset of batches."""
    if isinstance(data, tuple | list) and len(data) == 2:
        return np.asarray(data[0], dtype="float32"), np.asarray(data[1])
    xs, ys = [], []
    try:
        batches = iter(data)
    except TypeError:
        batches = None
    if batches is None:
        raise ValueError(
            "Argument `data` must be a tuple `(x, y)` of arrays or an iterable "
            f"of `(x, y)` batches (e.g. a tf.data.Dataset). Received: data={data!r}"
        )
    for batch in batches:
        xs.append(keras.ops.convert_to_numpy(batch[0]))
        ys.append(keras.ops.convert_to_numpy(batch[1]))
    if not xs:
        raise ValueError("Argument `data` is empty. Received: data with no batches")
    return np.concatenate(xs).astype("float32"), np.concatenate(ys)


def _value_range(value_range, attacks):
    """The one value range of an evaluation (see `evaluate_robustness`)."""
    instances = []
    if not isinstance(attacks, str):
        for item in attacks:
            attack = item[1] if isinstance(item, tuple) else item
            if isinstance(attack, Attack):
                instances.append(attack)
    if value_range is None:
        ranges = {attack.value_range for attack in instances}
        if len(ranges) > 1:
            raise ValueError(
                "The attacks must share one `value_range`. Received: attacks "
                f"with value_range {sorted(ranges)}"
            )
        return ranges.pop() if ranges else (0.0, 1.0)
    value_range = validate_value_range(value_range)
    for attack in instances:
        if attack.value_range != value_range:
            raise ValueError(
                f"Argument `value_range`={value_range} differs from the "
                f"value_range of {attack!r}; pass value_range=None to use the "
                "attacks' own, or build the attacks with the same range. "
                f"Received: value_range={value_range}"
            )
    return value_range


def _named_attacks(attacks, epsilon, norm, value_range):
    """`[(name, attack)]` from the `attacks` argument of `evaluate_robustness`."""
    with warnings.catch_warnings():
        # evaluate_robustness warns about a suspicious ε once, itself.
        warnings.simplefilter("ignore", UserWarning)
        standard = dict(standard_attacks(epsilon, norm, value_range))
    if isinstance(attacks, str):
        if attacks != "standard":
            raise ValueError(
                "Argument `attacks` must be 'standard' or a list of attacks. "
                f"Received: attacks={attacks!r}"
            )
        return list(standard.items())
    named = []
    for item in attacks:
        name, attack = item if isinstance(item, tuple) else (None, item)
        if isinstance(attack, str):
            if attack not in standard:
                raise ValueError(
                    f"Attack names must be among {sorted(standard)} (for "
                    f"norm={norm!r}); other attacks are given as instances. "
                    f"Received: attacks containing {attack!r}"
                )
            name, attack = name or attack, standard[attack]
        if not isinstance(attack, Attack):
            raise ValueError(
                "Argument `attacks` must hold keras_robust.attacks attacks, "
                f"(name, attack) pairs or standard names. Received: {item!r}"
            )
        named.append((name or type(attack).__name__.lower(), attack))
    if not named:
        raise ValueError("Argument `attacks` is empty. Received: attacks=[]")
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        named = [(f"{name}-{i}", attack) for i, (name, attack) in enumerate(named)]
    return named


class RobustnessReport(dict):
    """The result of `evaluate_robustness`: a dict with a table and JSON.

    Keys: `clean_accuracy`, `robust_accuracy` (worst case over the attacks),
    `per_attack` (name → robust accuracy after that attack), `ece` (the
    expected calibration error of the clean logits, 15 bins), `num_examples`,
    `failed_checks` (names of failed sanity checks), `seconds`, `settings`.
    `robust_mask` (an attribute, not a key) holds the per-example result.
    """

    def to_json(self, path=None, indent=2):
        """The report as JSON text; also written to `path` if given."""
        text = json.dumps(self, indent=indent)
        if path is not None:
            with open(path, "w") as f:
                f.write(text + "\n")
        return text

    def table(self):
        """A readable Markdown table of the report."""
        settings = self["settings"]
        lines = [
            f"Robustness at {settings['norm']} epsilon={settings['epsilon']:.6g} "
            f"on {self['num_examples']} examples ({self['seconds']:.1f} s)",
            "",
            "| evaluation | accuracy |",
            "|---|---|",
            f"| clean | {self['clean_accuracy']:.4f} |",
        ]
        label = "after" if settings["sequential"] else "under"
        for name, accuracy in self["per_attack"].items():
            lines.append(f"| {label} {name} | {accuracy:.4f} |")
        lines.append(f"| **worst case** | **{self['robust_accuracy']:.4f}** |")
        if self.get("ece") is not None:
            lines.append(f"| ECE (clean) | {self['ece']:.4f} |")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def evaluate_robustness(
    model,
    data,
    epsilon,
    norm="linf",
    attacks="standard",
    *,
    batch_size=256,
    seed=0,
    value_range=None,
    sequential=True,
    checks=True,
    verbose=1,
):
    """Robust accuracy under an ensemble of attacks, worst case per example.

    An example counts as robust only if it is classified correctly and every
    attack fails on it. With `sequential=True` (as AutoAttack does) each
    attack runs only on the examples still robust after the previous ones,
    and `per_attack[name]` is the robust accuracy *after* that attack; with
    `sequential=False` every attack runs on every correctly classified
    example and `per_attack[name]` is the accuracy under that attack alone.

    Args:
        model: A Keras model mapping inputs in `value_range` to logits (for
            an `AdversarialModel`, its clean base model is what runs).
        data: `(x, y)` arrays or a dataset of `(x, y)` batches; labels sparse
            or one-hot.
        epsilon: Radius of the threat model, `>= 0`, in input units.
        norm: `"linf"` or `"l2"`.
        attacks: `"standard"` (APGD-CE, APGD-T and, for L∞, Square; see
            `standard_attacks`) or a list of attacks, of `(name, attack)`
            pairs, or of the names of the standard attacks (`"apgd-ce"`,
            `"apgd-t"`, `"square"`). Attacks given as instances keep their
            own ε.
        batch_size: Examples per compiled attack call, `>= 1`.
        seed: Seed of the attacks' random starts.
        value_range: `(low, high)` of valid inputs; `None` (default) takes
            it from the attack instances given (which must agree), else
            `(0, 1)`. One range for the whole evaluation: an attack with
            another range is an error.
        sequential: Attack only the examples still robust (default).
        checks: Run the sanity checks of `keras_robust.evaluation.check_model`
            (probabilities instead of logits, zero or non-finite gradients,
            randomness, accuracy at a large ε) and, in sequential mode, warn
            when a black-box attack breaks examples the white-box attacks
            left robust. Each failure warns with a `RobustnessWarning` and is
            listed under the report's `failed_checks`.
        verbose: 1 shows a progress bar, 0 is silent.

    Returns:
        A `RobustnessReport` (a dict; `.table()`, `.to_json()`).

    Raises:
        ValueError: For a bad argument or data.

    Example:

    ```python
    report = keras_robust.evaluation.evaluate_robustness(
        model, (x_test, y_test), epsilon=8 / 255
    )
    print(report.table())
    report["robust_accuracy"], report["per_attack"]["apgd-ce"]
    ```

    References:
        Croce & Hein, "Reliable evaluation of adversarial robustness with an
        ensemble of diverse parameter-free attacks", ICML 2020.
    """
    epsilon = validate_number("epsilon", epsilon, low=0.0)
    norm = validate_choice("norm", norm, NORMS)
    batch_size = validate_integer("batch_size", batch_size)
    base = getattr(model, "base_model", model)
    value_range = _value_range(value_range, attacks)
    warn_if_epsilon_is_suspicious(epsilon, norm, value_range)
    named = _named_attacks(attacks, epsilon, norm, value_range)

    start = time.perf_counter()
    x, y = _as_arrays(data)
    if len(x) != len(y):
        raise ValueError(
            "Argument `data` must hold one label per input. "
            f"Received: len(x)={len(x)}, len(y)={len(y)}"
        )
    if len(x) == 0:
        raise ValueError("Argument `data` holds no examples. Received: len(x)=0")
    backend.check_in_value_range(x, value_range, name="x")
    # One compiled size for every batch of the evaluation (on JAX: the
    # attacks run on fewer examples each; see backend.padded_batches).
    with backend.padded_batches(batch_size, len(x)):
        logits = predict_logits(base, x, batch_size)
        labels = numpy_class_indices(y, logits.shape[-1])
        backend.check_labels_in_range(labels, logits.shape[-1], name="y")
        correct = logits.argmax(axis=-1) == labels
        robust = correct.copy()
        per_attack = {}
        progress = keras.utils.Progbar(len(named), verbose=verbose, unit_name="attack")
        for index, (name, attack) in enumerate(named):
            candidates = np.flatnonzero(robust if sequential else correct)
            fooled = np.zeros(len(x), dtype=bool)
            if len(candidates):
                x_adv = attack(
                    base,
                    x[candidates],
                    labels[candidates],
                    batch_size=batch_size,
                    seed=seed + index,
                )
                adv_logits = predict_logits(base, x_adv, batch_size)
                fooled[candidates] = adv_logits.argmax(axis=-1) != labels[candidates]
            robust &= ~fooled
            survived = robust if sequential else correct & ~fooled
            per_attack[name] = float(survived.mean())
            progress.update(index + 1, [("robust_accuracy", float(robust.mean()))])

        failed_checks = []
        if checks:
            failed_checks = check_model(
                base,
                x,
                labels,
                epsilon=epsilon,
                norm=norm,
                value_range=value_range,
                seed=seed,
            )
            if sequential:
                kinds = {
                    name: getattr(attack, "black_box", False) for name, attack in named
                }
                white = [name for name, is_black in kinds.items() if not is_black]
                black = [name for name, is_black in kinds.items() if is_black]
                if check_black_box(per_attack, white, black):
                    failed_checks.append("black-box")

    with warnings.catch_warnings():
        if checks:
            # The checks above already warned about probabilities outputs.
            warnings.simplefilter("ignore", UserWarning)
        ece = expected_calibration_error(logits, labels)
    report = RobustnessReport(
        clean_accuracy=float(correct.mean()),
        robust_accuracy=float(robust.mean()),
        per_attack=per_attack,
        ece=ece,
        num_examples=int(len(x)),
        failed_checks=failed_checks,
        seconds=time.perf_counter() - start,
        settings={
            "epsilon": epsilon,
            "norm": norm,
            "value_range": list(value_range),
            "sequential": sequential,
            "batch_size": batch_size,
            "seed": seed,
            "attacks": {
                name: {"class": type(attack).__name__, **attack.get_config()}
                for name, attack in named
            },
        },
    )
    report.robust_mask = robust
    return report
