"""The XLA-friendly seeded draws equal Keras' own, in every execution mode."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_robust as kr
from keras_robust.backend import random

pytestmark = pytest.mark.tensorflow_only(
    reason="TensorFlow's backend module, in its execution modes; "
    "tests/backend/test_jax_backend.py tests JAX's"
)

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


@pytest.mark.parametrize(
    "attack",
    [
        kr.attacks.PGD(epsilon=0.1, steps=2),
        kr.attacks.PGD(epsilon=0.5, steps=2, norm="l2"),
        kr.attacks.APGD(epsilon=0.1, steps=2),
    ],
    ids=["pgd-linf", "pgd-l2", "apgd"],
)
def test_attack_random_start_avoids_the_slow_xla_sampler(attack):
    # `alg="auto_select"` reaches XLA through a key/counter conversion that
    # compiles to a slow loop fusion on CPU (keras_robust/backend/tensorflow/random.py);
    # the attacks must draw their random starts on explicit Philox instead.
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    seed = keras.random.SeedGenerator(0)
    x = tf.fill((4, 6), 0.5)
    y = tf.constant([0, 1, 2, 0])

    def run(x, y):
        return attack.perturb(model, x, y, seed=seed)

    hlo = tf.function(run, jit_compile=True).experimental_get_compiler_ir(x, y)(
        stage="hlo"
    )
    assert "rng-bit-generator" in hlo  # the random start is drawn
    assert "StatelessRandomGetKeyCounter" not in hlo
