"""A KerasTuner random search over ADR's schedules on the digits data.

Searches the temperature and interpolation schedules and the EMA decay of
ADR (keras_robust.tuning.HyperADR) with L∞ PGD-10 adversarial training at
ε = 0.1, selects by validation PGD-10 robust accuracy, and prints every
trial and the best model's student and teacher accuracies.

    pip install -e ".[cpu,tuning]"
    python examples/tune_adr.py [--trials 4] [--epochs 10] [--seed 0]

About 70 s on 2 CPU cores with the defaults; KerasTuner prints each trial.
"""

import argparse
import tempfile

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

import keras_robust as kr
from keras_robust.tuning import HyperADR, robust_objective

NAMES = (
    "temperature_start",
    "temperature_end",
    "interpolation_start",
    "interpolation_end",
    "schedule",
    "ema_decay",
)


def build_model():
    """A small MLP for 8x8 images in [0, 1], outputting logits."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--directory", default=None, help="tuner directory")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = kr.data.load_digits(seed=args.seed)

    hypermodel = HyperADR(
        build_model,
        attack=kr.attacks.PGD(epsilon=args.epsilon, steps=10),
        epochs=args.epochs,
        optimizer=lambda: keras.optimizers.Adam(1e-3),
    )
    directory = args.directory or tempfile.mkdtemp(prefix="tune_adr_")
    tuner = kt.RandomSearch(
        hypermodel,
        objective=robust_objective(),
        max_trials=args.trials,
        directory=directory,
        project_name="adr_digits",
        seed=args.seed,
        overwrite=True,
    )
    tuner.search(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=64,
        validation_data=(x_test, y_test),
        verbose=0,
    )

    trials = sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)
    header = "trial  " + "  ".join(f"{n:>19}" for n in NAMES) + "  val_robust_acc"
    print(header)
    for trial in trials:
        values = trial.hyperparameters.values
        cells = "  ".join(
            f"{values[n]:>19}" if isinstance(values[n], str) else f"{values[n]:19.4f}"
            for n in NAMES
        )
        best = trial.metrics.get_best_value("val_robust_accuracy")
        print(f"{trial.trial_id:>5}  {cells}  {best:14.4f}")

    best_model = tuner.get_best_models(1)[0]
    results = {}
    attack = kr.attacks.PGD(epsilon=args.epsilon, steps=20)
    for name, model in (
        ("student", best_model.base_model),
        ("teacher", best_model.teacher),
    ):
        clean = np.mean(model.predict(x_test, verbose=0).argmax(-1) == y_test)
        x_adv = attack(model, x_test, y_test, seed=1)
        robust = np.mean(model.predict(x_adv, verbose=0).argmax(-1) == y_test)
        results[name] = {"clean": float(clean), "pgd20": float(robust)}
        print(f"best trial, {name}: clean {clean:.4f}, PGD-20 {robust:.4f}")
    return results


if __name__ == "__main__":
    # With a fixed seed, a rerun prints the same numbers (CPU).
    tf.config.experimental.enable_op_determinism()
    main()
