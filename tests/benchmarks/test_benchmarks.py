"""The benchmark commands run (tiny configurations, on the CPU).

Slow: run with `python -m pytest -m slow`. They check that the commands
work and write their tables, not any speed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_gpu_script_runs_tiny_on_the_cpu(tmp_path):
    output = tmp_path / "gpu.md"
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/gpu.py",
            "--tiny",
            "--xla",
            "off",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [
        json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")
    ]
    keras_rows = [r for r in rows if r["framework"] == "keras_robust"]
    assert {r["precision"] for r in keras_rows} == {"fp32", "bf16"}
    assert all(r["error"] is None and r["images_per_s"] > 0 for r in rows)
    text = output.read_text()
    assert "| keras_robust (tensorflow) | resnet18 | 2 | bf16 | off |" in text
    assert "Device: CPU" in text
    assert "Input pipeline (`keras_robust.data.prepare_images`" in text


def test_gpu_script_runs_tiny_on_jax_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    output = tmp_path / "gpu.md"
    # TensorFlow blocked: the GPU machine's image has JAX but no TensorFlow.
    script = (
        "import runpy, sys\n"
        "sys.modules['tensorflow'] = None\n"
        "sys.path.insert(0, 'benchmarks')\n"
        f"sys.argv = ['gpu.py', '--tiny', '--output', {str(output)!r}]\n"
        "runpy.run_path('benchmarks/gpu.py', run_name='__main__')\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = output.read_text()
    for precision in ("fp32", "bf16"):
        assert f"| keras_robust (jax) | resnet18 | 2 | {precision} | on |" in text
    assert "on JAX" in text and "failed" not in text
    assert "not measured (it needs TensorFlow)" in text


def test_benchmark_command_rewrites_its_results_file(tmp_path):
    output = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            "cost",
            "pipeline",
            "memory",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = output.read_text()
    # The command turns TensorFlow's oneDNN kernels on unless told otherwise,
    # and says so.
    assert "(TF_ENABLE_ONEDNN_OPTS=1)" in text
    assert "## Cost model" in text and "## Memory" in text
    assert "## Input pipeline" in text and "| fit() fed by the pipeline" in text
    assert "| PGD-10 AT |" in text and "| 7.67 | 23F |" in text
    # The EMA teacher is one copy of the student's weights.
    assert "(1.00×)" in text
    assert "Command: `python -m benchmarks --quick" in text


@pytest.mark.tensorflow_only(reason="the step comparisons run on TensorFlow")
@pytest.mark.parametrize(
    "script, keys",
    [
        ("fused_batch_norm.py", {"keras_batch_norm_ms_per_step", "speed_up"}),
        ("adr_overhead.py", {"pgd_at_ms_per_step", "adr_ms_per_step", "ratio"}),
    ],
)
def test_step_comparison_scripts_run_tiny(script, keys):
    done = subprocess.run(
        [
            sys.executable,
            f"benchmarks/{script}",
            *("--batch-size", "8", "--steps", "1", "--rounds", "2", "--no-xla"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = [json.loads(x) for x in done.stdout.splitlines() if x[:1] == "{"]
    assert result["jit_compile"] is False and keys <= set(result)
    per_round = result.get("speed_up_per_round") or result["ratios_per_round"]
    assert len(per_round) == 2 and all(r > 0 for r in per_round)


def _jax_script_json(script, *args):
    """Runs `benchmarks/<script>` on JAX in a fresh process; its last JSON line."""
    pytest.importorskip("jax")
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_jax_overhead_script_runs_tiny():
    result = _jax_script_json(
        "jax_overhead.py", "--batch-size", "8", "--steps", "1", "--rounds", "1"
    )
    assert result["device"] == "cpu"
    assert result["ours_ms_per_step"] > 0 and result["hand_ms_per_step"] > 0
    assert len(result["ratios_per_round"]) == 1


def test_jax_evaluation_script_compiles_each_attack_once():
    result = _jax_script_json("jax_evaluation.py")
    assert result["backend"] == "jax"
    assert result["first_call_s"] > result["second_call_s"] > 0
    assert 0.2 < result["robust_accuracy"] < 0.9
    # Every batch of the evaluation (full, partial, APGD-T's shrinking runs)
    # runs one compiled APGD and one compiled Square, and every prediction
    # (256 and 194 clean examples, those each attack ran on) one compiled
    # forward pass; the checks' gradients are compiled once.
    assert result["traces"] == {
        "APGD run": 1,
        "Square perturb": 1,
        "forward pass": 1,
        "input gradients": 1,
    }


def test_jax_evaluation_script_reuses_its_compilation_cache(tmp_path):
    cache = tmp_path / "cache"
    options = ("--examples", "32", "--compilation-cache", str(cache))
    first = _jax_script_json("jax_evaluation.py", *options)
    stored = sorted(p.name for p in cache.iterdir())
    # The attacks, the predictions, the checks and the training step.
    assert len(stored) >= 4
    second = _jax_script_json("jax_evaluation.py", *options)
    # The later process found every program it compiles in the cache: it
    # stored nothing new, and evaluated the same.
    assert sorted(p.name for p in cache.iterdir()) == stored
    assert first["compilation_cache"] is second["compilation_cache"] is True
    assert second["robust_accuracy"] == first["robust_accuracy"]
