"""examples/export_and_serve.py: trains, exports and serves without keras_robust."""

import importlib.util
from pathlib import Path

import pytest

import keras_robust as kr

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "export_and_serve.py"


@pytest.mark.slow
def test_export_and_serve_example_serves_the_teacher(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("export_and_serve", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(["--epochs", "1", "--output", str(tmp_path)])

    assert result["logits_error"] <= 1e-5
    assert result["probabilities_error"] <= 1e-5
    assert result["served"]["logits"].shape == (450, 10)
    card = kr.export.read_card(tmp_path / "robust" / "1")
    assert card == result["card"]
    assert card["weights"] == "teacher"
    assert card["attack"]["class"] == "PGD" and card["attack"]["epsilon"] == 0.1
    robustness = card["robustness"]
    assert 0.0 <= robustness["robust_accuracy"] <= robustness["clean_accuracy"] <= 1
    assert 0.0 <= robustness["ece"] <= 1.0
    out = capsys.readouterr().out
    assert "served 450 images without keras_robust" in out
    assert "Served outputs match the in-memory teacher" in out
