import numpy as np
import pytest

from keras_robust.evaluation import (
    expected_calibration_error,
    reliability_diagram,
    robustness_curve,
    training_curves,
)

PNG_MAGIC = b"\x89PNG"


def test_reliability_diagram_png(digits_model, tmp_path):
    model, x, y = digits_model
    logits = model.predict(x, verbose=0)
    path = tmp_path / "reliability.png"
    result = reliability_diagram(logits, y, path)
    assert path.read_bytes()[:4] == PNG_MAGIC
    assert sum(result["bin_count"]) == len(x)
    assert result["ece"] == pytest.approx(expected_calibration_error(logits, y))


def test_robustness_curve_svg(digits_model, tmp_path):
    model, x, y = digits_model
    path = tmp_path / "curve.svg"
    result = robustness_curve(model, x[:100], y[:100], [0.0, 0.05, 0.3], path)
    assert b"<svg" in path.read_bytes()[:500]
    clean = float(np.mean(model.predict(x[:100], verbose=0).argmax(-1) == y[:100]))
    assert result["accuracy"][0] == pytest.approx(clean)
    assert result["accuracy"][-1] < 0.05 < result["accuracy"][0]


def test_training_curves(tmp_path):
    history = {
        "loss": [2.0, 1.0],
        "accuracy": [0.5, 0.8],
        "robust_accuracy": [0.2, 0.4],
        "val_accuracy": [0.5, 0.7],
        "val_robust_accuracy": [0.3, 0.35],
    }
    path = tmp_path / "curves.png"
    curves = training_curves(history, path)
    assert path.read_bytes()[:4] == PNG_MAGIC
    assert set(curves) == {
        "accuracy",
        "robust_accuracy",
        "val_accuracy",
        "val_robust_accuracy",
    }
    with pytest.raises(ValueError, match="Received: history with keys"):
        training_curves({"loss": [1.0]}, tmp_path / "x.png")
