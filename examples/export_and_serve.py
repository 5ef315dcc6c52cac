"""Export a robust model and serve it with TensorFlow alone.

Trains a small model on the embedded digits data with PGD adversarial
training (L∞, ε = 0.1 in [0, 1] pixel units) and an EMA teacher (the
weight average of the student), measures the teacher's clean and PGD-20
robust accuracy and its ECE, and exports the teacher in TF Serving's layout
(`OUTPUT/robust/1/`) with that report in its robustness card. A separate
Python process that cannot import keras_robust then loads the SavedModel
with `tf.saved_model.load`, serves the test images through the
`serving_default` signature, and the script checks that its logits and
probabilities match the in-memory teacher's. (Trained with
`keras_robust.losses.ADRLoss`, the card also records ADR's schedules.)

Takes about 30 s on 2 CPU cores (most of it starting TensorFlow twice);
with a fixed seed a rerun prints the same numbers.

    python examples/export_and_serve.py [--epochs 3] [--output DIR] [--seed 0]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import keras_robust as kr

# Runs in a fresh interpreter in which `import keras_robust` fails: the
# artifact needs TensorFlow only.
SERVE = r"""
import importlib.abc
import sys


class BlockKerasRobust(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "keras_robust":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, BlockKerasRobust())
try:
    import keras_robust
except ImportError:
    pass
else:
    raise SystemExit("keras_robust should not be importable here")

import numpy as np
import tensorflow as tf

folder, inputs, outputs = sys.argv[1:4]
model = tf.saved_model.load(folder)
result = model.signatures["serving_default"](images=tf.constant(np.load(inputs)))
np.savez(outputs, **{name: value.numpy() for name, value in result.items()})
print("served", len(np.load(inputs)), "images without keras_robust")
"""


def build_model(num_classes=10):
    """A small CNN for 8x8 images in [0, 1]; normalisation is its first layer."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            kr.layers.InputStandardization(mean=0.3, std=0.4),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(num_classes),
        ]
    )


def train(args, data):
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(args.seed)
    model = kr.AdversarialModel(
        build_model(),
        attack=kr.attacks.PGD(epsilon=args.epsilon, steps=5),
        eval_attack=None,
        seed=args.seed,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=kr.losses.SoftTargetCrossentropy(),
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=64,
        callbacks=[kr.callbacks.EMATeacher(0.9)],
        verbose=2,
    )
    return model


def serve_elsewhere(folder, x, workdir):
    """The outputs on `x` of the exported model, served without keras_robust."""
    inputs, outputs = workdir / "images.npy", workdir / "served.npz"
    np.save(inputs, x)
    result = subprocess.run(
        [sys.executable, "-I", "-c", SERVE, str(folder), str(inputs), str(outputs)],
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"Serving failed:\n{result.stderr[-3000:]}")
    print(result.stdout.strip(), flush=True)
    with np.load(outputs) as served:
        return {name: served[name] for name in served.files}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", default=None, help="folder for the export (default: a temp one)"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    data = kr.data.load_digits(seed=args.seed)
    x_test, y_test = data[1]

    print(f"PGD adversarial training for {args.epochs} epochs:", flush=True)
    model = train(args, data)

    print("Evaluating the EMA teacher (PGD-20):", flush=True)
    pgd20 = kr.attacks.PGD(epsilon=args.epsilon, steps=20)
    report = kr.evaluation.evaluate_robustness(
        model.teacher,
        (x_test, y_test),
        epsilon=args.epsilon,
        attacks=[("pgd-20", pgd20)],
        checks=False,
        seed=args.seed,
        verbose=0,
    )
    teacher_logits = model.teacher.predict(x_test, verbose=0)
    report["ece"] = kr.evaluation.expected_calibration_error(teacher_logits, y_test)

    with tempfile.TemporaryDirectory() as scratch:
        output = Path(args.output or scratch)
        path = model.export(
            output / "robust", serving_layout=True, report=report, overwrite=True
        )
        print(f"Exported the teacher to {path}", flush=True)
        card = kr.export.read_card(output / "robust")
        print("Robustness card:", json.dumps(card["robustness"]), flush=True)

        served = serve_elsewhere(path, x_test, Path(scratch))
    logits_error = float(np.max(np.abs(served["logits"] - teacher_logits)))
    probabilities = tf.nn.softmax(teacher_logits).numpy()
    probabilities_error = float(np.max(np.abs(served["probabilities"] - probabilities)))
    match = max(logits_error, probabilities_error) <= 1e-5
    print(
        f"Served outputs {'match' if match else 'DO NOT match'} the in-memory "
        f"teacher: max |difference| {logits_error:.2e} (logits), "
        f"{probabilities_error:.2e} (probabilities)"
    )
    print(
        f"clean {report['clean_accuracy']:.4f}, PGD-20 {report['robust_accuracy']:.4f}"
        f", ECE {report['ece']:.4f}; {time.perf_counter() - start:.0f} s in all"
    )
    if not match:
        raise SystemExit(1)
    return {
        "card": card,
        "logits_error": logits_error,
        "probabilities_error": probabilities_error,
        "served": served,
    }


if __name__ == "__main__":
    # With a fixed seed, a rerun prints the same numbers (CPU).
    tf.config.experimental.enable_op_determinism()
    main()
