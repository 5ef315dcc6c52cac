"""The benchmark command: prints every table and rewrites benchmarks/RESULTS.md.

    python -m benchmarks                    # all sections, CPU, 1 thread
    python -m benchmarks --only cost torch  # some sections
    python -m benchmarks --quick            # a tiny configuration (a smoke test)

Sections:

- `cost`: the cost model. A clean step, PGD-k adversarial training for
  k = 1, 3, 10, ADR (PGD-10, EMA teacher) and TRADES (PGD-10), each as a
  ratio to the clean step in the same run, beside the ideal ratio from
  counting passes: a forward pass F, an input-gradient backward pass ≈ F, a
  full backward pass ≈ 2F. The clean step costs 3F; PGD-k AT adds k
  forward + input-backward passes, (2k + 3)F; ADR adds the teacher's
  forward pass, 24F for k = 10; TRADES runs the clean forward once for the
  attack and trains on the clean and the adversarial batch, 27F.
- `overhead`: `AdversarialModel.fit` against a hand-written `tf.function`
  loop of the same math (target ≤ 1.10×), and ADR against plain PGD-AT
  (target ≤ 1.05×, on top of the teacher's forward pass). Each round is
  one `fit()` call, so its fixed cost (callbacks, the epoch's iterator;
  about 20 ms) is spread over the round's steps. With JAX installed, also
  `AdversarialModel.fit` on Keras's JAX backend against a hand-written
  `jax.jit` step of the same math, in a fresh process
  (`benchmarks/jax_overhead.py`; target ≤ 1.10×).
- `torch`: the same PGD-10 AT step in PyTorch eager (same CNN, batches,
  attack and SGD), interleaved with ours; the speed-up is PyTorch's time
  over ours (target ≥ 1.2×). On a CPU, ours also with TensorFlow's oneDNN
  kernels set the other way, in a fresh process (`python -m benchmarks`
  turns them on unless TF_ENABLE_ONEDNN_OPTS is set; TensorFlow's default
  is off on CPUs without AVX-512 VNNI/BF16 or AMX). Skipped when torch is
  not installed (`pip install torch==2.13.0`, the CPU wheel).
- `backends`: the PGD-10 AT `fit()` step on Keras's JAX backend against
  TensorFlow's (graph mode and XLA), each in fresh processes pinned to one
  CPU core, alternating (`benchmarks/backend_step.py`). Skipped when JAX
  is not installed (`pip install -e ".[jax]"`).
- `eval`: the standard evaluation (APGD-CE, APGD-T, Square, the sanity
  checks) on a digits MLP, cold (the first call in fresh processes, and the
  first after training in this one; tracing included) and warm,
  beside torchattacks' AutoAttack on a PyTorch copy of the same weights
  (skipped without torch and torchattacks: `pip install torch==2.13.0` and
  `pip install --no-deps torchattacks==3.5.1`; torchattacks declares
  torchvision, which pulls a CUDA build of torch, and never imports it);
  APGD-CE images/s and Square queries/s.
- `pipeline`: the input pipeline (`keras_robust.data.prepare_images`, as
  `load_tfds` builds it for CIFAR training: scaling, shuffling, pad-and-crop
  and flip, batching, prefetching) on in-memory CIFAR-shaped uint8 images:
  its throughput alone, and PGD-10 AT `fit()` fed by it against `fit()` on
  the same batches already in memory (wall time: a starved step waits).
- `memory`: the bytes of the student, the EMA teacher and the optimizer
  state, and the peak memory of training steps (device memory on a GPU,
  the process's peak resident memory on a CPU).

Timings are process CPU time with TensorFlow (and PyTorch) pinned to one
thread (`--threads`), both sides interleaved (A B, B A, ...), and the
median of the per-round ratios; on a GPU, wall time.
"""

import argparse
import datetime
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import shared  # noqa: E402
import tensorflow as tf  # noqa: E402
from shared import EPSILON, STEP_SIZE  # noqa: E402

import keras_robust as kr  # noqa: E402

SECTIONS = ("cost", "overhead", "torch", "backends", "eval", "pipeline", "memory")


def on_gpu():
    return bool(tf.config.list_physical_devices("GPU"))


def clock():
    """Wall time on a GPU; process CPU time (all threads) on a CPU."""
    return time.perf_counter() if on_gpu() else time.process_time()


def cnn(num_classes=10):
    """The 4-conv CNN with Keras's BatchNorm of the step benchmarks (32×32×3)."""
    from adversarial_step import small_cnn

    return small_cnn(num_classes)


def batches(batch_size, count=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(batch_size * count, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=batch_size * count).astype("int64")
    return x, y


def fit_seconds(model, x, y, steps, batch_size, callbacks=None):
    start = clock()
    model.fit(
        x[: steps * batch_size],
        y[: steps * batch_size],
        batch_size=batch_size,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=callbacks,
    )
    return (clock() - start) / steps


def pgd10_at(base, args, **compile_options):
    """`shared.pgd10_at`, compiled as `--xla` says."""
    return shared.pgd10_at(base, args.xla, **compile_options)


def interleave(sides, rounds):
    """`{name: [seconds per round]}`; the order alternates every round."""
    times = {name: [] for name in sides}
    names = list(sides)
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            times[name].append(sides[name]())
    return times


def median_ratio(a, b):
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------
# Sections


def section_cost(args):
    keras.utils.set_random_seed(0)
    weights = cnn().get_weights()
    x, y = batches(args.batch_size, args.steps)

    def adversarial(steps, objective="madry", adr=False):
        base = cnn()
        base.set_weights(weights)
        model = kr.AdversarialModel(
            base,
            attack=kr.attacks.PGD(epsilon=EPSILON, steps=steps),
            objective=objective,
            eval_attack=None,
            clean_metrics=False,
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=kr.losses.ADRLoss() if adr else kr.losses.SoftTargetCrossentropy(),
            metrics=["accuracy"],
            jit_compile=args.xla,
        )
        return model

    clean = cnn()
    clean.set_weights(weights)
    clean.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=args.xla,
    )
    k = 10
    models = {
        "clean step": (clean, None, 3),
        "PGD-1 AT": (adversarial(1), None, 5),
        "PGD-3 AT": (adversarial(3), None, 9),
        f"PGD-{k} AT": (adversarial(k), None, 2 * k + 3),
        f"ADR (PGD-{k}, EMA teacher)": (
            adversarial(k, adr=True),
            [kr.callbacks.EMATeacher(0.995)],
            2 * k + 4,
        ),
        f"TRADES (PGD-{k})": (adversarial(k, objective="trades"), None, 2 * k + 7),
    }
    sides = {}
    for name, (model, callbacks, _) in models.items():
        fit_seconds(model, x, y, 1, args.batch_size, callbacks)  # trace

        def side(model=model, callbacks=callbacks):
            return fit_seconds(model, x, y, args.steps, args.batch_size, callbacks)

        sides[name] = side
    times = interleave(sides, args.rounds)
    rows = []
    for name, (_, _, passes) in models.items():
        rows.append(
            [
                name,
                f"{1000 * statistics.median(times[name]):.1f}",
                f"{median_ratio(times[name], times['clean step']):.2f}",
                f"{passes / 3:.2f}",
                f"{passes}F",
            ]
        )
    return (
        "Cost model",
        f"The CNN of the step benchmarks, batch {args.batch_size}, "
        f"{'XLA' if args.xla else 'graph mode'}, {args.rounds} rounds of "
        f"{args.steps} steps; the ratio is the median per-round ratio to the "
        "clean step (a plain Keras `fit()` of the same model).",
        ["step", "ms/step", "ratio to clean", "ideal ratio", "passes"],
        rows,
    )


def steps_per_execution(args, steps=8):
    """PGD-10 AT `fit()` with `steps` train steps per compiled call vs one."""
    keras.utils.set_random_seed(0)
    weights = cnn().get_weights()
    x, y = batches(args.batch_size, steps)
    models = {}
    for count in (1, steps):
        base = cnn()
        base.set_weights(weights)
        model = pgd10_at(base, args, steps_per_execution=count)
        fit_seconds(model, x, y, steps, args.batch_size)  # trace
        models[count] = model

    def side(count):
        return lambda: fit_seconds(models[count], x, y, steps, args.batch_size)

    times = interleave({1: side(1), steps: side(steps)}, max(args.rounds // 2, 1))
    return {
        "steps": steps,
        "one_ms_per_step": round(1000 * statistics.median(times[1]), 1),
        "many_ms_per_step": round(1000 * statistics.median(times[steps]), 1),
        "ratio": median_ratio(times[steps], times[1]),
    }


def _script_json(script, *arguments, **environment):
    """Runs `benchmarks/SCRIPT ARGUMENTS...` in a fresh process, with
    `environment` added to this one's, and returns the JSON of its last
    output line."""
    import json
    import subprocess

    done = subprocess.run(
        [sys.executable, str(HERE / script), *map(str, arguments)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **environment},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _jax_overhead(args):
    """`benchmarks/jax_overhead.py` in a fresh process on Keras's JAX backend
    (its JSON line), or None when JAX is not installed."""
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        return None
    return _script_json(
        "jax_overhead.py",
        "--batch-size",
        args.batch_size,
        "--steps",
        args.steps,
        "--rounds",
        args.rounds,
        KERAS_BACKEND="jax",
    )


def section_overhead(args):
    import adr_overhead
    import adversarial_step

    options = argparse.Namespace(
        batch_size=args.batch_size, steps=args.steps, rounds=args.rounds
    )
    fit_vs_loop = adversarial_step.run(args.xla, True, options)
    adr = adr_overhead.run(args.xla, options)
    per_call = steps_per_execution(args, steps=2 if args.quick else 8)
    jax_fit = _jax_overhead(args)
    rows = [
        [
            "AdversarialModel.fit vs hand-written loop (PGD-10 AT)",
            f"{fit_vs_loop['ours_ms_per_step']}",
            f"{fit_vs_loop['hand_ms_per_step']}",
            f"**{fit_vs_loop['ratio']:.3f}**",
            "≤ 1.10",
        ],
        [
            "ADR vs PGD-10 AT",
            f"{adr['adr_ms_per_step']}",
            f"{adr['pgd_at_ms_per_step']}",
            f"**{adr['ratio']:.3f}**",
            "≤ 1.05 + teacher forward",
        ],
        [
            f"steps_per_execution={per_call['steps']} vs 1 (PGD-10 AT fit)",
            f"{per_call['many_ms_per_step']}",
            f"{per_call['one_ms_per_step']}",
            f"**{per_call['ratio']:.3f}**",
            "(identical results: tested)",
        ],
    ]
    if jax_fit is not None:
        rows.append(
            [
                "AdversarialModel.fit vs hand-written loop on JAX (PGD-10 AT)",
                f"{jax_fit['ours_ms_per_step']}",
                f"{jax_fit['hand_ms_per_step']}",
                f"**{jax_fit['ratio']:.3f}**",
                "≤ 1.10",
            ]
        )
    jax_note = (
        f" On JAX {jax_fit['jax']}, a fresh process against a hand-written "
        "`jax.jit` step (`benchmarks/jax_overhead.py`)."
        if jax_fit is not None
        else " The JAX row is skipped: JAX is not installed "
        '(`pip install -e ".[jax]"`).'
    )
    return (
        "Framework overhead",
        "Process CPU time (wall time on a GPU), interleaved, median per-round "
        "ratio (the scripts "
        "`benchmarks/adversarial_step.py` and `benchmarks/adr_overhead.py`)."
        + jax_note,
        ["comparison", "ours ms/step", "reference ms/step", "ratio", "target"],
        rows,
    )


def _torch_cnn(torch):
    nn = torch.nn

    def block(cin, cout):
        return [
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    return nn.Sequential(
        *block(3, 16),
        *block(16, 32),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def torch_pgd_step(torch, model, optimizer, x, y, steps=10):
    """PGD-10 AT in PyTorch eager: the attack in train mode, then SGD."""
    functional = torch.nn.functional
    model.train()
    x_adv = (x + torch.empty_like(x).uniform_(-EPSILON, EPSILON)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = functional.cross_entropy(model(x_adv), y, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach() + STEP_SIZE * gradient.sign()
        x_adv = torch.minimum(torch.maximum(x_adv, x - EPSILON), x + EPSILON)
        x_adv = x_adv.clamp(0, 1)
    optimizer.zero_grad(set_to_none=True)
    logits = model(x_adv)
    loss = functional.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN kernels (`None`: unknown).

    `TF_ENABLE_ONEDNN_OPTS=1` turns them on, `0` off; unset, TensorFlow
    turns them on only on x86 CPUs with AVX-512 VNNI/BF16 or AMX.
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def _onednn_label(enabled):
    return {True: "oneDNN on", False: "oneDNN off", None: "oneDNN unknown"}[enabled]


# Our sides of the PyTorch comparison: the CNN with Keras's BatchNormalization
# (`False`) and its copy by `kr.layers.fuse_batch_normalization` (`True`).
TORCH_SIDES = {
    False: "keras BatchNormalization",
    True: "fused by kr.layers.fuse_batch_normalization",
}


def torch_times(args, torch, fused_options=(False, True)):
    """`{side: [seconds per step, a round each]}`: our PGD-10 AT `fit()` step
    with Keras's BatchNormalization (`False` in `fused_options`) and its
    fused copy (`True`), and the PyTorch eager step, interleaved."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    x, y = batches(args.batch_size, args.steps)
    weights = cnn().get_weights()
    b = args.batch_size

    def ours(fused):
        base = cnn()
        base.set_weights(weights)
        if fused:  # what a user does to a model of their own
            base = kr.layers.fuse_batch_normalization(base)
        model = pgd10_at(base, args)
        return lambda: fit_seconds(model, x, y, args.steps, b)

    peer = _torch_cnn(torch)
    optimizer = torch.optim.SGD(peer.parameters(), lr=0.01, momentum=0.9)
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    ty = torch.from_numpy(y)

    def theirs():
        start = clock()
        for i in range(args.steps):
            torch_pgd_step(
                torch, peer, optimizer, tx[i * b : (i + 1) * b], ty[i * b : (i + 1) * b]
            )
        return (clock() - start) / args.steps

    sides = {TORCH_SIDES[fused]: ours(fused) for fused in fused_options}
    sides["torch"] = theirs
    for side in sides.values():
        side()  # warm up (trace) every side
    return interleave(sides, args.rounds)


def torch_times_side(argv):
    """`run.py --torch-times BATCH STEPS ROUNDS THREADS`: `torch_times` for
    Keras's BatchNormalization only, in this process (whose environment
    sets TF_ENABLE_ONEDNN_OPTS); prints the times and the oneDNN state as
    JSON."""
    import json

    import torch

    batch_size, steps, rounds, threads = (int(value) for value in argv)
    args = argparse.Namespace(
        batch_size=batch_size, steps=steps, rounds=rounds, threads=threads, xla=False
    )
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    times = torch_times(args, torch, fused_options=(False,))
    print(json.dumps({"times": times, "onednn": onednn_enabled()}))


def _torch_times_other_onednn(args, enabled):
    """`torch_times_side` in a fresh process with oneDNN set the other way
    (`None` where this process's state is unknown)."""
    if enabled is None:
        return None
    settings = (args.batch_size, args.steps, args.rounds, args.threads)
    return _script_json(
        "run.py",
        "--torch-times",
        *settings,
        TF_ENABLE_ONEDNN_OPTS="0" if enabled else "1",
    )


def _backend_step_seconds(backend, xla, args):
    """Seconds per step of `benchmarks/backend_step.py` in a fresh process."""
    result = _script_json(
        "backend_step.py",
        "--batch-size",
        args.batch_size,
        "--steps",
        args.steps,
        "--xla",
        "on" if xla else "off",
        KERAS_BACKEND=backend,
    )
    return result["seconds_per_step"]


def section_backends(args):
    title = "Backends: JAX and TensorFlow (PGD-10 AT step)"
    try:
        import jax
    except ImportError:
        return (
            title,
            'Skipped: JAX is not installed (`pip install -e ".[jax]"`).',
            [],
            [],
        )
    sides = {
        "TensorFlow, graph mode": ("tensorflow", False),
        "TensorFlow, XLA": ("tensorflow", True),
        "JAX (XLA)": ("jax", True),
    }
    times = interleave(
        {
            name: lambda backend=backend, xla=xla: _backend_step_seconds(
                backend, xla, args
            )
            for name, (backend, xla) in sides.items()
        },
        max(args.rounds // 2, 1),
    )
    reference = times["TensorFlow, graph mode"]
    rows = []
    for name in sides:
        ratios = [t / r for t, r in zip(times[name], reference, strict=True)]
        rows.append(
            [
                name,
                f"{1000 * statistics.median(times[name]):.1f}",
                f"**{statistics.median(ratios):.2f}**",
                f"{min(ratios):.2f}–{max(ratios):.2f}",
            ]
        )
    where = "wall time" if on_gpu() else "process CPU time, one core"
    return (
        title,
        f"The CNN of the step benchmarks in PGD-10 AT `fit()`, batch "
        f"{args.batch_size}, {args.steps} steps after a traced one, each side "
        f"in a fresh process per round ({max(args.rounds // 2, 1)} rounds, "
        f"alternating; {where}); JAX {jax.__version__}. The ratio is the "
        "side's time over TensorFlow's graph mode, median of the per-round "
        "ratios (`benchmarks/backend_step.py`).",
        ["backend", "ms/step", "time ratio to TF graph", "per-round"],
        rows,
    )


def section_torch(args):
    try:
        import torch
    except ImportError:
        return (
            "PyTorch eager peer",
            "Skipped: torch is not installed (`pip install torch==2.13.0`).",
            [],
            [],
        )
    enabled = onednn_enabled()
    measured = [(enabled, torch_times(args, torch))]
    if not on_gpu():
        other = _torch_times_other_onednn(args, enabled)
        if other is not None:
            measured.append((other["onednn"], other["times"]))
    rows = []
    for state, times in measured:
        for name in TORCH_SIDES.values():
            if name not in times:
                continue
            ratios = [t / o for t, o in zip(times["torch"], times[name], strict=True)]
            rows.append(
                [
                    f"ours, {name}" + ("" if on_gpu() else f", {_onednn_label(state)}"),
                    f"{1000 * statistics.median(times[name]):.1f}",
                    f"{1000 * statistics.median(times['torch']):.1f}",
                    f"**{statistics.median(ratios):.2f}**",
                    f"{min(ratios):.2f}–{max(ratios):.2f}",
                    "≥ 1.2",
                ]
            )
    return (
        "PyTorch eager peer (PGD-10 AT step)",
        f"The same CNN, batches ({args.batch_size}), attack (L∞ ε 8/255, step "
        f"2/255, train mode) and SGD step; torch {torch.__version__}. Speed-up = "
        "PyTorch's time / ours, median of the per-round ratios. Ours with "
        "Keras's BatchNormalization (what a user's model has) and the same "
        "model after `kr.layers.fuse_batch_normalization` (one call; its "
        "batch norms become `kr.layers.BatchNormalization`, the fused "
        "kernel the model zoo uses). On a CPU, also with TensorFlow's "
        "oneDNN kernels set the other way (`TF_ENABLE_ONEDNN_OPTS`, a "
        "fresh process interleaving ours and PyTorch again): TensorFlow "
        "turns them on by default only on CPUs with AVX-512 VNNI/BF16 or "
        "AMX, and `python -m benchmarks` turns them on unless the variable "
        "is set.",
        [
            "model",
            "ours ms/step",
            "PyTorch ms/step",
            "speed-up",
            "per-round",
            "target",
        ],
        rows,
    )


def _torch_digits_mlp(torch, model):
    """The digits MLP in PyTorch with the Keras model's weights (NCHW input)."""
    nn = torch.nn
    peer = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    kernel1, bias1, kernel2, bias2 = model.get_weights()
    with torch.no_grad():
        for layer, kernel, bias in (
            (peer[1], kernel1, bias1),
            (peer[3], kernel2, bias2),
        ):
            layer.weight.copy_(torch.from_numpy(kernel.T.copy()))
            layer.bias.copy_(torch.from_numpy(bias))
    return peer.eval()


def _eval_sides(model, x, y, threads):
    """`{name: side}`: each side runs one evaluation and returns `(seconds,
    robust accuracy)`; ours always, torchattacks' AutoAttack if installed."""

    def standard():
        start = clock()
        report = kr.evaluation.evaluate_robustness(
            model, (x, y), epsilon=0.1, verbose=0
        )
        return clock() - start, report["robust_accuracy"]

    sides = {"keras_robust": standard}
    try:
        import torch
        import torchattacks
    except ImportError:
        return sides
    if threads:
        torch.set_num_threads(threads)
    peer = _torch_digits_mlp(torch, model)
    tx = torch.from_numpy(np.transpose(x, (0, 3, 1, 2)).copy())
    ty = torch.from_numpy(y.astype("int64"))

    def autoattack():
        start = clock()
        attack = torchattacks.AutoAttack(
            peer, norm="Linf", eps=0.1, version="standard", n_classes=10, seed=0
        )
        x_adv = attack(tx, ty)
        seconds = clock() - start
        with torch.no_grad():
            accuracy = float((peer(x_adv).argmax(1) == ty).float().mean())
        return seconds, accuracy

    sides["torchattacks"] = autoattack
    return sides


def cold_side(argv):
    """`run.py --cold SIDE WEIGHTS N THREADS`: one side's first evaluation
    in a fresh process, on the digits MLP with the saved weights and the
    first N test images; prints its seconds as JSON."""
    import json

    side, weights, count, threads = argv[0], argv[1], int(argv[2]), int(argv[3])
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    model = shared.digits_model()
    with np.load(weights) as saved:
        model.set_weights([saved[f"w{i}"] for i in range(len(saved.files))])
    _, (x, y) = kr.data.load_digits()
    seconds, accuracy = _eval_sides(model, x[:count], y[:count], threads)[side]()
    print(json.dumps({"side": side, "seconds": seconds, "accuracy": accuracy}))


def _cold(sides, model, x, threads, rounds):
    """`{side: [seconds]}`: each side's first call in fresh processes,
    alternating (A B, B A, ...), with `model`'s weights."""
    import tempfile

    times = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as folder:
        weights = os.path.join(folder, "weights.npz")
        np.savez(weights, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
        names = list(sides)
        for index in range(rounds):
            for name in names if index % 2 == 0 else names[::-1]:
                result = _script_json(
                    "run.py", "--cold", name, weights, len(x), threads
                )
                times[name].append(result["seconds"])
    return times


def _jax_evaluation(examples, *options):
    """`benchmarks/jax_evaluation.py` on the first `examples` test images, in
    a fresh process on Keras's JAX backend (its JSON line), or None when JAX
    is not installed."""
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        return None
    return _script_json(
        "jax_evaluation.py", "--examples", examples, *options, KERAS_BACKEND="jax"
    )


def _jax_evaluation_cached(examples):
    """`_jax_evaluation` in a later process with JAX's persistent compilation
    cache: one process fills a new cache, the next is measured."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        options = ("--compilation-cache", folder)
        _jax_evaluation(examples, *options)
        return _jax_evaluation(examples, *options)


def section_eval(args):
    model, x, y = shared.digits_mlp()
    if args.quick:
        x, y = x[:32], y[:32]
    sides = _eval_sides(model, x, y, args.threads)
    torchattacks = None
    if "torchattacks" in sides:
        import torchattacks
    # Cold: each side's first call in this process, after the training, and
    # in fresh processes (PyTorch's and TensorFlow's first-use costs too).
    first = {name: side() for name, side in sides.items()}
    robust = {name: accuracy for name, (_, accuracy) in first.items()}
    cold_times = _cold(sides, model, x, args.threads, 1 if args.quick else 3)
    warm = {name: [] for name in sides}
    names = list(sides)
    for index in range(1 if args.quick else 3):
        for name in names if index % 2 == 0 else names[::-1]:
            warm[name].append(sides[name]()[0])
    warm = {name: statistics.median(times) for name, times in warm.items()}
    apgd = kr.attacks.APGD(epsilon=0.1, steps=100)
    apgd(model, x, y, seed=0)
    start = clock()
    apgd(model, x, y, seed=1)
    apgd_rate = len(x) / (clock() - start)
    queries = 1000
    square = kr.attacks.Square(epsilon=0.1, queries=queries)
    square(model, x, y, seed=0)
    start = clock()
    square(model, x, y, seed=1)
    square_rate = len(x) * queries / (clock() - start)
    cold = {name: statistics.median(times) for name, times in cold_times.items()}
    rows = [
        [
            "standard evaluation, cold: fresh process / after training",
            f"{cold['keras_robust']:.2f} s / {first['keras_robust'][0]:.2f} s",
        ],
        ["standard evaluation, warm", f"{warm['keras_robust']:.2f} s"],
    ]
    if torchattacks is not None:
        cold_ratios = [
            theirs / ours
            for theirs, ours in zip(
                cold_times["torchattacks"], cold_times["keras_robust"], strict=True
            )
        ]
        rows += [
            [
                f"torchattacks {torchattacks.__version__} AutoAttack, cold: fresh "
                "process / after training",
                f"{cold['torchattacks']:.2f} s / {first['torchattacks'][0]:.2f} s",
            ],
            ["torchattacks AutoAttack, warm", f"{warm['torchattacks']:.2f} s"],
            [
                "speed-up cold, fresh process (target ≥ 1)",
                f"**{statistics.median(cold_ratios):.2f}** "
                f"({min(cold_ratios):.2f}–{max(cold_ratios):.2f})",
            ],
            [
                "speed-up cold after training / warm",
                f"{first['torchattacks'][0] / first['keras_robust'][0]:.2f} / "
                f"{warm['torchattacks'] / warm['keras_robust']:.2f}",
            ],
            [
                "robust accuracy: ours / torchattacks",
                f"{robust['keras_robust']:.3f} / {robust['torchattacks']:.3f}",
            ],
        ]
    else:
        rows.append(
            [
                "torchattacks AutoAttack",
                "skipped: `pip install torch` and `pip install --no-deps "
                "torchattacks` (its declared torchvision is never imported)",
            ]
        )
    on_jax = _jax_evaluation(len(x))
    if on_jax is not None:
        cached = _jax_evaluation_cached(len(x))
        rows += [
            [
                f"standard evaluation on JAX {on_jax['version']}, fresh process "
                "(`benchmarks/jax_evaluation.py`): first / second call",
                f"{on_jax['first_call_s']:.2f} s / {on_jax['second_call_s']:.2f} s",
            ],
            [
                "the same, a later process with JAX's persistent compilation "
                "cache (`--compilation-cache`): first / second call",
                f"{cached['first_call_s']:.2f} s / {cached['second_call_s']:.2f} s",
            ],
        ]
    rows += [
        ["APGD-CE (100 steps), warm", f"{apgd_rate:.0f} images/s"],
        [f"Square ({queries} queries), warm", f"{square_rate:.0f} image-queries/s"],
    ]
    return (
        "Evaluation",
        f"A digits MLP (64 hidden units), {len(x)} test images, L∞ ε 0.1, clean "
        f"accuracy {float(np.mean(_logits(model, x).argmax(-1) == y)):.3f}. Ours: "
        "`evaluate_robustness` (APGD-CE, APGD-T, Square 5,000 queries, and the "
        "sanity checks); torchattacks' AutoAttack (standard: APGD-CE, APGD-T, "
        "FAB-T, Square 5,000 queries) on a PyTorch copy of the same weights. "
        "Process CPU time (wall time on a GPU) with the threads of `--threads`; "
        "cold is each side's first call in a fresh process (the median of "
        f"{len(cold_times['keras_robust'])}, alternating the sides; the speed-up "
        "is the median of the per-pair ratios, its range in brackets) and its "
        "first call in this process, after the model's training; warm the "
        "median of 3 interleaved calls in this process.",
        ["measurement", "value"],
        rows,
    )


def training_pipeline(batch_size, count=8192, shape=(32, 32, 3)):
    """The CIFAR training pipeline of `load_tfds` on random uint8 images,
    repeated: `keras_robust.data.prepare_images` with augmentation."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, *shape), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count).astype("int64")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    return kr.data.prepare_images(
        dataset, batch_size=batch_size, training=True, augment=True, seed=0
    ).repeat()


def pipeline_throughput(batch_size, count=8192, shape=(32, 32, 3)):
    """Images/s the training pipeline delivers alone (wall time, its own
    threads), past the batches that fill its buffers."""
    batches_ = iter(training_pipeline(batch_size, count, shape))
    for _ in range(3):
        next(batches_)
    total = max(count // batch_size, 4)
    start = time.perf_counter()
    for _ in range(total):
        next(batches_)
    return total * batch_size / (time.perf_counter() - start)


def section_pipeline(args):
    count = 512 if args.quick else 8192
    throughput = {
        batch_size: pipeline_throughput(batch_size, count)
        for batch_size in (args.batch_size, 512)
    }

    # Starvation: PGD-10 AT fit() fed by the pipeline vs by batches in memory.
    keras.utils.set_random_seed(0)
    model = pgd10_at(cnn(), args)
    fed = training_pipeline(args.batch_size, count)
    in_memory = list(fed.take(args.steps))
    resident = tf.data.Dataset.from_tensor_slices(
        (
            tf.stack([x for x, _ in in_memory]),
            tf.stack([y for _, y in in_memory]),
        )
    ).repeat()
    warmup = 2

    class StepTimes(keras.callbacks.Callback):
        """Seconds between the ends of consecutive steps, past the warm-up."""

        def on_train_begin(self, logs=None):
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

        def seconds(self):
            return statistics.median(np.diff(self.ends[warmup:]))

    def run(dataset):
        # Steady state inside one fit() call: its first steps (and the
        # pipeline's start, filling the shuffle buffer) are not counted.
        def side():
            times = StepTimes()
            model.fit(
                dataset,
                steps_per_epoch=warmup + args.steps + 1,
                shuffle=False,
                epochs=1,
                verbose=0,
                callbacks=[times],
            )
            return times.seconds()

        return side

    sides = {"pipeline": run(fed), "in memory": run(resident)}
    for side in sides.values():
        side()  # trace
    times = interleave(sides, args.rounds)
    step_ms = 1000 * statistics.median(times["in memory"])
    consumed = args.batch_size / (step_ms / 1000)
    rows = [
        [
            f"pipeline alone, batch {batch_size}",
            f"{rate:.0f} images/s",
        ]
        for batch_size, rate in throughput.items()
    ]
    rows += [
        [
            f"PGD-10 AT step, batch {args.batch_size} (in memory)",
            f"{step_ms:.1f} ms/step = {consumed:.0f} images/s",
        ],
        [
            "pipeline headroom (pipeline alone / step)",
            f"{throughput[args.batch_size] / consumed:.1f}x",
        ],
        [
            "fit() fed by the pipeline / fed from memory (target ≤ 1.05)",
            f"**{median_ratio(times['pipeline'], times['in memory']):.3f}**",
        ],
    ]
    return (
        "Input pipeline",
        f"`keras_robust.data.prepare_images` (training: shuffle, pad-4 crop and "
        f"flip, batch, prefetch) on {count} in-memory CIFAR-shaped uint8 images, "
        f"tf.data with {os.cpu_count()} cores; the step is the CNN's PGD-10 AT "
        "`fit()`, one batch per step from the repeated pipeline or from a "
        f"dataset of {args.steps} batches already in memory. Wall time "
        "between the ends of consecutive steps inside one `fit()` call, past "
        f"its first {warmup} steps, median of {args.steps}; interleaved, "
        f"{args.rounds} rounds, the ratio is the median per-round ratio.",
        ["measurement", "value"],
        rows,
    )


def _logits(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _bytes(variables):
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def section_memory(args):
    keras.utils.set_random_seed(0)
    x, y = batches(args.batch_size, 2)
    model = kr.AdversarialModel(
        cnn(),
        attack=kr.attacks.PGD(epsilon=EPSILON, steps=10),
        eval_attack=None,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=kr.losses.ADRLoss(),
        jit_compile=args.xla,
    )
    gpu = on_gpu()
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model.fit(
        x,
        y,
        batch_size=args.batch_size,
        verbose=0,
        callbacks=[kr.callbacks.EMATeacher(0.995)],
    )
    student = _bytes(model.base_model.weights)
    teacher = _bytes(model.teacher.weights)
    optimizer = _bytes(model.optimizer.variables)
    rows = [
        ["student weights (BN statistics included)", f"{student / 1e6:.3f} MB"],
        ["EMA teacher weights", f"{teacher / 1e6:.3f} MB ({teacher / student:.2f}×)"],
        ["optimizer state (SGD momentum)", f"{optimizer / 1e6:.3f} MB"],
    ]
    if gpu:
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
        rows.append(["peak GPU memory of the steps", f"{peak / 1e9:.2f} GB"])
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
        rows.append(
            [
                "process peak resident memory (after the steps)",
                f"{rss / 1024:.0f} MiB (+{(rss - rss_before) / 1024:.0f} MiB)",
            ]
        )
    return (
        "Memory",
        f"ADR (PGD-10, EMA teacher) on the CNN, batch {args.batch_size}. The "
        "teacher must cost one copy of the weights and no more.",
        ["what", "size"],
        rows,
    )


RUNNERS = {
    "cost": section_cost,
    "overhead": section_overhead,
    "torch": section_torch,
    "backends": section_backends,
    "eval": section_eval,
    "pipeline": section_pipeline,
    "memory": section_memory,
}


# --------------------------------------------------------------------------
# Output


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def cpu_name():
    """The CPU's model name and whether it has AVX-512 (Linux), else its
    architecture."""
    try:
        with open("/proc/cpuinfo") as info:
            lines = info.read().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in lines)
        if value
    )
    name = fields.get("model name", platform.machine())
    avx512 = "avx512f" in fields.get("flags", "").split()
    return f"{name} ({platform.machine()}, {'with' if avx512 else 'no'} AVX-512)"


def environment(args):
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        device = f"GPU: {details.get('device_name', gpus[0].name)}"
    else:
        device = f"CPU: {cpu_name()}, {os.cpu_count()} cores"
    threads = args.threads or "all"
    return (
        f"- Date: {datetime.date.today().isoformat()}\n"
        f"- Machine: {device}; TensorFlow threads: {threads}; TensorFlow's "
        f"{_onednn_label(onednn_enabled())} (TF_ENABLE_ONEDNN_OPTS="
        f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')})\n"
        f"- Versions: Python {platform.python_version()}, TensorFlow "
        f"{tf.__version__}, Keras {keras.__version__}, keras-robust "
        f"{kr.__version__}\n"
        f"- Command: `{' '.join(['python -m benchmarks', *args.argv])}`\n"
    )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="0: all cores")
    parser.add_argument("--xla", action="store_true", help="jit_compile=True")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, to check that it runs"
    )
    parser.add_argument(
        "--output",
        default=str(HERE / "RESULTS.md"),
        help="the Markdown file to rewrite ('-' to write none)",
    )
    args = parser.parse_args(argv)
    args.argv = argv
    if args.quick:
        args.batch_size, args.steps, args.rounds = 8, 1, 1
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    parts = [
        "# Benchmark results\n",
        "Written by `python -m benchmarks` (see `benchmarks/run.py` for what "
        "each section measures and how). Rerun it to refresh this file.\n",
        environment(args),
    ]
    results = {}
    for name in args.only:
        title, text, header, rows = RUNNERS[name](args)
        results[name] = rows
        block = f"## {title}\n\n{text}\n"
        if rows:
            block += "\n" + table(header, rows) + "\n"
        print(block, flush=True)
        parts.append(block)
    gpu = HERE / "GPU_RESULTS.md"
    if gpu.exists():
        parts.append("## GPU\n\n" + gpu.read_text().split("\n", 1)[1])
    else:
        parts.append(
            "## GPU\n\nNot measured yet: `python benchmarks/gpu.py` (ResNet-18 "
            "and WRN-34-10 PGD-10 AT images/s with the PyTorch peer, under 8 "
            "minutes) writes `benchmarks/GPU_RESULTS.md` on a GPU machine, "
            "and this command then includes it. It runs on TensorFlow or, "
            "with `KERAS_BACKEND=jax`, on JAX without TensorFlow "
            "(`benchmarks/gpu_wheels.sh` prepares a machine that has JAX and "
            "PyTorch but no Keras).\n"
        )
    parts.append(
        "Earlier measurements of the single scripts, with their analyses "
        "(XLA, random-number generation, APGD throughput), are in "
        "`benchmarks/NOTES.md`.\n"
    )
    if args.output != "-":
        Path(args.output).write_text("\n".join(parts))
        print(f"Wrote {args.output}")
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["--cold"]:
        cold_side(sys.argv[2:])
    elif sys.argv[1:2] == ["--torch-times"]:
        torch_times_side(sys.argv[2:])
    else:
        main()
