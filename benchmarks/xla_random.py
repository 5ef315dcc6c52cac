"""Cost of drawing a CIFAR batch of random-start noise, graph mode vs XLA.

Compares `keras.random.uniform` (TensorFlow's stateless sampler with the
default `alg="auto_select"`), the sampler `keras_robust` uses (the same
Philox generator named explicitly: `keras_robust.backend.random.uniform`)
and TensorFlow's stateful `tf.random.uniform`, each inside a `tf.function`
with and without `jit_compile=True`. The draws are interleaved and the
median time per call is reported.

    python benchmarks/xla_random.py                 # CPU, 1 thread
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_robust.backend import random  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--threads", type=int, default=1, help="TF intra/inter-op threads (0: all)"
    )
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    shape = (args.batch_size, 32, 32, 3)
    keras_seed = keras.random.SeedGenerator(0)
    our_seed = keras.random.SeedGenerator(0)
    samplers = {
        "keras.random.uniform": lambda: keras.random.uniform(shape, seed=keras_seed),
        "keras_robust (philox)": lambda: random.uniform(shape, seed=our_seed),
        "tf.random.uniform (stateful)": lambda: tf.random.uniform(shape),
    }
    functions = {}
    for name, sampler in samplers.items():
        for jit_compile in (False, True):
            # Summing keeps the draw from being returned (and copied) whole.
            function = tf.function(
                lambda sampler=sampler: tf.reduce_sum(sampler()),
                jit_compile=jit_compile,
            )
            function()  # trace and compile
            functions[(name, jit_compile)] = function
    times = {key: [] for key in functions}
    for _ in range(args.rounds):
        for key, function in functions.items():
            start = time.perf_counter()
            float(function())
            times[key].append(time.perf_counter() - start)
    print(f"batch {args.batch_size}x32x32x3, threads {args.threads or 'all'}")
    print("| sampler | graph ms | XLA ms |")
    print("|---|---|---|")
    for name in samplers:
        graph, xla = (
            1000 * statistics.median(times[(name, jit)]) for jit in (False, True)
        )
        print(f"| {name} | {graph:.2f} | {xla:.2f} |")


if __name__ == "__main__":
    main()
