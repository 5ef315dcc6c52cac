"""The command's long jobs in subprocesses: the main job with no arguments,
a killed training resumed, a search, a tfds run on mock data.

Slow (minutes on 2 CPU cores): run with `python -m pytest -m slow`.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import keras_robust as kr

pytestmark = pytest.mark.slow


def command(*argv):
    return [sys.executable, "-m", "keras_robust", *argv]


def run(argv, cwd, timeout=900):
    done = subprocess.run(
        command(*argv), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_train_with_no_arguments_is_the_main_job(tmp_path):
    start = time.perf_counter()
    done = run(["train"], tmp_path)
    seconds = time.perf_counter() - start
    output = tmp_path / "runs" / "train-digits-adr"
    report = json.loads((output / "report.json").read_text())
    assert list(report["per_attack"]) == ["apgd-ce", "apgd-t", "square"]
    assert report["num_examples"] == 450
    # ADR's teacher on digits at eps = 0.1 keeps most of its accuracy.
    assert report["clean_accuracy"] > 0.9
    assert 0.3 < report["robust_accuracy"] < report["clean_accuracy"]
    card = kr.export.read_card(str(output / "export"))
    assert card["robustness"]["robust_accuracy"] == pytest.approx(
        report["robust_accuracy"]
    )
    assert "Summary" in done.stdout and "robust accuracy" in done.stdout
    assert "Epoch 30/30" in done.stdout  # Keras progress
    print(f"keras-robust train: {seconds:.0f} s")


TRAIN = [
    "train",
    "--epochs",
    "5",
    "--attack-steps",
    "2",
    "--eval-samples",
    "50",
    "--attacks",
    "apgd-ce",
    "--no-export",
]


def _wait_for_epochs(path, epochs, process, timeout=300):
    """Waits until `path` (history.csv) lists `epochs` epochs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) > epochs:
            return
        assert process.poll() is None, "training ended before it was killed"
        time.sleep(0.2)
    raise AssertionError("training did not reach the epoch to kill it at")


def test_a_killed_training_resumes_and_equals_an_uninterrupted_one(tmp_path):
    run([*TRAIN, "--output", "whole"], tmp_path)

    process = subprocess.Popen(
        command(*TRAIN, "--output", "killed"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_epochs(tmp_path / "killed" / "history.csv", 2, process)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert not json.loads((tmp_path / "killed" / "run.json").read_text())["complete"]
    done = run([*TRAIN, "--output", "killed"], tmp_path)
    assert "Resuming" in done.stdout

    whole = json.loads((tmp_path / "whole" / "history.json").read_text())
    resumed = json.loads((tmp_path / "killed" / "history.json").read_text())
    assert len(resumed["loss"]) == 5
    for key in ("loss", "val_robust_accuracy", "temperature", "interpolation"):
        np.testing.assert_allclose(resumed[key], whole[key], rtol=1e-5, err_msg=key)
    a = keras.saving.load_model(tmp_path / "whole" / "model.keras")
    b = keras.saving.load_model(tmp_path / "killed" / "model.keras")
    for u, v in zip(a.teacher.get_weights(), b.teacher.get_weights(), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    report_a = json.loads((tmp_path / "whole" / "report.json").read_text())
    report_b = json.loads((tmp_path / "killed" / "report.json").read_text())
    assert report_a["robust_accuracy"] == report_b["robust_accuracy"]


def test_tune_finds_and_saves_the_best_trial(tmp_path):
    run(
        [
            "tune",
            "--max-trials",
            "2",
            "--epochs",
            "2",
            "--attack-steps",
            "1",
            "--output",
            "search",
            "--no-verbose",
        ],
        tmp_path,
    )
    output = tmp_path / "search"
    best = json.loads((output / "best_hyperparameters.json").read_text())
    assert {"temperature_start", "interpolation_end", "schedule"} <= set(best)
    model = keras.saving.load_model(output / "best.keras")
    assert isinstance(model, kr.AdversarialModel) and model.teacher is not None


def test_train_on_tfds_mock_data(tmp_path):
    run(
        [
            "train",
            "--dataset",
            "svhn",
            "--mock-data",
            "--model",
            "small_cnn",
            "--method",
            "trades",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--attack-steps",
            "1",
            "--eval-samples",
            "16",
            "--attacks",
            "apgd-ce",
            "--output",
            "svhn",
        ],
        tmp_path,
    )
    report = json.loads((tmp_path / "svhn" / "report.json").read_text())
    assert report["num_examples"] == 16
    card = kr.export.read_card(str(tmp_path / "svhn" / "export"))
    assert card["weights"] == "student"  # TRADES has no teacher
