"""One process of a distributed HyperADR search (chief or worker).

Run by tests/tuning/test_distributed.py with KerasTuner's environment
variables (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`,
`KERASTUNER_ORACLE_PORT`); the argument is the shared tuner directory.
"""

import os
import sys

import keras
import keras_tuner as kt

import keras_robust as kr
from keras_robust.tuning import HyperADR, robust_objective


class RecordWorker(keras.callbacks.Callback):
    """Writes which tuner process ran a trial."""

    def __init__(self, directory):
        super().__init__()
        self.directory = directory

    def on_train_begin(self, logs=None):
        name = f"ran-{os.environ['KERASTUNER_TUNER_ID']}-{os.getpid()}"
        with open(os.path.join(self.directory, name), "a") as f:
            f.write("trial\n")


def base_model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def main(directory):
    keras.utils.set_random_seed(0)
    (x, y), (x_test, y_test) = kr.data.load_digits()
    tuner = kt.RandomSearch(
        HyperADR(
            base_model,
            attack=kr.attacks.PGD(0.1, steps=1),
            eval_attack=kr.attacks.PGD(0.1, steps=1),
            optimizer=lambda: keras.optimizers.Adam(3e-3),
        ),
        objective=robust_objective(),
        max_trials=2,
        directory=directory,
        project_name="distributed",
        seed=0,
    )
    tuner.search(
        x[:256],
        y[:256],
        epochs=1,
        batch_size=64,
        validation_data=(x_test[:64], y_test[:64]),
        callbacks=[RecordWorker(directory)],
        verbose=0,
    )


if __name__ == "__main__":
    main(sys.argv[1])
