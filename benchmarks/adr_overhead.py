"""Step time of ADR (EMA teacher + rectified labels) vs plain PGD-10 AT.

Both sides are `AdversarialModel.fit` with the same CNN, weights, batches
and PGD-10 attack; ADR adds one teacher forward pass on the clean batch,
the rectification and the EMA update of the teacher per step. The sides
run interleaved (A B, B A, A B, ...) and the median per-round ratio is reported,
for graph mode and for XLA.

    python benchmarks/adr_overhead.py                 # CPU, 1 thread
"""

import json
import statistics

import keras
from adversarial_step import (
    EPSILON,
    PGD_STEPS,
    STEP_SIZE,
    comparison_arguments,
    interleaved_fit_times,
    small_cnn,
    synthetic_dataset,
)

import keras_robust as kr


def make(adr, jit_compile, weights):
    base = small_cnn()
    base.set_weights(weights)
    model = kr.AdversarialModel(
        base,
        attack=kr.attacks.PGD(epsilon=EPSILON, step_size=STEP_SIZE, steps=PGD_STEPS),
        eval_attack=None,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=kr.losses.ADRLoss() if adr else kr.losses.SoftTargetCrossentropy(),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


def run(jit_compile, args):
    keras.utils.set_random_seed(0)
    weights = small_cnn().get_weights()
    dataset = synthetic_dataset(args.batch_size, 8)
    models = {
        "plain": make(False, jit_compile, weights),
        "adr": make(True, jit_compile, weights),
    }
    times = interleaved_fit_times(
        models, dataset, args, callbacks={"adr": [kr.callbacks.EMATeacher(0.995)]}
    )
    ratios = [a / b for a, b in zip(times["adr"], times["plain"], strict=True)]
    return {
        "jit_compile": jit_compile,
        "pgd_at_ms_per_step": round(1000 * statistics.median(times["plain"]), 1),
        "adr_ms_per_step": round(1000 * statistics.median(times["adr"]), 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratios_per_round": [round(r, 3) for r in ratios],
    }


def main():
    args = comparison_arguments(__doc__.splitlines()[0])
    for jit_compile in args.modes:
        print(json.dumps(run(jit_compile, args)), flush=True)


if __name__ == "__main__":
    main()
