"""The standard evaluation on Keras's JAX backend: first and second call.

    KERAS_BACKEND=jax python benchmarks/jax_evaluation.py

Trains the digits MLP of the `eval` section of `python -m benchmarks`
(`shared.digits_mlp`: 64 hidden units, 10 epochs of Adam, seed 0), then calls
`keras_robust.evaluation.evaluate_robustness` (APGD-CE, APGD-T, Square
5,000 queries, the sanity checks; L∞ ε 0.1) twice on the 450 test
images, on one CPU core. Prints one JSON line: the process CPU time of
each call, the robust accuracy and how often each attack's compiled batch
function, the compiled forward pass of the predictions and the compiled
input gradients of the checks were traced.
On JAX every traced batch shape is compiled by XLA, so the first call's
time is mostly compilation (`benchmarks/NOTES.md`). `--examples N`
evaluates the first N test images only. With `--any-backend` it runs on
the backend `KERAS_BACKEND` names (TensorFlow on one thread), to compare.
`--compilation-cache DIR` turns on JAX's persistent compilation cache in
DIR (every compiled program stored, however fast it compiled): a later
process with the same DIR loads the programs instead of compiling them.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
from shared import digits_mlp  # noqa: E402

import keras_robust as kr  # noqa: E402
from keras_robust.attacks import base  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=None, help="test images")
    parser.add_argument(
        "--any-backend", action="store_true", help="not only KERAS_BACKEND=jax"
    )
    parser.add_argument(
        "--compilation-cache",
        metavar="DIR",
        default=None,
        help="JAX's persistent compilation cache, in DIR",
    )
    args = parser.parse_args()
    on_jax = keras.backend.backend() == "jax"
    if args.compilation_cache and not on_jax:
        raise SystemExit("--compilation-cache is JAX's: run with KERAS_BACKEND=jax")
    if not on_jax and not args.any_backend:
        raise SystemExit(
            "Run with KERAS_BACKEND=jax (or pass --any-backend). "
            f"Received: Keras backend {keras.backend.backend()!r}"
        )
    if on_jax:
        import jax

        version = jax.__version__
        on_cpu = jax.devices()[0].platform == "cpu"
        if args.compilation_cache:
            jax.config.update("jax_compilation_cache_dir", args.compilation_cache)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    else:
        import tensorflow as tf

        version = tf.__version__
        on_cpu = not tf.config.list_physical_devices("GPU")
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    # One CPU core, as the other CPU figures (process CPU time).
    if on_cpu and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    model, x_test, y_test = digits_mlp()
    x_test, y_test = x_test[: args.examples], y_test[: args.examples]
    seconds = []
    for _ in range(2):
        start = time.process_time()
        report = kr.evaluation.evaluate_robustness(
            model, (x_test, y_test), epsilon=0.1, verbose=0
        )
        seconds.append(round(time.process_time() - start, 2))
    traces = {
        f"{key[0].__name__} {key[1]}": getattr(
            run, "experimental_get_tracing_count", lambda: None
        )()
        for key, (_, run) in base._RUNNERS[model].items()
    }
    for name, cache in (
        ("forward pass", base._FORWARDS),
        ("input gradients", base._GRADIENTS),
    ):
        (compiled,) = cache[model].values()
        traces[name] = compiled.experimental_get_tracing_count()
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "version": version,
                "examples": len(x_test),
                "first_call_s": seconds[0],
                "second_call_s": seconds[1],
                "robust_accuracy": round(report["robust_accuracy"], 4),
                "traces": traces,
                "compilation_cache": args.compilation_cache is not None,
            }
        )
    )


if __name__ == "__main__":
    main()
