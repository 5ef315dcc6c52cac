"""Throughput of APGD-CE (images/s) on a small CIFAR-shaped CNN.

Times `APGD.perturb` compiled in graph mode on synthetic 32x32x3 batches in
[0, 1] (L∞ ε = 8/255, 100 steps, eval mode, labels set to the model's clean
predictions so that every example is attacked), next to PGD with the same
number of steps as a baseline for the per-step cost. The two run
interleaved (A B A B ...) and the median time per batch is reported.

    python benchmarks/apgd_throughput.py                 # CPU, 1 thread
    python benchmarks/apgd_throughput.py --threads 0     # all cores
"""

import argparse
import json
import statistics
import time

import keras
import numpy as np
import tensorflow as tf
from adversarial_step import EPSILON, small_cnn

import keras_robust as kr


def compiled_attacks(model, steps):
    """`{name: fn(x, y)}` for APGD-CE and the PGD baseline, graph mode."""
    seed = keras.random.SeedGenerator(0)

    def model_fn(inputs):
        return keras.ops.cast(model(inputs, training=False), "float32")

    apgd = kr.attacks.APGD(epsilon=EPSILON, steps=steps, loss="ce")
    pgd = kr.attacks.PGD(epsilon=EPSILON, step_size=EPSILON / 4, steps=steps)
    return {
        "APGD-CE": tf.function(lambda x, y: apgd.perturb(model_fn, x, y, seed=seed)),
        "PGD": tf.function(lambda x, y: pgd.perturb(model_fn, x, y, seed=seed)),
    }


def time_batch(fn, x, y):
    start = time.perf_counter()
    fn(x, y).numpy()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100, help="attack steps")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=1, help="TF intra/inter-op threads (0: all)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="APGD-CE only")
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    keras.utils.set_random_seed(0)
    model = small_cnn()
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(size=(args.batch_size, 32, 32, 3)).astype("float32"))
    y = tf.argmax(model(x, training=False), axis=-1)
    attacks = compiled_attacks(model, args.steps)
    if args.no_baseline:
        del attacks["PGD"]
    for fn in attacks.values():
        time_batch(fn, x, y)  # trace
    times = {name: [] for name in attacks}
    for _ in range(args.rounds):
        for name, fn in attacks.items():
            times[name].append(time_batch(fn, x, y))

    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    threads = args.threads or "all"
    rows = []
    for name, values in times.items():
        seconds = statistics.median(values)
        result = {
            "attack": name,
            "device": device,
            "threads": threads,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "rounds": args.rounds,
            "ms_per_batch": round(1000 * seconds, 1),
            "images_per_s": round(args.batch_size / seconds, 1),
        }
        print(json.dumps(result), flush=True)
        rows.append(result)
    print("\n| attack | device | threads | batch | steps | ms/batch | images/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['attack']} | {r['device']} | {r['threads']} | {r['batch_size']} "
            f"| {r['steps']} | {r['ms_per_batch']} | {r['images_per_s']} |"
        )


if __name__ == "__main__":
    main()
