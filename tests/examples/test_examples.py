"""The examples run end to end (tiny settings, offline mock data).

Slow (minutes on 2 CPU cores): run with `python -m pytest -m slow`.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import keras_robust as kr

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_adr_cifar10_recipe_runs_and_checkpoints(tmp_path, restore_dtype_policy):
    example = _load("adr_cifar10")
    history = example.main(
        [
            "--mock-data",
            "--steps-per-epoch",
            "2",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--attack-steps",
            "1",
            "--output",
            str(tmp_path),
        ]
    )
    logs = history.history
    assert {"loss", "robust_accuracy", "val_robust_accuracy", "temperature"} <= set(
        logs
    )
    # Two epochs of two steps: the schedules run from their start to their end.
    assert logs["temperature"][0] < 2.5 and logs["temperature"][-1] > 2.0
    assert np.all(np.isfinite(logs["loss"]))
    assert (tmp_path / "best.keras").exists() and (tmp_path / "last.keras").exists()
    assert (tmp_path / "history.csv").exists()


@pytest.mark.slow
def test_noisy_labels_example_prints_one_accuracy_per_loss(capsys):
    example = _load("noisy_labels")
    results = example.main(["--epochs", "2"])
    assert set(results) == set(example.LOSSES)
    assert all(0.0 <= accuracy <= 1.0 for accuracy in results.values())
    assert "NCE+RCE" in capsys.readouterr().out


@pytest.mark.slow
def test_adr_digits_example_reports_student_and_teacher(capsys):
    example = _load("adr_digits")
    results = example.main(["--epochs", "1"])
    assert set(results) == {"PGD-AT", "ADR (student)", "ADR (EMA teacher)"}
    for r in results.values():
        assert 0.0 <= r["pgd20"] <= r["clean"] + 0.05
        assert 0.0 <= r["ece"] <= 1.0
    assert kr.data.load_digits()[1][0].shape[1:] == (8, 8, 1)


@pytest.mark.slow
def test_tune_adr_example_prints_trials_and_the_best_model(tmp_path, capsys):
    pytest.importorskip("keras_tuner")
    example = _load("tune_adr")
    results = example.main(
        ["--trials", "2", "--epochs", "1", "--directory", str(tmp_path)]
    )
    assert set(results) == {"student", "teacher"}
    for r in results.values():
        assert 0.0 <= r["pgd20"] <= r["clean"] + 0.05
    out = capsys.readouterr().out
    assert "val_robust_acc" in out and out.count("\n") >= 5


@pytest.mark.slow
def test_calibrated_labels_example_prints_best_and_last_of_both_runs(capsys):
    example = _load("calibrated_labels")
    results = example.main(["--epochs", "3", "--quiet"])
    assert 0.2 <= results["temperature"] <= 16.0
    assert 0.01 <= results["interpolation"] <= 1.0
    for name in ("PGD-AT", "Calibrated (KD-AT-Auto)"):
        run = results[name]
        assert 1 <= run["best_epoch"] <= 3
        assert 0.0 <= run["best"] <= 1.0 and 0.0 <= run["last"] <= 1.0
    out = capsys.readouterr().out
    assert "Calibrated labels: temperature=" not in out  # --quiet
    assert "PGD-AT" in out and "gap" in out
