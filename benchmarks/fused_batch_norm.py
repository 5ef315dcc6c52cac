"""PGD-10 AT step time of a model with Keras's batch norm and of its copy by
`kr.layers.fuse_batch_normalization`.

Both sides are `AdversarialModel.fit` with the same CNN (the step
benchmarks'), weights, batches and attack; the copy's batch norms run as
one `FusedBatchNormV3` op each. The sides run interleaved (A B, B A, ...),
one thread, process CPU time; the speed-up is the median per-round ratio
(Keras's time / the copy's), for graph mode and for XLA. TensorFlow only.

    python benchmarks/fused_batch_norm.py              # CPU, 1 thread
    TF_ENABLE_ONEDNN_OPTS=1 python benchmarks/fused_batch_norm.py
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


def make(fused, jit_compile, weights):
    base = small_cnn()
    base.set_weights(weights)
    if fused:
        base = kr.layers.fuse_batch_normalization(base)
    model = kr.AdversarialModel(
        base,
        attack=kr.attacks.PGD(epsilon=EPSILON, step_size=STEP_SIZE, steps=PGD_STEPS),
        eval_attack=None,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=kr.losses.SoftTargetCrossentropy(),
        jit_compile=jit_compile,
    )
    return model


def run(jit_compile, args):
    keras.utils.set_random_seed(0)
    weights = small_cnn().get_weights()
    dataset = synthetic_dataset(args.batch_size, 8)
    sides = {fused: make(fused, jit_compile, weights) for fused in (False, True)}
    for model in sides.values():
        time_fit(model, dataset, 2)  # trace and compile
    times = {False: [], True: []}
    for round_index in range(args.rounds):
        for fused in (False, True) if round_index % 2 == 0 else (True, False):
            times[fused].append(time_fit(sides[fused], dataset, args.steps))
    ratios = [k / f for k, f in zip(times[False], times[True], strict=True)]
    keras_ms, fused_ms = (1000 * statistics.median(times[f]) for f in (False, True))
    return {
        "jit_compile": jit_compile,
        "onednn": _onednn_enabled(),
        "keras_batch_norm_ms_per_step": round(keras_ms, 1),
        "fused_copy_ms_per_step": round(fused_ms, 1),
        "speed_up": round(statistics.median(ratios), 3),
        "speed_up_per_round": [round(r, 3) for r in ratios],
    }


def _onednn_enabled():
    from run import onednn_enabled

    return onednn_enabled()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--rounds", type=int, default=16)
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
