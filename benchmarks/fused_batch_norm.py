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

import json
import statistics

import keras
from adversarial_step import (
    comparison_arguments,
    interleaved_fit_times,
    synthetic_dataset,
)
from run import onednn_enabled
from shared import pgd10_at, small_cnn

import keras_robust as kr


def make(fused, jit_compile, weights):
    base = small_cnn()
    base.set_weights(weights)
    if fused:
        base = kr.layers.fuse_batch_normalization(base)
    return pgd10_at(base, jit_compile)


def run(jit_compile, args):
    keras.utils.set_random_seed(0)
    weights = small_cnn().get_weights()
    dataset = synthetic_dataset(args.batch_size, 8)
    models = {fused: make(fused, jit_compile, weights) for fused in (False, True)}
    times = interleaved_fit_times(models, dataset, args)
    ratios = [k / f for k, f in zip(times[False], times[True], strict=True)]
    keras_ms, fused_ms = (1000 * statistics.median(times[f]) for f in (False, True))
    return {
        "jit_compile": jit_compile,
        "onednn": onednn_enabled(),
        "keras_batch_norm_ms_per_step": round(keras_ms, 1),
        "fused_copy_ms_per_step": round(fused_ms, 1),
        "speed_up": round(statistics.median(ratios), 3),
        "speed_up_per_round": [round(r, 3) for r in ratios],
    }


def main():
    args = comparison_arguments(__doc__.splitlines()[0], rounds=16)
    for jit_compile in args.modes:
        print(json.dumps(run(jit_compile, args)), flush=True)


if __name__ == "__main__":
    main()
