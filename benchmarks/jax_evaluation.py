"""The standard evaluation on Keras's JAX backend: first and second call.

    KERAS_BACKEND=jax taskset -c 0 python benchmarks/jax_evaluation.py

Trains the digits MLP of the `eval` section of `python -m benchmarks`
(`shared.digits_mlp`: 64 hidden units, 10 epochs of Adam, seed 0), then calls
`keras_robust.evaluation.evaluate_robustness` (APGD-CE, APGD-T, Square
5,000 queries, the sanity checks; L∞ ε 0.1) twice on the 450 test
images. Prints one JSON line: the process CPU time of each call, the
robust accuracy and how often each attack's compiled batch function was
traced. On JAX every traced batch shape is compiled by XLA, so the first
call's time is mostly compilation (`benchmarks/NOTES.md`).
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
from shared import digits_mlp  # noqa: E402

import keras_robust as kr  # noqa: E402
from keras_robust.attacks import base  # noqa: E402


def main():
    model, x_test, y_test = digits_mlp()
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
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "first_call_s": seconds[0],
                "second_call_s": seconds[1],
                "robust_accuracy": round(report["robust_accuracy"], 4),
                "traces": traces,
            }
        )
    )


if __name__ == "__main__":
    main()
