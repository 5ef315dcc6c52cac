"""PGD-10 adversarial training throughput on one GPU: keras_robust and PyTorch.

One prepared command for a GPU machine (synthetic CIFAR-shaped data, no
download), finishing within `--budget` seconds (default 420, under 8
minutes; configurations that no longer fit are listed as skipped):

    python benchmarks/gpu.py --output benchmarks/GPU_RESULTS.md
    python benchmarks/gpu.py --tiny --output -     # CPU smoke test

It runs on Keras's backend (`KERAS_BACKEND`): TensorFlow, or JAX, which
needs no TensorFlow installed (`benchmarks/gpu_wheels.sh` prepares a
machine that has JAX and PyTorch but no Keras). The results file is
rewritten after each configuration, so a run stopped early keeps what it
measured.

For ResNet-18 and WRN-34-10 (the model zoo's, 32×32×3, 10 classes), batch
128 and 512, float32 and bfloat16 (`mixed_bfloat16`), XLA off and on: the
images/s of `AdversarialModel.fit` with L∞ PGD-10 (ε 8/255, step 2/255,
attack in train mode) and SGD with momentum, after a warm-up that traces
and compiles. On JAX every step is compiled by XLA (Keras runs a JAX
step without XLA eagerly, operation by operation), so XLA is "on" only.
The PyTorch peer runs the same step in eager mode on the same batches:
float32; bf16 autocast with channels-last; and that plus `torch.compile`.
Images/s count training images (each costs about 23 forward-pass
equivalents: 10 attack steps of a forward and an
input-backward pass, and the update's forward and full backward pass).
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The frameworks share the GPU in one process: none may take all its memory
# up front (JAX takes 75% by default, TensorFlow all of it).
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from shared import EPSILON, STEP_SIZE, pgd10_at  # noqa: E402

import keras_robust as kr  # noqa: E402

BACKEND = keras.backend.backend()

PGD_STEPS = 10


def synthetic(batch_size, shape, count=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(batch_size * count, *shape)).astype("float32")
    y = rng.integers(0, 10, size=batch_size * count).astype("int64")
    return x, y


def keras_throughput(name, batch_size, precision, xla, args):
    """Images/s of `AdversarialModel.fit` (PGD-10 AT)."""
    keras.mixed_precision.set_dtype_policy(
        "mixed_bfloat16" if precision == "bf16" else "float32"
    )
    try:
        keras.utils.set_random_seed(0)
        base = kr.models.get(name, num_classes=10, input_shape=args.shape)
        model = pgd10_at(
            base,
            xla,
            learning_rate=0.1,
            steps_per_execution=args.steps_per_execution,
        )
        warmup = max(args.steps_per_execution, 2 if not args.tiny else 1)
        if BACKEND == "tensorflow":
            import tensorflow as tf

            x, y = synthetic(batch_size, args.shape)
            data = (
                tf.data.Dataset.from_tensor_slices((x, y))
                .batch(batch_size, drop_remainder=True)
                .cache()
                .repeat()
                .prefetch(tf.data.AUTOTUNE)
            )
            model.fit(data, epochs=1, steps_per_epoch=warmup, verbose=0)
            start = time.perf_counter()
            model.fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0)
        else:
            # Arrays in memory, batched by fit(), one epoch of the steps.
            x, y = synthetic(batch_size, args.shape, count=args.steps)
            fit = dict(batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
            count = warmup * batch_size
            model.fit(x[:count], y[:count], **fit)
            start = time.perf_counter()
            model.fit(x, y, **fit)
        float(keras.ops.convert_to_numpy(model.optimizer.iterations))  # sync
        seconds = time.perf_counter() - start
        return batch_size * args.steps / seconds
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


# --------------------------------------------------------------------------
# The PyTorch peer


def torch_models(torch):
    nn = torch.nn

    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()
            )
            layers, cin = [], 64
            for stage, cout in enumerate((64, 128, 256, 512)):
                for block in range(2):
                    stride = 2 if stage > 0 and block == 0 else 1
                    layers.append(Basic(cin, cout, stride))
                    cin = cout
            self.layers = nn.Sequential(*layers)
            self.head = nn.Linear(512, 10)

        def forward(self, x):
            x = self.layers(self.stem(x))
            return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    class Wide(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.bn1, self.bn2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.project = None
            if cin != cout:
                self.project = nn.Conv2d(cin, cout, 1, stride, bias=False)

        def forward(self, x):
            out = torch.relu(self.bn1(x))
            shortcut = x if self.project is None else self.project(out)
            out = self.conv2(torch.relu(self.bn2(self.conv1(out))))
            return out + shortcut

    class WRN(nn.Module):
        def __init__(self, depth=34, width=10):
            super().__init__()
            n = (depth - 4) // 6
            self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            layers, cin = [], 16
            for cout, stride in ((16 * width, 1), (32 * width, 2), (64 * width, 2)):
                for block in range(n):
                    layers.append(Wide(cin, cout, stride if block == 0 else 1))
                    cin = cout
            self.layers = nn.Sequential(*layers)
            self.bn = nn.BatchNorm2d(cin)
            self.head = nn.Linear(cin, 10)

        def forward(self, x):
            x = torch.relu(self.bn(self.layers(self.stem(x))))
            return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    return {"resnet18": ResNet18, "wrn34_10": WRN}


def torch_throughput(torch, name, batch_size, variant, args):
    """Images/s of the PGD-10 AT step in PyTorch eager (or compiled)."""
    functional = torch.nn.functional
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = torch_models(torch)[name]().to(device)
    channels_last = variant != "fp32"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    forward = torch.compile(model) if variant == "bf16+cl+compile" else model
    x, y = synthetic(batch_size, args.shape)
    x = torch.from_numpy(x[:batch_size]).permute(0, 3, 1, 2).contiguous().to(device)
    y = torch.from_numpy(y[:batch_size]).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=variant != "fp32")

    def step():
        model.train()
        x_adv = (x + torch.empty_like(x).uniform_(-EPSILON, EPSILON)).clamp(0, 1)
        for _ in range(PGD_STEPS):
            x_adv.requires_grad_(True)
            with autocast:
                loss = functional.cross_entropy(
                    forward(x_adv).float(), y, reduction="sum"
                )
            (gradient,) = torch.autograd.grad(loss, x_adv)
            x_adv = x_adv.detach() + STEP_SIZE * gradient.sign()
            x_adv = torch.minimum(torch.maximum(x_adv, x - EPSILON), x + EPSILON)
            x_adv = x_adv.clamp(0, 1)
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = functional.cross_entropy(forward(x_adv).float(), y)
        loss.backward()
        optimizer.step()

    def synchronize():
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(2 if not args.tiny else 1):
        step()
    synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize()
    return batch_size * args.steps / (time.perf_counter() - start)


# --------------------------------------------------------------------------


def plan(args, torch):
    """The configurations, most important first."""
    configs = []
    for name in args.models:
        for batch_size in args.batches:
            for precision in args.precisions:
                for xla in args.xla:
                    configs.append(("keras_robust", name, batch_size, precision, xla))
            if torch is not None:
                for variant in args.torch_variants:
                    configs.append(("torch", name, batch_size, variant, None))
    return configs


def device_name():
    """The GPU Keras's backend runs on, or the CPU."""
    if BACKEND == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "gpu":
            return device.device_kind
    else:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return details.get("device_name", "GPU")
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


def backend_version():
    if BACKEND == "jax":
        import jax

        return f"JAX {jax.__version__}"
    import tensorflow as tf

    return f"TensorFlow {tf.__version__}"


def pipeline_rate(args):
    """What `keras_robust.data.prepare_images` feeds (needs TensorFlow)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return None
    from run import pipeline_throughput

    return pipeline_throughput(
        max(args.batches), count=256 if args.tiny else 8192, shape=args.shape
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "wrn34_10"])
    parser.add_argument("--batches", nargs="+", type=int, default=[128, 512])
    parser.add_argument("--precisions", nargs="+", default=["bf16", "fp32"])
    parser.add_argument(
        "--xla",
        nargs="+",
        type=lambda s: s == "on",
        default=[True, False] if BACKEND == "tensorflow" else [True],
        help="on and/or off (on only with JAX)",
    )
    parser.add_argument(
        "--torch-variants",
        nargs="+",
        default=["fp32", "bf16+cl", "bf16+cl+compile"],
    )
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--budget", type=float, default=420.0, help="seconds")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test")
    parser.add_argument(
        "--output", default=str(Path(__file__).parent / "GPU_RESULTS.md")
    )
    command = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(command)
    args.shape = (32, 32, 3)
    if args.tiny:
        args.models, args.batches, args.steps = ["resnet18"], [2], 1
        args.shape = (16, 16, 3)
        args.torch_variants = [v for v in args.torch_variants if "compile" not in v]
    try:
        import torch
    except ImportError:
        torch = None

    # What the input pipeline (load_tfds's CIFAR training pipeline) can feed.
    pipeline = pipeline_rate(args)
    start = time.perf_counter()
    results, skipped = [], []
    for config in plan(args, torch):
        if time.perf_counter() - start > args.budget:
            skipped.append(config)
            continue
        framework, name, batch_size, precision, xla = config
        try:
            if framework == "torch":
                rate = torch_throughput(torch, name, batch_size, precision, args)
            else:
                rate = keras_throughput(name, batch_size, precision, xla, args)
            error = None
        except Exception as exception:  # a configuration that fails is reported
            rate, error = None, f"{type(exception).__name__}: {exception}"[:200]
        row = {
            "framework": framework,
            "model": name,
            "batch": batch_size,
            "precision": precision,
            "xla": xla,
            "images_per_s": None if rate is None else round(rate, 1),
            "error": error,
        }
        print(json.dumps(row), flush=True)
        results.append(row)
        write_results(args, command, torch, pipeline, start, results, skipped)
    text = write_results(args, command, torch, pipeline, start, results, skipped)
    print(text)
    return results


def write_results(args, command, torch, pipeline, start, results, skipped):
    """Writes the results so far to `args.output` (`-`: none); its text."""
    if pipeline is None:
        pipeline_line = "not measured (it needs TensorFlow)"
    else:
        pipeline_line = (
            f"{pipeline:.0f} images/s (batch {max(args.batches)}, "
            f"{os.cpu_count()} CPU cores)"
        )
    lines = [
        "# GPU benchmark: PGD-10 AT throughput\n",
        f"- Date: {datetime.date.today().isoformat()}",
        f"- Device: {device_name()}",
        f"- Versions: Keras {keras.__version__} on {backend_version()}, "
        f"keras-robust {kr.__version__}"
        + (f", torch {torch.__version__}" if torch is not None else ", no torch"),
        f"- Command: `KERAS_BACKEND={BACKEND} python benchmarks/gpu.py "
        f"{' '.join(command)}`",
        f"- {args.steps} timed steps after warm-up, input {args.shape}, wall "
        f"time {time.perf_counter() - start:.0f} s",
        "- Input pipeline (`keras_robust.data.prepare_images` with the CIFAR "
        f"augmentation): {pipeline_line}\n",
        "| framework | model | batch | precision | XLA | images/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        value = r["images_per_s"] if r["error"] is None else f"failed: {r['error']}"
        xla = "—" if r["xla"] is None else ("on" if r["xla"] else "off")
        framework = r["framework"]
        if framework == "keras_robust":
            framework = f"keras_robust ({BACKEND})"
        lines.append(
            f"| {framework} | {r['model']} | {r['batch']} | {r['precision']} "
            f"| {xla} | {value} |"
        )
    if skipped:
        lines.append(f"\nSkipped (over the {args.budget:.0f} s budget): {skipped}")
    text = "\n".join(lines) + "\n"
    if args.output != "-":
        Path(args.output).write_text(text)
    return text


if __name__ == "__main__":
    main()
