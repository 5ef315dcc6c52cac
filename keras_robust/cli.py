"""The `keras-robust` command: train, evaluate, tune and export robust models.

    keras-robust train                 # ADR on the embedded digits, ~2 minutes
    keras-robust evaluate MODEL        # a .keras file or any SavedModel folder
    keras-robust tune                  # KerasTuner search of ADR's schedules
    keras-robust export MODEL.keras    # SavedModel or ONNX with its card

Every option is a flag or a key of a TOML file given with `--config FILE`
(flags win; keys are the flags' long names, with `-` or `_`; a table named
after the command, e.g. `[train]`, holds keys for that command only).
Relative paths in a config file resolve against the file's folder. Bad
options, config keys and values are one-line errors with exit code 2.

A run writes into its `--output` folder; a folder holding another run is
refused unless `--overwrite` is given, and only the files a run writes are
ever replaced. Rerunning an interrupted `train` with the same folder and
options resumes it from its last epoch, teacher and schedules included.
"""

import argparse
import contextlib
import csv
import fractions
import json
import math
import os
import shutil
import sys
import time
import tomllib
import warnings
from pathlib import Path

PROG = "keras-robust"
DATASETS = ("digits", "cifar10", "cifar100", "svhn", "mnist", "fashion_mnist")
METHODS = ("madry", "trades", "mart", "adr")
COMMANDS = ("train", "evaluate", "tune", "export")
RUN_FILE = "run.json"
# ADR's reference schedules: (temperature start, end), (interpolation start, end).
ADR_SCHEDULES = {"cifar100": ((1.5, 1.0), (0.7, 0.95))}
ADR_DEFAULT_SCHEDULE = ((2.5, 2.0), (0.7, 0.95))
# Files and folders `train` writes (and may replace with --overwrite).
TRAIN_OUTPUTS = (
    RUN_FILE,
    "backup",
    "logs",
    "plots",
    "export",
    "best.keras",
    "model.keras",
    "history.csv",
    "history.json",
    "report.json",
    "report.md",
)
EVALUATE_OUTPUTS = (RUN_FILE, "report.json", "report.md", "plots")
TUNE_OUTPUTS = (RUN_FILE, "tuner", "best_hyperparameters.json", "best.keras")


class UsageError(Exception):
    """A bad option, config key or value: printed as one line, exit code 2."""


# --------------------------------------------------------------------------
# Options


def number(text):
    """A number from the command line: `0.1`, `1e-3` or a fraction `8/255`."""
    if isinstance(text, bool):
        raise argparse.ArgumentTypeError(f"expected a number, received {text!r}")
    if isinstance(text, int | float):
        return float(text)
    try:
        if "/" in text:
            value = float(fractions.Fraction(text.replace(" ", "")))
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"expected a number such as 0.1 or 8/255, received {text!r}"
        ) from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, received {text!r}")
    return value


def value_range(text):
    """`low,high`, e.g. `0,1` or `0,255`."""
    if isinstance(text, list | tuple):
        parts = list(text)
    else:
        parts = str(text).split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(
            f"expected low,high such as 0,1, received {text!r}"
        )
    low, high = (number(part) for part in parts)
    if not low < high:
        raise argparse.ArgumentTypeError(f"expected low < high, received {text!r}")
    return (low, high)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are `UsageError`s (exit code 2)."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def _option(parser, flag, kind, default=None, help="", choices=None, **kwargs):
    """Adds `--flag` and records its kind for config-file checks."""
    dest = flag.lstrip("-").replace("-", "_")
    parser.kinds[dest] = (kind, choices)
    if kind == "bool":
        parser.add_argument(
            flag,
            dest=dest,
            action=argparse.BooleanOptionalAction,
            default=default,
            help=help,
        )
        return
    converters = {
        "int": int,
        "float": float,
        "number": number,
        "str": str,
        "path": str,
        "range": value_range,
    }
    parser.add_argument(
        flag,
        dest=dest,
        type=converters[kind],
        default=default,
        help=help,
        choices=choices,
        **kwargs,
    )


def _common(parser, command):
    parser.kinds = {}
    _option(parser, "--config", "path", help="TOML file with options (flags win)")
    _option(
        parser,
        "--output",
        "path",
        help=f"folder the run writes into (default: runs/{command}-...)",
    )
    _option(
        parser,
        "--overwrite",
        "bool",
        False,
        help="replace the files of another run in --output",
    )
    _option(parser, "--seed", "int", 0, help="seed of everything random")
    _option(parser, "--verbose", "bool", True, help="Keras progress bars")


def _data_options(parser):
    _option(
        parser,
        "--dataset",
        "str",
        "digits",
        choices=DATASETS,
        help="digits (embedded, offline) or a tfds dataset",
    )
    _option(parser, "--data-dir", "path", help="tfds data folder")
    _option(
        parser,
        "--mock-data",
        "bool",
        False,
        help="tfds's offline mock data (a smoke test of the pipeline)",
    )
    _option(parser, "--batch-size", "int", None, help="default 64 (digits), 128")
    _option(
        parser,
        "--epsilon",
        "number",
        None,
        help="L-inf/L2 radius in [0, 1] pixel units; 8/255 accepted "
        "(default 0.1 digits, 0.3 mnist, 8/255)",
    )
    _option(
        parser, "--norm", "str", "linf", choices=("linf", "l2"), help="threat model"
    )
    _option(
        parser,
        "--eval-samples",
        "int",
        None,
        help="test examples evaluated (default: all of digits, 1000)",
    )
    _option(
        parser,
        "--attacks",
        "str",
        "standard",
        help="'standard' (APGD-CE, APGD-T, Square) or a comma list of "
        "apgd-ce,apgd-t,square",
    )


def build_parser():
    parser = _Parser(
        prog=PROG,
        description="Robust training, evaluation, tuning and export with Keras.",
    )
    parser.add_argument("--version", action="store_true", help="print the version")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    train = commands.add_parser(
        "train",
        help="adversarial training (default: ADR on digits), evaluation, export",
        description="Adversarial training inside fit(), then the standard "
        "robustness evaluation on the test split and a SavedModel with its "
        "robustness card. With no arguments: ADR on the embedded digits "
        "data, about 2 minutes on 2 CPU cores.",
    )
    _common(train, "train")
    _data_options(train)
    _training_options(train, attack_steps=10, epochs_help="default 30 (digits), 200")
    _option(
        train,
        "--method",
        "str",
        "adr",
        choices=METHODS,
        help="madry (PGD-AT), trades, mart or adr (PGD-AT with ADR labels)",
    )
    _option(
        train, "--step-size", "number", None, help="PGD step (default 2.5 eps/steps)"
    )
    _option(train, "--beta", "float", None, help="TRADES/MART weight (default 6)")
    _option(train, "--ema-decay", "float", 0.995, help="ADR's EMA teacher decay")
    _option(train, "--export", "bool", True, help="export a SavedModel at the end")

    evaluate = commands.add_parser(
        "evaluate",
        help="robustness report of a .keras file or any SavedModel",
        description="AutoAttack-style evaluation (APGD-CE, APGD-T, Square; "
        "worst case per example) of a .keras model or of any SavedModel "
        "folder mapping images in --value-range to logits or probabilities. "
        "A SavedModel is a program: evaluate only models you trust.",
    )
    evaluate.add_argument("model", nargs="?", help=".keras file or SavedModel folder")
    _common(evaluate, "evaluate")
    _data_options(evaluate)
    evaluate.kinds["model"] = ("path", None)
    _option(
        evaluate,
        "--outputs",
        "str",
        "auto",
        choices=("auto", "logits", "probabilities"),
        help="what a SavedModel returns (auto: the 'logits' output of "
        "keras-robust exports, else logits)",
    )
    _option(
        evaluate,
        "--value-range",
        "range",
        None,
        help="input range of the model, e.g. 0,255 (default 0,1); images "
        "are scaled to it and --epsilon is in its units",
    )
    _option(
        evaluate,
        "--plots",
        "bool",
        True,
        help="robust accuracy against epsilon and the reliability diagram",
    )
    _option(
        evaluate,
        "--signature",
        "str",
        "serving_default",
        help="SavedModel signature to call",
    )
    _option(
        evaluate,
        "--weights",
        "str",
        None,
        choices=("teacher", "student"),
        help="for a .keras AdversarialModel (default: teacher if any)",
    )
    _option(
        evaluate,
        "--unsafe-deserialization",
        "bool",
        False,
        help="load .keras files with safe_mode=False, which runs the "
        "Python code of lambda layers in the file: only for files "
        "you trust",
    )

    tune = commands.add_parser(
        "tune",
        help="KerasTuner search of ADR's schedules (needs the tuning extra)",
        description="Random, Bayesian or Hyperband search of ADR's temperature "
        "and interpolation schedules and EMA decay (keras_robust.tuning."
        "HyperADR), maximising validation robust accuracy.",
    )
    _common(tune, "tune")
    _data_options(tune)
    _training_options(
        tune, attack_steps=5, epochs_help="epochs per trial (default 10 digits)"
    )
    _option(
        tune,
        "--tuner",
        "str",
        "random",
        choices=("random", "bayesian", "hyperband"),
        help="KerasTuner search algorithm",
    )
    _option(tune, "--max-trials", "int", 4, help="trials (random, bayesian)")

    export = commands.add_parser(
        "export",
        help="SavedModel or ONNX of a .keras model, with its robustness card",
        description="Exports a .keras model (an AdversarialModel's teacher by "
        "default) as a SavedModel (outputs logits and probabilities) or ONNX "
        "file, with the robustness card of its run's report.json if present.",
    )
    export.add_argument("model", nargs="?", help=".keras file")
    _common(export, "export")
    export.kinds["model"] = ("path", None)
    _option(
        export,
        "--format",
        "str",
        "tf_saved_model",
        choices=("tf_saved_model", "onnx"),
        help="artifact format",
    )
    _option(
        export,
        "--weights",
        "str",
        None,
        choices=("teacher", "student"),
        help="default: the teacher when the model has one",
    )
    _option(
        export,
        "--serving-layout",
        "bool",
        False,
        help="TF Serving's OUTPUT/<version>/ layout",
    )
    _option(
        export,
        "--report",
        "path",
        None,
        help="report.json to put in the card (default: beside MODEL)",
    )
    _option(
        export,
        "--unsafe-deserialization",
        "bool",
        False,
        help="load with safe_mode=False (runs code in the file)",
    )
    return parser


def _training_options(parser, attack_steps, epochs_help):
    """The model, optimisation and training-attack options of train and tune."""
    from keras_robust.models import MODELS

    _option(
        parser,
        "--model",
        "str",
        None,
        # wide_resnet needs depth and width: wrn34_10 is its named instance.
        choices=tuple(name for name in MODELS if name != "wide_resnet"),
        help="zoo model (default small_cnn for digits/mnist, "
        "preact_resnet18 otherwise)",
    )
    _option(parser, "--epochs", "int", None, help=epochs_help)
    _option(
        parser,
        "--optimizer",
        "str",
        None,
        choices=("adam", "sgd"),
        help="default adam for digits, SGD (momentum 0.9) otherwise",
    )
    _option(parser, "--learning-rate", "float", None, help="default 1e-3 adam, 0.1 sgd")
    _option(
        parser,
        "--weight-decay",
        "float",
        None,
        help="coupled L2 weight decay (default 0 digits, 5e-4)",
    )
    _option(
        parser,
        "--attack-steps",
        "int",
        attack_steps,
        help="PGD steps of the training attack",
    )
    _option(parser, "--label-noise", "float", None, help="symmetric label noise rate")


def _check_config_value(key, value, kind, choices, config_path):
    def bad(expected):
        return UsageError(
            f"{config_path}: key {key!r} must be {expected}. "
            f"Received: {key} = {value!r}"
        )

    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if kind in ("float", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise bad("a number")
        if isinstance(value, str) and kind == "float":
            raise bad("a number")
        try:
            return number(value)
        except argparse.ArgumentTypeError:
            raise bad('a number such as 0.1 or "8/255"') from None
    if kind == "range":
        try:
            return value_range(value)
        except (argparse.ArgumentTypeError, TypeError):
            raise bad("a pair [low, high] with low < high") from None
    if not isinstance(value, str):
        raise bad("a string")
    if choices is not None and value not in choices:
        raise bad(f"one of {', '.join(choices)}")
    if kind == "path":
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else Path(config_path).parent / path)
    return value


def _read_config(path, command, kinds):
    """The options of `command` in a TOML file, checked."""
    try:
        with open(path, "rb") as f:
            content = tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"config file is a folder: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: not valid TOML: {error}") from None
    items = {}
    for key, value in content.items():
        if isinstance(value, dict) and key in COMMANDS:
            if key == command:
                items.update(value)
            continue
        items[key] = value
    options = {}
    for key, value in items.items():
        dest = key.replace("-", "_")
        if dest not in kinds or dest == "config":
            known = ", ".join(
                sorted(k.replace("_", "-") for k in kinds if k != "config")
            )
            raise UsageError(
                f"{path}: unknown key {key!r} for `{PROG} {command}`. "
                f"Known keys: {known}"
            )
        kind, choices = kinds[dest]
        options[dest] = _check_config_value(key, value, kind, choices, path)
    return options


def parse_args(argv):
    """The parsed options of `argv`, config file included."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        if args.version:
            return args
        raise UsageError(
            f"{PROG}: a command is required: one of {', '.join(COMMANDS)} "
            f"(`{PROG} COMMAND --help` for its options)"
        )
    subparser = parser._subparsers._group_actions[0].choices[args.command]
    if args.config:
        defaults = _read_config(args.config, args.command, subparser.kinds)
        subparser.set_defaults(**defaults)
        args = parser.parse_args(argv)
    return args


# --------------------------------------------------------------------------
# Output folders


def _run_settings(args):
    """The options that define a run (a resumed run must repeat them)."""
    ignored = {"config", "output", "overwrite", "verbose", "version", "export"}
    return {k: v for k, v in sorted(vars(args).items()) if k not in ignored}


def prepare_output(args, default, outputs):
    """Creates or checks the output folder; returns `(path, resuming)`.

    A folder holding a run with other settings, or files of something
    else, is refused unless `--overwrite` is given; then only the files in
    `outputs` are removed, nothing else.
    """
    from keras_robust import __version__

    output = Path(args.output or default)
    settings = _run_settings(args)
    record = output / RUN_FILE
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} exists and is not a folder")
    resuming = False
    if record.exists():
        try:
            previous = json.loads(record.read_text())
        except (OSError, ValueError):
            previous = {}
        same = previous.get("settings") == json.loads(json.dumps(settings))
        if same and not args.overwrite:
            resuming = True
        elif not args.overwrite:
            changed = sorted(
                key
                for key in set(settings) | set(previous.get("settings", {}))
                if previous.get("settings", {}).get(key) != settings.get(key)
            )
            raise UsageError(
                f"--output {output} holds another run (different settings: "
                f"{', '.join(changed) or 'unreadable record'}); pass --overwrite "
                "to replace its files, or choose another --output"
            )
    elif output.exists() and any(output.iterdir()) and not args.overwrite:
        raise UsageError(
            f"--output {output} is not empty and holds no {PROG} run; pass "
            "--overwrite to write into it anyway, or choose another --output"
        )
    if args.overwrite and not resuming:
        for name in outputs:
            path = output / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    output.mkdir(parents=True, exist_ok=True)
    if not resuming:
        _write_json(
            record,
            {
                "command": args.command,
                "version": __version__,
                "settings": settings,
                "complete": False,
            },
        )
    return output, resuming


def _mark_complete(output, **extra):
    record = output / RUN_FILE
    content = json.loads(record.read_text())
    content.update(complete=True, **extra)
    _write_json(record, content)


def _write_json(path, content):
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# Data and models


def _dataset_defaults(args):
    """Fills the dataset-dependent defaults of `args` in place."""
    small = args.dataset in ("digits", "mnist", "fashion_mnist")
    if args.epsilon is None:
        args.epsilon = {"digits": 0.1, "mnist": 0.3, "fashion_mnist": 0.1}.get(
            args.dataset, 8 / 255
        )
    if args.batch_size is None:
        args.batch_size = 64 if args.dataset == "digits" else 128
    if args.eval_samples is None:
        args.eval_samples = 0 if args.dataset == "digits" else 1000
    if hasattr(args, "model") and args.command in ("train", "tune"):
        if args.model is None:
            args.model = "small_cnn" if small else "preact_resnet18"
        if args.optimizer is None:
            args.optimizer = "adam" if args.dataset == "digits" else "sgd"
        if args.learning_rate is None:
            args.learning_rate = 1e-3 if args.optimizer == "adam" else 0.1
        if args.weight_decay is None:
            args.weight_decay = 0.0 if args.dataset == "digits" else 5e-4
        if args.epochs is None:
            digits = {"train": 30, "tune": 10}[args.command]
            args.epochs = digits if args.dataset == "digits" else 200
    _check_positive(
        args, "batch_size", "eval_samples", "epochs", "max_trials", "attack_steps"
    )
    return args


def _check_threat_model(args):
    """Builds the training attack once, so bad values fail before any write."""
    import keras_robust as kr

    kr.attacks.PGD(
        epsilon=args.epsilon,
        steps=args.attack_steps,
        step_size=getattr(args, "step_size", None),
        norm=args.norm,
    )
    ema_decay = getattr(args, "ema_decay", None)
    if ema_decay is not None and not 0.0 <= ema_decay <= 1.0:
        raise UsageError(f"--ema-decay must be in [0, 1]. Received: {ema_decay}")
    if args.label_noise is not None and not 0.0 <= args.label_noise <= 1.0:
        raise UsageError(
            f"--label-noise must be in [0, 1]. Received: {args.label_noise}"
        )


def _check_positive(args, *names):
    for name in names:
        value = getattr(args, name, None)
        low = 0 if name == "eval_samples" else 1
        if value is not None and value < low:
            raise UsageError(
                f"--{name.replace('_', '-')} must be >= {low}. Received: {value}"
            )


@contextlib.contextmanager
def _data_context(args):
    if args.mock_data and args.dataset != "digits":
        import tensorflow_datasets as tfds

        with tfds.testing.mock_data(num_examples=max(4 * args.batch_size, 64)):
            yield
    else:
        yield


def load_data(args):
    """`(train, steps, (x_test, y_test), info)` for the run's dataset."""
    import numpy as np

    import keras_robust as kr

    if args.dataset == "digits":
        (x, y), (x_test, y_test) = kr.data.load_digits(seed=args.seed)
        if getattr(args, "label_noise", None):
            y, _ = kr.data.inject_label_noise(y, args.label_noise, seed=args.seed)
        mean = x.mean(axis=(0, 1, 2)).tolist()
        std = x.std(axis=(0, 1, 2)).tolist()
        train = (x, y)
        num_classes = 10
    else:
        name = kr.data.tfds.canonical_name(args.dataset)
        num_classes = kr.data.NUM_CLASSES[name]
        mean, std = kr.data.STATISTICS[name]
        train = kr.data.load_tfds(
            name,
            "train",
            batch_size=args.batch_size,
            training=True,
            seed=args.seed,
            data_dir=args.data_dir,
            label_noise=getattr(args, "label_noise", None),
            noise_seed=args.seed,
        )
        test = kr.data.load_tfds(
            name, "test", batch_size=args.batch_size, data_dir=args.data_dir
        )
        xs, ys, count = [], [], 0
        limit = args.eval_samples or math.inf
        for x_batch, y_batch in test:
            xs.append(x_batch.numpy())
            ys.append(y_batch.numpy())
            count += len(ys[-1])
            if count >= limit:
                break
        x_test, y_test = np.concatenate(xs), np.concatenate(ys)
    if args.eval_samples:
        x_test, y_test = x_test[: args.eval_samples], y_test[: args.eval_samples]
    info = {
        "num_classes": num_classes,
        "input_shape": tuple(int(d) for d in x_test.shape[1:]),
        "mean": mean,
        "std": std,
    }
    return train, (x_test, y_test), info


def _attack_list(args):
    if args.attacks == "standard":
        return "standard"
    names = [name.strip() for name in args.attacks.split(",") if name.strip()]
    known = ("apgd-ce", "apgd-t", "square")
    for name in names:
        if name not in known:
            raise UsageError(
                f"--attacks must be 'standard' or a comma list of "
                f"{', '.join(known)}. Received: {args.attacks!r}"
            )
    if not names:
        raise UsageError(f"--attacks names no attack. Received: {args.attacks!r}")
    return names


def _build_network(args, info):
    import keras_robust as kr

    kwargs = {
        "num_classes": info["num_classes"],
        "input_shape": info["input_shape"],
        "mean": info["mean"],
        "std": info["std"],
        "weight_decay": args.weight_decay,
    }
    return kr.models.get(args.model, **kwargs)


def _optimizer(args, steps_per_epoch):
    import keras

    if args.optimizer == "adam":
        return keras.optimizers.Adam(args.learning_rate)
    # The adversarial-training recipe: divide by 10 at 50% and 75% of training.
    boundaries = [
        max(1, int(args.epochs * 0.5)) * steps_per_epoch,
        max(2, int(args.epochs * 0.75)) * steps_per_epoch,
    ]
    rate = args.learning_rate
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [rate, rate / 10, rate / 100]
    )
    return keras.optimizers.SGD(schedule, momentum=0.9)


def _adr_loss(dataset):
    import keras_robust as kr

    (t0, t1), (r0, r1) = ADR_SCHEDULES.get(dataset, ADR_DEFAULT_SCHEDULE)
    return kr.losses.ADRLoss(
        temperature=kr.schedules.CosineAnnealing(t0, t1),
        interpolation=kr.schedules.CosineAnnealing(r0, r1),
    )


def build_model(args, info, steps_per_epoch):
    """The compiled `AdversarialModel` of a `train` run, and its callbacks."""
    import keras_robust as kr

    attack = kr.attacks.PGD(
        epsilon=args.epsilon,
        steps=args.attack_steps,
        step_size=args.step_size,
        norm=args.norm,
    )
    objective = "madry" if args.method in ("madry", "adr") else args.method
    model = kr.AdversarialModel(
        _build_network(args, info),
        attack=attack,
        objective=objective,
        beta=args.beta,
        seed=args.seed,
    )
    loss = (
        _adr_loss(args.dataset)
        if args.method == "adr"
        else kr.losses.SoftTargetCrossentropy()
    )
    model.compile(
        optimizer=_optimizer(args, steps_per_epoch), loss=loss, metrics=["accuracy"]
    )
    callbacks = (
        [kr.callbacks.EMATeacher(args.ema_decay)] if args.method == "adr" else []
    )
    return model, callbacks


# --------------------------------------------------------------------------
# Commands


def _say(text=""):
    print(text, flush=True)


def train(args):
    """`keras-robust train`: fit, evaluate, plot and export; returns the summary."""
    import keras

    import keras_robust as kr

    _dataset_defaults(args)
    _check_threat_model(args)
    default = f"runs/train-{args.dataset}-{args.method}"
    output, resuming = prepare_output(args, default, TRAIN_OUTPUTS)
    record = json.loads((output / RUN_FILE).read_text())
    if record.get("complete"):
        _say(f"{output} holds a complete run of these settings:")
        _say((output / "report.md").read_text())
        _say("Pass --overwrite to train again.")
        return record.get("summary", {})
    if resuming:
        _say(f"Resuming the run in {output} from its last completed epoch.")
    keras.utils.set_random_seed(args.seed)
    with _data_context(args):
        train_data, (x_test, y_test), info = load_data(args)
        if isinstance(train_data, tuple):
            x, y = train_data
            steps = math.ceil(len(x) / args.batch_size)
            fit_data = {"x": x, "y": y, "batch_size": args.batch_size}
        else:
            steps = int(train_data.cardinality())
            if steps < 1:
                raise UsageError(
                    f"the training split yields no full batch of --batch-size "
                    f"{args.batch_size}"
                )
            fit_data = {"x": train_data}
        model, callbacks = build_model(args, info, steps)
        callbacks += [
            keras.callbacks.BackupAndRestore(str(output / "backup")),
            keras.callbacks.ModelCheckpoint(
                str(output / "best.keras"),
                monitor="val_robust_accuracy",
                mode="max",
                save_best_only=True,
            ),
            keras.callbacks.CSVLogger(str(output / "history.csv"), append=True),
        ]
        if _has_module("tensorboard"):
            callbacks.append(
                keras.callbacks.TensorBoard(
                    str(output / "logs"), write_graph=False, profile_batch=0
                )
            )
        else:
            _say("(No TensorBoard logs: `pip install keras-robust[plots]`.)")
        _say(
            f"Training {args.model} on {args.dataset} with {args.method} "
            f"({args.norm} epsilon={args.epsilon:.6g}, PGD-{args.attack_steps}) "
            f"for {args.epochs} epochs -> {output}"
        )
        start = time.perf_counter()
        model.fit(
            **fit_data,
            epochs=args.epochs,
            validation_data=(x_test, y_test),
            callbacks=callbacks,
            verbose=2 if args.verbose else 0,
        )
        train_seconds = time.perf_counter() - start
    model.save(output / "model.keras")
    history = _history(output)
    _write_json(output / "history.json", history)

    network = model.teacher if model.teacher is not None else model.base_model
    weights = "teacher" if model.teacher is not None else "student"
    _say(f"\nEvaluating the {weights} on {len(x_test)} test examples:")
    report = kr.evaluation.evaluate_robustness(
        network,
        (x_test, y_test),
        epsilon=args.epsilon,
        norm=args.norm,
        attacks=_attack_list(args),
        seed=args.seed,
        verbose=1 if args.verbose else 0,
    )
    report["weights"] = weights
    _write_report(output, report)
    plots = _plots(output, network, x_test, y_test, args, history)
    exported = None
    if args.export:
        exported = kr.export.export_model(
            model, output / "export", report=report, overwrite=True
        )
    summary = {
        "clean_accuracy": report["clean_accuracy"],
        "robust_accuracy": report["robust_accuracy"],
        "ece": report["ece"],
        "weights": weights,
        "train_seconds": round(train_seconds, 1),
        "output": str(output),
        "model": str(output / "model.keras"),
        "report": str(output / "report.json"),
        "export": exported,
        "plots": plots,
    }
    _mark_complete(output, summary=summary)
    _print_summary(summary, report)
    return summary


def _has_module(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _history(output):
    """The per-epoch logs of the whole run (resumed parts included)."""
    path = output / "history.csv"
    rows = {}
    if path.exists():
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                # A resumed run repeats the epochs after the last backup: the
                # last line of an epoch wins.
                rows[int(row["epoch"])] = row
    history = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key == "epoch":
                continue
            history.setdefault(key, []).append(float(value) if value else None)
    return history


def _write_report(output, report):
    report.to_json(output / "report.json")
    (output / "report.md").write_text(report.table() + "\n")


def _plots(output, network, x, y, args, history=None, value_range=(0.0, 1.0)):
    """Training curves, robust accuracy against epsilon and the reliability
    diagram, if matplotlib is installed (the `plots` extra)."""
    if not _has_module("matplotlib"):
        _say("(No plots: `pip install keras-robust[plots]` installs matplotlib.)")
        return []
    import keras

    import keras_robust as kr

    folder = output / "plots"
    folder.mkdir(exist_ok=True)
    written = []
    if history:
        path = folder / "training_curves.png"
        kr.evaluation.plots.training_curves(history, path)
        written.append(str(path))
    subset = slice(0, min(len(x), 500))
    epsilons = [args.epsilon * f for f in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)]
    path = folder / "robustness_curve.png"

    def pgd20(epsilon):
        return kr.attacks.PGD(
            epsilon=epsilon,
            step_size=epsilon / 4,
            steps=20,
            norm=args.norm,
            value_range=value_range,
        )

    with warnings.catch_warnings():
        # 2 eps may exceed half the range: intended here.
        warnings.simplefilter("ignore", UserWarning)
        kr.evaluation.plots.robustness_curve(
            network, x[subset], y[subset], epsilons, path, attack=pgd20, seed=args.seed
        )
    written.append(str(path))
    logits = keras.ops.convert_to_numpy(network.predict(x, verbose=0))
    path = folder / "reliability_diagram.png"
    kr.evaluation.plots.reliability_diagram(logits, y, path)
    written.append(str(path))
    return written


def _print_summary(summary, report):
    _say("")
    _say(report.table())
    _say("")
    rows = [
        ("clean accuracy", f"{summary['clean_accuracy']:.4f}"),
        ("robust accuracy (worst case)", f"{summary['robust_accuracy']:.4f}"),
        ("ECE (clean)", f"{summary['ece']:.4f}"),
    ]
    if "train_seconds" in summary:
        rows.append(("training time", f"{summary['train_seconds']:.0f} s"))
    rows.append(("output folder", summary["output"]))
    for key in ("model", "report", "export"):
        if summary.get(key):
            rows.append((key, summary[key]))
    for path in summary.get("plots", []):
        rows.append(("plot", path))
    width = max(len(name) for name, _ in rows)
    _say("Summary")
    for name, value in rows:
        _say(f"  {name:<{width}}  {value}")


def _saved_model_dir(path):
    """The SavedModel folder at `path` or (TF Serving layout) its newest version."""
    if (path / "saved_model.pb").exists():
        return path
    versions = [
        child
        for child in path.iterdir()
        if child.is_dir()
        and child.name.isdigit()
        and (child / "saved_model.pb").exists()
    ]
    if not versions:
        raise UsageError(
            f"MODEL {path} is a folder without saved_model.pb (not a SavedModel)"
        )
    return max(versions, key=lambda child: int(child.name))


def _check_model_path(path):
    """Fails on a MODEL that cannot be one, before anything is written."""
    if not path.exists():
        raise UsageError(f"MODEL not found: {path}")
    if path.is_file() and path.suffix != ".keras":
        raise UsageError(
            f"MODEL must be a .keras file or a SavedModel folder. Received: {path}"
        )
    if path.is_dir():
        _saved_model_dir(path)


def load_classifier(args):
    """The model to evaluate, as a Keras model returning logits, and a note."""

    path = Path(args.model)
    if not path.exists():
        raise UsageError(f"MODEL not found: {path}")
    if path.is_file():
        if path.suffix != ".keras":
            raise UsageError(
                f"MODEL must be a .keras file or a SavedModel folder. Received: {path}"
            )
        return _load_keras(path, args), "logits"
    folder = _saved_model_dir(path)
    return _load_saved_model(folder, args)


def _load_keras(path, args):
    import keras

    import keras_robust as kr

    try:
        model = keras.saving.load_model(path, safe_mode=not args.unsafe_deserialization)
    except ValueError as error:
        if "safe_mode" in str(error) or "unsafe" in str(error).lower():
            raise UsageError(
                f"{path} holds code (e.g. a Lambda layer) that safe mode does "
                "not run; if you trust the file, pass --unsafe-deserialization"
            ) from None
        raise
    if isinstance(model, kr.AdversarialModel):
        weights = args.weights or (
            "teacher" if model.teacher is not None else "student"
        )
        if weights == "teacher":
            if model.teacher is None:
                raise UsageError(
                    f"--weights teacher: {path} has no teacher. Received: "
                    "--weights teacher"
                )
            return model.teacher
        return model.base_model
    if args.weights == "teacher":
        raise UsageError(f"--weights teacher: {path} is not an AdversarialModel")
    return model


def _load_saved_model(folder, args):
    import keras
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    signatures = dict(loaded.signatures)
    if args.signature not in signatures:
        raise UsageError(
            f"--signature {args.signature!r} is not a signature of {folder}; it "
            f"has: {', '.join(sorted(signatures)) or 'none'}"
        )
    function = signatures[args.signature]
    _, inputs = function.structured_input_signature
    if len(inputs) != 1:
        raise UsageError(
            f"the signature {args.signature!r} of {folder} takes {len(inputs)} "
            "inputs; evaluate needs one image input"
        )
    ((input_name, spec),) = inputs.items()
    outputs = function.structured_outputs
    if args.outputs == "auto":
        kind = "logits"
        output_name = "logits" if "logits" in outputs else None
    else:
        kind = args.outputs
        output_name = kind if kind in outputs else None
    if output_name is None:
        if len(outputs) != 1:
            raise UsageError(
                f"the signature {args.signature!r} of {folder} has outputs "
                f"{', '.join(sorted(outputs))}; name one with --outputs"
            )
        (output_name,) = outputs
    shape = tuple(spec.shape[1:])
    if any(d is None for d in shape):
        raise UsageError(
            f"the input {input_name!r} of {folder} has shape {spec.shape}: evaluate "
            "needs fixed image dimensions"
        )

    class SavedModelClassifier(keras.layers.Layer):
        def __init__(self):
            super().__init__(name="saved_model", trainable=False)
            # The signature's variables live as long as the loaded object.
            object.__setattr__(self, "_saved_model", loaded)

        def call(self, x):
            out = function(**{input_name: tf.cast(x, spec.dtype)})[output_name]
            out = tf.cast(out, tf.float32)
            if kind == "probabilities":
                # log p: the logits up to a per-example constant, which
                # changes no prediction, cross-entropy or DLR margin.
                out = tf.math.log(tf.maximum(out, 1e-30))
            return out

    images = keras.Input(shape, name="images")
    return keras.Model(images, SavedModelClassifier()(images)), kind


def evaluate(args):
    """`keras-robust evaluate MODEL`: the robustness report of a model."""
    import numpy as np

    import keras_robust as kr

    if not args.model:
        raise UsageError("evaluate needs MODEL, a .keras file or a SavedModel folder")
    _check_model_path(Path(args.model))
    card = _card_of(Path(args.model))
    if args.epsilon is None and card:
        attack = card.get("training", {}).get("attack") or {}
        if isinstance(attack.get("epsilon"), int | float):
            args.epsilon = float(attack["epsilon"])
            _say(f"epsilon={args.epsilon:.6g} from the model's robustness card")
    _dataset_defaults(args)
    name = Path(args.model).name.removesuffix(".keras")
    output, _ = prepare_output(
        args, f"runs/evaluate-{name}-{args.dataset}", EVALUATE_OUTPUTS
    )
    model, kind = load_classifier(args)
    with _data_context(args):
        _, (x_test, y_test), info = load_data(args)
    expected = tuple(model.input_shape[1:])
    if expected != info["input_shape"]:
        raise UsageError(
            f"MODEL takes inputs of shape {expected}, but --dataset "
            f"{args.dataset} has images of shape {info['input_shape']}"
        )
    low, high = args.value_range or (0.0, 1.0)
    x_test = (x_test * (high - low) + low).astype(np.float32)
    _say(
        f"Evaluating {args.model} ({kind}) on {len(x_test)} {args.dataset} test "
        f"examples, {args.norm} epsilon={args.epsilon:.6g}, inputs in "
        f"[{low:g}, {high:g}]"
    )
    report = kr.evaluation.evaluate_robustness(
        model,
        (x_test, y_test),
        epsilon=args.epsilon,
        norm=args.norm,
        attacks=_attack_list(args),
        seed=args.seed,
        value_range=(low, high),
        verbose=1 if args.verbose else 0,
    )
    report["model"] = str(args.model)
    report["outputs"] = kind
    _write_report(output, report)
    plots = []
    if args.plots:
        plots = _plots(output, model, x_test, y_test, args, value_range=(low, high))
    summary = {
        "clean_accuracy": report["clean_accuracy"],
        "robust_accuracy": report["robust_accuracy"],
        "ece": report["ece"],
        "output": str(output),
        "report": str(output / "report.json"),
        "plots": plots,
    }
    _mark_complete(output, summary=summary)
    _print_summary(summary, report)
    return summary


def _card_of(path):
    import keras_robust as kr

    if not path.is_dir():
        return None
    try:
        return kr.export.read_card(str(path))
    except (ValueError, OSError):
        return None


def export(args):
    """`keras-robust export MODEL.keras --output DIR`."""
    import keras_robust as kr

    if not args.model:
        raise UsageError("export needs MODEL, a .keras file")
    path = Path(args.model)
    if not path.is_file() or path.suffix != ".keras":
        raise UsageError(f"MODEL must be an existing .keras file. Received: {path}")
    import keras

    model = keras.saving.load_model(path, safe_mode=not args.unsafe_deserialization)
    report_path = Path(args.report) if args.report else path.parent / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    if args.report and report is None:
        raise UsageError(f"--report not found: {args.report}")
    suffix = ".onnx" if args.format == "onnx" else ""
    target = args.output or f"runs/export-{path.stem}{suffix}"
    written = kr.export.export_model(
        model,
        target,
        format=args.format,
        weights=args.weights,
        overwrite=args.overwrite,
        report=report,
        serving_layout=args.serving_layout,
    )
    _say(f"Exported {path} to {written}")
    return {"export": written}


def tune(args):
    """`keras-robust tune`: a KerasTuner search of ADR's schedules."""
    try:
        import keras_tuner as kt
    except ImportError:
        raise UsageError(
            "tune needs KerasTuner: pip install 'keras-robust[tuning]'"
        ) from None
    import keras

    import keras_robust as kr

    _dataset_defaults(args)
    _check_threat_model(args)
    output, _ = prepare_output(args, f"runs/tune-{args.dataset}", TUNE_OUTPUTS)
    keras.utils.set_random_seed(args.seed)
    with _data_context(args):
        train_data, validation, info = load_data(args)
        if isinstance(train_data, tuple):
            steps = math.ceil(len(train_data[0]) / args.batch_size)
            fit_data = {"x": train_data[0], "y": train_data[1]}
            fit_data["batch_size"] = args.batch_size
        else:
            steps = int(train_data.cardinality())
            fit_data = {"x": train_data}
        hypermodel = kr.tuning.HyperADR(
            lambda: _build_network(args, info),
            attack=kr.attacks.PGD(
                epsilon=args.epsilon, steps=args.attack_steps, norm=args.norm
            ),
            epochs=args.epochs,
            optimizer=lambda: _optimizer(args, steps),
        )
        common = {
            "objective": kr.tuning.robust_objective(),
            "directory": str(output),
            "project_name": "tuner",
            "seed": args.seed,
            "overwrite": False,
        }
        if args.tuner == "hyperband":
            tuner = kt.Hyperband(hypermodel, max_epochs=args.epochs, **common)
        elif args.tuner == "bayesian":
            tuner = kt.BayesianOptimization(
                hypermodel, max_trials=args.max_trials, **common
            )
        else:
            tuner = kt.RandomSearch(hypermodel, max_trials=args.max_trials, **common)
        search = {} if args.tuner == "hyperband" else {"epochs": args.epochs}
        tuner.search(
            **fit_data,
            validation_data=validation,
            verbose=2 if args.verbose else 0,
            **search,
        )
    best = tuner.get_best_hyperparameters(1)[0]
    _write_json(output / "best_hyperparameters.json", best.values)
    model = tuner.get_best_models(1)[0]
    if model.optimizer is not None and not model.optimizer.built:
        # A reloaded trial's optimizer has no state yet; build it so that
        # the saved file has the variables its optimizer expects.
        model.optimizer.build(model.trainable_variables)
    model.save(output / "best.keras")
    trial = tuner.oracle.get_best_trials(1)[0]
    summary = {
        "best_hyperparameters": best.values,
        "val_robust_accuracy": trial.score,
        "output": str(output),
        "model": str(output / "best.keras"),
    }
    _mark_complete(output, summary=summary)
    _say(f"\nBest trial {trial.trial_id}: val_robust_accuracy {trial.score:.4f}")
    for key, value in best.values.items():
        _say(f"  {key} = {value}")
    _say(f"Best model: {output / 'best.keras'}")
    return summary


def run(argv=None):
    """Runs the command of `argv`; returns its summary. Raises `UsageError`."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        from keras_robust import __version__

        _say(f"keras-robust {__version__}")
        return {}
    handler = {"train": train, "evaluate": evaluate, "tune": tune, "export": export}
    return handler[args.command](args)


def main(argv=None):
    """The console script: exit code 0, or 2 with a one-line error."""
    try:
        args_preview = sys.argv[1:] if argv is None else argv
        if not any(flag in args_preview for flag in ("-h", "--help", "--version")):
            import tensorflow as tf

            # Reruns print the same numbers (see the README).
            tf.config.experimental.enable_op_determinism()
        run(argv)
    except UsageError as error:
        message = str(error)
        if not message.startswith(PROG):
            message = f"{PROG}: error: {message}"
        print(message, file=sys.stderr)
        return 2
    except ValueError as error:
        # A value the library refused (e.g. --epsilon -1): its message names
        # the argument and the value received.
        if os.environ.get("KERAS_ROBUST_DEBUG"):
            raise
        print(f"{PROG}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
