"""The XLA-friendly seeded draws equal Keras' own, in every execution mode."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_robust.backend import random

SHAPE = (4, 6, 6, 3)


@pytest.mark.parametrize("seed", [0, 7, 2**31 + 5])
@pytest.mark.parametrize("draw", ["uniform", "normal"])
def test_integer_seed_matches_keras(seed, draw):
    ours = getattr(random, draw)(SHAPE, seed=seed)
    expected = getattr(keras.random, draw)(SHAPE, seed=seed)
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("jit_compile", [None, False, True])
def test_seed_generator_matches_keras_and_advances(jit_compile):
    ours_generator = keras.random.SeedGenerator(3)
    keras_generator = keras.random.SeedGenerator(3)

    def ours():
        return random.uniform(SHAPE, -0.5, 0.5, seed=ours_generator), random.normal(
            SHAPE, stddev=2.0, seed=ours_generator
        )

    def reference():
        return keras.random.uniform(
            SHAPE, -0.5, 0.5, seed=keras_generator
        ), keras.random.normal(SHAPE, stddev=2.0, seed=keras_generator)

    if jit_compile is not None:
        ours = tf.function(ours, jit_compile=jit_compile)
        reference = tf.function(reference, jit_compile=jit_compile)
    first, second = ours(), ours()
    for got, expected in zip(first + second, reference() + reference(), strict=True):
        np.testing.assert_array_equal(got, expected)
    # The generator advances: two calls draw different values.
    assert not np.array_equal(first[0], second[0])
    uniform = np.asarray(first[0])
    assert uniform.min() >= -0.5 and uniform.max() < 0.5


def test_seed_none_draws_fresh_values():
    first = random.uniform(SHAPE, seed=None)
    second = random.uniform(SHAPE, seed=None)
    assert first.shape == SHAPE
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("seed", ["3", 1.5, True])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(ValueError, match=r"Argument `seed`.*Received: seed="):
        random.uniform(SHAPE, seed=seed)
