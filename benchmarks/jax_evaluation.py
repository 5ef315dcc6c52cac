"""The standard evaluation on Keras's JAX backend: first and second call.

    KERAS_BACKEND=jax python benchmarks/jax_evaluation.py

Trains the digits MLP of the `eval` section of `python -m benchmarks`
(`shared.digits_mlp`: 64 hidden units, 10 epochs of Adam, seed 0), then calls
`keras_robust.evaluation.evaluate_robustness` (APGD-CE, APGD-T, Square
5,000 queries, the sanity checks; L∞ ε 0.1) twice on the 450 test
images, on one CPU core. Prints one JSON line: the process CPU time of
each call, the robust accuracy and how often each attack's compiled batch
function and the compiled forward pass of the predictions were traced.
On JAX every traced batch shape is compiled by XLA, so the first call's
time is mostly compilation (`benchmarks/NOTES.md`). `--examples N`
evaluates the first N test images only.
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
    if keras.backend.backend() != "jax":
        raise SystemExit(
            "Run with KERAS_BACKEND=jax. "
            f"Received: Keras backend {keras.backend.backend()!r}"
        )
    import jax

    # One CPU core, as the other CPU figures (process CPU time).
    if jax.devices()[0].platform == "cpu" and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=None, help="test images")
    args = parser.parse_args()
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
    (forward,) = base._FORWARDS[model].values()
    traces["forward pass"] = forward.experimental_get_tracing_count()
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "jax_version": jax.__version__,
                "examples": len(x_test),
                "first_call_s": seconds[0],
                "second_call_s": seconds[1],
                "robust_accuracy": round(report["robust_accuracy"], 4),
                "traces": traces,
            }
        )
    )


if __name__ == "__main__":
    main()
