"""Step time of `AdversarialModel.fit` (PGD-10 AT) on JAX vs a hand-written
JAX step of the same math.

Run with Keras's JAX backend (a child process of `python -m benchmarks`,
its `overhead` section):

    KERAS_BACKEND=jax python benchmarks/jax_overhead.py --batch-size 64

Both sides train the CNN of the step benchmarks from the same weights on
the same batches and do the same math per step: a 10-step L∞ PGD attack
(ε 8/255, step 2/255, uniform random start) with the model in train mode,
so that each attack pass also updates BatchNormalization's moving
statistics; a cross-entropy SGD-with-momentum step on the adversarial
batch; and the running mean of the loss. The hand-written step is one
`jax.jit` function of the variables' values: `jax.grad` for the input
gradients, the attack's steps unrolled (as ours are, up to 20 steps),
`jax.value_and_grad` for the weights and the optimizer's
`stateless_apply`. The two sides run interleaved (A B, B A, ...) in this
process, pinned to one CPU core; one JSON line gives the median per-step
times and the median of the per-round ratios (process CPU time; wall time
on a GPU). Each round of ours is one `fit()` call, whose fixed cost is
spread over its steps.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from shared import EPSILON, STEP_SIZE, pgd10_at, small_cnn  # noqa: E402

PGD_STEPS = 10


def hand_step(model, optimizer):
    """The PGD-10 AT step written directly in JAX, jitted:
    `step(state, x, y) -> new state`, where `state` is `(trainable values,
    non-trainable values, optimizer values, random key, loss sum, count)`."""
    import jax
    from jax import numpy as jnp

    def cross_entropy(logits, y):
        log_probabilities = jax.nn.log_softmax(logits)
        return -jnp.take_along_axis(log_probabilities, y[:, None], axis=1)[:, 0]

    @jax.jit
    def step(state, x, y):
        trainable, non_trainable, optimizer_values, key, loss_sum, count = state
        key, start_key = jax.random.split(key)

        def attack_loss(x_adv, non_trainable):
            logits, non_trainable = model.stateless_call(
                trainable, non_trainable, x_adv, training=True
            )
            return jnp.sum(cross_entropy(logits, y)), non_trainable

        delta = jax.random.uniform(start_key, x.shape, minval=-EPSILON, maxval=EPSILON)
        x_adv = jnp.clip(x + delta, 0.0, 1.0)
        for _ in range(PGD_STEPS):
            gradient, non_trainable = jax.grad(attack_loss, has_aux=True)(
                x_adv, non_trainable
            )
            x_adv = x_adv + STEP_SIZE * jnp.sign(gradient)
            x_adv = jnp.clip(jnp.clip(x_adv, x - EPSILON, x + EPSILON), 0.0, 1.0)
        x_adv = jax.lax.stop_gradient(x_adv)

        def training_loss(trainable, non_trainable):
            logits, non_trainable = model.stateless_call(
                trainable, non_trainable, x_adv, training=True
            )
            return jnp.mean(cross_entropy(logits, y)), non_trainable

        (loss, non_trainable), gradients = jax.value_and_grad(
            training_loss, has_aux=True
        )(trainable, non_trainable)
        trainable, optimizer_values = optimizer.stateless_apply(
            optimizer_values, gradients, trainable
        )
        return (
            trainable,
            non_trainable,
            optimizer_values,
            key,
            loss_sum + loss,
            count + 1,
        )

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    if keras.backend.backend() != "jax":
        raise SystemExit(
            "Run with KERAS_BACKEND=jax. "
            f"Received: Keras backend {keras.backend.backend()!r}"
        )
    import jax

    gpu = jax.devices()[0].platform == "gpu"
    if not gpu and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    clock = time.perf_counter if gpu else time.process_time

    keras.utils.set_random_seed(0)
    base = small_cnn()
    hand_model = small_cnn()
    hand_model.set_weights(base.get_weights())
    ours = pgd10_at(base, jit_compile=True)
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(hand_model.trainable_variables)
    step = hand_step(hand_model, optimizer)

    batch = args.batch_size
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(batch * args.steps, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=batch * args.steps).astype("int32")
    state = (
        [v.value for v in hand_model.trainable_variables],
        [v.value for v in hand_model.non_trainable_variables],
        [v.value for v in optimizer.variables],
        jax.random.PRNGKey(0),
        # Arrays, not Python numbers: the step returns arrays, and a change
        # of type would retrace it in the first timed round.
        jax.numpy.zeros((), "float32"),
        jax.numpy.zeros((), "int32"),
    )

    def time_ours():
        start = clock()
        ours.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
        float(keras.ops.convert_to_numpy(ours.optimizer.iterations))  # sync
        return (clock() - start) / args.steps

    def time_hand():
        nonlocal state
        start = clock()
        for i in range(args.steps):
            state = step(
                state, x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch]
            )
        float(state[4])  # sync
        return (clock() - start) / args.steps

    # Trace and compile both.
    ours.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)
    time_hand()

    ours_times, hand_times = [], []
    for round_index in range(args.rounds):
        if round_index % 2:
            hand_times.append(time_hand())
            ours_times.append(time_ours())
        else:
            ours_times.append(time_ours())
            hand_times.append(time_hand())
    ratios = [a / b for a, b in zip(ours_times, hand_times, strict=True)]
    print(
        json.dumps(
            {
                "jax": jax.__version__,
                "device": jax.devices()[0].platform,
                "ours_ms_per_step": round(1000 * statistics.median(ours_times), 1),
                "hand_ms_per_step": round(1000 * statistics.median(hand_times), 1),
                "ratio": round(statistics.median(ratios), 3),
                "ratios_per_round": [round(r, 3) for r in ratios],
            }
        )
    )


if __name__ == "__main__":
    main()
