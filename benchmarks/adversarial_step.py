"""Step time of `AdversarialModel.fit` (PGD-10 AT) vs a hand-written loop.

Both sides train the same CNN from the same weights on the same synthetic
CIFAR-shaped batches and do the same math per step: a 10-step L∞ PGD
attack with the model in train mode, a cross-entropy SGD step on the
adversarial batch, and loss / accuracy / robust-accuracy metrics (with
`--clean-metrics`, one extra eval-mode forward pass on the clean batch for
the clean accuracy, as `AdversarialModel` does by default). The two sides
run interleaved (A B, B A, A B, ...) and the median of the per-round
ratios is reported, for graph mode and for XLA. Times are process CPU
time on a CPU (other load on a shared machine does not count), wall time
on a GPU. Each round of ours is one `fit()` call, whose fixed cost
(callbacks, the epoch's iterator; about 20 ms) is spread over its steps.

    python benchmarks/adversarial_step.py                 # CPU, 1 thread
    python benchmarks/adversarial_step.py --threads 0     # all cores
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from shared import small_cnn  # noqa: E402

import keras_robust as kr  # noqa: E402

EPSILON, STEP_SIZE, PGD_STEPS = 8 / 255, 2 / 255, 10


def synthetic_dataset(batch_size, num_batches, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(batch_size * num_batches, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=batch_size * num_batches).astype("int64")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).repeat()


def make_hand_loop(model, optimizer, jit_compile, clean_metrics):
    """The same training step written directly with tf.GradientTape."""
    loss_mean = keras.metrics.Mean()
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    robust = keras.metrics.Mean()

    def ce(y, logits):
        return tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)

    @tf.function(jit_compile=jit_compile)
    def step(x, y):
        x_adv = x + tf.random.uniform(tf.shape(x), -EPSILON, EPSILON)
        x_adv = tf.clip_by_value(x_adv, 0.0, 1.0)
        for _ in range(PGD_STEPS):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                attack_loss = tf.reduce_sum(ce(y, model(x_adv, training=True)))
            gradient = tape.gradient(attack_loss, x_adv)
            x_adv = x_adv + STEP_SIZE * tf.sign(gradient)
            x_adv = tf.clip_by_value(x_adv, x - EPSILON, x + EPSILON)
            x_adv = tf.clip_by_value(x_adv, 0.0, 1.0)
        x_adv = tf.stop_gradient(x_adv)
        with tf.GradientTape() as tape:
            logits = model(x_adv, training=True)
            loss = tf.reduce_mean(ce(y, logits))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(gradients, model.trainable_variables)
        clean_logits = model(x, training=False) if clean_metrics else logits
        loss_mean.update_state(loss)
        accuracy.update_state(y, clean_logits)
        robust.update_state(tf.cast(tf.argmax(logits, axis=-1) == y, "float32"))
        return loss_mean.result(), accuracy.result(), robust.result()

    return step


def clock():
    """Process CPU time on a CPU (robust to other load on a shared machine),
    wall time on a GPU (where the host mostly waits)."""
    if tf.config.list_physical_devices("GPU"):
        return time.perf_counter()
    return time.process_time()


def time_fit(model, dataset, steps, callbacks=None):
    start = clock()
    model.fit(
        dataset,
        epochs=1,
        steps_per_epoch=steps,
        verbose=0,
        shuffle=False,
        callbacks=callbacks,
    )
    return (clock() - start) / steps


def interleaved_fit_times(models, dataset, args, callbacks=None):
    """`{name: [seconds per step, a round each]}` of `time_fit` on each of
    `models` (`{name: model}`, each with `callbacks.get(name)`), traced
    first, then `args.rounds` rounds of `args.steps` steps in alternating
    order (A B, B A, ...)."""
    callbacks = callbacks or {}
    for name, model in models.items():
        time_fit(model, dataset, 2, callbacks.get(name))  # trace and compile
    times = {name: [] for name in models}
    names = list(models)
    for round_index in range(args.rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            times[name].append(
                time_fit(models[name], dataset, args.steps, callbacks.get(name))
            )
    return times


def comparison_arguments(description, rounds=12):
    """The command line of a two-sided step comparison, graph mode then
    XLA (`--no-xla`: graph mode only); sets TensorFlow's threads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-xla", action="store_true")
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    args.modes = (False,) if args.no_xla else (False, True)
    return args


def time_loop(step, iterator, steps):
    start = clock()
    for _ in range(steps):
        x, y = next(iterator)
        outputs = step(x, y)
    float(outputs[0])  # wait for the last step
    return (clock() - start) / steps


def run(jit_compile, clean_metrics, args):
    keras.utils.set_random_seed(0)
    base = small_cnn()
    hand_model = small_cnn()
    hand_model.set_weights(base.get_weights())
    dataset = synthetic_dataset(args.batch_size, 8)

    ours = kr.AdversarialModel(
        base,
        attack=kr.attacks.PGD(epsilon=EPSILON, step_size=STEP_SIZE, steps=PGD_STEPS),
        eval_attack=None,
        clean_metrics=clean_metrics,
    )
    ours.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=kr.losses.SoftTargetCrossentropy(),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    hand_optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    hand_step = make_hand_loop(hand_model, hand_optimizer, jit_compile, clean_metrics)
    iterator = iter(dataset)

    # Warm up: trace and compile both.
    time_fit(ours, dataset, 2)
    time_loop(hand_step, iterator, 2)

    ours_times, hand_times = [], []
    for round_index in range(args.rounds):
        # Alternate which side goes first (A B, B A, ...), so that a drift
        # of the machine's speed within a round favours neither side.
        if round_index % 2:
            hand_times.append(time_loop(hand_step, iterator, args.steps))
            ours_times.append(time_fit(ours, dataset, args.steps))
        else:
            ours_times.append(time_fit(ours, dataset, args.steps))
            hand_times.append(time_loop(hand_step, iterator, args.steps))
    ratios = [a / b for a, b in zip(ours_times, hand_times, strict=True)]
    return {
        "jit_compile": jit_compile,
        "clean_metrics": clean_metrics,
        "ours_ms_per_step": round(1000 * statistics.median(ours_times), 1),
        "hand_ms_per_step": round(1000 * statistics.median(hand_times), 1),
        # Median of the per-round ratios: each round times both sides back
        # to back, so a slow spell of the machine affects both.
        "ratio": round(statistics.median(ratios), 3),
        "ratios_per_round": [round(r, 3) for r in ratios],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument(
        "--threads", type=int, default=1, help="TF intra/inter-op threads (0: all)"
    )
    parser.add_argument("--no-xla", action="store_true", help="graph mode only")
    parser.add_argument("--xla-only", action="store_true", help="XLA only")
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    results = []
    modes = (False,) if args.no_xla else (True,) if args.xla_only else (False, True)
    for jit_compile in modes:
        for clean_metrics in (True, False):
            result = run(jit_compile, clean_metrics, args)
            print(json.dumps(result), flush=True)
            results.append(result)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(
        f"\n{device}, batch {args.batch_size}, threads "
        f"{args.threads or 'all'}, {args.rounds} rounds x {args.steps} steps"
    )
    print("| XLA | clean metrics | ours ms/step | hand loop ms/step | median ratio |")
    print("|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['jit_compile']} | {r['clean_metrics']} | {r['ours_ms_per_step']} "
            f"| {r['hand_ms_per_step']} | {r['ratio']} |"
        )


if __name__ == "__main__":
    main()
