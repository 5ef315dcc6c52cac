"""Export for deployment: SavedModel, ONNX and LiteRT, with a robustness card.

An exported model is the clean forward pass of one network (an
`AdversarialModel`'s EMA teacher or its student, or any Keras model) behind
one signature, `serving_default`:

- input `images`: float32, shape `(batch, *input_shape)` with a dynamic
  batch dimension, in the training attack's `value_range` (the model's own
  normalisation layers are part of the graph);
- outputs `logits` and `probabilities` (the softmax of the logits), both
  float32, also for a model trained under mixed precision.

No attack, teacher update or other training logic is traced: the artifact
loads and serves with TensorFlow alone (`tf.saved_model.load`,
`saved_model_cli`, TF Serving), without `keras_robust`.

The artifact carries a *robustness card*, the JSON file
`assets/keras_robust.json` of the SavedModel (for ONNX, the metadata entry
`keras_robust`): the library versions, the weights exported, the training
attack, objective and ADR schedules and, when a
`keras_robust.evaluation.RobustnessReport` is given, the measured clean and
worst-case robust accuracy. `read_card` reads it back.

Writes are atomic: the artifact is written into a temporary sibling of the
target, named `.{name}.tmp-{pid}-{random}`, and renamed into place, so that
a process killed during export leaves either no artifact or a complete one
at the target. Such leftovers of dead processes are removed by the next
export to the same target.
"""

import json
import math
import numbers
import os
import re
import secrets
import shutil
import tempfile
import warnings
from collections.abc import Mapping

import keras
import numpy as np

from keras_robust.losses.adr import ADRLoss
from keras_robust.models.adversarial_model import AdversarialModel
from keras_robust.validation import (
    validate_bool,
    validate_choice,
    validate_integer,
    validate_number,
)

FORMATS = ("tf_saved_model", "onnx")
WEIGHTS = ("teacher", "student")
CARD_NAME = "keras_robust.json"
CARD_VERSION = 1
INPUT_NAME = "images"
OUTPUT_NAMES = ("logits", "probabilities")
SIGNATURE_NAME = "serving_default"
ONNX_METADATA_KEY = "keras_robust"
DEFAULT_VERSION = 1

_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-[0-9a-f]{8}$")

__all__ = [
    "CARD_NAME",
    "FORMATS",
    "WEIGHTS",
    "export_model",
    "read_card",
    "to_tflite",
]


def export_model(
    model,
    filepath,
    format="tf_saved_model",
    *,
    weights=None,
    overwrite=False,
    report=None,
    serving_layout=False,
    version=None,
    opset_version=None,
    verbose=False,
):
    """Exports a classifier for serving, with its robustness card.

    The artifact serves one signature, `serving_default`: float32 `images`
    with a dynamic batch dimension (in the training `value_range`) to the
    float32 outputs `logits` and `probabilities` (softmax of the logits).
    It is the clean forward pass of one network in inference mode: for a
    `keras_robust.AdversarialModel`, its teacher or its student
    (`base_model`); for any other Keras model, the model itself.

    Every argument is checked before anything is written. The artifact is
    written into a temporary sibling folder (or file) and renamed into
    place; with `overwrite=True` an existing target is moved aside, the new
    one renamed in, then the old one deleted. A process killed during
    export leaves the target absent or complete, never partial.

    Args:
        model: A built Keras model mapping one input to one logit vector
            per example, e.g. a `keras_robust.AdversarialModel`.
        filepath: Where to write: a folder for `"tf_saved_model"` (the base
            folder with `serving_layout`), a file for `"onnx"`.
        format: `"tf_saved_model"` (default) or `"onnx"` (Keras's ONNX
            export; needs the `onnx` extra: `tf2onnx`, `onnx`).
        weights: `"teacher"`, `"student"` or `None` (default) for the
            teacher when the model has one, else the student.
        overwrite: Whether to replace an existing artifact at the target.
        report: Optional `keras_robust.evaluation.RobustnessReport` (or a
            dict with its keys) of the exported weights, copied into the
            card.
        serving_layout: Write TF Serving's layout, `filepath/<version>/`.
        version: The TF Serving version, an integer `>= 0`; implies
            `serving_layout`. Default 1.
        opset_version: With `format="onnx"`: the ONNX opset, or `None` for
            the converter's default.
        verbose: Print where the artifact was written.

    Returns:
        The path of the artifact (with `serving_layout`, the version
        folder) as a string.

    Raises:
        ValueError: For an invalid argument, an unbuilt model, `weights=
            "teacher"` for a model without a teacher, or an existing target
            without `overwrite=True`.
        ImportError: For `format="onnx"` without `tf2onnx` and `onnx`.

    Example:

    ```python
    path = keras_robust.export.export_model(
        model, "exported/robust", serving_layout=True, report=report
    )
    loaded = tf.saved_model.load(path)
    loaded.signatures["serving_default"](images=x)["probabilities"]
    keras_robust.export.read_card(path)["weights"]  # 'teacher'
    ```
    """
    plan = _plan(
        model,
        filepath,
        format,
        weights=weights,
        overwrite=overwrite,
        report=report,
        serving_layout=serving_layout,
        version=version,
        opset_version=opset_version,
    )
    verbose = validate_bool("verbose", verbose)
    serving = _serving_model(plan["network"], plan["input_shape"])
    card = _card(model, plan, serving)
    if plan["format"] == "tf_saved_model":
        with _atomic(plan["target"], plan["overwrite"], directory=True) as tmp:
            _write_saved_model(serving, plan["input_shape"], tmp)
            _write_card(card, os.path.join(tmp, "assets", CARD_NAME))
    else:
        with _atomic(plan["target"], plan["overwrite"], directory=False) as tmp:
            _write_onnx(serving, plan["input_shape"], tmp, card, opset_version)
    if verbose:
        print(f"Saved {plan['weights']} weights ({plan['format']}) at {plan['target']}")
    return plan["target"]


def read_card(path):
    """Reads the robustness card of an exported model.

    Args:
        path: A SavedModel folder written by `export_model`, a TF Serving
            base folder (the highest version holding a card is read) or one
            of its version folders, an ONNX file written by `export_model`
            (needs `onnx`), or the card's JSON file itself.

    Returns:
        The card, a dict: `card_version`, `format`, `versions`
        (`keras_robust`, `tensorflow`, `keras`), `weights` (`"teacher"` or
        `"student"`), `model`, `signature`, `value_range`, `attack`,
        `objective`, `teacher`, `adr`, `training_step` and `robustness`
        (`None` for what does not apply).

    Raises:
        ValueError: When `path` holds no card.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        if path.endswith(".json"):
            return _load_json(path)
        return _read_onnx_card(path)
    elif os.path.isdir(path):
        card = os.path.join(path, "assets", CARD_NAME)
        if os.path.isfile(card):
            return _load_json(card)
        for version in _versions(path):
            card = os.path.join(path, str(version), "assets", CARD_NAME)
            if os.path.isfile(card):
                return _load_json(card)
    raise ValueError(
        "Argument `path` must be a model exported by keras_robust (a "
        f"SavedModel folder with assets/{CARD_NAME}, a TF Serving base or "
        "version folder, or an ONNX file with a card). "
        f"Received: path={path!r}"
    )


def to_tflite(
    source,
    filepath,
    *,
    sample=None,
    atol=1e-4,
    weights=None,
    overwrite=False,
):
    """Converts an exported model to LiteRT (TFLite) and checks the result.

    The `serving_default` signature of the SavedModel is converted with
    `tf.lite.TFLiteConverter` (builtin float32 ops) and keeps its input
    `images` and outputs `logits` and `probabilities`.

    Accuracy check: before anything is written, the converted model runs
    in the LiteRT interpreter (`ai_edge_litert` when installed, else
    `tf.lite.Interpreter`) on a sample batch, and its `logits` and
    `probabilities` must equal those of the SavedModel element-wise within
    `atol` (`|litert - saved_model| <= atol`). The sample is `sample`, or 16
    inputs drawn uniformly from the card's `value_range` (`[0, 1]` when
    unknown) with a fixed seed. A larger difference raises `RuntimeError`.

    Args:
        source: A SavedModel folder written by `export_model` (a TF Serving
            base folder: its highest version), or a built Keras model,
            exported first with `export_model(model, ..., weights=weights)`
            into a temporary folder.
        filepath: The `.tflite` file to write.
        sample: Optional inputs `[N, *input_shape]` for the accuracy check.
        atol: Largest absolute difference accepted, `>= 0`.
        weights: With a Keras model as `source`: `"teacher"`, `"student"`
            or `None`, as in `export_model`.
        overwrite: Whether to replace an existing file.

    Returns:
        `filepath` as a string.

    Raises:
        ValueError: For an invalid argument or an existing file without
            `overwrite=True`.
        RuntimeError: When the converted model fails the accuracy check.
    """
    atol = validate_number("atol", atol, low=0.0)
    overwrite = validate_bool("overwrite", overwrite)
    target = _validate_filepath(filepath)
    _check_target(target, overwrite)
    if isinstance(source, keras.Model):
        with tempfile.TemporaryDirectory(prefix="keras_robust-tflite-") as folder:
            saved_model = export_model(
                source, os.path.join(folder, "saved_model"), weights=weights
            )
            return _to_tflite(saved_model, target, sample, atol, overwrite)
    if weights is not None:
        raise ValueError(
            "Argument `weights` applies to a Keras model `source`; an exported "
            f"model holds one set of weights. Received: weights={weights!r}"
        )
    return _to_tflite(_saved_model_folder(source), target, sample, atol, overwrite)


# --- checks --------------------------------------------------------------------


def _plan(
    model,
    filepath,
    format,
    *,
    weights,
    overwrite,
    report,
    serving_layout,
    version,
    opset_version,
):
    """Validates the arguments of `export_model`; what to write where."""
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Argument `model` must be a Keras model mapping inputs to logits. "
            f"Received: model={model!r}"
        )
    format = validate_choice("format", format, FORMATS)
    weights = validate_choice("weights", weights, WEIGHTS, allow_none=True)
    teacher = model.teacher if isinstance(model, AdversarialModel) else None
    if weights == "teacher" and teacher is None:
        raise ValueError(
            "Argument `weights`='teacher' needs a model with a teacher (an "
            "AdversarialModel trained with an EMA or fixed teacher). "
            f"Received: weights='teacher' for {model!r}, which has none"
        )
    if weights is None:
        weights = "student" if teacher is None else "teacher"
    if weights == "teacher":
        network = teacher
    else:
        network = model.base_model if isinstance(model, AdversarialModel) else model
    if not model.built or not network.built:
        raise ValueError(
            "Argument `model` must be built before export: call it on data, "
            "fit it, or call `model.build(input_shape)`. "
            f"Received: model={model!r} (not built)"
        )
    input_shape = _input_shape(model, network)
    overwrite = validate_bool("overwrite", overwrite)
    serving_layout = validate_bool("serving_layout", serving_layout)
    version = validate_integer("version", version, low=0, allow_none=True)
    if version is not None:
        serving_layout = True
    _validate_report(report)
    if format == "onnx":
        if serving_layout:
            raise ValueError(
                "Argument `serving_layout` (or `version`) applies to "
                "format='tf_saved_model', the layout of TF Serving. Received: "
                f"serving_layout={serving_layout}, version={version!r} with "
                "format='onnx'"
            )
        _require_onnx()
    elif opset_version is not None:
        raise ValueError(
            "Argument `opset_version` applies to format='onnx'. Received: "
            f"opset_version={opset_version!r} with format={format!r}"
        )
    if opset_version is not None:
        validate_integer("opset_version", opset_version)
    target = _validate_filepath(filepath)
    if serving_layout:
        if os.path.exists(target) and not os.path.isdir(target):
            raise ValueError(
                "Argument `filepath` must be a folder (TF Serving's base "
                f"folder) with `serving_layout`. Received: filepath={filepath!r}, "
                "an existing file"
            )
        target = os.path.join(
            target, str(DEFAULT_VERSION if version is None else version)
        )
    _check_target(target, overwrite)
    return {
        "format": format,
        "weights": weights,
        "network": network,
        "input_shape": input_shape,
        "overwrite": overwrite,
        "report": report,
        "target": target,
    }


def _validate_filepath(filepath):
    if not isinstance(filepath, str | os.PathLike) or not os.fspath(filepath):
        raise ValueError(
            "Argument `filepath` must be a path (str or os.PathLike). "
            f"Received: filepath={filepath!r}"
        )
    return os.path.abspath(os.fspath(filepath))


def _check_target(target, overwrite):
    if os.path.lexists(target) and not overwrite:
        raise ValueError(
            "Argument `filepath` names an existing artifact; pass overwrite=True "
            f"to replace it. Received: filepath={target!r}, overwrite=False"
        )


def _input_shape(model, network):
    """The input shape `(None, ...)` of `network`, from its inputs or build."""
    for candidate in (network, model):
        try:
            inputs = candidate.inputs
        except (AttributeError, ValueError):
            inputs = None
        if inputs:
            if len(inputs) != 1:
                raise ValueError(
                    "Argument `model` must take a single input of images. "
                    f"Received: model={model!r} with {len(inputs)} inputs"
                )
            return (None, *tuple(inputs[0].shape)[1:])
    for candidate in (network, model):
        shape = (candidate.get_build_config() or {}).get("input_shape")
        if isinstance(shape, list | tuple) and len(shape) >= 2:
            if all(d is None or isinstance(d, int) for d in shape):
                return (None, *tuple(shape)[1:])
    raise ValueError(
        "Argument `model` has no known input shape; build it with "
        "`keras.Input(...)` or `model.build(input_shape)`. "
        f"Received: model={model!r}"
    )


def _validate_report(report):
    if report is None:
        return
    ok = isinstance(report, Mapping)
    for key in ("clean_accuracy", "robust_accuracy"):
        ok = ok and _is_fraction(report.get(key))
    per_attack = report.get("per_attack", {}) if ok else None
    ok = ok and isinstance(per_attack, Mapping)
    if not ok:
        raise ValueError(
            "Argument `report` must be a keras_robust.evaluation."
            "RobustnessReport (or a dict with `clean_accuracy` and "
            "`robust_accuracy` in [0, 1]) or None. "
            f"Received: report={report!r}"
        )


def _is_fraction(value):
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and 0.0 <= float(value) <= 1.0
    )


def _require_onnx():
    missing = []
    for module in ("tf2onnx", "onnx"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImportError(
            f"format='onnx' needs {' and '.join(missing)}: "
            "`pip install keras-robust[onnx]`."
        )


# --- the serving graph ----------------------------------------------------------


def _serving_model(network, input_shape):
    """`images` -> `{"logits", "probabilities"}`, float32, around `network`."""
    images = keras.Input(shape=input_shape[1:], dtype="float32", name=INPUT_NAME)
    logits = network(images, training=False)
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
    probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(logits)
    return keras.Model(
        images,
        {"logits": logits, "probabilities": probabilities},
        name=f"{network.name}_serving",
    )


def _write_saved_model(serving, input_shape, folder):
    archive = keras.export.ExportArchive()
    archive.track(serving)
    archive.add_endpoint(
        "serve",
        lambda images: serving(images, training=False),
        input_signature=[
            keras.InputSpec(shape=input_shape, dtype="float32", name=INPUT_NAME)
        ],
    )
    archive.write_out(folder, verbose=False)


def _write_onnx(serving, input_shape, path, card, opset_version):
    import onnx

    # Keras exports a model to ONNX once it has been called.
    serving(np.zeros((1, *input_shape[1:]), dtype="float32"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        serving.export(path, format="onnx", verbose=False, opset_version=opset_version)
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = json.dumps(card)
    onnx.save(proto, path)


# --- the card ----------------------------------------------------------------


def _card(model, plan, serving):
    import tensorflow as tf

    import keras_robust

    is_adversarial = isinstance(model, AdversarialModel)
    attack = model.attack if is_adversarial else None
    report = plan["report"]
    value_range = None
    if attack is not None:
        value_range = list(attack.value_range)
    elif report is not None and "value_range" in report.get("settings", {}):
        value_range = list(report["settings"]["value_range"])
    num_classes = serving.outputs[0].shape[-1] if serving.outputs else None
    output_spec = {"shape": [None, num_classes], "dtype": "float32"}
    card = {
        "card_version": CARD_VERSION,
        "format": plan["format"],
        "versions": {
            "keras_robust": keras_robust.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "weights": plan["weights"],
        "model": {
            "class": type(model).__name__,
            "name": model.name,
            "network": plan["network"].name,
        },
        "signature": {
            "name": SIGNATURE_NAME,
            "inputs": {
                INPUT_NAME: {"shape": list(plan["input_shape"]), "dtype": "float32"}
            },
            "outputs": {name: dict(output_spec) for name in OUTPUT_NAMES},
        },
        "value_range": value_range,
        "attack": None if attack is None else _described(attack),
        "objective": None,
        "teacher": None,
        "adr": None,
        "training_step": None,
        "robustness": None if report is None else _robustness(report),
    }
    if is_adversarial:
        objective = model.objective
        card["objective"] = {"name": objective.name, **_described(objective)}
        role = model.teacher_role
        if role is not None:
            card["teacher"] = {"class": type(role).__name__}
            if getattr(role, "decay", None) is not None:
                card["teacher"]["decay"] = float(keras.ops.convert_to_numpy(role.decay))
        card["training_step"] = int(keras.ops.convert_to_numpy(model.training_step))
        loss = getattr(model, "loss", None)
        if isinstance(loss, ADRLoss):
            card["adr"] = {
                "loss": type(loss).__name__,
                "temperature": _described(loss.temperature),
                "interpolation": _described(loss.interpolation),
                "schedule_horizon": float(
                    keras.ops.convert_to_numpy(model.schedule_horizon)
                ),
            }
    return json.loads(json.dumps(card, default=_plain))


def _described(obj):
    return {"class": type(obj).__name__, **obj.get_config()}


def _robustness(report):
    settings = report.get("settings", {}) or {}
    robustness = {
        "clean_accuracy": float(report["clean_accuracy"]),
        "robust_accuracy": float(report["robust_accuracy"]),
        "per_attack": {
            str(name): float(value)
            for name, value in report.get("per_attack", {}).items()
        },
        "epsilon": settings.get("epsilon", report.get("epsilon")),
        "norm": settings.get("norm", report.get("norm")),
        "num_examples": report.get("num_examples"),
        "failed_checks": list(report.get("failed_checks", [])),
    }
    ece = _ece(report)
    if ece is not None:
        robustness["ece"] = ece
    return robustness


def _ece(report):
    for source in (report, report.get("calibration")):
        if isinstance(source, Mapping):
            for key in ("ece", "expected_calibration_error"):
                value = source.get(key)
                if isinstance(value, numbers.Real) and math.isfinite(value):
                    return float(value)
    return None


def _plain(value):
    """JSON form of values `json` does not know (NumPy scalars, tuples...)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return repr(value)


def _write_card(card, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2, sort_keys=True)
        f.write("\n")


def _load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_onnx_card(path):
    try:
        import onnx
    except ImportError as error:
        raise ImportError(
            "Reading the card of an ONNX file needs onnx: "
            "`pip install keras-robust[onnx]`."
        ) from error
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as error:
        raise ValueError(
            "Argument `path` must be a model exported by keras_robust. "
            f"Received: path={path!r}, which is not an ONNX model"
        ) from error
    for entry in proto.metadata_props:
        if entry.key == ONNX_METADATA_KEY:
            return json.loads(entry.value)
    raise ValueError(
        "Argument `path` must be a model exported by keras_robust. "
        f"Received: path={path!r}, an ONNX model without a card"
    )


def _versions(folder):
    """The integer-named subfolders of a TF Serving base folder, newest first."""
    names = [n for n in os.listdir(folder) if n.isdigit()]
    return sorted((int(n) for n in names), reverse=True)


# --- atomic writes ----------------------------------------------------------------


class _atomic:
    """Writes into a temporary sibling of `target`, then renames it in place.

    On success the temporary folder (or file) replaces `target`; on any
    exception it is removed and `target` is untouched.
    """

    def __init__(self, target, overwrite, directory):
        self.target = target
        self.overwrite = overwrite
        self.directory = directory

    def __enter__(self):
        parent, name = os.path.split(self.target)
        os.makedirs(parent, exist_ok=True)
        _remove_leftovers(parent, name)
        self.tmp = os.path.join(parent, _sibling_name(name, "tmp"))
        if self.directory:
            os.mkdir(self.tmp)
        return self.tmp

    def __exit__(self, kind, value, traceback):
        if kind is None:
            try:
                _move_into_place(self.tmp, self.target, self.overwrite)
            except BaseException:
                _remove(self.tmp)
                raise
        else:
            _remove(self.tmp)
        return False


def _sibling_name(name, kind):
    return f".{name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _move_into_place(tmp, target, overwrite):
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return
    _check_target(target, overwrite)
    if os.path.isfile(tmp) and os.path.isfile(target):
        os.replace(tmp, target)
        return
    parent, name = os.path.split(target)
    old = os.path.join(parent, _sibling_name(name, "old"))
    os.rename(target, old)
    os.rename(tmp, target)
    _remove(old)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.remove(path)
        except OSError:
            pass


def _remove_leftovers(parent, name):
    """Removes the temporary siblings of `name` left by dead processes."""
    for entry in os.listdir(parent):
        match = _LEFTOVER.match(entry)
        if match and match["name"] == name and not _alive(int(match["pid"])):
            _remove(os.path.join(parent, entry))


def _alive(pid):
    if pid == os.getpid():
        return False
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


# --- LiteRT --------------------------------------------------------------------


def _saved_model_folder(source):
    if isinstance(source, str | os.PathLike) and os.path.isdir(source):
        folder = os.fspath(source)
        if os.path.isfile(os.path.join(folder, "saved_model.pb")):
            return folder
        for version in _versions(folder):
            candidate = os.path.join(folder, str(version))
            if os.path.isfile(os.path.join(candidate, "saved_model.pb")):
                return candidate
    raise ValueError(
        "Argument `source` must be a SavedModel folder written by "
        "keras_robust.export.export_model (or a TF Serving base folder), or a "
        f"built Keras model. Received: source={source!r}"
    )


def _to_tflite(saved_model, target, sample, atol, overwrite):
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model)
    signature = loaded.signatures[SIGNATURE_NAME]
    spec = signature.structured_input_signature[1][INPUT_NAME]
    sample = _sample(sample, tuple(spec.shape), saved_model)
    expected = {k: v.numpy() for k, v in signature(**{INPUT_NAME: sample}).items()}

    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model, signature_keys=[SIGNATURE_NAME]
    )
    content = converter.convert()
    runner = _litert_interpreter(content).get_signature_runner(SIGNATURE_NAME)
    got = runner(**{INPUT_NAME: sample})
    for name in OUTPUT_NAMES:
        difference = float(np.max(np.abs(got[name] - expected[name])))
        if not difference <= atol:
            raise RuntimeError(
                f"The LiteRT model's `{name}` differ from the SavedModel's by "
                f"up to {difference:.3g} on the sample batch, more than "
                f"atol={atol}; nothing was written to {target!r}."
            )
    with _atomic(target, overwrite, directory=False) as tmp:
        with open(tmp, "wb") as f:
            f.write(content)
    return target


def _sample(sample, shape, saved_model):
    if sample is None:
        card_path = os.path.join(saved_model, "assets", CARD_NAME)
        low, high = 0.0, 1.0
        if os.path.isfile(card_path):
            low, high = _load_json(card_path).get("value_range") or (low, high)
        rng = np.random.default_rng(0)
        return rng.uniform(low, high, size=(16, *shape[1:])).astype("float32")
    array = np.asarray(sample, dtype="float32")
    if array.ndim != len(shape) or any(
        d is not None and d != a
        for d, a in zip(shape[1:], array.shape[1:], strict=True)
    ):
        raise ValueError(
            f"Argument `sample` must have shape (N, {', '.join(map(str, shape[1:]))}) "
            f"like the model's input. Received: sample with shape {array.shape}"
        )
    return array


def _litert_interpreter(content):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Interpreter(model_content=content)
