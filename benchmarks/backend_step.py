"""Seconds per PGD-10 AT `fit()` step on Keras's backend, in this process.

A child process of `python -m benchmarks` (its `backends` section), which
starts one per side and round, alternating TensorFlow and JAX:

    KERAS_BACKEND=jax python benchmarks/backend_step.py --batch-size 64 --steps 3

Pinned to one CPU core (one thread for TensorFlow), it builds the CNN of
the step benchmarks in PGD-10 adversarial training (L∞ ε 8/255, step
2/255, attack in train mode, SGD with momentum), runs one step to trace and
compile, then `--steps` steps in one `fit()` call, and prints one JSON
line: the backend, whether XLA compiled the step, and the process CPU time
(wall time on a GPU) per step.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from shared import pgd10_at, small_cnn  # noqa: E402


def on_gpu(backend):
    if backend == "jax":
        import jax

        return jax.devices()[0].platform == "gpu"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--xla", choices=["on", "off"], default="off", help="TensorFlow only"
    )
    args = parser.parse_args(argv)
    backend = keras.backend.backend()
    gpu = on_gpu(backend)
    if not gpu and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    xla = backend == "jax" or args.xla == "on"

    keras.utils.set_random_seed(0)
    model = pgd10_at(small_cnn(), xla)
    rng = np.random.default_rng(0)
    count = args.batch_size * args.steps
    x = rng.uniform(size=(count, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=count)
    fit = dict(batch_size=args.batch_size, epochs=1, shuffle=False, verbose=0)
    model.fit(x[: args.batch_size], y[: args.batch_size], **fit)  # trace
    clock = time.perf_counter if gpu else time.process_time
    start = clock()
    model.fit(x, y, **fit)
    float(keras.ops.convert_to_numpy(model.optimizer.iterations))  # sync
    seconds = (clock() - start) / args.steps
    print(json.dumps({"backend": backend, "xla": xla, "seconds_per_step": seconds}))


if __name__ == "__main__":
    main()
