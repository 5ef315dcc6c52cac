"""Step time of ADR (EMA teacher + rectified labels) vs plain PGD-10 AT.

Both sides are `AdversarialModel.fit` with the same CNN, weights, batches
and PGD-10 attack; ADR adds one teacher forward pass on the clean batch,
the rectification and the EMA update of the teacher per step. The sides
run interleaved (A B, B A, A B, ...) and the median per-round ratio is reported,
for graph mode and for XLA.

    python benchmarks/adr_overhead.py                 # CPU, 1 thread
"""

import argparse
import json
import statistics

import keras
import tensorflow as tf
from adversarial_step import (
    EPSILON,
    PGD_STEPS,
    STEP_SIZE,
    small_cnn,
    synthetic_dataset,
    time_fit,
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
    plain, adr = make(False, jit_compile, weights), make(True, jit_compile, weights)
    teacher = [kr.callbacks.EMATeacher(0.995)]

    def fit(model, steps):
        return time_fit(model, dataset, steps, teacher if model is adr else None)

    fit(plain, 2), fit(adr, 2)  # trace and compile
    plain_times, adr_times = [], []
    for round_index in range(args.rounds):
        # Alternate which side goes first (A B, B A, ...).
        if round_index % 2:
            adr_times.append(fit(adr, args.steps))
            plain_times.append(fit(plain, args.steps))
        else:
            plain_times.append(fit(plain, args.steps))
            adr_times.append(fit(adr, args.steps))
    ratios = [a / b for a, b in zip(adr_times, plain_times, strict=True)]
    return {
        "jit_compile": jit_compile,
        "pgd_at_ms_per_step": round(1000 * statistics.median(plain_times), 1),
        "adr_ms_per_step": round(1000 * statistics.median(adr_times), 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratios_per_round": [round(r, 3) for r in ratios],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-xla", action="store_true")
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    for jit_compile in (False,) if args.no_xla else (False, True):
        print(json.dumps(run(jit_compile, args)), flush=True)


if __name__ == "__main__":
    main()
