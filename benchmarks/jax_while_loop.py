"""Input-gradient steps on XLA:CPU: unrolled vs inside a while loop (JAX).

    KERAS_BACKEND=jax python benchmarks/jax_while_loop.py

Ten sign-gradient steps on one input, as an attack takes them, compiled by
`jax.jit` twice: unrolled at trace time and as a `jax.lax.fori_loop`
(an XLA while loop). The steps differentiate, in turn, one 3×3
convolution (NHWC, 64×32×32×16 → 16 channels), a 2×2 max pooling and a
ReLU, each through a squared-sum loss, and then the CNN of the step
benchmarks (its cross-entropy, train mode). Process CPU time on one core,
the median of 5 calls after a compiling one; one JSON line per case. This
is why attacks of up to `keras_robust.attacks.base.UNROLL_MAX_STEPS` steps
are unrolled (`benchmarks/NOTES.md`).
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from shared import small_cnn  # noqa: E402

STEPS = 10
CALLS = 5


def seconds(function, x):
    import jax

    jax.block_until_ready(function(x))
    times = []
    for _ in range(CALLS):
        start = time.process_time()
        jax.block_until_ready(function(x))
        times.append(time.process_time() - start)
    return statistics.median(times)


def compare(name, loss, x):
    import jax
    from jax import numpy as jnp

    gradient = jax.grad(loss)

    def body(_, z):
        return z + 1e-3 * jnp.sign(gradient(z))

    def unrolled(z):
        for i in range(STEPS):
            z = body(i, z)
        return z

    def while_loop(z):
        return jax.lax.fori_loop(0, STEPS, body, z)

    unrolled_s = seconds(jax.jit(unrolled), x)
    loop_s = seconds(jax.jit(while_loop), x)
    print(
        json.dumps(
            {
                "case": name,
                "steps": STEPS,
                "unrolled_ms": round(1000 * unrolled_s, 1),
                "while_loop_ms": round(1000 * loop_s, 1),
                "ratio": round(loop_s / unrolled_s, 2),
            }
        ),
        flush=True,
    )


def main():
    if keras.backend.backend() != "jax":
        raise SystemExit(
            "Run with KERAS_BACKEND=jax. "
            f"Received: Keras backend {keras.backend.backend()!r}"
        )
    import jax
    from jax import numpy as jnp

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(64, 32, 32, 16)).astype("float32"))
    kernel = jnp.asarray(0.1 * rng.uniform(size=(3, 3, 16, 16)).astype("float32"))

    def conv(z):
        return jax.lax.conv_general_dilated(
            z, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    def pool(z):
        return jax.lax.reduce_window(
            z, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"
        )

    for name, layer in (("conv", conv), ("max pool", pool), ("relu", jax.nn.relu)):
        compare(name, lambda z, layer=layer: jnp.sum(layer(z) ** 2), x)

    keras.utils.set_random_seed(0)
    model = small_cnn()
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    images = jnp.asarray(rng.uniform(size=(64, 32, 32, 3)).astype("float32"))
    labels = jnp.asarray(rng.integers(0, 10, size=64))

    def cnn_loss(z):
        logits, _ = model.stateless_call(trainable, non_trainable, z, training=True)
        log_probabilities = jax.nn.log_softmax(logits)
        return -jnp.sum(jnp.take_along_axis(log_probabilities, labels[:, None], 1))

    compare("CNN cross-entropy", cnn_loss, images)


if __name__ == "__main__":
    main()
