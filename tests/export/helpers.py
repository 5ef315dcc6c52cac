"""Tiny models for the export tests."""

import os

import keras

import keras_robust as kr

INPUT_SHAPE = (8, 8, 1)


def base(seed=0, dtype=None):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu", dtype=dtype),
            keras.layers.Dense(10, dtype=dtype),
        ]
    )


def adr_model():
    """An AdversarialModel with a PGD attack, ADR schedules and an EMA teacher."""
    model = kr.AdversarialModel(
        base(),
        attack=kr.attacks.PGD(epsilon=0.1, steps=2),
        teacher=kr.training.EMA(0.9),
        seed=0,
    )
    model.compile(
        optimizer="adam",
        loss=kr.losses.ADRLoss(
            temperature=kr.schedules.CosineAnnealing(2.5, 2.0),
            interpolation=kr.schedules.LinearAnnealing(0.5, 0.9, total_steps=50),
        ),
    )
    # A teacher whose weights differ from the student's, as after training.
    model.teacher.set_weights([w + 0.05 for w in model.teacher.get_weights()])
    return model


def leftovers(folder):
    """Temporary siblings `.{name}.tmp-*` / `.{name}.old-*` in `folder`."""
    return [name for name in os.listdir(folder) if ".tmp-" in name or ".old-" in name]
